//! The write path of directory changes (PROTOCOL.md §7.1), beside
//! [`Hub::change`] for agents: plan the change on the replica
//! ([`crate::directory::change::plan`], pure), commit it to the store
//! under one seq by compare-and-swap on the directory's version and every
//! record it touches, and on a conflict wait for the replica to catch up
//! with the store and plan again. The reply waits until this node's
//! replica shows the change, like every other change's.

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
        for _ in 0..MAX_CAS_ATTEMPTS {
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
                plan(&tenant.directory(), change, &inputs)?
            };
            let Some(write) = planned else {
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
}
