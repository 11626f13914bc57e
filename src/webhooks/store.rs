//! The webhook documents in the shared store, so every node sees the same
//! endpoints and cursors and they survive restarts: `endpoints` (what
//! admins set, secrets included) and `state:<id>` per endpoint (its cursor
//! in the event stream, failures, dead letters). On Redis they are fields
//! of the hash `hub:{t}:webhooks`; on a single node the memory store's,
//! journaled with `--data-dir`.
//!
//! Why documents with a compare-and-swap rather than more store commands:
//! the store stays ignorant of webhooks (two generic methods,
//! `Backplane::webhook_doc`, `put_webhook_doc`), and the read-modify-write
//! here never loses a concurrent change — an admin's rotation racing a
//! delivery's cursor advance, or two nodes during a lease handover.

use crate::backplane::WriteAck;
use crate::error::{HubError, HubResult};
use crate::hub::Hub;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// The document of the tenant's endpoints.
pub const ENDPOINTS: &str = "endpoints";

/// The document of one endpoint's delivery state.
pub fn state_name(id: &str) -> String {
    format!("state:{id}")
}

/// Where one endpoint's delivery stands.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The last event id delivered (or skipped by the filter): delivery
    /// resumes after it. Advanced only after a 2xx (or a dead letter).
    pub cursor: Option<String>,
    /// The version of the last change event read, to notice versions the
    /// stream's retention dropped before they were delivered.
    #[serde(default)]
    pub version: Option<u64>,
    /// Change events lost to retention before delivery (never skipped in
    /// silence: counted here, logged and in metrics).
    #[serde(default)]
    pub missed: u64,
    #[serde(default)]
    pub delivered_events: u64,
    /// When the batch being retried first failed.
    #[serde(default)]
    pub failing_since_ms: Option<u64>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Newest last, at most `--webhook-dead-letters-max`.
    #[serde(default)]
    pub dead_letters: VecDeque<DeadLetter>,
    #[serde(default)]
    pub dead_lettered: u64,
}

/// A batch given up on: which events it held (they stay in the stream
/// while its retention keeps them) and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    pub webhook_id: String,
    pub first: String,
    pub last: String,
    pub events: usize,
    pub attempts: u32,
    pub first_failure_ms: u64,
    pub dead_at_ms: u64,
    pub last_error: Option<String>,
    /// The batch's event ids, for a re-drive or a manual fetch.
    #[serde(default)]
    pub event_ids: Vec<String>,
    /// An admin asked to send it again (`POST …/dead-letters/{webhook_id}/redrive`):
    /// the delivering node sends it once, before the next batch; a 2xx
    /// removes the dead letter, a failure leaves it with `last_error`.
    #[serde(default)]
    pub redrive: bool,
}

/// Reads a document: its version and value (the default when absent).
pub async fn load<T: DeserializeOwned + Default>(
    hub: &Hub,
    tenant: &str,
    name: &str,
) -> HubResult<(u64, T)> {
    let (version, doc) = hub.backplane.webhook_doc(tenant, name).await?;
    let value = match doc {
        None => T::default(),
        Some(text) => decode(tenant, name, &text)?,
    };
    Ok((version, value))
}

fn decode<T: DeserializeOwned>(tenant: &str, name: &str, text: &str) -> HubResult<T> {
    serde_json::from_str(text).map_err(|e| {
        tracing::error!(tenant, name, error = %e, "webhooks: a stored document does not decode");
        HubError::unavailable(format!(
            "the stored webhook document {name} does not decode"
        ))
    })
}

/// A document, or `None` when there is none (where [`load`] gives the
/// default).
pub async fn load_present<T: DeserializeOwned>(
    hub: &Hub,
    tenant: &str,
    name: &str,
) -> HubResult<Option<T>> {
    let (_, doc) = hub.backplane.webhook_doc(tenant, name).await?;
    doc.map(|text| decode(tenant, name, &text)).transpose()
}

/// Read-modify-write of a document, retried on a concurrent change.
/// `change` returns `Ok(None)` to write nothing, `Ok(Some(doc))` to write
/// it (`doc: None` deletes the document). `ack`: an admin's write waits
/// for the replicas, a delivery's bookkeeping does not ([`WriteAck`]).
pub async fn update<T, R>(
    hub: &Hub,
    tenant: &str,
    name: &str,
    ack: WriteAck,
    mut change: impl FnMut(T) -> HubResult<(Option<Option<T>>, R)>,
) -> HubResult<R>
where
    T: DeserializeOwned + Serialize + Default,
{
    for _ in 0..16 {
        let (version, current) = load::<T>(hub, tenant, name).await?;
        let (write, answer) = change(current)?;
        let Some(write) = write else {
            return Ok(answer);
        };
        let text = match &write {
            Some(doc) => Some(serde_json::to_string(doc).map_err(|e| {
                HubError::unavailable(format!("cannot encode the webhook document: {e}"))
            })?),
            None => None,
        };
        if hub
            .backplane
            .put_webhook_doc(tenant, name, version, text.as_deref(), ack)
            .await?
            .is_some()
        {
            return Ok(answer);
        }
    }
    Err(HubError::unavailable(
        "the webhook document kept changing under this request; retry",
    ))
}

/// Writes `doc` as document `name` only if there is none: `true` when this
/// call wrote it. A cursor put back for an endpoint found without one is
/// written this way, so it never overwrites one written meanwhile.
pub async fn create_if_absent<T: Serialize>(
    hub: &Hub,
    tenant: &str,
    name: &str,
    doc: &T,
) -> HubResult<bool> {
    let text = serde_json::to_string(doc)
        .map_err(|e| HubError::unavailable(format!("cannot encode the webhook document: {e}")))?;
    for _ in 0..16 {
        let (version, current) = hub.backplane.webhook_doc(tenant, name).await?;
        if current.is_some() {
            return Ok(false);
        }
        if hub
            .backplane
            .put_webhook_doc(tenant, name, version, Some(&text), WriteAck::Replicated)
            .await?
            .is_some()
        {
            return Ok(true);
        }
    }
    Err(HubError::unavailable(
        "the webhook document kept changing under this request; retry",
    ))
}
