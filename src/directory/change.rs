//! Changing the directory at runtime (PROTOCOL.md §7.1): what an admin asks
//! for ([`DirectoryChange`]), and what it writes ([`DirectoryWrite`]).
//!
//! [`plan`] is pure, like the domain: from the tenant's directory and
//! records as a replica has them, it validates the change and lists every
//! entry and record it touches — a new agent's first record, a deleted
//! channel taken out of every record and scope that named it. The store
//! applies the whole write under one seq or nothing (a compare-and-swap on
//! the directory's version and on each record's), and every node applies
//! the same write to its replica, so they cannot disagree about the result.

use super::{ChannelInfo, DirectoryImage, TenantDirectory};
use crate::domain::{Actor, AgentRecord, ChannelRef, ChannelState, Role, Settings, User};
use crate::error::{HubError, HubResult};
use crate::text;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Longest user or channel id, in characters (as a device id).
pub const MAX_ID_LEN: usize = 128;
/// Longest display name, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// One change an admin asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum DirectoryChange {
    /// Creates the user or replaces it whole. `assigned`, when given, is the
    /// agent's complete list of assigned channels afterwards.
    PutUser {
        user: User,
        assigned: Option<Vec<ChannelRef>>,
    },
    DeleteUser {
        id: String,
    },
    /// Creates the channel or renames it.
    PutChannel {
        channel: ChannelInfo,
    },
    /// Deletes the channel, and takes it out of every agent's assignments
    /// and connections and every supervisor's scope.
    DeleteChannel {
        channel: ChannelRef,
    },
}

impl DirectoryChange {
    /// The event recorded in the history of the agents it changes.
    fn event(&self, existed: bool) -> &'static str {
        match (self, existed) {
            (DirectoryChange::PutUser { .. }, false) => "user_created",
            (DirectoryChange::PutUser { .. }, true) => "user_updated",
            (DirectoryChange::DeleteUser { .. }, _) => "user_deleted",
            (DirectoryChange::PutChannel { .. }, false) => "channel_created",
            (DirectoryChange::PutChannel { .. }, true) => "channel_updated",
            (DirectoryChange::DeleteChannel { .. }, _) => "channel_deleted",
        }
    }
}

/// A record a directory change writes, and the version it must find.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordPut {
    /// `None`: the record must not exist yet.
    pub expected: Option<u64>,
    pub record: AgentRecord,
}

/// A record a directory change deletes (the user left, or lost the agent role).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordRemoval {
    pub id: String,
    pub expected: u64,
}

/// Everything one directory change writes, committed under one seq.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectoryWrite {
    /// The directory version the change was planned on: the store applies it
    /// only while its directory is still at that version.
    pub expected_version: u64,
    #[serde(default)]
    pub users_put: Vec<User>,
    #[serde(default)]
    pub users_removed: Vec<String>,
    #[serde(default)]
    pub channels_put: Vec<ChannelInfo>,
    #[serde(default)]
    pub channels_removed: Vec<ChannelRef>,
    #[serde(default)]
    pub records_put: Vec<RecordPut>,
    #[serde(default)]
    pub records_removed: Vec<RecordRemoval>,
    /// What happened, as recorded in the history (`user_created`, …).
    pub event: String,
    pub by: Option<Actor>,
}

impl DirectoryWrite {
    /// Lays the write, committed with `last` as its last seq, over a
    /// directory image: users, channels, the version, and the removed
    /// agents' tombstones.
    pub fn apply_to(&self, image: &mut DirectoryImage, last: u64) {
        image.version = last;
        for put in &self.records_put {
            image.removed.remove(&put.record.id);
        }
        for (id, version) in self.removals(last) {
            image.removed.insert(id.to_string(), version);
        }
        image.users.retain(|u| {
            !self.users_removed.contains(&u.id) && !self.users_put.iter().any(|p| p.id == u.id)
        });
        image.users.extend(self.users_put.iter().cloned());
        image.channels.retain(|c| {
            let key = c.channel_ref();
            !self.channels_removed.contains(&key)
                && !self.channels_put.iter().any(|p| p.channel_ref() == key)
        });
        image.channels.extend(self.channels_put.iter().cloned());
    }

    /// How many seqs the change takes: one per record it writes or removes,
    /// then one for the directory itself. Each record gets a version of its
    /// own, so a connection's deltas keep strictly increasing versions and
    /// a client that resumes from any of them misses none of the others
    /// (PROTOCOL.md §5.1.1).
    pub fn seqs_used(&self) -> u64 {
        (self.records_put.len() + self.records_removed.len()) as u64 + 1
    }

    /// The first seq of a change committed with `last` as its last seq.
    pub fn first_seq(&self, last: u64) -> u64 {
        last + 1 - self.seqs_used()
    }

    /// The records as committed by a change whose last seq is `last`: the
    /// i-th written record takes the change's i-th seq.
    pub fn committed_records(&self, last: u64) -> Vec<Arc<AgentRecord>> {
        let first = self.first_seq(last);
        self.records_put
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut record = p.record.clone();
                record.version = first + i as u64;
                Arc::new(record)
            })
            .collect()
    }

    /// The removed records' ids with the seq of each removal (after the
    /// written records' seqs).
    pub fn removals(&self, last: u64) -> impl Iterator<Item = (&str, u64)> {
        let first = self.first_seq(last) + self.records_put.len() as u64;
        self.records_removed
            .iter()
            .enumerate()
            .map(move |(j, r)| (r.id.as_str(), first + j as u64))
    }

    /// Users whose open connections must end: removed, or whose roles or
    /// scope this write changes (a session keeps what it signed in with).
    pub fn users_signed_out(&self, before: &TenantDirectory) -> Vec<String> {
        let mut ids: Vec<String> = self.users_removed.clone();
        for user in &self.users_put {
            if let Some(old) = before.user(&user.id) {
                if old.roles != user.roles || old.supervises != user.supervises {
                    ids.push(user.id.clone());
                }
            }
        }
        ids
    }
}

/// What a change needs to know besides the directory.
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub by: &'a Actor,
    /// The agent's record as the replica has it.
    pub record: &'a dyn Fn(&str) -> Option<Arc<AgentRecord>>,
    /// Every record (a deleted channel is taken out of each).
    pub records: &'a dyn Fn() -> Vec<Arc<AgentRecord>>,
}

/// Validates `change` against `dir` and lists what it writes; `None` when
/// it would change nothing (the directory already says so).
pub fn plan(
    dir: &TenantDirectory,
    change: &DirectoryChange,
    inputs: &Inputs<'_>,
) -> HubResult<Option<DirectoryWrite>> {
    let mut write = DirectoryWrite {
        expected_version: dir.version,
        by: Some(inputs.by.clone()),
        ..DirectoryWrite::default()
    };
    let existed;
    match change {
        DirectoryChange::PutUser { user, assigned } => {
            let user = valid_user(dir, user)?;
            existed = dir.user(&user.id).is_some();
            let current = (inputs.record)(&user.id);
            if user.has_role(Role::Agent) {
                let assigned = assigned
                    .as_ref()
                    .map(|list| valid_channels(dir, list, "assigned"))
                    .transpose()?;
                let mut next = match &current {
                    Some(record) => (**record).clone(),
                    None => AgentRecord::new(&user.id, &user.name, &[], [], inputs.settings),
                };
                next.name = user.name.clone();
                next.roles = user.roles.clone();
                next.capacity_override = user.capacity.map(Box::new);
                if let Some(list) = assigned {
                    reassign(&mut next, &list);
                }
                next.normalize(inputs.settings);
                let unchanged = current.as_ref().is_some_and(|c| {
                    let mut same = next.clone();
                    same.changed_by = c.changed_by.clone();
                    same.version = c.version;
                    **c == same
                });
                if !unchanged {
                    next.changed_by = Some(inputs.by.clone());
                    write.records_put.push(RecordPut {
                        expected: current.as_ref().map(|c| c.version),
                        record: next,
                    });
                }
            } else {
                if assigned.is_some() {
                    return Err(HubError::bad_request(format!(
                        "assigned: user {} does not hold the agent role",
                        user.id
                    )));
                }
                if let Some(record) = current {
                    write.records_removed.push(RecordRemoval {
                        id: record.id.clone(),
                        expected: record.version,
                    });
                }
            }
            if dir.user(&user.id) != Some(&user) {
                write.users_put.push(user);
            }
        }
        DirectoryChange::DeleteUser { id } => {
            if dir.user(id).is_none() {
                return Err(HubError::not_found(format!("no user {id:?}")));
            }
            existed = true;
            write.users_removed.push(id.clone());
            if let Some(record) = (inputs.record)(id) {
                write.records_removed.push(RecordRemoval {
                    id: id.clone(),
                    expected: record.version,
                });
            }
        }
        DirectoryChange::PutChannel { channel } => {
            if !channel.assigned.is_empty() {
                return Err(HubError::bad_request(
                    "assigned: a channel's agents are assigned with `assign` or a user's `assigned`",
                ));
            }
            valid_id(&channel.id, "channel.id")?;
            valid_name(&channel.name, "channel.name")?;
            let key = channel.channel_ref();
            existed = dir.channel(&key).is_some();
            if dir.channel(&key) != Some(channel) {
                write.channels_put.push(channel.clone());
            }
        }
        DirectoryChange::DeleteChannel { channel } => {
            if dir.channel(channel).is_none() {
                return Err(HubError::not_found(format!("no channel {channel}")));
            }
            existed = true;
            write.channels_removed.push(channel.clone());
            for user in &dir.users {
                if let Some(scope) = &user.supervises {
                    if scope.contains(channel) {
                        let mut user = User::clone(user);
                        user.supervises =
                            Some(scope.iter().filter(|c| *c != channel).cloned().collect());
                        write.users_put.push(user);
                    }
                }
            }
            let mut touched: Vec<_> = (inputs.records)()
                .into_iter()
                .filter(|r| r.channels.iter().any(|c| c.channel_ref() == *channel))
                .collect();
            touched.sort_by(|a, b| a.id.cmp(&b.id));
            for record in touched {
                let mut next = (*record).clone();
                next.channels.retain(|c| c.channel_ref() != *channel);
                next.normalize(inputs.settings);
                next.changed_by = Some(inputs.by.clone());
                write.records_put.push(RecordPut {
                    expected: Some(record.version),
                    record: next,
                });
            }
        }
    }
    write.event = change.event(existed).to_string();
    let empty = write.users_put.is_empty()
        && write.users_removed.is_empty()
        && write.channels_put.is_empty()
        && write.channels_removed.is_empty()
        && write.records_put.is_empty()
        && write.records_removed.is_empty();
    Ok((!empty).then_some(write))
}

/// Makes `list` the record's assigned channels: a channel left out is
/// unassigned (a connection to it stays, seed rule 3), a new one assigned.
fn reassign(record: &mut AgentRecord, list: &[ChannelRef]) {
    for c in &mut record.channels {
        c.assigned = list.contains(&c.channel_ref());
    }
    for channel in list {
        if !record.channels.iter().any(|c| c.channel_ref() == *channel) {
            record.channels.push(ChannelState {
                kind: channel.kind,
                id: channel.id.clone(),
                connected: false,
                assigned: true,
                lingering: false,
            });
        }
    }
}

fn valid_id(id: &str, field: &str) -> HubResult<()> {
    if !text::within(id, 1, MAX_ID_LEN) || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(HubError::bad_request(format!(
            "{field} must be 1 to {MAX_ID_LEN} characters, without control characters or '/'"
        )));
    }
    Ok(())
}

fn valid_name(name: &str, field: &str) -> HubResult<()> {
    if !text::within(name, 1, MAX_NAME_LEN) || name.chars().any(char::is_control) {
        return Err(HubError::bad_request(format!(
            "{field} must be 1 to {MAX_NAME_LEN} characters, without control characters"
        )));
    }
    Ok(())
}

/// The channels of `list`, each known to the directory, without repeats.
fn valid_channels(
    dir: &TenantDirectory,
    list: &[ChannelRef],
    field: &str,
) -> HubResult<Vec<ChannelRef>> {
    let mut out: Vec<ChannelRef> = Vec::with_capacity(list.len());
    for (i, channel) in list.iter().enumerate() {
        if dir.channel(channel).is_none() {
            return Err(HubError::not_found(format!(
                "{field}[{i}]: no channel {channel}"
            )));
        }
        if out.contains(channel) {
            return Err(HubError::bad_request(format!(
                "{field}[{i}]: channel {channel} is repeated"
            )));
        }
        out.push(channel.clone());
    }
    out.sort();
    Ok(out)
}

/// The user as it will be stored: checked field by field, roles and scope
/// in a stable order.
fn valid_user(dir: &TenantDirectory, user: &User) -> HubResult<User> {
    valid_id(&user.id, "user.id")?;
    valid_name(&user.name, "user.name")?;
    if user.roles.is_empty() {
        return Err(HubError::bad_request(
            "user.roles must hold at least one of agent, supervisor, admin",
        ));
    }
    let mut user = user.clone();
    user.roles.sort();
    user.roles.dedup();
    if let Some(scope) = &user.supervises {
        if !user.has_role(Role::Supervisor) {
            return Err(HubError::bad_request(
                "user.supervises: only a supervisor has a scope",
            ));
        }
        user.supervises = Some(valid_channels(dir, scope, "user.supervises")?);
    }
    if let Some(capacity) = &user.capacity {
        if !user.has_role(Role::Agent) {
            return Err(HubError::bad_request(
                "user.capacity: only an agent has a capacity",
            ));
        }
        capacity
            .validate()
            .map_err(|e| HubError::bad_request(format!("user.{e}")))?;
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::Directory;
    use crate::domain::{ActorRole, ChannelKind};

    fn acme() -> (TenantDirectory, Vec<Arc<AgentRecord>>) {
        let dir = Directory::demo();
        let acme = dir.tenant("acme").expect("acme");
        let records = acme.seed_records().into_iter().map(Arc::new).collect();
        let runtime =
            TenantDirectory::from_parts(&acme.id, &acme.name, acme.settings.clone(), &acme.image());
        (runtime, records)
    }

    fn admin() -> Actor {
        Actor {
            id: "admin1".into(),
            role: ActorRole::Admin,
        }
    }

    fn run(
        dir: &TenantDirectory,
        records: &[Arc<AgentRecord>],
        change: DirectoryChange,
    ) -> HubResult<Option<DirectoryWrite>> {
        let settings = Settings::default();
        let by = admin();
        let find = |id: &str| records.iter().find(|r| r.id == id).cloned();
        let all = || records.to_vec();
        plan(
            dir,
            &change,
            &Inputs {
                settings: &settings,
                by: &by,
                record: &find,
                records: &all,
            },
        )
    }

    fn queue(id: &str) -> ChannelRef {
        ChannelRef::new(ChannelKind::Queue, id)
    }

    fn agent(id: &str) -> User {
        User {
            id: id.into(),
            name: format!("Agent {id}"),
            roles: vec![Role::Agent],
            supervises: None,
            capacity: None,
        }
    }

    #[test]
    fn a_new_agent_gets_a_first_record_with_its_assignments() {
        let (dir, records) = acme();
        let write = run(
            &dir,
            &records,
            DirectoryChange::PutUser {
                user: agent("new1"),
                assigned: Some(vec![queue("sales")]),
            },
        )
        .expect("valid")
        .expect("a change");
        assert_eq!(write.event, "user_created");
        assert_eq!(write.users_put.len(), 1);
        let put = &write.records_put[0];
        assert_eq!(put.expected, None);
        assert!(put
            .record
            .channels
            .iter()
            .any(|c| c.id == "sales" && c.assigned));
        // Applying it twice changes nothing the second time.
        let after = dir.with(&write, 99);
        let mut records = records.clone();
        records.extend(write.committed_records(99));
        assert_eq!(
            run(
                &after,
                &records,
                DirectoryChange::PutUser {
                    user: agent("new1"),
                    assigned: Some(vec![queue("sales")]),
                },
            )
            .expect("valid"),
            None
        );
    }

    #[test]
    fn bad_users_are_refused_with_the_field() {
        let (dir, records) = acme();
        let refuse = |user: User, assigned: Option<Vec<ChannelRef>>| {
            run(&dir, &records, DirectoryChange::PutUser { user, assigned })
                .expect_err("refused")
                .message
        };
        let mut no_roles = agent("x");
        no_roles.roles.clear();
        assert!(refuse(no_roles, None).contains("user.roles"));
        let mut empty_name = agent("x");
        empty_name.name.clear();
        assert!(refuse(empty_name, None).contains("user.name"));
        assert!(refuse(agent(""), None).contains("user.id"));
        assert!(refuse(agent("a/b"), None).contains("user.id"));
        assert!(refuse(agent("x"), Some(vec![queue("nope")])).contains("assigned[0]"));
        assert!(
            refuse(agent("x"), Some(vec![queue("sales"), queue("sales")])).contains("repeated")
        );
        let mut scoped_agent = agent("x");
        scoped_agent.supervises = Some(vec![queue("sales")]);
        assert!(refuse(scoped_agent, None).contains("supervises"));
    }

    #[test]
    fn deleting_a_channel_takes_it_out_of_records_and_scopes() {
        let (dir, records) = acme();
        let sales = queue("sales");
        let write = run(
            &dir,
            &records,
            DirectoryChange::DeleteChannel {
                channel: sales.clone(),
            },
        )
        .expect("valid")
        .expect("a change");
        assert_eq!(write.channels_removed, vec![sales.clone()]);
        assert!(!write.records_put.is_empty());
        for put in &write.records_put {
            assert!(put.record.channels.iter().all(|c| c.channel_ref() != sales));
        }
        for user in &write.users_put {
            assert!(!user.supervises.iter().flatten().any(|c| *c == sales));
        }
        let after = dir.with(&write, 7);
        assert!(after.channel(&sales).is_none());
        assert_eq!(after.version, 7);
    }

    #[test]
    fn deleting_a_user_removes_its_record_and_signs_it_out() {
        let (dir, records) = acme();
        let write = run(
            &dir,
            &records,
            DirectoryChange::DeleteUser { id: "a1".into() },
        )
        .expect("valid")
        .expect("a change");
        assert_eq!(write.records_removed[0].id, "a1");
        assert_eq!(write.users_signed_out(&dir), vec!["a1".to_string()]);
        assert!(run(
            &dir,
            &records,
            DirectoryChange::DeleteUser { id: "zz".into() }
        )
        .is_err());
    }
}
