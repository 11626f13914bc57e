//! A single node that remembers (`--data-dir`): the in-memory backplane's
//! durable journal.
//!
//! Why: the default node (one process, [`MemoryBackplane`]) keeps every
//! record, setting, history entry and directory change in memory only, so
//! a restart — or a crash — forgot them all. With `--data-dir DIR` the
//! memory store hands each commit to this journal *inside its critical
//! section, before applying or publishing it* ([`Journal`]); the journal
//! writes it in one transaction and fsyncs it. A change a client was told
//! about is therefore on disk, and one the disk refused is applied nowhere
//! (the client gets `unavailable`). At start the node reads the file back
//! ([`replay`]) and each tenant it holds starts from it; the directory file
//! only seeds tenants the store does not hold yet (as with Redis).
//!
//! Why redb: an embedded, pure-Rust, ACID key-value store (copy-on-write
//! B-trees, checksummed commits, crash recovery on open), so no C library
//! to build or ship — the same reason the hub uses rustls — and one file
//! with an exclusive lock (a second process on the same directory is
//! refused). Each commit here uses redb's default `Durability::Immediate`:
//! the commit returns after the data is fsynced. SQLite (`rusqlite`,
//! bundled) would do as well, with a C build and SQL the hub does not need;
//! our data is a handful of keyed values per change. docs/STORE.md has
//! the whole picture: what is stored, fsync policy, crash semantics, backup.
//!
//! The one entry point is [`DataDir::open`].

pub mod codec;
pub mod replay;

use crate::backplane::credential::Credential;
use crate::backplane::memory::{Journal, MemoryBackplane, Restored, Written};
use crate::events::Retention;
use codec::{
    KeyEntry, CREDENTIALS, DIRECTORY, EPOCH, EVENTS, HISTORY, KEYS, RECORDS, SEQ, SETTINGS,
};
use parking_lot::Mutex;
use redb::{Database, DatabaseError};
use replay::Cursor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The store's file inside the data directory.
pub const FILE_NAME: &str = "presence-hub.redb";

/// Why a data directory could not be opened. The node does not start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("--data-dir {dir}: cannot create or open the directory: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("--data-dir: {file} is in use by another process (it holds the file's lock); one node per data directory")]
    Locked { file: PathBuf },
    #[error("--data-dir: cannot read {file}: {why}. Refusing to start rather than start empty: restore the directory from a backup, or move the file away to start afresh")]
    Unreadable { file: PathBuf, why: String },
}

/// The open data directory: a journal for the memory store.
pub struct DataDir {
    db: Database,
    file: PathBuf,
    history_capacity: usize,
    retention: Retention,
    cursors: Mutex<HashMap<String, Cursor>>,
    /// The service credentials read at open, until the memory store takes them.
    credentials_at_open: Mutex<Vec<(String, Vec<Credential>)>>,
}

/// What [`DataDir::open`] found.
pub struct Opened {
    pub data_dir: Arc<DataDir>,
    /// Every tenant the file holds.
    pub restored: Vec<Restored>,
    /// The webhook documents: (tenant, name, (version, document)).
    pub webhooks: Vec<(String, String, crate::backplane::memory::WebhookDoc)>,
}

impl Opened {
    /// The memory backplane that starts from the file and journals to it.
    pub fn backplane(&self, history_capacity: usize) -> MemoryBackplane {
        MemoryBackplane::durable(
            history_capacity,
            self.data_dir.clone(),
            self.restored.clone(),
        )
        .with_events(self.data_dir.retention.clone())
        .with_webhook_docs(self.webhooks.clone())
    }
}

impl DataDir {
    /// Opens (or creates) the store in `dir`, takes its lock, reads every
    /// tenant back, prunes what is past `history_capacity` or the
    /// idempotency window, and compacts the file.
    pub fn open(dir: &Path, history_capacity: usize) -> Result<Opened, StoreError> {
        DataDir::open_with(dir, history_capacity, Retention::default())
    }

    /// [`DataDir::open`], keeping the event stream within `retention`.
    pub fn open_with(
        dir: &Path,
        history_capacity: usize,
        retention: Retention,
    ) -> Result<Opened, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let file = dir.join(FILE_NAME);
        let unreadable = |why: String| StoreError::Unreadable {
            file: file.clone(),
            why,
        };
        // redb would initialise an empty file as a new store: an existing
        // empty file is not ours to wipe silently.
        if let Ok(meta) = std::fs::metadata(&file) {
            if meta.len() == 0 {
                return Err(unreadable("the file is empty".into()));
            }
        }
        let mut db = Database::create(&file).map_err(|e| match e {
            DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { file: file.clone() },
            other => unreadable(other.to_string()),
        })?;
        let now_ms = crate::clock::now_ms();
        let (restored, mut cursors) =
            replay::load(&db, history_capacity, &retention, now_ms).map_err(unreadable)?;
        replay::prune(&db, &mut cursors, history_capacity, &retention, now_ms)
            .map_err(unreadable)?;
        let credentials_at_open = read_credentials(&db).map_err(unreadable)?;
        let webhooks = load_webhooks(&db).map_err(unreadable)?;
        if let Err(e) = db.compact() {
            tracing::warn!(file = %file.display(), error = %e, "data dir: compaction skipped");
        }
        tracing::info!(
            file = %file.display(),
            tenants = restored.len(),
            "data dir open: changes are fsynced before they are acknowledged"
        );
        Ok(Opened {
            data_dir: Arc::new(DataDir {
                db,
                file,
                history_capacity,
                retention,
                cursors: Mutex::new(cursors),
                credentials_at_open: Mutex::new(credentials_at_open),
            }),
            restored,
            webhooks,
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// One change in one transaction; returns the tenant's cursor after it.
    fn commit(&self, tenant: &str, w: &Written<'_>, mut cursor: Cursor) -> Result<Cursor, String> {
        let e = |e: redb::Error| e.to_string();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            // Every table is opened (so created) by the first write: a
            // tenant that has a seq has every part (`replay::load`).
            let mut seqs = txn.open_table(SEQ).map_err(|x| e(x.into()))?;
            let mut epochs = txn.open_table(EPOCH).map_err(|x| e(x.into()))?;
            let mut settings = txn.open_table(SETTINGS).map_err(|x| e(x.into()))?;
            let mut directories = txn.open_table(DIRECTORY).map_err(|x| e(x.into()))?;
            let mut records = txn.open_table(RECORDS).map_err(|x| e(x.into()))?;
            let mut history = txn.open_table(HISTORY).map_err(|x| e(x.into()))?;
            let mut keys = txn.open_table(KEYS).map_err(|x| e(x.into()))?;
            let mut events = txn.open_table(EVENTS).map_err(|x| e(x.into()))?;
            seqs.insert(tenant, w.seq).map_err(|x| e(x.into()))?;
            if let Some(epoch) = w.epoch {
                epochs
                    .insert(tenant, epoch.id.as_str())
                    .map_err(|x| e(x.into()))?;
            }
            if let Some(s) = w.settings {
                settings
                    .insert(tenant, codec::encode(s)?.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            if let Some(d) = w.directory {
                directories
                    .insert(tenant, codec::encode(d)?.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
            for record in w.records {
                records
                    .insert(
                        (tenant, record.id.as_str()),
                        codec::encode(record.as_ref())?.as_slice(),
                    )
                    .map_err(|x| e(x.into()))?;
            }
            for id in w.removed {
                records
                    .remove((tenant, id.as_str()))
                    .map_err(|x| e(x.into()))?;
            }
            if self.history_capacity > 0 && !w.history.is_empty() {
                for entry in w.history {
                    history
                        .insert(
                            (tenant, cursor.history_next),
                            codec::encode(entry)?.as_slice(),
                        )
                        .map_err(|x| e(x.into()))?;
                    cursor.history_next += 1;
                }
                // Bounded on disk as in memory.
                let keep_from = cursor
                    .history_next
                    .saturating_sub(self.history_capacity as u64)
                    .max(cursor.history_first);
                replay::delete_below(&mut history, tenant, cursor.history_first, keep_from)?;
                cursor.history_first = keep_from;
            }
            let now_ms = crate::clock::now_ms();
            for (id, event) in w.events {
                events
                    .insert(
                        (tenant, id.ms, id.n),
                        codec::encode_json(&event.to_json(tenant)).as_slice(),
                    )
                    .map_err(|x| e(x.into()))?;
                cursor.events += 1;
            }
            // A few of the oldest per change keep the table within bounds.
            replay::trim_events(
                &mut events,
                tenant,
                &mut cursor,
                &self.retention,
                now_ms,
                w.events.len() + 8,
            )?;
            if let Some(key) = w.key {
                let entry = KeyEntry {
                    user: key.user.clone(),
                    key: key.key.clone(),
                    seq: w.seq,
                    at_ms: now_ms,
                };
                keys.insert(
                    (tenant, cursor.keys_next),
                    codec::encode(&entry)?.as_slice(),
                )
                .map_err(|x| e(x.into()))?;
                cursor.keys_next += 1;
            }
            // A few expired keys per change keep the table bounded.
            cursor.keys_first = replay::expire_keys(&mut keys, tenant, cursor, now_ms, 8)?;
        }
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(cursor)
    }
}

/// Every webhook document the file holds (none in a file written before
/// webhooks existed).
fn load_webhooks(
    db: &Database,
) -> Result<Vec<(String, String, crate::backplane::memory::WebhookDoc)>, String> {
    use redb::{ReadableTable, TableError};
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = match txn.open_table(codec::WEBHOOKS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut out = Vec::new();
    for row in table.iter().map_err(|e| e.to_string())? {
        let (key, value) = row.map_err(|e| e.to_string())?;
        let (tenant, name) = key.value();
        let doc: crate::backplane::memory::WebhookDoc = codec::decode(value.value())
            .map_err(|e| format!("tenant {tenant:?}: webhook document {name:?}: {e}"))?;
        out.push((tenant.to_string(), name.to_string(), doc));
    }
    Ok(out)
}

impl Journal for DataDir {
    fn write_webhook_doc(
        &self,
        tenant: &str,
        name: &str,
        version: u64,
        doc: Option<&str>,
    ) -> Result<(), String> {
        let e = |e: redb::Error| e.to_string();
        let value = codec::encode(&(version, doc))?;
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut table = txn.open_table(codec::WEBHOOKS).map_err(|x| e(x.into()))?;
            table
                .insert((tenant, name), value.as_slice())
                .map_err(|x| e(x.into()))?;
        }
        txn.commit().map_err(|x| e(x.into()))?;
        Ok(())
    }

    fn write(&self, tenant: &str, change: &Written<'_>) -> Result<(), String> {
        let started = Instant::now();
        let cursor = self.cursors.lock().get(tenant).copied().unwrap_or_default();
        let outcome = self.commit(tenant, change, cursor);
        crate::metrics::get()
            .store_write_seconds
            .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok(cursor) => {
                self.cursors.lock().insert(tenant.to_string(), cursor);
                Ok(())
            }
            Err(why) => {
                tracing::error!(tenant, file = %self.file.display(), error = %why, "data dir: a change was not written, so not applied");
                Err(why)
            }
        }
    }

    fn write_credentials(&self, tenant: &str, all: &[Credential]) -> Result<(), String> {
        let e = |e: redb::Error| e.to_string();
        let txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        {
            let mut table = txn.open_table(CREDENTIALS).map_err(|x| e(x.into()))?;
            if all.is_empty() {
                table.remove(tenant).map_err(|x| e(x.into()))?;
            } else {
                let bytes = codec::encode(&all)?;
                table
                    .insert(tenant, bytes.as_slice())
                    .map_err(|x| e(x.into()))?;
            }
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    fn read_credentials(&self) -> Vec<(String, Vec<Credential>)> {
        std::mem::take(&mut *self.credentials_at_open.lock())
    }
}

#[cfg(test)]
mod tests;

/// Every tenant's service credentials in the file (none before the first).
fn read_credentials(db: &Database) -> Result<Vec<(String, Vec<Credential>)>, String> {
    use redb::{ReadableTable, TableError};
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let table = match txn.open_table(CREDENTIALS) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut out = Vec::new();
    for entry in table.iter().map_err(|e| e.to_string())? {
        let (tenant, bytes) = entry.map_err(|e| e.to_string())?;
        let all: Vec<Credential> = codec::decode(bytes.value())
            .map_err(|e| format!("credentials of {}: {e}", tenant.value()))?;
        out.push((tenant.value().to_string(), all));
    }
    Ok(out)
}
