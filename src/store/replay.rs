//! Reading the data directory back at start: every tenant the file holds,
//! as the memory store starts from it ([`Restored`]), and where each
//! tenant's history and keys continue ([`Cursor`]).
//!
//! Nothing here guesses: a value that does not decode, or a tenant missing
//! a part every tenant has, is an error naming what is wrong, and the node
//! refuses to start rather than start from less than was acknowledged.

use super::codec::{
    self, KeyEntry, DIRECTORY, EPOCH, EVENTS, HISTORY, KEYS, RECORDS, SEQ, SETTINGS,
};
use crate::backplane::memory::{Restored, MAX_KEYS};
use crate::backplane::{Epoch, HistoryEntry, IdempotencyKey};
use crate::events::{EventId, Retention};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition, TableError};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a tenant's numbered rows stand: history entries and keys in
/// `first..next`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub history_first: u64,
    pub history_next: u64,
    pub keys_first: u64,
    pub keys_next: u64,
    /// Events the file holds for the tenant.
    pub events: u64,
}

/// Every tenant of the file, with keys older than the idempotency window
/// (at `now_ms`) and history beyond `history_capacity` left out (the file
/// still has them until [`prune`]).
pub fn load(
    db: &Database,
    history_capacity: usize,
    retention: &Retention,
    now_ms: u64,
) -> Result<(Vec<Restored>, HashMap<String, Cursor>), String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let seqs = match txn.open_table(SEQ) {
        Ok(t) => t,
        // A new file: no tenant yet.
        Err(TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), HashMap::new())),
        Err(e) => return Err(e.to_string()),
    };
    let epochs = txn.open_table(EPOCH).map_err(|e| e.to_string())?;
    let settings = txn.open_table(SETTINGS).map_err(|e| e.to_string())?;
    let directories = txn.open_table(DIRECTORY).map_err(|e| e.to_string())?;
    let records = txn.open_table(RECORDS).map_err(|e| e.to_string())?;
    let history = txn.open_table(HISTORY).map_err(|e| e.to_string())?;
    let keys = txn.open_table(KEYS).map_err(|e| e.to_string())?;
    // Files written before the event stream existed have no such table.
    let events = match txn.open_table(EVENTS) {
        Ok(t) => Some(t),
        Err(TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(e.to_string()),
    };
    let window_ms = crate::backplane::IdempotencyKey::WINDOW.as_millis() as u64;
    let mut out = Vec::new();
    let mut cursors = HashMap::new();
    for row in seqs.iter().map_err(|e| e.to_string())? {
        let (tenant, seq) = row.map_err(|e| e.to_string())?;
        let (tenant, seq) = (tenant.value().to_string(), seq.value());
        let t = tenant.as_str();
        let missing = |what: &str| format!("tenant {t:?} has a seq but no {what}");
        let epoch = epochs
            .get(t)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| missing("epoch"))?
            .value()
            .to_string();
        let settings = settings
            .get(t)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| missing("settings"))?;
        let settings =
            codec::decode(settings.value()).map_err(|e| format!("tenant {t:?}: settings: {e}"))?;
        let directory = directories
            .get(t)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| missing("directory"))?;
        let directory = codec::decode(directory.value())
            .map_err(|e| format!("tenant {t:?}: directory: {e}"))?;
        let mut agents = Vec::new();
        for row in records.range((t, "")..).map_err(|e| e.to_string())? {
            let (key, value) = row.map_err(|e| e.to_string())?;
            let (owner, id) = key.value();
            if owner != t {
                break;
            }
            agents.push(
                codec::decode(value.value())
                    .map_err(|e| format!("tenant {t:?}: record {id:?}: {e}"))?,
            );
        }
        let mut cursor = Cursor::default();
        let mut entries: Vec<HistoryEntry> = Vec::new();
        let rows: Vec<_> = history
            .range((t, 0)..=(t, u64::MAX))
            .map_err(|e| e.to_string())?
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let (key, value) = row.as_ref().map_err(|e| e.to_string())?;
            let n = key.value().1;
            if i == 0 {
                cursor.history_first = n;
            }
            cursor.history_next = n + 1;
            if rows.len() - i <= history_capacity {
                entries.push(
                    codec::decode(value.value())
                        .map_err(|e| format!("tenant {t:?}: history entry {n}: {e}"))?,
                );
            }
        }
        let mut remembered = Vec::new();
        let rows: Vec<_> = keys
            .range((t, 0)..=(t, u64::MAX))
            .map_err(|e| e.to_string())?
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let (key, value) = row.as_ref().map_err(|e| e.to_string())?;
            let n = key.value().1;
            if i == 0 {
                cursor.keys_first = n;
            }
            cursor.keys_next = n + 1;
            let entry: KeyEntry = codec::decode(value.value())
                .map_err(|e| format!("tenant {t:?}: idempotency key {n}: {e}"))?;
            if entry.at_ms + window_ms > now_ms && rows.len() - i <= MAX_KEYS {
                let key = IdempotencyKey {
                    user: entry.user,
                    key: entry.key,
                };
                remembered.push((key, entry.seq, entry.at_ms));
            }
        }
        let mut stream = Vec::new();
        if let Some(events) = &events {
            for row in events
                .range((t, 0, 0)..=(t, u64::MAX, u64::MAX))
                .map_err(|e| e.to_string())?
            {
                let (key, value) = row.map_err(|e| e.to_string())?;
                let (_, ms, n) = key.value();
                let json = codec::decode_json(value.value())
                    .map_err(|e| format!("tenant {t:?}: event {ms}-{n}: {e}"))?;
                stream.push((EventId { ms, n }, Arc::<str>::from(json)));
            }
        }
        cursor.events = stream.len() as u64;
        // What retention would have trimmed by now is left out (and
        // deleted by `prune`).
        let keep_from = retention
            .max_age_ms
            .map_or(0, |age| now_ms.saturating_sub(age));
        let over = stream.len().saturating_sub(retention.max_len);
        let stream: Vec<_> = stream
            .into_iter()
            .skip(over)
            .filter(|(id, _)| id.ms >= keep_from)
            .collect();
        cursors.insert(tenant.clone(), cursor);
        out.push(Restored {
            tenant,
            seq,
            epoch: Epoch::parse(&epoch),
            settings,
            records: agents,
            directory,
            history: entries,
            keys: remembered,
            events: stream,
        });
    }
    Ok((out, cursors))
}

/// Deletes from the file what [`load`] left out: history beyond
/// `history_capacity` and keys out of their window. Updates the cursors.
pub fn prune(
    db: &Database,
    cursors: &mut HashMap<String, Cursor>,
    history_capacity: usize,
    retention: &Retention,
    now_ms: u64,
) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut history = txn.open_table(HISTORY).map_err(|e| e.to_string())?;
        let mut keys = txn.open_table(KEYS).map_err(|e| e.to_string())?;
        let mut events = txn.open_table(EVENTS).map_err(|e| e.to_string())?;
        for (tenant, cursor) in cursors.iter_mut() {
            trim_events(&mut events, tenant, cursor, retention, now_ms, usize::MAX)?;
            let keep_from = cursor
                .history_next
                .saturating_sub(history_capacity as u64)
                .max(cursor.history_first);
            delete_below(&mut history, tenant, cursor.history_first, keep_from)?;
            cursor.history_first = keep_from;
            cursor.keys_first = expire_keys(&mut keys, tenant, *cursor, now_ms, usize::MAX)?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

/// Deletes a tenant's oldest events while there are more than
/// `retention.max_len` or they are older than its age, at most `limit` of
/// them (a commit trims a few at a time, `prune` all at once).
pub fn trim_events(
    table: &mut redb::Table<(&str, u64, u64), &[u8]>,
    tenant: &str,
    cursor: &mut Cursor,
    retention: &Retention,
    now_ms: u64,
    limit: usize,
) -> Result<(), String> {
    let keep_from = retention
        .max_age_ms
        .map_or(0, |age| now_ms.saturating_sub(age));
    let mut doomed = Vec::new();
    let mut left = cursor.events;
    for row in table
        .range((tenant, 0, 0)..=(tenant, u64::MAX, u64::MAX))
        .map_err(|e| e.to_string())?
        .take(limit)
    {
        let (key, _) = row.map_err(|e| e.to_string())?;
        let (_, ms, n) = key.value();
        if left as usize <= retention.max_len && ms >= keep_from {
            break;
        }
        doomed.push((ms, n));
        left -= 1;
    }
    for (ms, n) in doomed {
        table.remove((tenant, ms, n)).map_err(|e| e.to_string())?;
    }
    cursor.events = left;
    Ok(())
}

/// Deletes rows `from..below` of a numbered table.
pub fn delete_below(
    table: &mut redb::Table<(&str, u64), &[u8]>,
    tenant: &str,
    from: u64,
    below: u64,
) -> Result<(), String> {
    if from < below {
        table
            .retain_in((tenant, from)..(tenant, below), |_, _| false)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Deletes a tenant's oldest keys while they are out of the window or
/// beyond [`MAX_KEYS`], at most `limit` of them; returns the new first.
pub fn expire_keys(
    table: &mut redb::Table<(&str, u64), &[u8]>,
    tenant: &str,
    cursor: Cursor,
    now_ms: u64,
    limit: usize,
) -> Result<u64, String> {
    let window_ms = IdempotencyKey::WINDOW.as_millis() as u64;
    let mut first = cursor.keys_first;
    for row in table
        .range((tenant, cursor.keys_first)..(tenant, cursor.keys_next))
        .map_err(|e| e.to_string())?
        .take(limit)
    {
        let (key, value) = row.map_err(|e| e.to_string())?;
        let n = key.value().1;
        let over = cursor.keys_next - n > MAX_KEYS as u64;
        // An undecodable key is stale too: it could never be matched.
        let expired = codec::decode::<KeyEntry>(value.value())
            .map(|k| k.at_ms + window_ms <= now_ms)
            .unwrap_or(true);
        if !over && !expired {
            break;
        }
        first = n + 1;
    }
    delete_below(table, tenant, cursor.keys_first, first)?;
    Ok(first)
}

/// How many rows a table holds (for tests and the start-up log).
pub fn rows<K: redb::Key + 'static, V: redb::Value + 'static>(
    db: &Database,
    table: TableDefinition<K, V>,
) -> Result<u64, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    match txn.open_table(table) {
        Ok(t) => t.len().map_err(|e| e.to_string()),
        Err(TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(e.to_string()),
    }
}
