//! What each request does (PROTOCOL.md §5–§7), per role. Every handler checks
//! permissions against the record it is about to change, inside
//! [`Hub::change`]'s retry loop, so a concurrent change cannot slip an agent
//! out of a supervisor's scope between the check and the write.

use super::session::Session;
use crate::directory::change::DirectoryChange;
use crate::domain::permissions::{self, Principal};
use crate::domain::{Actor, AgentRecord, ChannelRef, Event, Role};
use crate::error::{HubError, HubResult};
use crate::hub::tenant::{Resume, ScopeFilter};
use crate::protocol::{self, Request, ScopeRequest};
use crate::text;
use serde_json::{json, Value};
use std::sync::Arc;

/// Longest pause reason accepted, in characters.
const MAX_REASON_LEN: usize = 200;
/// Largest `limit` for search and history.
const MAX_LIMIT: usize = 1000;

pub(super) enum Reply {
    /// Answer now with this result.
    Now(Value),
    /// Answer now with `{"agent": <record>}`: every agent change's reply,
    /// so it is written straight from the record (`protocol::reply_agent`)
    /// instead of through a `Value` tree, which cost more than the change.
    Agent(Arc<AgentRecord>),
    /// The handler answers itself (after the snapshot, or after an ack).
    Later,
}

pub(super) fn agent_result(record: &Arc<AgentRecord>) -> HubResult<Reply> {
    Ok(Reply::Agent(record.clone()))
}

impl Session {
    pub(super) fn principal(&self) -> Principal<'_> {
        Principal {
            user: &self.user,
            role: self.role,
        }
    }

    pub(super) fn actor(&self) -> Actor {
        Actor::new(self.user.id.clone(), self.role)
    }

    pub(super) fn channel_exists(&self, channel: &ChannelRef) -> HubResult<()> {
        match self.tenant.directory().channel(channel) {
            Some(_) => Ok(()),
            None => Err(HubError::not_found(format!(
                "no {channel} in tenant {}",
                self.tenant.id()
            ))),
        }
    }

    pub(super) fn agent_record(&self, agent_id: &str) -> HubResult<Arc<AgentRecord>> {
        self.tenant.record(agent_id).ok_or_else(|| {
            HubError::not_found(format!(
                "no agent {agent_id:?} in tenant {}",
                self.tenant.id()
            ))
        })
    }

    /// Changes this connection's own agent.
    async fn change_self(
        &self,
        event: Event,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
    ) -> HubResult<Reply> {
        permissions::require_agent(&self.principal())?;
        let record = self
            .hub
            .change_once(
                &self.tenant,
                &self.user.id,
                &self.actor(),
                &event,
                check,
                self.once.as_deref(),
            )
            .await?;
        agent_result(&record)
    }

    /// Changes another agent as a supervisor or admin, in scope.
    pub(super) async fn change_agent(
        &self,
        agent_id: &str,
        channel: Option<&ChannelRef>,
        event: Event,
    ) -> HubResult<Reply> {
        permissions::require_supervisor(&self.principal())?;
        self.agent_record(agent_id)?;
        let p = self.principal();
        let record = self
            .hub
            .change_once(
                &self.tenant,
                agent_id,
                &self.actor(),
                &event,
                |r| {
                    // Checked with the settings of each attempt, inside the
                    // change: a repeat under the key of an end of wrap-up
                    // already made is then answered `ok` even if an admin
                    // turned the setting off since (`Hub::change_once`).
                    if matches!(event, Event::EndWrapUp) {
                        permissions::check_end_wrap_up(&p, &self.tenant.settings())?;
                    }
                    permissions::check_manage(&p, r, channel)
                },
                self.once.as_deref(),
            )
            .await?;
        agent_result(&record)
    }

    /// Changes an agent as an admin (assignments, unassigned access).
    async fn change_as_admin(&self, agent_id: &str, event: Event) -> HubResult<Reply> {
        permissions::require_admin(&self.principal())?;
        let record = self
            .hub
            .change_once(
                &self.tenant,
                agent_id,
                &self.actor(),
                &event,
                |_| Ok(()),
                self.once.as_deref(),
            )
            .await?;
        agent_result(&record)
    }

    pub(super) async fn dispatch(
        &mut self,
        request: Request,
        id: Option<&str>,
    ) -> HubResult<Reply> {
        match request {
            // Any connection may beat; for agents it is also presence.
            Request::Heartbeat {} => Ok(Reply::Now(json!({}))),
            Request::SetStatus { status, reason } => match status.as_str() {
                "available" => self.change_self(Event::Unpause, |_| Ok(())).await,
                "paused" => {
                    self.change_self(
                        Event::Pause {
                            reason: pause_reason(reason)?,
                        },
                        |_| Ok(()),
                    )
                    .await
                }
                other => Err(HubError::bad_request(format!(
                    "status {other:?} cannot be set: use available or paused \
                     (busy and wrap_up follow interactions, offline follows devices)"
                ))),
            },
            Request::Connect { channel } => {
                self.channel_exists(&channel)?;
                let event = Event::Connect {
                    channel: channel.clone(),
                };
                self.change_self(event, |r| permissions::check_self_connect(r, &channel))
                    .await
            }
            Request::Disconnect { channel } => {
                self.channel_exists(&channel)?;
                self.change_self(Event::Disconnect { channel }, |_| Ok(()))
                    .await
            }
            Request::InteractionStart {
                interaction_id,
                channel,
            } => {
                non_empty("interaction_id", &interaction_id)?;
                self.channel_exists(&channel)?;
                self.change_self(
                    Event::InteractionStart {
                        interaction_id,
                        channel,
                    },
                    |_| Ok(()),
                )
                .await
            }
            Request::InteractionEnd { interaction_id } => {
                self.change_self(Event::InteractionEnd { interaction_id }, |_| Ok(()))
                    .await
            }
            Request::EndWrapUp {} => self.change_self(Event::EndWrapUp, |_| Ok(())).await,
            Request::CommandAck {
                command_id,
                ok,
                reason,
            } => {
                permissions::require_agent(&self.principal())?;
                let ack = crate::hub::router::Ack { ok, reason };
                if self
                    .hub
                    .router
                    .ack(self.tenant.id(), &self.user.id, &command_id, ack)
                {
                    Ok(Reply::Now(json!({})))
                } else {
                    Err(HubError::not_found(format!(
                        "no command {command_id:?} awaits an answer from this agent"
                    )))
                }
            }
            Request::Subscribe {
                scope,
                since_seq,
                epoch,
            } => {
                let resume = since_seq.map(|since_seq| Resume { since_seq, epoch });
                self.subscribe(scope, resume, id)
            }
            Request::Search { query, role, limit } => self.search(query, role, limit),
            Request::History {
                agent_id,
                since_ms,
                limit,
            } => self.history(agent_id.as_deref(), since_ms, limit).await,
            Request::Command {
                action,
                agent_id,
                channel,
                reason,
                mode,
            } => {
                self.command(action, &agent_id, channel, reason, mode, id)
                    .await
            }
            Request::UpdateSettings { settings } => self.update_settings(settings).await,
            Request::SetUnassignedAccess { agent_id, allowed } => {
                self.change_as_admin(&agent_id, Event::SetUnassignedAccess { allowed })
                    .await
            }
            Request::Assign { agent_id, channel } => {
                self.channel_exists(&channel)?;
                self.change_as_admin(&agent_id, Event::Assign { channel })
                    .await
            }
            Request::Unassign { agent_id, channel } => {
                self.channel_exists(&channel)?;
                self.change_as_admin(&agent_id, Event::Unassign { channel })
                    .await
            }
            Request::Directory {} => self.read_directory(),
            Request::PutUser { user } => {
                self.change_directory(crate::api::directory::put_user(user, None)?)
                    .await
            }
            Request::DeleteUser { user_id } => {
                self.change_directory(DirectoryChange::DeleteUser { id: user_id })
                    .await
            }
            Request::PutChannel { channel } => {
                self.change_directory(crate::api::directory::put_channel(channel, None)?)
                    .await
            }
            Request::DeleteChannel { channel } => {
                self.change_directory(DirectoryChange::DeleteChannel { channel })
                    .await
            }
        }
    }

    fn subscribe(
        &mut self,
        scope: ScopeRequest,
        resume: Option<Resume>,
        id: Option<&str>,
    ) -> HubResult<Reply> {
        let p = self.principal();
        permissions::require_supervisor(&p)?;
        let filter = match (scope.all, scope.channels) {
            (Some(true), None) => match p.scope() {
                None => ScopeFilter::All,
                Some(mine) => ScopeFilter::Channels(mine.to_vec()),
            },
            (None, Some(channels)) if !channels.is_empty() => {
                for channel in &channels {
                    self.channel_exists(channel)?;
                    permissions::check_channel_in_scope(&p, channel)?;
                }
                ScopeFilter::Channels(channels)
            }
            _ => {
                return Err(HubError::bad_request(
                    "scope must be {\"all\": true} or {\"channels\": [at least one channel]}",
                ))
            }
        };
        let reply = id.map(|id| protocol::reply_ok(id, json!({})));
        self.tenant
            .subscribe(self.conn, &self.outbox, filter, reply, resume);
        self.subscribed = true;
        Ok(Reply::Later)
    }

    fn search(
        &self,
        query: Option<String>,
        role: Option<Role>,
        limit: Option<usize>,
    ) -> HubResult<Reply> {
        permissions::require_supervisor(&self.principal())?;
        let limit = bounded_limit(limit, 50)?;
        let query = query.unwrap_or_default().to_lowercase();
        let mut found: Vec<Value> = Vec::new();
        let dir = self.tenant.directory();
        let mut users: Vec<_> = dir
            .users
            .iter()
            .filter(|u| role.is_none_or(|r| u.has_role(r)))
            .filter(|u| {
                query.is_empty()
                    || u.id.to_lowercase().contains(&query)
                    || u.name.to_lowercase().contains(&query)
            })
            .collect();
        users.sort_by(|a, b| (a.name.to_lowercase(), &a.id).cmp(&(b.name.to_lowercase(), &b.id)));
        let total = users.len();
        for user in users.into_iter().take(limit) {
            // Users without the agent role have no devices: always offline.
            let (presence, status, devices) = match self.tenant.record(&user.id) {
                Some(r) => (json!(r.presence), json!(r.status), json!(r.devices)),
                None => (json!("offline"), json!("offline"), json!([])),
            };
            found.push(json!({
                "id": user.id, "name": user.name, "roles": user.roles,
                "presence": presence, "status": status, "devices": devices,
            }));
        }
        Ok(Reply::Now(json!({"agents": found, "total": total})))
    }

    async fn history(
        &self,
        agent_id: Option<&str>,
        since_ms: Option<u64>,
        limit: Option<usize>,
    ) -> HubResult<Reply> {
        let p = self.principal();
        // An agent reads its own history only; staff read agents in scope.
        let agent_id = permissions::history_target(&p, agent_id)?;
        // An agent the directory removed keeps its history, for staff who
        // see everyone (a scoped supervisor cannot tell it was in scope).
        let removed = match p.role {
            Role::Agent => None,
            _ => match self.agent_record(agent_id) {
                Ok(record) => {
                    permissions::check_manage(&p, &record, None)?;
                    None
                }
                Err(e) if p.scope().is_some() => return Err(e),
                Err(e) => Some(e),
            },
        };
        let limit = bounded_limit(limit, 100)?;
        let changes = self
            .hub
            .backplane
            .history(self.tenant.id(), agent_id, since_ms.unwrap_or(0), limit)
            .await?;
        if let (Some(e), true) = (removed, changes.is_empty()) {
            return Err(e); // never an agent here, or its history is gone
        }
        let changes: Vec<Value> = changes
            .into_iter()
            .map(|h| {
                json!({"version": h.version, "at_ms": h.at_ms, "event": h.event, "presence": h.presence,
                       "status": h.status, "pause_reason": h.pause_reason, "by": h.by})
            })
            .collect();
        Ok(Reply::Now(json!({"changes": changes})))
    }
}

pub(crate) fn pause_reason(reason: Option<String>) -> HubResult<String> {
    reason_text(reason, "a pause needs a non-empty `reason`")
}

/// A sign-out's `reason` is optional; when given it follows a pause reason's
/// limits.
pub(super) fn sign_out_reason(reason: Option<String>) -> HubResult<Option<String>> {
    reason
        .map(|r| {
            reason_text(
                Some(r),
                "a sign-out `reason`, when given, must not be empty",
            )
        })
        .transpose()
}

fn reason_text(reason: Option<String>, when_empty: &str) -> HubResult<String> {
    match reason {
        Some(r) if !r.trim().is_empty() && text::within(&r, 1, MAX_REASON_LEN) => Ok(r),
        Some(r) if !text::within(&r, 0, MAX_REASON_LEN) => Err(HubError::bad_request(format!(
            "reason must be at most {MAX_REASON_LEN} characters"
        ))),
        _ => Err(HubError::bad_request(when_empty)),
    }
}

pub(crate) fn non_empty(field: &str, value: &str) -> HubResult<()> {
    if !text::within(value, 1, 128) {
        Err(HubError::bad_request(format!(
            "`{field}` must be 1 to 128 characters"
        )))
    } else {
        Ok(())
    }
}

fn bounded_limit(limit: Option<usize>, default: usize) -> HubResult<usize> {
    match limit.unwrap_or(default) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(HubError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        ))),
    }
}
