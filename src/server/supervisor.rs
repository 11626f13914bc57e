//! Supervisor (and admin) commands on one agent (PROTOCOL.md §5.6 `command`,
//! §10.5 monitor modes, §10.6 sign-out). Permissions are checked against the
//! record inside [`Hub::change`](crate::hub::Hub::change)'s retry loop.

use super::handlers::{agent_result, pause_reason, sign_out_reason, Reply};
use super::session::Session;
use crate::domain::permissions::{self, Principal};
use crate::domain::{self, monitor, AgentRecord, ChannelRef, Context, Event, MonitorMode};
use crate::error::{HubError, HubResult};
use crate::hub::router::Outcome;
use crate::protocol::{self, CommandAction};
use serde_json::json;
use std::sync::Arc;

impl Session {
    pub(super) async fn command(
        &mut self,
        action: CommandAction,
        agent_id: &str,
        channel: Option<ChannelRef>,
        reason: Option<String>,
        mode: Option<MonitorMode>,
        id: Option<&str>,
    ) -> HubResult<Reply> {
        permissions::require_supervisor(&self.principal())?;
        let need_channel = || match &channel {
            Some(c) => self.channel_exists(c).map(|_| c.clone()),
            None => Err(HubError::bad_request("this action needs a `channel`")),
        };
        match action {
            CommandAction::Connect => {
                let channel = need_channel()?;
                self.change_agent(
                    agent_id,
                    Some(&channel),
                    Event::Connect {
                        channel: channel.clone(),
                    },
                )
                .await
            }
            CommandAction::Disconnect => {
                let channel = need_channel()?;
                self.change_agent(
                    agent_id,
                    Some(&channel),
                    Event::Disconnect {
                        channel: channel.clone(),
                    },
                )
                .await
            }
            CommandAction::Pause => {
                let reason = pause_reason(reason)?;
                self.change_agent(agent_id, None, Event::Pause { reason })
                    .await
            }
            CommandAction::Unpause => self.change_agent(agent_id, None, Event::Unpause).await,
            CommandAction::EndWrapUp => self.change_agent(agent_id, None, Event::EndWrapUp).await,
            CommandAction::DisconnectUnassigned => {
                let within = self.principal().scope().map(<[ChannelRef]>::to_vec);
                self.change_agent(agent_id, None, Event::DisconnectUnassigned { within })
                    .await
            }
            CommandAction::Monitor => self.monitor(agent_id, mode.unwrap_or_default(), id).await,
            CommandAction::SignOut => self.sign_out(agent_id, reason).await,
            CommandAction::StopMonitor => {
                let p = self.principal();
                let record = self
                    .stop_monitor(agent_id, |r| permissions::check_manage(&p, r, None))
                    .await?;
                agent_result(&record)
            }
        }
    }

    /// Monitoring needs the agent's device to accept: the request goes to the
    /// agent's connections (on this node or the one holding them) and the
    /// reply follows their answer; the session keeps serving meanwhile.
    ///
    /// Monitoring again in another mode is a mode change, asked of the
    /// device the same way (PROTOCOL.md §10.5).
    async fn monitor(
        &mut self,
        agent_id: &str,
        mode: MonitorMode,
        id: Option<&str>,
    ) -> HubResult<Reply> {
        let p = self.principal();
        self.agent_record(agent_id)?;
        // From the store, not the replica: a refusal must not rest on a
        // record this node has not caught up with yet (cluster mode).
        let record = self.hub.fresh_record(&self.tenant, agent_id).await?;
        permissions::check_manage(&p, &record, None)?;
        let event = Event::Monitor {
            supervisor_id: self.user.id.clone(),
            mode,
        };
        // Refuse early (offline, already monitoring) without bothering the agent.
        let settings = self.tenant.settings();
        let actor = self.actor();
        let ctx = Context {
            now_ms: crate::clock::now_ms(),
            by: &actor,
            settings: &settings,
            max_devices: usize::MAX,
        };
        domain::apply(&record, &event, &ctx)?;
        let (hub, tenant, user, role) = (
            self.hub.clone(),
            self.tenant.clone(),
            self.user.clone(),
            self.role,
        );
        let monitoring = self.monitoring.get_or_insert_with(Arc::default).clone();
        let outbox = self.outbox.clone();
        let id = id.map(str::to_string);
        let mut withdrawn = self
            .withdraw
            .get_or_insert_with(|| tokio::sync::watch::channel(()).0)
            .subscribe();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            let agent_id = record.id.clone();
            let ask = hub.ask_agent(&tenant, &record, "monitor", mode, (&user.id, &user.name));
            let outcome = tokio::select! {
                outcome = ask => outcome,
                // The connection ended (the sender is dropped, never sent
                // on): dropping the question tells the devices it was
                // withdrawn, and there is nobody to reply to.
                _ = withdrawn.changed() => return,
            };
            let result = match outcome {
                Outcome::Accepted => {
                    let p = Principal { user: &user, role };
                    hub.change(&tenant, &agent_id, &p.actor(), &event, |r| {
                        permissions::check_manage(&p, r, None)
                    })
                    .await
                    .map(|record| {
                        monitoring.lock().insert(agent_id.clone());
                        json!({ "agent": record })
                    })
                }
                Outcome::Refused(reason) => Err(HubError::forbidden(format!(
                    "agent {agent_id}'s device refused monitoring{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ))),
                Outcome::TimedOut => Err({
                    crate::metrics::get().command_timeouts.increment(1);
                    HubError::timeout(format!(
                        "agent {agent_id}'s device did not answer within {} ms",
                        hub.config.command_timeout_ms
                    ))
                }),
                Outcome::Offline => Err(HubError::agent_offline(format!(
                    "agent {agent_id} has no connected device"
                ))),
                Outcome::Unavailable(why) => Err(HubError::unavailable(why)),
            };
            crate::metrics::get()
                .command_seconds
                .record(started.elapsed().as_secs_f64());
            if let Some(frame) = protocol::answer(id.as_deref(), result) {
                outbox.push(frame);
            }
        });
        Ok(Reply::Later)
    }

    /// Ends this supervisor's monitor of an agent and tells the agent's devices.
    pub(super) async fn stop_monitor(
        &self,
        agent_id: &str,
        check: impl Fn(&AgentRecord) -> HubResult<()>,
    ) -> HubResult<Arc<AgentRecord>> {
        let event = Event::StopMonitor {
            supervisor_id: self.user.id.clone(),
        };
        let before = self.agent_record(agent_id)?;
        let mode = monitor::mode_of(&before, &self.user.id).unwrap_or_default();
        let record = self
            .hub
            .change_once(
                &self.tenant,
                agent_id,
                &self.actor(),
                &event,
                check,
                self.once.as_deref(),
            )
            .await?;
        if let Some(monitoring) = &self.monitoring {
            monitoring.lock().remove(agent_id);
        }
        // Tell the devices the store knew before the change (the owner node).
        self.hub
            .tell_agent(
                &self.tenant,
                &before,
                "stop_monitor",
                mode,
                (&self.user.id, &self.user.name),
            )
            .await;
        Ok(record)
    }

    /// Signs the agent out: offline at once on every node, then each owning
    /// node sends `signed_out` to the agent's devices and closes them (4010).
    async fn sign_out(&self, agent_id: &str, reason: Option<String>) -> HubResult<Reply> {
        let reason = sign_out_reason(reason)?;
        self.agent_record(agent_id)?;
        let p = self.principal();
        let record = self
            .hub
            .sign_out(&self.tenant, agent_id, &self.actor(), reason, |r| {
                permissions::check_manage(&p, r, None)
            })
            .await?;
        agent_result(&record)
    }
}
