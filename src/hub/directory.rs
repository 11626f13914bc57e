//! The write path of directory changes (PROTOCOL.md §7.1), beside
//! [`Hub::change`] for agents: plan the change on the replica
//! ([`crate::directory::change::plan`], pure), commit it to the store
//! under one seq by compare-and-swap on the directory's version and every
//! record it touches, and on a conflict wait for the replica to catch up
//! with the store and plan again. A verdict that writes nothing ("nothing
//! to change", a refusal) is checked against the store's seq instead. The
//! reply waits until this node's replica shows the change, like every
//! other change's.

use super::tenant::Tenant;
use super::{Hub, MAX_CAS_ATTEMPTS};
use crate::backplane::{DirectoryCommit, IdempotencyKey};
use crate::directory::change::{plan, DirectoryChange, Inputs};
use crate::domain::Actor;
use crate::error::{HubError, HubResult};
use std::sync::Arc;

/// What a directory change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Committed (now, or earlier under the same idempotency key) at this seq.
    At(u64),
    /// The directory already said so: nothing was written.
    Unchanged,
}

impl Hub {
    /// Applies one directory change made by `by` (an admin; the caller
    /// checks). A refused change writes nothing.
    pub async fn change_directory(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        by: &Actor,
        change: &DirectoryChange,
        once: Option<&IdempotencyKey>,
    ) -> HubResult<Applied> {
        if let Some(key) = once {
            if let Some(seq) = self.backplane.applied_under(tenant.id(), key).await? {
                tenant.wait_for(seq, self.config.command_timeout()).await;
                return Ok(Applied::At(seq));
            }
        }
        // Whether a verdict planned on the replica may be trusted without a
        // commit to check it (see `replica_was_current`).
        let mut verified = !self.backplane.is_shared();
        for _ in 0..MAX_CAS_ATTEMPTS {
            let planned_at = tenant.seq();
            // Planned in a block of its own: the closures it borrows are
            // not held across the commit's await.
            let planned = {
                let settings = tenant.settings();
                let record = |id: &str| tenant.record(id);
                let records = || tenant.records();
                let inputs = Inputs {
                    settings: &settings,
                    by,
                    record: &record,
                    records: &records,
                };
                plan(&tenant.directory(), change, &inputs)
            };
            // A change is checked by its compare-and-swap; "nothing to
            // change" and a refusal never reach the store, so they stand
            // only on a replica that was not behind it.
            if !verified && !matches!(planned, Ok(Some(_))) {
                verified = true;
                if !self.replica_was_current(tenant, planned_at).await? {
                    continue;
                }
            }
            let Some(write) = planned? else {
                // An `ok` like a change's: on the replicas too
                // (`Backplane::replicas_hold_the_store`).
                self.backplane.replicas_hold_the_store(tenant.id()).await?;
                return Ok(Applied::Unchanged);
            };
            let started = std::time::Instant::now();
            let commit = self
                .backplane
                .commit_directory(tenant.id(), &write, once)
                .await;
            crate::metrics::get()
                .backplane_seconds
                .record(started.elapsed().as_secs_f64());
            match commit? {
                DirectoryCommit::Committed(seq) => {
                    crate::metrics::get().directory_changes(&write.event);
                    tenant.wait_for(seq, self.config.command_timeout()).await;
                    return Ok(Applied::At(seq));
                }
                DirectoryCommit::AlreadyApplied(seq) => {
                    tenant.wait_for(seq, self.config.command_timeout()).await;
                    return Ok(Applied::At(seq));
                }
                DirectoryCommit::Conflict(store_seq) => {
                    // The replica planned on something older than the store:
                    // plan again once it has caught up (a gap asks for a
                    // catch-up by itself).
                    if tenant.seq() >= store_seq {
                        tenant.request_catch_up();
                    }
                    tenant
                        .wait_for(store_seq, self.config.command_timeout())
                        .await;
                }
            }
        }
        Err(HubError::unavailable(
            "the directory is changing too fast; try again",
        ))
    }

    /// Whether the replica was as new as the store when a verdict was
    /// planned on it at seq `planned_at`; when not, waits (up to the
    /// command timeout) until it is, for the caller to plan again. A
    /// replica lags the store by the deltas on their way, and by a lost
    /// delta until the seq watch catches it up (`hub::cluster`): an admin
    /// putting back an entry as the lagging replica shows it, or deleting
    /// one it has not heard of, would otherwise get `ok` "nothing to
    /// change" or `not_found` while the store holds another directory.
    /// `unavailable` (nothing applied) when the replica does not catch up,
    /// and when the store is behind the replica: it lost changes this node
    /// applied (a failover), so what the replica shows may be one of them;
    /// the node catches up, repairing the store, meanwhile.
    async fn replica_was_current(&self, tenant: &Tenant, planned_at: u64) -> HubResult<bool> {
        let Some(store_seq) = self.backplane.current_seq(tenant.id()).await? else {
            return Ok(true);
        };
        if store_seq < planned_at {
            tenant.request_catch_up();
            return Err(HubError::unavailable(
                "the store lost recent changes of the directory; catching up, try again",
            ));
        }
        if store_seq == planned_at {
            return Ok(true);
        }
        tenant
            .wait_for(store_seq, self.config.command_timeout())
            .await;
        if tenant.seq() < store_seq {
            return Err(HubError::unavailable(
                "this node's copy of the directory is behind the store; nothing was applied, try again",
            ));
        }
        Ok(false)
    }
}
