//! How the data directory's file is laid out: its tables, and how a value
//! is encoded in them.
//!
//! Counters (the seq) and strings (the epoch) are stored as redb's own
//! types; everything else as one format byte then JSON through the serde
//! shapes the domain already has (the same ones Redis and the wire use),
//! so a record read back is the record written, and a future format can be
//! told apart from this one instead of being misread.

use redb::TableDefinition;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The format byte in front of every encoded value.
pub const FORMAT: u8 = 1;

/// Tenant → its seq (the set of tenants the store holds).
pub const SEQ: TableDefinition<&str, u64> = TableDefinition::new("seq");
/// Tenant → its epoch value (`Epoch::id`).
pub const EPOCH: TableDefinition<&str, &str> = TableDefinition::new("epoch");
/// Tenant → `Settings`.
pub const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("settings");
/// Tenant → `DirectoryImage`.
pub const DIRECTORY: TableDefinition<&str, &[u8]> = TableDefinition::new("directory");
/// (tenant, agent id) → `AgentRecord`.
pub const RECORDS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("records");
/// (tenant, entry number) → `HistoryEntry`; numbers grow by one per entry,
/// the oldest are deleted past `--history-capacity`.
pub const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// (tenant, key number) → [`KeyEntry`], oldest first; deleted once out of
/// the idempotency window.
pub const KEYS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("keys");
/// Tenant → its service credentials (`Vec<backplane::credential::Credential>`),
/// rewritten whole by each creation or revocation.
pub const CREDENTIALS: TableDefinition<&str, &[u8]> = TableDefinition::new("credentials");

/// (tenant, ms, n) → the event's JSON (after the format byte): the event
/// stream, keyed by its ids (`crate::events::EventId`), so it reads back in
/// order and trims from the front.
pub const EVENTS: TableDefinition<(&str, u64, u64), &[u8]> = TableDefinition::new("events");

/// (tenant, name) → `(version, document or null)`: the webhook documents
/// (`crate::webhooks::store`), written by their own compare-and-swap.
pub const WEBHOOKS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("webhooks");

/// An event's JSON as stored.
pub fn encode_json(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 1);
    out.push(FORMAT);
    out.extend_from_slice(json.as_bytes());
    out
}

pub fn decode_json(bytes: &[u8]) -> Result<&str, String> {
    match bytes.split_first() {
        Some((&FORMAT, json)) => std::str::from_utf8(json).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown format {other}")),
        None => Err("empty value".into()),
    }
}

/// An idempotency key as stored: who used it, the seq of its change, and
/// when (ms since the Unix epoch: an `Instant` does not survive a restart).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub user: String,
    pub key: String,
    pub seq: u64,
    pub at_ms: u64,
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut out = vec![FORMAT];
    serde_json::to_writer(&mut out, value).map_err(|e| format!("cannot encode: {e}"))?;
    Ok(out)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    match bytes.split_first() {
        Some((&FORMAT, json)) => serde_json::from_slice(json).map_err(|e| e.to_string()),
        Some((other, _)) => Err(format!("unknown format {other}")),
        None => Err("empty value".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backplane::HistoryEntry;
    use crate::domain::{Actor, AgentRecord, Role, Settings, Status};

    #[test]
    fn values_read_back_as_written() {
        let settings = Settings::default();
        let back: Settings = decode(&encode(&settings).expect("encode")).expect("decode");
        assert_eq!(back, settings);
        let key = KeyEntry {
            user: "u1".into(),
            key: "k-1".into(),
            seq: 42,
            at_ms: 1_700_000_000_000,
        };
        let back: KeyEntry = decode(&encode(&key).expect("encode")).expect("decode");
        assert_eq!(back, key);
        let mut record = AgentRecord::new("a1", "Ann", &[Role::Agent], [], &settings);
        record.status = Status::Paused;
        record.pause_reason = Some("lunch".into());
        record.changed_by = Some(Actor::new("s1", Role::Supervisor));
        record.version = 7;
        let back: AgentRecord = decode(&encode(&record).expect("encode")).expect("decode");
        assert_eq!(back, record);
        let entry = HistoryEntry {
            by: Actor::system(),
            ..HistoryEntry::of(&record, "pause")
        };
        let back: HistoryEntry = decode(&encode(&entry).expect("encode")).expect("decode");
        assert_eq!(back, entry);
    }

    #[test]
    fn a_value_of_another_format_or_garbage_is_an_error_not_a_default() {
        let mut bytes = encode(&Settings::default()).expect("encode");
        bytes[0] = 9;
        assert!(decode::<Settings>(&bytes).unwrap_err().contains("format 9"));
        assert!(decode::<Settings>(&[]).is_err());
        assert!(decode::<Settings>(&[FORMAT, b'{', b'x']).is_err());
    }
}
