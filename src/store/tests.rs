//! The journal and its replay, in process: what the memory store hands the
//! data directory comes back whole after a reopen, bounded, and a change the
//! journal refuses is applied nowhere.

use super::*;
use crate::backplane::memory::MemoryBackplane;
use crate::backplane::{
    Backplane, BackplaneError, Commit, DeltaHandler, DirectoryCommit, IdempotencyKey,
    SettingsPatch, TenantSeed,
};
use crate::directory::change::{DirectoryWrite, RecordPut};
use crate::directory::DirectoryImage;
use crate::domain::{Actor, AgentRecord, Role, Settings, Status, User};

fn dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("presence-hub-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn seed() -> TenantSeed {
    TenantSeed {
        settings: Settings::default(),
        agents: vec![AgentRecord::new(
            "a1",
            "Ann",
            &[Role::Agent],
            [],
            &Settings::default(),
        )],
        directory: DirectoryImage::default(),
    }
}

fn quiet() -> DeltaHandler {
    Arc::new(|_| {})
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey {
        user: "s1".into(),
        key: k.into(),
    }
}

/// Pauses `a1` by `s1` (one agent commit with a key).
async fn pause(bp: &MemoryBackplane, k: &str) -> u64 {
    let current = bp.read_agent("t", "a1").await.expect("read").expect("a1");
    let mut next = (*current).clone();
    next.status = Status::Paused;
    next.pause_reason = Some(format!("reason-{k}"));
    next.changed_by = Some(Actor::new("s1", Role::Supervisor));
    match bp
        .commit_agent("t", current.version, next, "pause", Some(&key(k)))
        .await
        .expect("commit")
    {
        Commit::Committed(r) => r.version,
        other => panic!("not committed: {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_of_change_comes_back_after_a_reopen() {
    let dir = dir("every-kind");
    let (epoch, seq) = {
        let opened = DataDir::open(&dir, 100).expect("open");
        assert!(opened.restored.is_empty());
        let bp = opened.backplane(100);
        let state = bp.attach("t", seed(), quiet()).await.expect("attach");
        pause(&bp, "k1").await;
        let patch = SettingsPatch {
            wrap_up_seconds: Some(77),
            ..SettingsPatch::default()
        };
        bp.update_settings("t", &patch, &Actor::system(), Some(&key("k2")))
            .await
            .expect("settings");
        let user = User {
            id: "new1".into(),
            name: "New One".into(),
            roles: vec![Role::Agent],
            supervises: None,
            capacity: None,
        };
        let write = DirectoryWrite {
            expected_version: 0,
            users_put: vec![user],
            records_put: vec![RecordPut {
                expected: None,
                record: AgentRecord {
                    changed_by: Some(Actor::new("admin1", Role::Admin)),
                    ..AgentRecord::new("new1", "New One", &[Role::Agent], [], &Settings::default())
                },
            }],
            event: "user_created".into(),
            by: Some(Actor::new("admin1", Role::Admin)),
            ..DirectoryWrite::default()
        };
        let seq = match bp.commit_directory("t", &write, Some(&key("k3"))).await {
            Ok(DirectoryCommit::Committed(seq)) => seq,
            other => panic!("directory change: {other:?}"),
        };
        (state.epoch, seq)
    };
    let opened = DataDir::open(&dir, 100).expect("reopen");
    assert_eq!(opened.restored.len(), 1);
    let t = &opened.restored[0];
    assert_eq!((t.tenant.as_str(), t.seq), ("t", seq));
    assert_eq!(t.epoch, epoch, "the epoch persists");
    assert_eq!(t.settings.wrap_up_seconds, 77);
    assert_eq!(t.directory.version, seq);
    assert!(t.directory.users.iter().any(|u| u.id == "new1"));
    let a1 = t.records.iter().find(|r| r.id == "a1").expect("a1");
    assert_eq!(
        (a1.status, a1.pause_reason.as_deref()),
        (Status::Paused, Some("reason-k1"))
    );
    // The change's one record took its first seq, the directory its last.
    assert!(t
        .records
        .iter()
        .any(|r| r.id == "new1" && r.version == seq - 1));
    let events: Vec<(&str, &str)> = t
        .history
        .iter()
        .map(|h| (&*h.event, h.by.id.as_str()))
        .collect();
    assert_eq!(events, [("pause", "s1"), ("user_created", "admin1")]);
    assert_eq!(t.keys.len(), 3);

    // The backplane built on it is the one that was: keys answer, seqs go
    // on, and the directory file's seed adds nothing to a tenant the store
    // holds.
    let bp = opened.backplane(100);
    let mut file_seed = seed();
    file_seed.agents.push(AgentRecord::new(
        "zz",
        "Only In The File",
        &[Role::Agent],
        [],
        &Settings::default(),
    ));
    let state = bp.attach("t", file_seed, quiet()).await.expect("attach");
    assert!(bp.read_agent("t", "zz").await.expect("read").is_none());
    assert_eq!((state.seq, state.epoch), (seq, epoch));
    assert_eq!(
        bp.applied_under("t", &key("k2")).await.expect("keys"),
        Some(2)
    );
    assert_eq!(pause(&bp, "k4").await, seq + 1);
    let history = bp.history("t", "a1", 0, 10).await.expect("history");
    assert_eq!(history.len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn history_stays_bounded_on_disk_and_a_smaller_capacity_prunes_at_start() {
    let dir = dir("bounded");
    {
        let opened = DataDir::open(&dir, 3).expect("open");
        let bp = opened.backplane(3);
        bp.attach("t", seed(), quiet()).await.expect("attach");
        for i in 0..10 {
            pause(&bp, &format!("k{i}")).await;
        }
        assert_eq!(
            replay::rows(&opened.data_dir.db, codec::HISTORY).expect("rows"),
            3
        );
    }
    let opened = DataDir::open(&dir, 2).expect("reopen");
    let t = &opened.restored[0];
    let reasons: Vec<_> = t
        .history
        .iter()
        .map(|h| h.pause_reason.clone().unwrap_or_default())
        .collect();
    assert_eq!(reasons, ["reason-k8", "reason-k9"]);
    assert_eq!(
        replay::rows(&opened.data_dir.db, codec::HISTORY).expect("rows"),
        2
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A journal whose disk is full.
struct Refusing;

impl Journal for Refusing {
    fn write(&self, _: &str, change: &Written<'_>) -> Result<(), String> {
        if change.seq == 0 {
            Ok(())
        } else {
            Err("no space left on device".into())
        }
    }
}

#[tokio::test]
async fn a_change_the_journal_refuses_is_applied_nowhere() {
    let bp = MemoryBackplane::durable(10, Arc::new(Refusing), Vec::new());
    let published = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = published.clone();
    bp.attach(
        "t",
        seed(),
        Arc::new(move |_| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }),
    )
    .await
    .expect("attach");
    let current = bp.read_agent("t", "a1").await.expect("read").expect("a1");
    let mut next = (*current).clone();
    next.status = Status::Paused;
    let refused = bp
        .commit_agent("t", 0, next, "pause", Some(&key("k")))
        .await;
    assert!(matches!(refused, Err(BackplaneError::Unavailable(_))));
    let patch = SettingsPatch {
        wrap_up_seconds: Some(5),
        ..SettingsPatch::default()
    };
    let refused = bp
        .update_settings("t", &patch, &Actor::system(), None)
        .await;
    assert!(matches!(refused, Err(BackplaneError::Unavailable(_))));
    let state = bp.load("t").await.expect("load").expect("tenant");
    assert_eq!(state.seq, 0);
    assert_ne!(state.settings.wrap_up_seconds, 5);
    let a1 = bp.read_agent("t", "a1").await.expect("read").expect("a1");
    assert_eq!((a1.version, a1.status), (current.version, current.status));
    assert!(bp
        .history("t", "a1", 0, 10)
        .await
        .expect("history")
        .is_empty());
    assert_eq!(bp.applied_under("t", &key("k")).await.expect("keys"), None);
    assert_eq!(published.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn a_second_open_is_refused_and_a_garbage_or_empty_file_is_not_started_empty() {
    let dir = dir("refusals");
    let first = DataDir::open(&dir, 10).expect("open");
    match DataDir::open(&dir, 10) {
        Err(StoreError::Locked { file }) => assert!(file.ends_with(FILE_NAME)),
        Err(other) => panic!("not refused as locked: {other}"),
        Ok(_) => panic!("opened twice"),
    }
    drop(first);
    std::fs::write(dir.join(FILE_NAME), b"not a store at all, just some bytes").expect("write");
    match DataDir::open(&dir, 10) {
        Err(e @ StoreError::Unreadable { .. }) => {
            assert!(e.to_string().contains(FILE_NAME), "{e}")
        }
        Err(other) => panic!("wrong refusal: {other}"),
        Ok(_) => panic!("started from garbage"),
    }
    std::fs::write(dir.join(FILE_NAME), b"").expect("write");
    assert!(matches!(
        DataDir::open(&dir, 10),
        Err(StoreError::Unreadable { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_record_that_does_not_decode_refuses_the_start_and_names_it() {
    let dir = dir("bad-record");
    {
        let opened = DataDir::open(&dir, 10).expect("open");
        let db = &opened.data_dir.db;
        let txn = db.begin_write().expect("txn");
        {
            let mut seq = txn.open_table(codec::SEQ).expect("t");
            seq.insert("t", 1).expect("i");
            let mut epoch = txn.open_table(codec::EPOCH).expect("t");
            epoch.insert("t", "e@0").expect("i");
            let mut settings = txn.open_table(codec::SETTINGS).expect("t");
            settings
                .insert(
                    "t",
                    codec::encode(&Settings::default()).expect("e").as_slice(),
                )
                .expect("i");
            let mut directory = txn.open_table(codec::DIRECTORY).expect("t");
            directory
                .insert(
                    "t",
                    codec::encode(&DirectoryImage::default())
                        .expect("e")
                        .as_slice(),
                )
                .expect("i");
            let mut records = txn.open_table(codec::RECORDS).expect("t");
            records
                .insert(("t", "a1"), &[codec::FORMAT, b'{'][..])
                .expect("i");
            txn.open_table(codec::HISTORY).expect("t");
            txn.open_table(codec::KEYS).expect("t");
        }
        txn.commit().expect("commit");
    }
    match DataDir::open(&dir, 10) {
        Err(e @ StoreError::Unreadable { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("record \"a1\"") && text.contains(FILE_NAME),
                "{text}"
            );
        }
        Err(other) => panic!("wrong refusal: {other}"),
        Ok(_) => panic!("started without the record"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Webhook documents (`crate::webhooks::store`) come back after a reopen
/// at their versions, a delete included; a stale compare-and-swap writes
/// nothing.
#[tokio::test]
async fn webhook_documents_survive_a_reopen_at_their_versions() {
    let path = dir("webhooks");
    {
        let opened = DataDir::open(&path, 100).expect("open");
        let store = opened.backplane(100);
        assert_eq!(
            store.webhook_doc("acme", "endpoints").await.expect("read"),
            (0, None)
        );
        let v1 = store
            .put_webhook_doc(
                "acme",
                "endpoints",
                0,
                Some("{\"a\":1}"),
                crate::backplane::WriteAck::Master,
            )
            .await
            .expect("write");
        assert_eq!(v1, Some(1));
        let stale = store
            .put_webhook_doc(
                "acme",
                "endpoints",
                0,
                Some("{\"b\":2}"),
                crate::backplane::WriteAck::Master,
            )
            .await
            .expect("write");
        assert_eq!(stale, None, "a stale writer writes nothing");
        store
            .put_webhook_doc(
                "acme",
                "state:x",
                0,
                Some("{}"),
                crate::backplane::WriteAck::Master,
            )
            .await
            .expect("write");
        store
            .put_webhook_doc(
                "acme",
                "state:x",
                1,
                None,
                crate::backplane::WriteAck::Master,
            )
            .await
            .expect("delete");
    }
    let opened = DataDir::open(&path, 100).expect("reopen");
    let store = opened.backplane(100);
    assert_eq!(
        store.webhook_doc("acme", "endpoints").await.expect("read"),
        (1, Some("{\"a\":1}".to_string()))
    );
    assert_eq!(
        store.webhook_doc("acme", "state:x").await.expect("read"),
        (2, None)
    );
    let _ = std::fs::remove_dir_all(&path);
}
