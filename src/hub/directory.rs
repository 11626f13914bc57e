//! The write path of directory changes (PROTOCOL.md §7.1), beside
//! [`Hub::change`] for agents: plan the change on the replica
//! ([`crate::directory::change::plan`], pure), commit it to the store
//! under one seq by compare-and-swap on the directory's version and every
//! record it touches, and on a conflict wait for the replica to catch up
//! with the store and plan again. A verdict that writes nothing ("nothing
//! to change", a refusal) is checked against the store's seq instead, and
//! planned again on a replica that has caught up. The reply waits until
//! this node's replica shows the change, like every other change's.

use super::tenant::Tenant;
use super::{store_fell_back, Hub, MAX_CAS_ATTEMPTS};
use crate::backplane::{DirectoryCommit, IdempotencyKey};
use crate::directory::change::{plan, DirectoryChange, Inputs};
use crate::domain::Actor;
use crate::error::{ErrorCode, HubError, HubResult};
use std::sync::Arc;
use std::time::Duration;

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
            if let Some(earlier) = self.applied_earlier(tenant, key).await? {
                return Ok(earlier);
            }
        }
        let outcome = self
            .change_directory_planned(tenant, by, change, once)
            .await;
        match (once, outcome) {
            // Refused, or nothing to change: perhaps because the key's
            // change was made meanwhile (a repeat that raced its first
            // attempt), as for an agent's change (`Hub::change`).
            (Some(key), outcome @ (Ok(Applied::Unchanged) | Err(_))) => {
                match self.applied_earlier(tenant, key).await? {
                    Some(earlier) => Ok(earlier),
                    None => outcome,
                }
            }
            (_, outcome) => outcome,
        }
    }

    /// The change made under `key`, once this node's replica shows it;
    /// `None` when none was.
    async fn applied_earlier(
        &self,
        tenant: &Tenant,
        key: &IdempotencyKey,
    ) -> HubResult<Option<Applied>> {
        let Some(seq) = self.backplane.applied_under(tenant.id(), key).await? else {
            return Ok(None);
        };
        tenant.wait_for(seq, self.config.command_timeout()).await;
        Ok(Some(Applied::At(seq)))
    }

    /// The plan-and-commit loop of [`Hub::change_directory`].
    async fn change_directory_planned(
        self: &Arc<Self>,
        tenant: &Arc<Tenant>,
        by: &Actor,
        change: &DirectoryChange,
        once: Option<&IdempotencyKey>,
    ) -> HubResult<Applied> {
        // Whether a verdict that writes nothing was checked against the
        // store (`replica_was_current`); once is enough: the plan after it
        // stands on a replica at least as new as the store was during the
        // request.
        let mut checked = !self.backplane.is_shared();
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
            // only on a replica that was not behind it. (A `bad_request`
            // depends on the request alone: `directory::change`.)
            let stands_on_the_replica = match &planned {
                Ok(write) => write.is_none(),
                Err(e) => e.code != ErrorCode::BadRequest,
            };
            if !checked && stands_on_the_replica {
                checked = true;
                let planned = (planned_at, tenant.seq());
                if !self.replica_was_current(tenant, planned).await? {
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
                    // Planned on a replica as new as the store, and refused:
                    // in one history their directories and records would be
                    // the same, so the replica holds another (the store
                    // fell back).
                    if planned_at >= store_seq {
                        return Err(store_fell_back(tenant, "the directory"));
                    }
                    // Else the replica planned on something older than the
                    // store (another admin's change, on its way): plan
                    // again once it has caught up (a gap asks for a
                    // catch-up by itself; a delta lost with none after it
                    // is asked for by `reach`).
                    if !self.reach(tenant, store_seq).await {
                        // Planning again on this replica could only conflict
                        // again, or stand on what the store is past.
                        return Err(replica_behind());
                    }
                }
            }
        }
        Err(HubError::unavailable(
            "the directory is changing too fast; try again",
        ))
    }

    /// Whether the replica was as new as the store when a verdict was
    /// planned on it (its seq before and after planning); when not, waits
    /// (up to the command timeout) until it is, for the caller to plan
    /// again. A replica lags the store by the deltas on their way, and by
    /// a lost delta until a catch-up: an admin putting back an entry as the
    /// lagging replica shows it, or deleting one it has not heard of, would
    /// otherwise get `ok` "nothing to change" or `not_found` while the store
    /// holds another directory.
    ///
    /// `unavailable` (nothing applied) when the replica does not catch up,
    /// and while the store is known to have lost changes this replica holds
    /// (its seq below the replica's, or a delta showed a fork): the verdict
    /// may rest on one of them. The catch-up then gives the replica the
    /// store's directory (writing back the agents' changes the store lost).
    async fn replica_was_current(
        &self,
        tenant: &Tenant,
        (before, after): (u64, u64),
    ) -> HubResult<bool> {
        if tenant.forked_since_catch_up() {
            return Err(store_fell_back(tenant, "the directory"));
        }
        let Some(store_seq) = self.backplane.current_seq(tenant.id()).await? else {
            return Ok(true);
        };
        if store_seq < after {
            return Err(store_fell_back(tenant, "the directory"));
        }
        if store_seq <= before {
            return Ok(true);
        }
        if !self.reach(tenant, store_seq).await {
            return Err(replica_behind());
        }
        Ok(false)
    }

    /// Waits (up to the command timeout) until the replica has applied
    /// `store_seq`; whether it did. A replica that applied nothing for
    /// [`CATCH_UP_AFTER`] is caught up at once, not at the seq watch's next
    /// look (seconds later: `hub::cluster`).
    async fn reach(&self, tenant: &Tenant, store_seq: u64) -> bool {
        let timeout = self.config.command_timeout();
        // Half the timeout at most, so a short one leaves time for the
        // catch-up asked.
        let first = CATCH_UP_AFTER.min(timeout / 2);
        let seen = tenant.seq();
        tenant.wait_for(store_seq, first).await;
        if tenant.seq() < store_seq {
            // No delta applied in a whole second: lost. (A node merely slow
            // keeps applying them, and waits on.)
            if tenant.seq() == seen {
                tenant.request_catch_up();
            }
            tenant
                .wait_for(store_seq, timeout.saturating_sub(first))
                .await;
        }
        tenant.seq() >= store_seq
    }
}

/// How long a directory request waits for the deltas on their way before
/// it asks for a catch-up itself, when none came meanwhile (half the
/// command timeout when that is shorter): a delta was
/// lost (the seq watch's own period, `hub::cluster`, which would find it
/// only a period or two later). A replica that applied some is slow, not
/// behind a loss: a catch-up, which reloads the whole tenant, would only
/// slow it more.
const CATCH_UP_AFTER: Duration = Duration::from_secs(1);

fn replica_behind() -> HubError {
    HubError::unavailable(
        "this node's copy of the directory is behind the store; nothing was applied, try again",
    )
}
