//! Test helpers: an engine on a fresh database (a SQLite file in a temp dir, or with
//! `KINDRED_TEST_DATABASE=postgres` a database of its own on the test Postgres server:
//! see [`postgres`]) and the tiny fixture model.

pub mod postgres;

use std::path::{Path, PathBuf};

use kindred::configuration::Settings;
use kindred::engine::Engine;
use kindred_adapter::{ChatRef, Inbound, Outbound, UserRef};
use tokio::sync::mpsc;

pub fn tiny_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-recipe")
}

/// The tiny random Llama Joint model (decoder-only, ChatML; see
/// tests/reference/make_llama_reference.py).
pub fn tiny_llama_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/hf")
}

/// Settings for tests: data in `dir`, short deterministic replies.
pub fn test_settings(dir: &Path, extra: &[(&str, &str)]) -> Settings {
    let mut env: Vec<(String, String)> = vec![
        (
            "KINDRED__STORAGE__DATA_DIR".into(),
            dir.display().to_string(),
        ),
        ("KINDRED__MODEL__DECODING__TEMPERATURE".into(), "0".into()),
        (
            "KINDRED__MODEL__DECODING__STRATEGY_SELECTION".into(),
            "argmax".into(),
        ),
        ("KINDRED__MODEL__DECODING__MAX_LENGTH".into(), "8".into()),
        ("KINDRED__MODEL__DECODING__MIN_LENGTH".into(), "2".into()),
        ("KINDRED__MODEL__BATCH_WINDOW_MS".into(), "1".into()),
    ];
    if on_postgres() {
        env.push((
            "KINDRED__STORAGE__URL".into(),
            postgres::database_for(dir).url().to_string(),
        ));
    }
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::load(None, env).unwrap()
}

/// Whether this run tests against Postgres (`KINDRED_TEST_DATABASE=postgres`) rather
/// than SQLite files.
pub fn on_postgres() -> bool {
    std::env::var("KINDRED_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

pub struct TestApp {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
}

pub async fn spawn_app(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let engine = kindred::startup::build_engine(test_settings(dir.path(), extra), &tiny_model())
        .await
        .unwrap();
    TestApp { engine, dir }
}

/// An engine on another model directory.
pub async fn spawn_app_with_model(model: &Path, extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let engine = kindred::startup::build_engine(test_settings(dir.path(), extra), model)
        .await
        .unwrap();
    TestApp { engine, dir }
}

/// A second engine on the same data directory (a restart).
pub async fn restart(app: TestApp, extra: &[(&str, &str)]) -> TestApp {
    app.engine.store.close().await;
    let TestApp { dir, .. } = app;
    let engine = kindred::startup::build_engine(test_settings(dir.path(), extra), &tiny_model())
        .await
        .unwrap();
    TestApp { engine, dir }
}

pub fn dm(user: &str) -> (ChatRef, UserRef) {
    (
        ChatRef::direct("test", format!("dm-{user}")),
        UserRef {
            platform: "test".into(),
            id: user.into(),
            display_name: None,
        },
    )
}

pub fn message(user: &str, text: &str) -> Inbound {
    let (chat, user) = dm(user);
    Inbound::Message {
        chat,
        user,
        message_id: None,
        text: text.into(),
    }
}

/// A message from `user` in their DM with the platform's id `id` (which makes a
/// redelivery of it a no-op).
pub fn message_with_id(user: &str, id: &str, text: &str) -> Inbound {
    let (chat, user) = dm(user);
    Inbound::Message {
        chat,
        user,
        message_id: Some(id.into()),
        text: text.into(),
    }
}

/// `user` edited a message of theirs in their DM; it now reads `text`.
pub fn edited(user: &str, text: &str) -> Inbound {
    let (chat, user) = dm(user);
    Inbound::Edited {
        chat,
        user,
        message_id: Some("m-edited".into()),
        text: text.into(),
    }
}

pub fn command(user: &str, name: &str, args: &str) -> Inbound {
    let (chat, user) = dm(user);
    Inbound::Command {
        chat,
        user,
        message_id: None,
        name: name.into(),
        args: args.into(),
        interaction: None,
    }
}

/// A press by `presser` in `owner`'s chat.
pub fn press(owner: &str, presser: &str, payload: &str) -> Inbound {
    let (chat, _) = dm(owner);
    let (_, user) = dm(presser);
    Inbound::Choice {
        chat,
        user,
        payload: payload.into(),
        interaction: Some("i1".into()),
    }
}

impl TestApp {
    /// The open conversation of `user` in their DM (which must exist).
    pub async fn open_session_of(&self, user: &str) -> kindred::store::Session {
        let u = self
            .engine
            .store
            .find_user("test", user)
            .await
            .unwrap()
            .unwrap();
        self.engine
            .store
            .open_session(u.id, "test", &format!("dm-{user}"))
            .await
            .unwrap()
            .unwrap()
    }

    /// Stores a message of `user` in their open conversation without handling it: the
    /// state a crash leaves between storing a message and answering it.
    pub async fn store_message_unanswered(
        &self,
        user: &str,
        text: &str,
    ) -> kindred::store::Session {
        let session = self.open_session_of(user).await;
        self.engine
            .store
            .add_turn(
                session.id,
                kindred::store::NewTurn {
                    text,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        session
    }

    /// Runs recovery (as at start-up) and returns everything it sent.
    pub async fn recover(&self) -> Vec<Outbound> {
        let (tx, mut rx) = mpsc::channel(256);
        self.engine.recover(|_| Some(tx.clone())).await.unwrap();
        drop(tx);
        let mut out = Vec::new();
        while let Some(o) = rx.recv().await {
            out.push(o);
        }
        out
    }

    /// The stored rating prompt `id` (which must exist).
    pub async fn rating_prompt(&self, id: i64) -> kindred::store::RatingPrompt {
        self.engine.store.rating_prompt(id).await.unwrap().unwrap()
    }

    /// Handles one event and returns everything the engine sent, confirming no
    /// delivery (as when the platform's answer to a send has not come back yet).
    pub async fn send_undelivered(&self, ev: Inbound) -> Vec<Outbound> {
        let (tx, mut rx) = mpsc::channel(256);
        self.engine.handle(ev, &tx).await.unwrap();
        drop(tx);
        let mut out = Vec::new();
        while let Some(o) = rx.recv().await {
            out.push(o);
        }
        out
    }

    /// Handles one event and returns what the engine sent (Done excluded). Texts and
    /// prompts with ids are confirmed delivered, as an adapter would.
    pub async fn send(&self, ev: Inbound) -> Vec<Outbound> {
        let (tx, mut rx) = mpsc::channel(256);
        let _ = self.engine.handle(ev, &tx).await;
        drop(tx);
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(o) = rx.recv().await {
            match &o {
                Outbound::Done { .. } => continue,
                Outbound::Text { id: Some(id), .. } | Outbound::Prompt { id: Some(id), .. } => {
                    n += 1;
                    let (t2, _r2) = mpsc::channel(1);
                    self.engine
                        .handle(
                            Inbound::Delivered {
                                outbound_id: id.clone(),
                                platform_message_id: Some(format!("pm-{id}-{n}")),
                            },
                            &t2,
                        )
                        .await
                        .unwrap();
                }
                _ => {}
            }
            out.push(o);
        }
        out
    }

    pub fn db(&self) -> &sqlx::AnyPool {
        self.engine.store.pool()
    }

    // ---- what is stored, in the app's words (the SQL lives here, not in the tests) ----

    /// The stored record of the test platform's `name`, if any.
    pub async fn user(&self, name: &str) -> Option<kindred::store::User> {
        self.engine.store.find_user("test", name).await.unwrap()
    }

    /// Conversations stored for a person (by their user id), oldest first.
    pub async fn conversations_of(&self, user_id: i64) -> Vec<kindred::store::Session> {
        self.engine.store.sessions_of_user(user_id).await.unwrap()
    }

    /// Rating prompts stored in a person's conversations.
    pub async fn rating_prompts_of(&self, user_id: i64) -> usize {
        let mut n = 0;
        for s in self.conversations_of(user_id).await {
            n += self.engine.store.rating_prompts(s.id).await.unwrap().len();
        }
        n
    }

    /// Stored turns whose text contains `needle`, anyone's.
    pub async fn turns_containing(&self, needle: &str) -> i64 {
        let texts: Vec<(String,)> = sqlx::query_as("SELECT text FROM turns")
            .fetch_all(self.db())
            .await
            .unwrap();
        texts.iter().filter(|(t,)| t.contains(needle)).count() as i64
    }

    /// Turns left without their conversation (there must never be any).
    pub async fn orphan_turns(&self) -> i64 {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM turns WHERE session_id NOT IN (SELECT id FROM sessions)",
        )
        .fetch_one(self.db())
        .await
        .unwrap();
        n
    }

    /// The keys of platform messages recorded as handled, sorted.
    pub async fn handled_message_keys(&self) -> Vec<String> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT event_id FROM processed_events ORDER BY event_id")
                .fetch_all(self.db())
                .await
                .unwrap();
        rows.into_iter().map(|(k,)| k).collect()
    }

    /// As if `hours` had passed since every conversation's last activity.
    pub async fn hours_pass(&self, hours: i64) {
        sqlx::query("UPDATE sessions SET last_activity_at = last_activity_at - $1 * 3600000")
            .bind(hours)
            .execute(self.db())
            .await
            .unwrap();
    }

    /// As if a rating prompt's delivery report had not come back yet.
    pub async fn forget_delivery_of_prompt(&self, prompt_id: i64) {
        sqlx::query("UPDATE rating_prompts SET platform_message_id = NULL WHERE id = $1")
            .bind(prompt_id)
            .execute(self.db())
            .await
            .unwrap();
    }

    /// Every stored turn of the test platform's `name`, conversation by conversation,
    /// in order.
    pub async fn turns_of(&self, name: &str) -> Vec<kindred::store::Turn> {
        let Some(u) = self.user(name).await else {
            return Vec::new();
        };
        let mut turns = Vec::new();
        for s in self.conversations_of(u.id).await {
            turns.extend(self.engine.store.turns(s.id).await.unwrap());
        }
        turns
    }

    /// As if `days` had passed since every ended conversation ended.
    pub async fn days_pass_since_ended(&self, days: i64) {
        sqlx::query("UPDATE sessions SET ended_at = ended_at - $1 WHERE ended_at IS NOT NULL")
            .bind(days * 86_400_000)
            .execute(self.db())
            .await
            .unwrap();
    }

    /// Another connection takes the database's write lock (SQLite) or an exclusive lock
    /// on the conversation tables (Postgres) and holds it until released.
    pub async fn lock_database(&self) -> DatabaseLock {
        let store = kindred::store::Store::connect(
            &database_of(self.dir.path()),
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        let mut conn = store.pool().acquire().await.unwrap();
        let lock: &[&str] = if on_postgres() {
            &[
                "BEGIN",
                "LOCK TABLE users, sessions, turns IN ACCESS EXCLUSIVE MODE",
            ]
        } else {
            &["BEGIN EXCLUSIVE"]
        };
        for sql in lock {
            sqlx::query(sql).execute(&mut *conn).await.unwrap();
        }
        DatabaseLock { store, conn }
    }

    /// Storing a turn whose text is `text` fails (a trigger raises), as a crash at that
    /// moment would, until [`TestApp::store_normally_again`].
    pub async fn fail_storing(&self, text: &str) {
        let text = text.replace('\'', "''");
        let trigger = if on_postgres() {
            vec![
                "CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RAISE EXCEPTION 'simulated crash'; END $$"
                    .to_string(),
                format!(
                    "CREATE TRIGGER fail_once BEFORE INSERT ON turns FOR EACH ROW
                     WHEN (NEW.text = '{text}') EXECUTE FUNCTION fail_once()"
                ),
            ]
        } else {
            vec![format!(
                "CREATE TRIGGER fail_once BEFORE INSERT ON turns WHEN NEW.text = '{text}'
                 BEGIN SELECT RAISE(ABORT, 'simulated crash'); END"
            )]
        };
        for sql in trigger {
            sqlx::query(&sql).execute(self.db()).await.unwrap();
        }
    }

    /// Undoes [`TestApp::fail_storing`].
    pub async fn store_normally_again(&self) {
        let drop = if on_postgres() {
            "DROP TRIGGER fail_once ON turns"
        } else {
            "DROP TRIGGER fail_once"
        };
        sqlx::query(drop).execute(self.db()).await.unwrap();
    }

    /// How many messages from people are stored.
    pub async fn stored_messages(&self) -> i64 {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM turns WHERE source = 'user'")
            .fetch_one(self.db())
            .await
            .unwrap();
        n
    }
}

/// A lock held on the database by another connection ([`TestApp::lock_database`]).
pub struct DatabaseLock {
    store: kindred::store::Store,
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
}

impl DatabaseLock {
    pub async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut *self.conn)
            .await
            .unwrap();
        drop(self.conn);
        self.store.close().await;
    }
}

pub fn texts(out: &[Outbound]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Text { text, .. }
            | Outbound::Notice { text, .. }
            | Outbound::Prompt { text, .. }
            | Outbound::EditPrompt { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

pub fn rating_prompts(out: &[Outbound]) -> Vec<(String, Vec<String>)> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Prompt {
                id: Some(id),
                choices,
                ..
            } if id.starts_with("rating:") => Some((
                id.clone(),
                choices.iter().map(|c| c.payload.clone()).collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The recorded texts in `out`: model replies (`turn:` ids) and crisis resources
/// (`care:` ids), in order.
pub fn replies(out: &[Outbound]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Text {
                id: Some(id), text, ..
            } if id.starts_with("turn:") || id.starts_with(kindred_adapter::CARE_PREFIX) => {
                Some(text.clone())
            }
            _ => None,
        })
        .collect()
}

/// The database of the tests' data in `data_dir`: its SQLite file, or on a Postgres run
/// the database made for that folder.
pub fn database_of(data_dir: &Path) -> kindred::store::Location {
    if on_postgres() {
        postgres::database_for(data_dir)
    } else {
        kindred::store::Location::Sqlite(data_dir.join("kindred.sqlite"))
    }
}

/// The stars of every rating prompt in the database under `data_dir`, oldest first.
pub async fn stars_in_db(data_dir: &Path) -> Vec<Option<i64>> {
    let store =
        kindred::store::Store::connect(&database_of(data_dir), std::time::Duration::from_secs(5))
            .await
            .unwrap();
    let pool = store.pool();
    let rows: Vec<(Option<i64>,)> = sqlx::query_as("SELECT stars FROM rating_prompts ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap();
    store.close().await;
    rows.into_iter().map(|r| r.0).collect()
}

/// `kindred run` as a child process on the tiny model, its log (debug level) collected,
/// for tests that drive the daemon end to end through a platform stand-in.
pub struct DaemonProcess {
    child: std::process::Child,
    log: std::thread::JoinHandle<Vec<String>>,
}

impl DaemonProcess {
    /// Starts it with data in `data_dir`, short replies and no check-in; `env` adds
    /// settings, `remove` names variables that must not leak in from the test's own.
    pub fn start(data_dir: &Path, env: &[(&str, String)], remove: &[&str]) -> Self {
        Self::start_with_model(data_dir, &tiny_model(), env, remove)
    }

    /// The same with the model in `model`.
    pub fn start_with_model(
        data_dir: &Path,
        model: &Path,
        env: &[(&str, String)],
        remove: &[&str],
    ) -> Self {
        use std::io::BufRead;
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"));
        if on_postgres() {
            c.env(
                "KINDRED__STORAGE__URL",
                postgres::database_for(data_dir).url(),
            );
        }
        c.env("KINDRED__DATA_DIR", data_dir)
            .env("KINDRED__CONVERSATION__CHECKIN", "false")
            .env("KINDRED__MODEL__DECODING__MAX_LENGTH", "6")
            .env("KINDRED__MODEL__DECODING__MIN_LENGTH", "1")
            .env("KINDRED_LOG", "debug");
        for (k, v) in env {
            c.env(k, v);
        }
        for k in remove {
            c.env_remove(k);
        }
        let mut child = c
            .args(["run", "--model"])
            .arg(model)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        Self { child, log }
    }

    /// The process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it at once (SIGKILL), as a crash or the OOM killer would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let _ = self.log.join();
    }

    /// Stops it as a service manager would (SIGTERM); its exit status and whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let status = self.child.wait().unwrap();
        (status, self.log.join().unwrap().join("\n"))
    }
}

/// A loopback port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` (from a plain thread) until it holds; fails the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
