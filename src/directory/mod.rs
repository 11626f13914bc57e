//! The directory: tenants, users, channels and their initial assignments.
//!
//! The file (`--directory FILE`, or the built-in demo) is read at start-up
//! and only **seeds** the store: a tenant's users and channels, like its
//! settings and assignments, live in the backplane once it has them, and
//! admins change them at runtime ([`change`]: what a change writes;
//! `hub::Hub::change_directory`: how it is committed). Every node's replica
//! holds the tenant's current [`TenantDirectory`], replaced as a whole by each
//! directory delta, so a sign-in or a scope check reads one consistent
//! version. A bad file is refused with a message that names the place, e.g.
//! `tenants[0] (acme).channels[1] (queue billing).assigned[2]: unknown user "zz"`.

pub mod change;
pub mod transfer;

use crate::domain::{AgentRecord, ChannelKind, ChannelRef, Role, Settings, User};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The demo directory used when no `--directory` is given.
pub const DEMO_DIRECTORY: &str = include_str!("../demo_directory.json");

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read directory file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("directory does not parse: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("directory is invalid: {0}")]
    Invalid(String),
}

/// A channel of a tenant with its display name and, in the file only, its
/// initial assignments (at runtime assignments live in the agents' records).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub kind: ChannelKind,
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assigned: Vec<String>,
}

impl ChannelInfo {
    pub fn channel_ref(&self) -> ChannelRef {
        ChannelRef::new(self.kind, self.id.clone())
    }
}

/// One tenant (contact center) of the directory, indexed.
#[derive(Debug)]
pub struct TenantDirectory {
    pub id: String,
    pub name: String,
    pub settings: Settings,
    pub channels: Vec<ChannelInfo>,
    /// Shared with the sessions of each user (a session keeps the user it
    /// signed in as).
    pub users: Vec<Arc<User>>,
    user_index: HashMap<String, usize>,
    channel_index: HashMap<ChannelRef, usize>,
    /// The seq of the last directory change (0: as seeded).
    pub version: u64,
    /// Agents removed by directory changes (see [`DirectoryImage::removed`]).
    pub removed: BTreeMap<String, u64>,
}

/// A tenant's users and channels as a store holds them, at the seq of the
/// last directory change (`version`; 0 for the seed).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryImage {
    pub version: u64,
    pub users: Vec<User>,
    pub channels: Vec<ChannelInfo>,
    /// Agents whose record a directory change removed, with the seq of
    /// each removal: a replica that missed the change (a gap, a failover)
    /// tells its subscribers `agent_removed` with that version, in order
    /// with the other changes it catches up on. Dropped when the id gets a
    /// record again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, u64>,
}

impl TenantDirectory {
    /// A tenant's directory from its parts (indexes built here). Channels'
    /// seed assignments are dropped: at runtime records hold them.
    pub fn from_parts(id: &str, name: &str, settings: Settings, image: &DirectoryImage) -> Self {
        let mut users: Vec<Arc<User>> = image.users.iter().cloned().map(Arc::new).collect();
        users.sort_by(|a, b| a.id.cmp(&b.id));
        users.dedup_by(|a, b| a.id == b.id);
        let mut channels: Vec<ChannelInfo> = image
            .channels
            .iter()
            .map(|c| ChannelInfo {
                assigned: Vec::new(),
                ..c.clone()
            })
            .collect();
        channels.sort_by_key(ChannelInfo::channel_ref);
        channels.dedup_by(|a, b| a.channel_ref() == b.channel_ref());
        TenantDirectory {
            id: id.to_string(),
            name: name.to_string(),
            settings,
            user_index: users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.id.clone(), i))
                .collect(),
            channel_index: channels
                .iter()
                .enumerate()
                .map(|(i, c)| (c.channel_ref(), i))
                .collect(),
            channels,
            users,
            version: image.version,
            removed: image.removed.clone(),
        }
    }

    /// The users and channels as a store keeps them.
    pub fn image(&self) -> DirectoryImage {
        DirectoryImage {
            version: self.version,
            removed: self.removed.clone(),
            users: self.users.iter().map(|u| User::clone(u)).collect(),
            channels: self
                .channels
                .iter()
                .map(|c| ChannelInfo {
                    assigned: Vec::new(),
                    ..c.clone()
                })
                .collect(),
        }
    }

    /// This directory with a committed change applied, at `seq`.
    pub fn with(&self, write: &change::DirectoryWrite, seq: u64) -> Self {
        let mut image = self.image();
        write.apply_to(&mut image, seq);
        let mut next =
            TenantDirectory::from_parts(&self.id, &self.name, self.settings.clone(), &image);
        // The users the change left alone stay the same `Arc`, which the
        // sessions signed in as them share (rather than a copy each).
        for user in &mut next.users {
            if let Some(old) = self.shared_user(&user.id).filter(|old| *old == user) {
                *user = old.clone();
            }
        }
        next
    }

    pub fn user(&self, id: &str) -> Option<&User> {
        self.shared_user(id).map(|u| &**u)
    }

    /// The user as the directory holds it, for a session to keep.
    pub fn shared_user(&self, id: &str) -> Option<&Arc<User>> {
        self.user_index.get(id).map(|&i| &self.users[i])
    }

    pub fn channel(&self, channel: &ChannelRef) -> Option<&ChannelInfo> {
        self.channel_index.get(channel).map(|&i| &self.channels[i])
    }

    /// The records the store starts with: one per user holding the agent
    /// role, offline, connected nowhere, assigned as the file says.
    pub fn seed_records(&self) -> Vec<AgentRecord> {
        self.users
            .iter()
            .filter(|u| u.has_role(Role::Agent))
            .map(|u| {
                let assigned = self
                    .channels
                    .iter()
                    .filter(|c| c.assigned.contains(&u.id))
                    .map(ChannelInfo::channel_ref);
                let mut record =
                    AgentRecord::new(&u.id, &u.name, &u.roles, assigned, &self.settings);
                record.capacity_override = u.capacity.map(Box::new);
                record.normalize(&self.settings);
                record
            })
            .collect()
    }
}

/// Every tenant of the directory.
#[derive(Debug)]
pub struct Directory {
    tenants: HashMap<String, Arc<TenantDirectory>>,
    order: Vec<String>,
}

/// `a.0.b` as `a[0].b`.
fn bracketed(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else if part == "?" {
            // serde_ignored's mark for the inside of an Option.
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    tenants: Vec<TenantShape>,
}

#[derive(Deserialize)]
struct TenantShape {
    id: String,
    name: String,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    channels: Vec<ChannelInfo>,
    #[serde(default)]
    users: Vec<User>,
}

impl Directory {
    pub fn demo() -> Self {
        // The demo file is part of the binary and covered by a test.
        Directory::parse(DEMO_DIRECTORY).expect("the built-in demo directory is valid")
    }

    pub fn load(path: &Path) -> Result<Self, DirectoryError> {
        let text = std::fs::read_to_string(path).map_err(|source| DirectoryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Directory::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, DirectoryError> {
        let mut unknown = Vec::new();
        let mut json = serde_json::Deserializer::from_str(text);
        let file: FileShape =
            serde_ignored::deserialize(&mut json, |path| unknown.push(path.to_string()))?;
        json.end()?;
        if let Some(path) = unknown.first() {
            // `tenants.0.users.3.supervisess` reads as the loader's other
            // places do: `tenants[0].users[3].supervisess`.
            return Err(DirectoryError::Invalid(format!(
                "{}: unknown member (misspelt?); docs/DIRECTORY.md lists the fields",
                bracketed(path)
            )));
        }
        let mut tenants = HashMap::new();
        let mut order = Vec::new();
        for (ti, t) in file.tenants.into_iter().enumerate() {
            let at = format!("tenants[{ti}] ({})", t.id);
            if t.id.is_empty() {
                return Err(invalid(format!("tenants[{ti}].id: must not be empty")));
            }
            if tenants.contains_key(&t.id) {
                return Err(invalid(format!(
                    "{at}.id: tenant id {:?} is repeated",
                    t.id
                )));
            }
            let mut user_index = HashMap::new();
            for (ui, u) in t.users.iter().enumerate() {
                if u.id.is_empty() {
                    return Err(invalid(format!("{at}.users[{ui}].id: must not be empty")));
                }
                if user_index.insert(u.id.clone(), ui).is_some() {
                    return Err(invalid(format!(
                        "{at}.users[{ui}].id: user id {:?} is repeated",
                        u.id
                    )));
                }
            }
            let mut channel_index = HashMap::new();
            for (ci, c) in t.channels.iter().enumerate() {
                let here = format!("{at}.channels[{ci}] ({} {})", c.kind.as_str(), c.id);
                if c.id.is_empty() {
                    return Err(invalid(format!("{here}.id: must not be empty")));
                }
                if channel_index.insert(c.channel_ref(), ci).is_some() {
                    return Err(invalid(format!(
                        "{here}.id: channel {} {:?} is repeated",
                        c.kind.as_str(),
                        c.id
                    )));
                }
                let mut seen = HashSet::new();
                for (ai, a) in c.assigned.iter().enumerate() {
                    if !user_index.contains_key(a) {
                        return Err(invalid(format!(
                            "{here}.assigned[{ai}]: unknown user {a:?}"
                        )));
                    }
                    if !seen.insert(a) {
                        return Err(invalid(format!(
                            "{here}.assigned[{ai}]: user {a:?} is repeated"
                        )));
                    }
                }
            }
            crate::domain::pause::validate_settings(&t.settings)
                .map_err(|e| invalid(format!("{at}.settings: {e}")))?;
            for (ui, u) in t.users.iter().enumerate() {
                if let Some(Err(e)) = u.capacity.map(|c| c.validate()) {
                    return Err(invalid(format!("{at}.users[{ui}] ({}).{e}", u.id)));
                }
                for (si, s) in u.supervises.iter().flatten().enumerate() {
                    if !channel_index.contains_key(s) {
                        return Err(invalid(format!(
                            "{at}.users[{ui}] ({}).supervises[{si}]: unknown channel {s}",
                            u.id
                        )));
                    }
                }
            }
            order.push(t.id.clone());
            tenants.insert(
                t.id.clone(),
                Arc::new(TenantDirectory {
                    id: t.id,
                    name: t.name,
                    settings: t.settings,
                    channels: t.channels,
                    users: t.users.into_iter().map(Arc::new).collect(),
                    user_index,
                    channel_index,
                    version: 0,
                    removed: BTreeMap::new(),
                }),
            );
        }
        Ok(Directory { tenants, order })
    }

    pub fn tenant(&self, id: &str) -> Option<&Arc<TenantDirectory>> {
        self.tenants.get(id)
    }

    /// Tenants in file order.
    pub fn tenants(&self) -> impl Iterator<Item = &Arc<TenantDirectory>> {
        self.order.iter().filter_map(|id| self.tenants.get(id))
    }
}

fn invalid(message: String) -> DirectoryError {
    DirectoryError::Invalid(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_keeps_the_users_it_leaves_alone_shared() {
        let dir = Directory::demo();
        let acme = dir.tenant("acme").expect("acme");
        let mut a2 = acme.user("a2").expect("a2").clone();
        a2.name = "Renamed".into();
        let write = change::DirectoryWrite {
            expected_version: acme.version,
            users_put: vec![a2],
            users_removed: vec!["a4".into()],
            event: "user_updated".into(),
            ..change::DirectoryWrite::default()
        };
        let next = acme.with(&write, acme.version + 1);
        let (before, after) = (
            acme.shared_user("a1").expect("a1"),
            next.shared_user("a1").expect("a1"),
        );
        assert!(Arc::ptr_eq(before, after), "untouched: the same Arc");
        assert_eq!(next.user("a2").map(|u| u.name.as_str()), Some("Renamed"));
        assert!(next.user("a4").is_none());
        assert!(!Arc::ptr_eq(
            acme.shared_user("a2").expect("a2"),
            next.shared_user("a2").expect("a2")
        ));
    }

    #[test]
    fn demo_directory_is_valid_and_seeds_agents_only() {
        let dir = Directory::demo();
        let acme = dir.tenant("acme").expect("acme");
        let seeded: Vec<_> = acme.seed_records().into_iter().map(|r| r.id).collect();
        assert!(
            seeded.contains(&"a3".to_string()),
            "agent+supervisor is an agent"
        );
        assert!(
            !seeded.contains(&"s1".to_string()),
            "pure supervisors have no record"
        );
        let a2 = acme
            .seed_records()
            .into_iter()
            .find(|r| r.id == "a2")
            .expect("a2");
        assert!(a2.channels.iter().all(|c| c.assigned && !c.connected));
        assert_eq!(a2.channels.len(), 2);
    }

    fn err(text: &str) -> String {
        Directory::parse(text)
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn bad_directories_name_the_place() {
        let unknown_user = r#"{"tenants":[{"id":"t","name":"T","channels":[
            {"kind":"queue","id":"q","name":"Q","assigned":["zz"]}],"users":[]}]}"#;
        assert!(err(unknown_user)
            .contains(r#"tenants[0] (t).channels[0] (queue q).assigned[0]: unknown user "zz""#));

        let unknown_channel = r#"{"tenants":[{"id":"t","name":"T","channels":[],"users":[
            {"id":"s","name":"S","roles":["supervisor"],"supervises":[{"kind":"chat","id":"x"}]}]}]}"#;
        assert!(err(unknown_channel)
            .contains("tenants[0] (t).users[0] (s).supervises[0]: unknown channel chat x"));

        let repeated_user = r#"{"tenants":[{"id":"t","name":"T","users":[
            {"id":"u","name":"A"},{"id":"u","name":"B"}]}]}"#;
        assert!(
            err(repeated_user).contains(r#"tenants[0] (t).users[1].id: user id "u" is repeated"#)
        );

        let repeated_tenant = r#"{"tenants":[{"id":"t","name":"T"},{"id":"t","name":"U"}]}"#;
        assert!(err(repeated_tenant).contains("tenants[1] (t).id"));

        let repeated_channel = r#"{"tenants":[{"id":"t","name":"T","channels":[
            {"kind":"queue","id":"q","name":"Q"},{"kind":"queue","id":"q","name":"Q2"}]}]}"#;
        assert!(err(repeated_channel).contains("channels[1] (queue q).id"));

        assert!(err("{not json").contains("line 1"));
        assert!(err(r#"{"tenants":[{"id":"t","name":"T","users":[{"id":"u","name":"U","roles":["boss"]}]}]}"#)
            .contains("unknown variant `boss`"));
    }
}
