//! The daemon's event loop under stalls: what must still get through.

use std::time::Duration;

use kindred::domain::Delivery;
use kindred::startup::AppBuilder;
use kindred_adapter::{Adapter, AdapterIo, Inbound, Outbound};
use tokio::sync::oneshot;

use crate::helpers::*;

/// An adapter for the test platform that hands its channels to the test.
struct HandOver(Option<oneshot::Sender<AdapterIo>>);

impl Adapter for HandOver {
    fn platform(&self) -> &'static str {
        "test"
    }
    async fn run(mut self, io: AdapterIo) -> anyhow::Result<()> {
        let mut shutdown = io.shutdown.resubscribe();
        let _ = self.0.take().unwrap().send(io);
        let _ = shutdown.recv().await;
        Ok(())
    }
}

/// The running daemon over a model that never answers, with the test as its adapter.
async fn running_with_a_hung_model(
    dir: &std::path::Path,
) -> (
    kindred::engine::Engine,
    kindred::startup::Running,
    AdapterIo,
) {
    let settings = test_settings(dir, &[]);
    let store = kindred::startup::open_store(&settings).await.unwrap();
    let engine = kindred::engine::Engine::new(
        store,
        kindred::engine::ModelWorker::unresponsive(),
        std::sync::Arc::new(settings),
    );
    let (io_tx, io_rx) = oneshot::channel();
    let running = AppBuilder::new()
        .with_adapter(HandOver(Some(io_tx)))
        .start(engine.clone());
    (engine, running, io_rx.await.unwrap())
}

#[tokio::test]
async fn a_delivery_report_is_recorded_while_peoples_messages_are_stuck() {
    // A hung model holds one person's task while they flood; a reply sent before (the
    // crisis resources to someone else) is reported delivered in the meantime: the
    // report must reach the store now, not after whatever the people's messages wait
    // for — a crash in between would send the reply again.
    let dir = tempfile::tempdir().unwrap();
    let (engine, running, mut io) = running_with_a_hung_model(dir.path()).await;

    io.inbound
        .send(message("bo", "I'm standing on the roof right now"))
        .await
        .unwrap();
    let turn_id = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Outbound::Text { id: Some(id), .. }) = io.outbound.recv().await {
                return id;
            }
        }
    })
    .await
    .expect("the crisis response goes out");
    // The flood: more messages than a person's queue holds, behind a hung model.
    let flood = {
        let inbox = io.inbound.clone();
        tokio::spawn(async move {
            for i in 0..80 {
                let _ = inbox.send(message("ana", &format!("message {i}"))).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    io.inbound
        .send(Inbound::Delivered {
            outbound_id: turn_id.clone(),
            platform_message_id: Some("m-1".into()),
        })
        .await
        .unwrap();
    let id: i64 = turn_id.trim_start_matches("care:").parse().unwrap();
    let recorded = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let t = engine.store.turn(id).await.unwrap().unwrap();
            if t.delivery == Delivery::Delivered {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the report is recorded while the loop is stalled");
    assert_eq!(recorded.platform_message_id.as_deref(), Some("m-1"));
    flood.abort();
    let _ = running.shutdown.send(());
}

#[tokio::test]
async fn shutdown_lets_replies_in_flight_finish_and_records_their_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let engine = kindred::startup::build_engine(test_settings(dir.path(), &[]), &tiny_model())
        .await
        .unwrap();
    let (io_tx, io_rx) = oneshot::channel();
    let running = AppBuilder::new()
        .with_adapter(HandOver(Some(io_tx)))
        .start(engine.clone());
    let mut io = io_rx.await.unwrap();
    let people: Vec<String> = (0..8).map(|i| format!("p{i}")).collect();
    for round in 0..2 {
        for p in &people {
            io.inbound
                .send(message(p, &format!("round {round}: my week was hard")))
                .await
                .unwrap();
        }
    }
    // Stop at once, with all of that in flight.
    running.shutdown.send(()).unwrap();
    // Acting as the platform: everything the engine still sends, reported delivered.
    let mut replies = 0;
    while let Some(o) = tokio::time::timeout(Duration::from_secs(30), io.outbound.recv())
        .await
        .expect("the engine closes the channel when its work is done")
    {
        if let Outbound::Text { id: Some(id), .. } = o {
            replies += 1;
            io.inbound
                .send(Inbound::Delivered {
                    outbound_id: id,
                    platform_message_id: Some(format!("m{replies}")),
                })
                .await
                .unwrap();
        }
    }
    drop(io);
    tokio::time::timeout(Duration::from_secs(30), running.engine)
        .await
        .expect("the engine stops once the adapter has gone")
        .unwrap()
        .unwrap();
    assert!(replies >= 16, "{replies} messages sent");
    // Every reply was handled before the engine stopped, and its delivery recorded.
    let (pending,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM turns WHERE source = 'model' AND delivery != 'delivered'",
    )
    .fetch_one(engine.store.pool())
    .await
    .unwrap();
    let (model,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM turns WHERE source = 'model'")
        .fetch_one(engine.store.pool())
        .await
        .unwrap();
    assert_eq!((model, pending), (16, 0));
}

#[tokio::test]
async fn a_hung_model_gives_a_kind_message_after_the_timeout_and_nobody_stalls() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path(), &[]);
    let store = kindred::startup::open_store(&settings).await.unwrap();
    let engine = kindred::engine::Engine::new(
        store,
        kindred::engine::ModelWorker::unresponsive().with_timeout(Duration::from_millis(300)),
        std::sync::Arc::new(settings),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        engine.handle(message("ana", "my week was hard"), &tx),
    )
    .await
    .expect("the person's task is not held by the hung model")
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    drop(tx);
    let mut texts = Vec::new();
    while let Some(o) = rx.recv().await {
        if let Outbound::Text { text, .. } = o {
            texts.push(text);
        }
    }
    // (After the introduction a first message gets.)
    assert_eq!(
        texts.last().map(String::as_str),
        Some(kindred::engine::texts::MODEL_TIMED_OUT),
        "{texts:?}"
    );
    // Stored as the system's turn, so the conversation shows what the person saw.
    let user = engine
        .store
        .find_user("test", "ana")
        .await
        .unwrap()
        .unwrap();
    let session = engine
        .store
        .open_session(user.id, "test", "dm-ana")
        .await
        .unwrap()
        .unwrap();
    let turns = engine.store.turns(session.id).await.unwrap();
    let last = turns.last().unwrap();
    assert_eq!(
        (last.text.as_str(), last.source),
        (
            kindred::engine::texts::MODEL_TIMED_OUT,
            kindred::domain::TurnSource::System
        )
    );
}

/// Every byte of the database's files (the database and its write-ahead log).
fn database_bytes(data_dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in std::fs::read_dir(data_dir).unwrap().flatten() {
        let name = f.file_name().to_string_lossy().to_string();
        if name.contains(".sqlite") || name.contains(".db") {
            all.extend(std::fs::read(f.path()).unwrap());
        }
    }
    assert!(!all.is_empty(), "the database files were found");
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn forgotten_words_are_gone_from_the_database_files_too() {
    // Deleting rows leaves their bytes in free pages and in the write-ahead log unless
    // the database overwrites them; a person who asked us to forget must not be
    // recoverable from the files.
    if on_postgres() {
        // Postgres keeps deleted rows until VACUUM and has its own write-ahead log;
        // docs/safety.md says what an operator does there.
        eprintln!("NOT RUN on Postgres: this test reads SQLite's files");
        return;
    }
    let app = spawn_app(&[]).await;
    app.send(message(
        "ana",
        "my secret is zebra-quokka-4711 and nobody knows",
    ))
    .await;
    app.send(message("ben", "I keep thinking of heron-walrus-9090"))
        .await;
    assert!(contains(
        &database_bytes(app.dir.path()),
        "zebra-quokka-4711"
    ));
    let out = app.send(command("ana", "forget", "")).await;
    let Outbound::Prompt { choices, .. } = &out[0] else {
        panic!("{out:?}")
    };
    app.send(press("ana", "ana", &choices[0].payload)).await;
    let bytes = database_bytes(app.dir.path());
    assert!(
        !contains(&bytes, "zebra-quokka-4711"),
        "ana's words remain in the files"
    );
    assert!(
        contains(&bytes, "heron-walrus-9090"),
        "ben's words are kept"
    );
}

#[tokio::test]
async fn a_backup_is_a_private_identical_copy() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(&[]).await;
    for t in ["hello", "my week was hard", "thank you"] {
        app.send(message("ana", t)).await;
    }
    let target = app.dir.path().join("backup.sqlite3");
    if on_postgres() {
        // Postgres is backed up with its own tools; the command says so.
        let err = app.engine.store.backup(&target).await.unwrap_err();
        assert!(format!("{err:#}").contains("pg_dump"), "{err:#}");
        assert!(!target.exists());
        return;
    }
    app.engine.store.backup(&target).await.unwrap();
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Every table, row for row.
    sqlx::any::install_default_drivers();
    let copy = sqlx::any::AnyPoolOptions::new()
        .connect(&format!("sqlite://{}", target.display()))
        .await
        .unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(app.db())
    .await
    .unwrap();
    assert!(tables.len() >= 5);
    for (t,) in tables {
        // A table's rows as JSON text, in rowid order, from both databases.
        let sql = format!(
            "SELECT COALESCE(json_group_array(json_array(*)), '') FROM (SELECT * FROM {t} ORDER BY rowid)"
        );
        let dump = |pool| {
            let sql = sql.clone();
            async move {
                sqlx::query_as::<_, (String,)>(&sql)
                    .fetch_one(pool)
                    .await
                    .map(|r| r.0)
            }
        };
        match (dump(app.db()).await, dump(&copy).await) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "table {t}"),
            (a, b) => panic!("table {t}: {a:?} / {b:?}"),
        }
    }
    // Never over an existing file.
    let err = app.engine.store.backup(&target).await.unwrap_err();
    assert!(format!("{err:#}").contains("exists already"));
}

#[tokio::test]
async fn one_persons_flood_holds_nobody_else_back() {
    // A hung model holds one person's task and they keep writing: their queue grows
    // past what a person may have waiting. The loop that hands out messages must not
    // wait on them: another person's crisis message still gets its response at once,
    // and the flooding person is told to give Kindred a moment.
    let dir = tempfile::tempdir().unwrap();
    let (_engine, running, mut io) = running_with_a_hung_model(dir.path()).await;
    for i in 0..100 {
        io.inbound
            .send(message("ana", &format!("message {i}")))
            .await
            .unwrap();
    }
    io.inbound
        .send(message("bo", "I'm standing on the roof right now"))
        .await
        .unwrap();
    let (mut bo_helped, mut ana_told) = (false, false);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !(bo_helped && ana_told) {
            if let Some(Outbound::Text { chat, text, .. }) = io.outbound.recv().await {
                bo_helped |= chat.id == "dm-bo" && text.contains("emergency number");
                ana_told |= chat.id == "dm-ana" && text == kindred::engine::texts::SLOW_DOWN;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("bo helped: {bo_helped}, ana told: {ana_told}"));
    let _ = running.shutdown.send(());
}

/// A message the platform refused is tried again later, for hours, crisis resources
/// included, and given up only after every attempt.
#[tokio::test]
async fn a_refused_message_is_sent_again_later_and_given_up_only_at_the_end() {
    let app = spawn_app(&[]).await;
    let out = app.send(message("ana", "I want to kill myself")).await;
    let crisis: i64 = out
        .iter()
        .find_map(|o| match o {
            Outbound::Text {
                id: Some(id), text, ..
            } if text.contains("crisis line") => {
                id.strip_prefix("care:").and_then(|n| n.parse().ok())
            }
            _ => None,
        })
        .expect("a recorded crisis response");
    let refuse = || Inbound::Failed {
        outbound_id: format!("care:{crisis}"),
        reason: "Bad Gateway".into(),
    };
    let retry = || async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let n = app
            .engine
            .retry_failed_sends(|_| Some(tx.clone()))
            .await
            .unwrap();
        drop(tx);
        let mut sent = Vec::new();
        while let Some(o) = rx.recv().await {
            sent.push(o);
        }
        (n, sent)
    };
    let due_now = || async {
        sqlx::query(
            "UPDATE turns SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at IS NOT NULL",
        )
        .bind(kindred::store::now_ms() - 1)
        .bind(crisis)
        .execute(app.db())
        .await
        .unwrap();
    };
    app.send(refuse()).await;
    let t = app.engine.store.turn(crisis).await.unwrap().unwrap();
    assert_eq!(t.delivery, Delivery::Failed);
    // Not at once: a minute later.
    assert_eq!(retry().await.0, 0);
    due_now().await;
    let (n, sent) = retry().await;
    assert_eq!(n, 1);
    assert!(
        matches!(&sent[..], [Outbound::Text { id: Some(id), text, .. }] if *id == format!("care:{crisis}") && text.contains("crisis line")),
        "{sent:?}"
    );
    assert_eq!(
        app.engine
            .store
            .turn(crisis)
            .await
            .unwrap()
            .unwrap()
            .delivery,
        Delivery::Pending
    );
    // Refused every time: tried SEND_ATTEMPTS times in all, then given up.
    for _ in 1..kindred::store::SEND_ATTEMPTS {
        app.send(refuse()).await;
        due_now().await;
        retry().await;
    }
    app.send(refuse()).await;
    due_now().await;
    assert_eq!(retry().await.0, 0, "given up after the last attempt");
    let t = app.engine.store.turn(crisis).await.unwrap().unwrap();
    assert_eq!(t.delivery, Delivery::Failed);
    // The platform finally took one earlier: delivered, not retried.
    let app2 = spawn_app(&[]).await;
    let out = app2.send(message("ben", "hello")).await;
    let reply: i64 = replies_ids(&out)[0];
    app2.send(Inbound::Failed {
        outbound_id: format!("turn:{reply}"),
        reason: "x".into(),
    })
    .await;
    app2.send(Inbound::Delivered {
        outbound_id: format!("turn:{reply}"),
        platform_message_id: Some("m1".into()),
    })
    .await;
    sqlx::query("UPDATE turns SET next_attempt_at = $1 WHERE id = $2")
        .bind(kindred::store::now_ms() - 1)
        .bind(reply)
        .execute(app2.db())
        .await
        .unwrap();
    let (tx, _rx) = tokio::sync::mpsc::channel(16);
    assert_eq!(
        app2.engine
            .retry_failed_sends(|_| Some(tx.clone()))
            .await
            .unwrap(),
        0
    );
}

fn replies_ids(out: &[Outbound]) -> Vec<i64> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Text { id: Some(id), .. } => {
                id.strip_prefix("turn:").and_then(|n| n.parse().ok())
            }
            _ => None,
        })
        .collect()
}

/// On a shared database, an event stored without whose it is (an installation copied
/// from SQLite before `inbox.person` existed) is still handled at the next start: the
/// instance records whose it is before reading anyone's events by person.
#[tokio::test]
async fn an_event_stored_without_its_person_is_handled_on_a_shared_database() {
    if crate::helpers::postgres::skipped(
        "an_event_stored_without_its_person_is_handled_on_a_shared_database",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let database = crate::helpers::postgres::database_for(dir.path());
    let settings = test_settings(
        dir.path(),
        &[
            ("KINDRED__STORAGE__URL", database.url()),
            ("KINDRED__CONVERSATION__CHECKIN", "false"),
        ],
    );
    let engine = kindred::startup::build_engine(settings, &tiny_model())
        .await
        .unwrap();
    assert!(engine.store.instance().is_some(), "a shared database");
    let payload = serde_json::to_string(&message_with_id("ana", "m-7", "hello, anyone?")).unwrap();
    sqlx::query("INSERT INTO inbox (platform, event_key, payload, received_at) VALUES ('test', 'k-7', $1, $2)")
        .bind(payload)
        .bind(kindred::store::now_ms())
        .execute(engine.store.pool())
        .await
        .unwrap();
    let (io_tx, io_rx) = oneshot::channel();
    let running = AppBuilder::new()
        .with_adapter(HandOver(Some(io_tx)))
        .start(engine.clone());
    let mut io = io_rx.await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match io.outbound.recv().await {
                Some(Outbound::Text { id: Some(id), .. }) if id.starts_with("turn:") => return id,
                Some(_) => {}
                None => panic!("the adapter's channel closed"),
            }
        }
    })
    .await
    .expect("the stored event is answered");
    assert!(reply.starts_with("turn:"));
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inbox WHERE person IS NULL")
        .fetch_one(engine.store.pool())
        .await
        .unwrap();
    assert_eq!(n, 0, "whose the event is was recorded");
    drop(io);
    let _ = running.shutdown.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), running.wait()).await;
}
