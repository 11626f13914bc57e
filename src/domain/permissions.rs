//! The permission table of DESIGN.md §3. Each check names the rule it enforces
//! in its refusal, so a supervisor reads *why* an action was refused.
//!
//! Tenant isolation is not checked here: a session only ever looks agents
//! up in its own tenant, so another tenant's agent is simply `not_found`.

use super::record::*;
use super::User;
use crate::error::{HubError, HubResult};

/// Who acts: the directory user and the role their connection acts in.
#[derive(Clone, Copy, Debug)]
pub struct Principal<'a> {
    pub user: &'a User,
    pub role: Role,
}

impl<'a> Principal<'a> {
    /// The channels a scoped supervisor is limited to; `None` means the
    /// whole tenant (an unscoped supervisor, or an admin).
    pub fn scope(&self) -> Option<&'a [ChannelRef]> {
        match self.role {
            Role::Supervisor => self.user.supervises.as_deref(),
            _ => None,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor::new(self.user.id.clone(), self.role)
    }
}

/// Subscribing, searching, commanding: supervisors and admins only.
pub fn require_supervisor(p: &Principal) -> HubResult<()> {
    match p.role {
        Role::Supervisor | Role::Admin => Ok(()),
        Role::Agent => Err(HubError::forbidden(
            "this needs a supervisor or admin connection",
        )),
    }
}

/// Settings, assignments, unassigned access: admins only.
pub fn require_admin(p: &Principal) -> HubResult<()> {
    match p.role {
        Role::Admin => Ok(()),
        _ => Err(HubError::forbidden("this needs an admin connection")),
    }
}

/// Heartbeats, own status, own interactions and channels: agent connections.
pub fn require_agent(p: &Principal) -> HubResult<()> {
    match p.role {
        Role::Agent => Ok(()),
        _ => Err(HubError::forbidden("this needs an agent connection")),
    }
}

/// Whether `record` is in a scope: connected or assigned to one of its channels.
pub fn in_scope(record: &AgentRecord, scope: &[ChannelRef]) -> bool {
    record
        .channels
        .iter()
        .any(|c| (c.connected || c.assigned) && scope.iter().any(|s| c.is(s)))
}

/// A scoped supervisor may only use channels they supervise.
pub fn check_channel_in_scope(p: &Principal, channel: &ChannelRef) -> HubResult<()> {
    match p.scope() {
        Some(scope) if !scope.contains(channel) => Err(HubError::forbidden(format!(
            "supervisor {} does not supervise {channel}",
            p.user.id
        ))),
        _ => Ok(()),
    }
}

/// A supervisor or admin acting on an agent (and optionally on one of its
/// channels): the agent must be in their scope, and so must the channel.
pub fn check_manage(
    p: &Principal,
    target: &AgentRecord,
    channel: Option<&ChannelRef>,
) -> HubResult<()> {
    require_supervisor(p)?;
    if let Some(scope) = p.scope() {
        if !in_scope(target, scope) {
            return Err(HubError::forbidden(format!(
                "supervisor {} does not supervise agent {}",
                p.user.id, target.id
            )));
        }
    }
    if let Some(channel) = channel {
        check_channel_in_scope(p, channel)?;
    }
    Ok(())
}

/// Whose history a `history` request reads (PROTOCOL.md §5.5, §6): an
/// agent connection its own (`agent_id` left out or its own id; any other
/// is `forbidden`, whether or not such an agent exists); a supervisor or
/// admin the agent it names, which it must name (scope is checked against
/// the record by [`check_manage`]).
pub fn history_target<'a>(p: &Principal<'a>, agent_id: Option<&'a str>) -> HubResult<&'a str> {
    match (p.role, agent_id) {
        (Role::Agent, None) => Ok(&p.user.id),
        (Role::Agent, Some(id)) if id == p.user.id => Ok(&p.user.id),
        (Role::Agent, Some(_)) => Err(HubError::forbidden(
            "an agent connection may read only its own history",
        )),
        (_, Some(id)) => Ok(id),
        (_, None) => Err(HubError::bad_request("history needs an `agent_id`")),
    }
}

/// An agent connecting themselves: assigned channels always; unassigned
/// ones only with unassigned access (seed rule 4).
pub fn check_self_connect(record: &AgentRecord, channel: &ChannelRef) -> HubResult<()> {
    if record.is_assigned(channel) || record.unassigned_access {
        Ok(())
    } else {
        Err(HubError::forbidden(format!(
            "agent {} is not assigned to {channel} and has no access to unassigned channels",
            record.id
        )))
    }
}

/// Ending wrap-up early: the agent always (their own); supervisors and
/// admins only while `supervisor_can_end_wrap_up` is on.
pub fn check_end_wrap_up(p: &Principal, settings: &Settings) -> HubResult<()> {
    match p.role {
        Role::Agent => Ok(()),
        _ if settings.supervisor_can_end_wrap_up => Ok(()),
        _ => Err(HubError::disabled(
            "ending wrap-up early is disabled: an admin must enable supervisor_can_end_wrap_up",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn user(id: &str, roles: &[Role], supervises: Option<Vec<ChannelRef>>) -> User {
        User {
            id: id.into(),
            name: id.into(),
            roles: roles.to_vec(),
            supervises,
            capacity: None,
        }
    }

    fn q(id: &str) -> ChannelRef {
        ChannelRef::new(ChannelKind::Queue, id)
    }

    fn agent_in(channels: &[&str]) -> AgentRecord {
        AgentRecord::new(
            "a1",
            "Ana",
            &[Role::Agent],
            channels.iter().map(|c| q(c)),
            &Settings::default(),
        )
    }

    fn code<T>(r: HubResult<T>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn each_role_may_use_only_its_messages() {
        let u = user("u", &[Role::Agent, Role::Supervisor, Role::Admin], None);
        let as_role = |role| Principal { user: &u, role };
        assert_eq!(code(require_agent(&as_role(Role::Agent))), None);
        assert_eq!(
            code(require_agent(&as_role(Role::Supervisor))),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(require_supervisor(&as_role(Role::Agent))),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(code(require_supervisor(&as_role(Role::Supervisor))), None);
        assert_eq!(code(require_supervisor(&as_role(Role::Admin))), None);
        assert_eq!(
            code(require_admin(&as_role(Role::Supervisor))),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(code(require_admin(&as_role(Role::Admin))), None);
    }

    #[test]
    fn agents_connect_themselves_to_unassigned_channels_only_with_access() {
        let mut r = agent_in(&["sales"]);
        assert_eq!(code(check_self_connect(&r, &q("sales"))), None);
        assert_eq!(
            code(check_self_connect(&r, &q("billing"))),
            None,
            "access on by default"
        );
        r.unassigned_access = false;
        assert_eq!(
            code(check_self_connect(&r, &q("billing"))),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(code(check_self_connect(&r, &q("sales"))), None);
    }

    #[test]
    fn supervisors_act_in_scope_admins_on_the_tenant() {
        let unscoped = user("s1", &[Role::Supervisor], None);
        let scoped = user("s2", &[Role::Supervisor], Some(vec![q("billing")]));
        let admin = user("ad1", &[Role::Admin], None);
        let in_billing = agent_in(&["billing"]);
        let in_sales = agent_in(&["sales"]);
        let p = |u, role| Principal { user: u, role };

        assert_eq!(
            code(check_manage(
                &p(&unscoped, Role::Supervisor),
                &in_sales,
                Some(&q("sales"))
            )),
            None
        );
        assert_eq!(
            code(check_manage(
                &p(&admin, Role::Admin),
                &in_sales,
                Some(&q("sales"))
            )),
            None
        );
        assert_eq!(
            code(check_manage(
                &p(&scoped, Role::Supervisor),
                &in_billing,
                None
            )),
            None
        );
        assert_eq!(
            code(check_manage(
                &p(&scoped, Role::Supervisor),
                &in_billing,
                Some(&q("billing"))
            )),
            None
        );
        assert_eq!(
            code(check_manage(&p(&scoped, Role::Supervisor), &in_sales, None)),
            Some(ErrorCode::Forbidden)
        );
        assert_eq!(
            code(check_manage(
                &p(&scoped, Role::Supervisor),
                &in_billing,
                Some(&q("sales"))
            )),
            Some(ErrorCode::Forbidden),
            "in-scope agent, out-of-scope channel"
        );
        // Connected (not assigned) counts as in scope too.
        let mut connected = in_sales.clone();
        connected.channels.push(ChannelState {
            kind: ChannelKind::Queue,
            id: "billing".into(),
            connected: true,
            assigned: false,
            lingering: false,
        });
        assert_eq!(
            code(check_manage(
                &p(&scoped, Role::Supervisor),
                &connected,
                None
            )),
            None
        );
        assert_eq!(
            code(check_channel_in_scope(
                &p(&scoped, Role::Supervisor),
                &q("sales")
            )),
            Some(ErrorCode::Forbidden)
        );
        let agent_user = user("a1", &[Role::Agent], None);
        assert_eq!(
            code(check_manage(&p(&agent_user, Role::Agent), &in_sales, None)),
            Some(ErrorCode::Forbidden)
        );
    }

    #[test]
    fn ending_wrap_up_early_is_the_agents_or_needs_the_setting() {
        let u = user("u", &[Role::Agent, Role::Supervisor, Role::Admin], None);
        let off = Settings::default();
        let on = Settings {
            supervisor_can_end_wrap_up: true,
            ..Settings::default()
        };
        let p = |role| Principal { user: &u, role };
        assert_eq!(code(check_end_wrap_up(&p(Role::Agent), &off)), None);
        assert_eq!(
            code(check_end_wrap_up(&p(Role::Supervisor), &off)),
            Some(ErrorCode::Disabled)
        );
        assert_eq!(
            code(check_end_wrap_up(&p(Role::Admin), &off)),
            Some(ErrorCode::Disabled)
        );
        assert_eq!(code(check_end_wrap_up(&p(Role::Supervisor), &on)), None);
        assert_eq!(code(check_end_wrap_up(&p(Role::Admin), &on)), None);
    }

    #[test]
    fn an_agent_reads_only_its_own_history_staff_name_the_agent() {
        let both = user("a1", &[Role::Agent, Role::Supervisor], None);
        let agent = Principal {
            user: &both,
            role: Role::Agent,
        };
        assert_eq!(history_target(&agent, None).ok(), Some("a1"));
        assert_eq!(history_target(&agent, Some("a1")).ok(), Some("a1"));
        assert_eq!(
            code(history_target(&agent, Some("a2"))),
            Some(ErrorCode::Forbidden)
        );
        let sup = Principal {
            user: &both,
            role: Role::Supervisor,
        };
        assert_eq!(history_target(&sup, Some("a2")).ok(), Some("a2"));
        assert_eq!(
            code(history_target(&sup, None)),
            Some(ErrorCode::BadRequest)
        );
    }
}
