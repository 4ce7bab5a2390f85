//! Harnesses run by hand (ignored in the normal run), which print what they measure:
//!
//! ```sh
//! KINDRED_CRASH_KILLS=50 KINDRED_CRASH_PEOPLE=30 \
//!     cargo test --release --test it crash_harness -- --ignored --nocapture
//! ```
//!
//! The crash harness drives the real `kindred run` through the Telegram stand-in while
//! killing it with SIGKILL at random moments and starting it again, then lets a last
//! instance finish and counts, from the stand-in's log and the database: messages lost,
//! stored twice, left unanswered, and replies sent twice.
//!
//! ```sh
//! KINDRED_LOAD_PEOPLE=500 KINDRED_LOAD_SECONDS=60 KINDRED_LOAD_FLOOD=1 \
//!     cargo test --release --test it load_harness -- --ignored --nocapture
//! ```
//!
//! The load harness sends the messages of many people (each a few, at random moments over
//! the run) through the stand-in to `kindred run` with the shipped model, and measures the
//! time from each message to its reply (p50/p95/p99), replies per second and the daemon's
//! peak memory; with `KINDRED_LOAD_FLOOD=1` one more person floods it with messages
//! meanwhile, and the others' latencies are printed beside a run without the flood
//! (`KINDRED_LOAD_PAIRS=3`: three such pairs, alternating, compared by their medians;
//! `KINDRED_LOAD_FLOOD=group`: twenty members of one group flood it instead).
//! `KINDRED_LOAD_DATABASE=postgres` runs it on a Postgres database (the tests' private
//! server, or `KINDRED_TEST_POSTGRES_URL`) instead of a SQLite file.
//! Sends keep to Telegram's 30 messages a second, which 500 people writing within a
//! minute exceed (introductions, check-ins, replies and rating questions: about 42 a
//! second); `KINDRED__TELEGRAM__MESSAGES_PER_SECOND=1000` measures Kindred without it.
//!
//! ```sh
//! KINDRED_LOAD_INSTANCES=2 cargo test --release --test it instances_harness -- --ignored --nocapture
//! ```
//!
//! The instances harness sends the load harness's load through Telegram's webhook,
//! each update posted to one instance at random (as a load balancer would), first to
//! one `kindred run` and then to that many sharing a Postgres database, and checks that
//! every message got exactly one reply of the model.
//!
//! ```sh
//! KINDRED_PEOPLE=100000 cargo test --release --test it people_harness -- --ignored --nocapture
//! ```
//!
//! The people harness has that many distinct people each start a conversation (`/start`,
//! which needs no model), in two halves, and reads the daemon's resident memory and its
//! `people` queue gauge once each half has been answered and gone idle: per-person state
//! that is never freed shows as memory growing with the second half.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::Rng;

use kindred::store::Location;

use crate::helpers::DaemonProcess;
use crate::standins::telegram::TelegramStandIn;

const TOKEN: &str = "4242:HARNESS-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Telegram stand-in on loopback, a data directory with a token file, and the settings
/// that point `kindred run` at them.
struct Harness {
    rt: tokio::runtime::Runtime,
    tg: TelegramStandIn,
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Harness {
    fn start(extra: &[(&'static str, &str)]) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let tg = rt.block_on(TelegramStandIn::start(TOKEN));
        assert!(tg.url.starts_with("http://127.0.0.1:"));
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("telegram.token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let mut env = vec![
            ("KINDRED__TELEGRAM__ENABLED", "true".to_string()),
            ("KINDRED__TELEGRAM__API_URL", tg.url.clone()),
            (
                "KINDRED__TELEGRAM__TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("KINDRED__TELEGRAM__POLL_TIMEOUT_SECONDS", "1".to_string()),
            ("KINDRED_LOG", "warn".to_string()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        Self { rt, tg, dir, env }
    }
}

const REMOVE: [&str; 2] = ["KINDRED_TELEGRAM_TOKEN", "TELOXIDE_TOKEN"];

#[test]
#[ignore = "a harness run by hand (see the module docs); it prints its counts"]
fn crash_harness() {
    let kills = env_usize("KINDRED_CRASH_KILLS", 50);
    let people = env_usize("KINDRED_CRASH_PEOPLE", 30) as i64;
    let per_person = env_usize("KINDRED_CRASH_MESSAGES", 5);
    let Harness { rt, tg, dir, env } =
        Harness::start(&[("KINDRED__CONVERSATION__SHUTDOWN_GRACE_SECONDS", "5")]);
    let remove = REMOVE;

    // Every message is unique, so that the database and the stand-in can be compared.
    let plan: Vec<(i64, String)> = (0..per_person)
        .flat_map(|k| {
            (0..people).map(move |p| {
                (
                    5000 + p,
                    format!("person {p} says thing {k} about the week"),
                )
            })
        })
        .collect();
    let total = plan.len();
    let feeder = {
        let tg = tg.clone();
        let plan = plan.clone();
        // Spread over the kills (each instance lives 0.3-2.5 s, 1.4 s on average).
        let mean_ms = (kills as u64 * 1400 / total as u64).max(10);
        std::thread::spawn(move || {
            let mut rng = rand::rng();
            for (user, text) in plan {
                tg.dm(user, &text);
                std::thread::sleep(Duration::from_millis(
                    rng.random_range(mean_ms / 2..mean_ms * 3 / 2 + 1),
                ));
            }
        })
    };

    let started = Instant::now();
    let mut rng = rand::rng();
    for _ in 0..kills {
        let d = DaemonProcess::start(dir.path(), &env, &remove);
        std::thread::sleep(Duration::from_millis(rng.random_range(300..2500)));
        d.kill();
    }
    feeder.join().unwrap();
    // A last instance finishes the work: every message answered, or two minutes.
    let last = DaemonProcess::start(dir.path(), &env, &remove);
    let deadline = Instant::now() + Duration::from_secs(120);
    let db_path = dir.path().join("kindred.sqlite");
    loop {
        std::thread::sleep(Duration::from_secs(2));
        let c = rt.block_on(count(&db_path, &plan, &tg));
        if (c.lost == 0 && c.unanswered == 0) || Instant::now() > deadline {
            break;
        }
    }
    let (status, _log) = last.stop();
    let counts = rt.block_on(count(&db_path, &plan, &tg));
    println!(
        "crash harness: {kills} SIGKILLs in {:.0} s, {people} people, {total} messages: lost {}, stored twice {}, unanswered {}, replies sent twice {} (of {} replies); last instance exit {status}",
        started.elapsed().as_secs_f64(),
        counts.lost,
        counts.stored_twice,
        counts.unanswered,
        counts.sent_twice,
        counts.replies
    );
    assert!(status.success());
    assert_eq!(
        (counts.lost, counts.stored_twice, counts.unanswered),
        (0, 0, 0)
    );
}

#[derive(Debug, Default)]
struct Counts {
    lost: usize,
    stored_twice: usize,
    unanswered: usize,
    replies: usize,
    sent_twice: usize,
}

async fn count(db: &std::path::Path, plan: &[(i64, String)], tg: &TelegramStandIn) -> Counts {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    // The people's words as stored, and whether a reply of Kindred's follows each.
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.text, EXISTS (SELECT 1 FROM turns r WHERE r.session_id = t.session_id AND r.idx > t.idx AND r.speaker = 'supporter' AND r.delivery = 'delivered')
         FROM turns t WHERE t.source = 'user'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut stored: HashMap<&str, usize> = HashMap::new();
    let mut answered: HashMap<&str, bool> = HashMap::new();
    for (text, a) in &rows {
        *stored.entry(text.as_str()).or_default() += 1;
        *answered.entry(text.as_str()).or_default() |= *a != 0;
    }
    let mut c = Counts::default();
    for (_, text) in plan {
        match stored.get(text.as_str()) {
            None => c.lost += 1,
            Some(n) => {
                c.stored_twice += n.saturating_sub(1);
                c.unanswered += usize::from(!answered[text.as_str()]);
            }
        }
    }
    // Replies sent twice: per chat and text, sends beyond the replies stored.
    let replies: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.chat_id, t.text FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.source = 'model'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    c.replies = replies.len();
    let mut stored_replies: HashMap<(String, String), usize> = HashMap::new();
    for r in replies {
        *stored_replies.entry(r).or_default() += 1;
    }
    let mut sent: HashMap<(String, String), usize> = HashMap::new();
    for call in tg.calls_of("sendMessage") {
        if call.result.is_null() {
            continue;
        }
        let chat = call.body["chat_id"].to_string();
        let text = call.body["text"].as_str().unwrap_or("").to_string();
        *sent.entry((chat, text)).or_default() += 1;
    }
    for (key, n) in &stored_replies {
        c.sent_twice += sent.get(key).copied().unwrap_or(0).saturating_sub(*n);
    }
    pool.close().await;
    c
}

/// The model's replies as stored: (chat, text).
async fn model_replies(db: &Location) -> std::collections::HashSet<(i64, String)> {
    let store = kindred::store::Store::connect(db, Duration::from_secs(5))
        .await
        .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT s.chat_id, t.text FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.source = 'model'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    store.close().await;
    rows.into_iter()
        .filter_map(|(c, t)| Some((c.parse().ok()?, t)))
        .collect()
}

/// Latencies (ms) from each message to its reply, per person, from the stand-in's log:
/// a person's k-th reply of the model (not the introduction, a prompt or a notice)
/// answers their k-th message.
fn latencies(
    tg: &TelegramStandIn,
    sent: &HashMap<i64, Vec<Instant>>,
    model: &std::collections::HashSet<(i64, String)>,
) -> Vec<f64> {
    let mut replies: HashMap<i64, Vec<Instant>> = HashMap::new();
    for c in tg.calls_of("sendMessage") {
        let (Some(chat), Some(text)) = (c.body["chat_id"].as_i64(), c.body["text"].as_str()) else {
            continue;
        };
        if c.result.is_null() || !model.contains(&(chat, text.to_string())) {
            continue;
        }
        replies.entry(chat).or_default().push(c.at);
    }
    let mut out = Vec::new();
    for (chat, times) in sent {
        for (k, t) in times.iter().enumerate() {
            if let Some(r) = replies.get(chat).and_then(|r| r.get(k)) {
                out.push(r.saturating_duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Peak resident memory of a process, MB (Linux).
fn peak_rss_mb(pid: u32) -> f64 {
    kindred::bench::proc_status_mb(&pid.to_string(), "VmHWM")
}

/// One load run; returns the others' p95 latency, ms.
/// Each person's messages at random moments over `seconds`, in the order they are due:
/// (milliseconds from the start, the person, the text).
fn message_plan(people: i64, per_person: usize, seconds: u64) -> Vec<(u64, i64, String)> {
    let mut rng = rand::rng();
    let mut plan = Vec::new();
    for p in 0..people {
        for k in 0..per_person {
            plan.push((
                rng.random_range(0..seconds * 1000),
                7000 + p,
                format!("person {p}, message {k}: work has been hard lately"),
            ));
        }
    }
    plan.sort();
    plan
}

/// Sends the plan's messages as they fall due (`send`: their number, person and
/// text); returns when it started and when each person's messages were sent.
fn send_on_plan(
    plan: &[(u64, i64, String)],
    mut send: impl FnMut(usize, i64, &str),
) -> (Instant, HashMap<i64, Vec<Instant>>) {
    let start = Instant::now();
    let mut sent: HashMap<i64, Vec<Instant>> = HashMap::new();
    for (n, (at, user, text)) in plan.iter().enumerate() {
        let due = start + Duration::from_millis(*at);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at = Instant::now();
        send(n, *user, text);
        sent.entry(*user).or_default().push(at);
    }
    (start, sent)
}

/// The latencies of the answered messages, once all `expected` are answered or a
/// minute more has passed.
fn answered(
    rt: &tokio::runtime::Runtime,
    tg: &TelegramStandIn,
    sent: &HashMap<i64, Vec<Instant>>,
    db: &Location,
    expected: usize,
) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lat = latencies(tg, sent, &rt.block_on(model_replies(db)));
        if lat.len() >= expected || Instant::now() >= deadline {
            return lat;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What a load run measured, as its line prints it: messages, answers, replies a
/// second and the latency percentiles (`lat` sorted, ms; `elapsed` in seconds).
fn latency_summary(lat: &[f64], messages: usize, seconds: u64, elapsed: f64) -> String {
    format!(
        "{messages} messages over {seconds} s: {} answered, {:.1} replies/s, latency p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms",
        lat.len(),
        lat.len() as f64 / elapsed,
        percentile(lat, 0.5),
        percentile(lat, 0.95),
        percentile(lat, 0.99),
    )
}

/// Who floods a load run.
#[derive(Debug, Clone, Copy)]
enum Flood {
    /// One person, in a direct chat.
    Person,
    /// The members of one group.
    Group,
}

fn load_run(people: i64, per_person: usize, seconds: u64, flood: Option<Flood>) -> f64 {
    // The shipped model's own reply length, not the tests' short one.
    let Harness {
        rt,
        tg,
        dir,
        mut env,
    } = Harness::start(&[
        ("KINDRED__MODEL__DECODING__MAX_LENGTH", "40"),
        ("KINDRED__MODEL__DECODING__MIN_LENGTH", "0"),
    ]);
    // `KINDRED_LOAD_DATABASE=postgres`: a fresh database on the tests' private server.
    let db = match std::env::var("KINDRED_LOAD_DATABASE").as_deref() {
        Ok("postgres") => {
            let db = crate::helpers::postgres::fresh_database();
            env.push(("KINDRED__STORAGE__URL", db.url().to_string()));
            db
        }
        _ => Location::Sqlite(dir.path().join("kindred.sqlite")),
    };
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(kindred::model::DEFAULT_MODEL_DIR);
    let daemon = DaemonProcess::start_with_model(dir.path(), &shipped, &env, &REMOVE);
    let plan = message_plan(people, per_person, seconds);
    let flooder = flood.map(|flood| {
        let tg = tg.clone();
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0;
            while Instant::now() < end {
                match flood {
                    Flood::Person => tg.dm(99_999, &format!("flood {n}")),
                    // Twenty members of one group, each addressing Kindred in turn.
                    Flood::Group => tg.group_message(
                        -100_999,
                        90_000 + (n % 20) as i64,
                        &format!("@{} flood {n}", crate::standins::telegram::BOT_USERNAME),
                    ),
                };
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    });
    let (start, sent) = send_on_plan(&plan, |_, user, text| {
        tg.dm(user, text);
    });
    let flood_messages = flooder.map(|f| f.join().unwrap());
    let lat = answered(&rt, &tg, &sent, &db, plan.len());
    let elapsed = start.elapsed().as_secs_f64();
    let rss = peak_rss_mb(daemon.pid());
    let (status, _) = daemon.stop();
    println!(
        "load harness{} on {}: {people} people, {}; peak RSS {rss:.0} MB; exit {status}",
        match flood_messages {
            Some(n) => format!(
                " with {} flooding ({n} messages)",
                match flood {
                    Some(Flood::Group) => "one group",
                    _ => "one person",
                }
            ),
            None => String::new(),
        },
        match db {
            Location::Sqlite(_) => "SQLite",
            Location::Postgres(_) => "Postgres",
        },
        latency_summary(&lat, plan.len(), seconds, elapsed),
    );
    assert_eq!(lat.len(), plan.len(), "every message answered");
    percentile(&lat, 0.95)
}

#[test]
#[ignore = "a harness run by hand (see the module docs); it prints its measurements"]
fn load_harness() {
    let people = env_usize("KINDRED_LOAD_PEOPLE", 500) as i64;
    let per_person = env_usize("KINDRED_LOAD_MESSAGES", 2);
    let seconds = env_usize("KINDRED_LOAD_SECONDS", 60) as u64;
    let flood = match std::env::var("KINDRED_LOAD_FLOOD").as_deref() {
        Ok("1") | Ok("person") => Flood::Person,
        Ok("group") => Flood::Group,
        _ => {
            load_run(people, per_person, seconds, None);
            return;
        }
    };
    // Runs with and without the flood, alternating: one pair is within the run-to-run
    // spread, so `KINDRED_LOAD_PAIRS` pairs are compared by their medians.
    let pairs = env_usize("KINDRED_LOAD_PAIRS", 1).max(1);
    let (mut quiet, mut flooded) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        quiet.push(load_run(people, per_person, seconds, None));
        flooded.push(load_run(people, per_person, seconds, Some(flood)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(v, 0.5)
    };
    let (q, f) = (median(&mut quiet), median(&mut flooded));
    println!(
        "load harness, {pairs} pairs: the others' p95 {q:.0} ms without the flood, {f:.0} ms with it ({:+.0} %); without: {quiet:.0?}, with: {flooded:.0?}",
        (f / q - 1.0) * 100.0
    );
}

/// Resident memory of a process now, MB (Linux).
fn rss_mb(pid: u32) -> f64 {
    kindred::bench::proc_status_mb(&pid.to_string(), "VmRSS")
}

/// A value of the daemon's `/metrics`, by its line's start (name and labels).
fn metric(base: &str, line_start: &str) -> Option<f64> {
    let body = ureq::get(&format!("{base}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    body.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
#[ignore = "a harness run by hand (see the module docs); it prints its measurements"]
fn people_harness() {
    let people = env_usize("KINDRED_PEOPLE", 100_000) as i64;
    let port = crate::helpers::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let Harness {
        rt: _rt,
        tg,
        dir,
        env,
    } = Harness::start(&[
        ("KINDRED__CONVERSATION__CHECKIN", "false"),
        // Memory is measured here, not Telegram's pace: at its 30 messages a second the
        // 100,000 introductions alone would take an hour.
        ("KINDRED__TELEGRAM__MESSAGES_PER_SECOND", "1000"),
    ]);
    let mut env = env;
    env.push(("KINDRED__OPERATIONS__LISTEN", format!("127.0.0.1:{port}")));
    let daemon = DaemonProcess::start(dir.path(), &env, &REMOVE);
    crate::helpers::wait_for("the daemon's metrics", Duration::from_secs(60), || {
        metric(&base, "kindred_queue_depth").is_some()
    });
    let baseline = rss_mb(daemon.pid());
    let started = Instant::now();
    let mut rows = Vec::new();
    for half in 0..2 {
        let from = 1_000_000 + half * people / 2;
        for user in from..from + people / 2 {
            tg.dm(user, "/start");
        }
        // Answered: every one of them has had a message sent to them.
        let want = ((half + 1) * people / 2) as usize;
        let deadline = Instant::now() + Duration::from_secs(3600);
        loop {
            let answered: std::collections::HashSet<i64> = tg
                .calls_of("sendMessage")
                .iter()
                .filter_map(|c| c.body["chat_id"].as_i64())
                .collect();
            if answered.len() >= want || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        let active = rss_mb(daemon.pid());
        // Idle: a person's task ends after a quiet minute, and the sweep (each minute)
        // drops its queue.
        let gauge = || metric(&base, "kindred_queue_depth{queue=\"people\"}");
        let idle_by = Instant::now() + Duration::from_secs(180);
        while gauge() != Some(0.0) && Instant::now() < idle_by {
            std::thread::sleep(Duration::from_secs(5));
        }
        rows.push((
            want,
            active,
            rss_mb(daemon.pid()),
            gauge(),
            started.elapsed(),
        ));
    }
    let (status, _) = daemon.stop();
    println!("people harness: baseline RSS {baseline:.0} MB");
    for (n, active, idle, queues, at) in &rows {
        println!(
            "  after {n} people: RSS {active:.0} MB just answered, {idle:.0} MB idle (people queues {queues:?}), at {:.0} s",
            at.as_secs_f64()
        );
    }
    let growth = (rows[1].2 - rows[0].2) * 1024.0 * 1024.0 / (people / 2) as f64;
    println!("  idle growth over the second half: {growth:.0} bytes a person; exit {status}");
    assert_eq!(
        rows[1].3,
        Some(0.0),
        "no person's queue is left once all are idle"
    );
}

/// The secret of the shared harness's webhook (Telegram sends it with every update).
const WEBHOOK_SECRET: &str = "harness_webhook-secret-0123456789abcdef";

/// A Telegram update of a direct message, as Telegram posts it to a webhook.
fn dm_update(update_id: i64, person: i64, message_id: i64, text: &str) -> serde_json::Value {
    serde_json::json!({"update_id": update_id, "message": {"message_id": message_id, "date": 1_700_000_000,
        "chat": {"id": person, "type": "private", "first_name": "P"},
        "from": {"id": person, "is_bot": false, "first_name": "P"}, "text": text}})
}

/// Posts an update to the webhook on `port` as Telegram does (the call returns once the
/// update is stored); the HTTP status.
fn post_update(agent: &ureq::Agent, port: u16, body: &serde_json::Value) -> u16 {
    match agent
        .post(&format!("http://127.0.0.1:{port}/telegram"))
        .set("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
        .send_json(body.clone())
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("posting an update failed: {e}"),
    }
}

/// One run of the instances harness: `instances` daemons on one fresh Postgres
/// database behind Telegram's webhook, each message posted to one of them at random as
/// a load balancer would; returns the p95 latency, ms.
fn shared_load_run(instances: usize, people: i64, per_person: usize, seconds: u64) -> f64 {
    let Harness {
        rt,
        tg,
        dir: _dir,
        mut env,
    } = Harness::start(&[
        ("KINDRED__MODEL__DECODING__MAX_LENGTH", "40"),
        ("KINDRED__MODEL__DECODING__MIN_LENGTH", "0"),
        ("KINDRED__TELEGRAM__MODE", "webhook"),
        (
            "KINDRED__TELEGRAM__WEBHOOK_URL",
            "https://kindred.example.org/telegram",
        ),
        ("KINDRED_TELEGRAM_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ]);
    let db = crate::helpers::postgres::fresh_database();
    env.push(("KINDRED__STORAGE__URL", db.url().to_string()));
    let shipped =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(kindred::model::DEFAULT_MODEL_DIR);
    let mut daemons = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..instances {
        let port = crate::helpers::free_port();
        let data = tempfile::tempdir().unwrap();
        let mut env = env.clone();
        env.push((
            "KINDRED__TELEGRAM__WEBHOOK_LISTEN",
            format!("127.0.0.1:{port}"),
        ));
        daemons.push((
            DaemonProcess::start_with_model(data.path(), &shipped, &env, &REMOVE),
            data,
        ));
        ports.push(port);
    }
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    for &port in &ports {
        // A call without the secret is refused: the listener is up.
        crate::helpers::wait_for("an instance's webhook", Duration::from_secs(90), || {
            matches!(
                agent
                    .post(&format!("http://127.0.0.1:{port}/telegram"))
                    .send_json(dm_update(1, 1, 1, "probe")),
                Err(ureq::Error::Status(401, _))
            )
        });
    }
    let plan = message_plan(people, per_person, seconds);
    let mut rng = rand::rng();
    let (start, sent) = send_on_plan(&plan, |n, user, text| {
        let port = ports[rng.random_range(0..ports.len())];
        let id = 1000 + n as i64;
        assert_eq!(
            post_update(&agent, port, &dm_update(id, user, id, text)),
            200
        );
    });
    let lat = answered(&rt, &tg, &sent, &db, plan.len());
    let elapsed = start.elapsed().as_secs_f64();
    let rss: Vec<String> = daemons
        .iter()
        .map(|(d, _)| format!("{:.0}", peak_rss_mb(d.pid())))
        .collect();
    for (d, _) in daemons {
        let (status, log) = d.stop();
        assert!(status.success(), "{log}");
    }
    println!(
        "instances harness, {instances} instance(s) on Postgres behind the webhook: {people} people, {}; peak RSS {} MB",
        latency_summary(&lat, plan.len(), seconds, elapsed),
        rss.join(" + "),
    );
    assert_eq!(lat.len(), plan.len(), "every message answered");
    // And answered once: no reply of the model went out twice.
    let model = rt.block_on(model_replies(&db));
    let sends = tg
        .calls_of("sendMessage")
        .iter()
        .filter(|c| !c.result.is_null())
        .filter(
            |c| match (c.body["chat_id"].as_i64(), c.body["text"].as_str()) {
                (Some(chat), Some(text)) => model.contains(&(chat, text.to_string())),
                _ => false,
            },
        )
        .count();
    assert_eq!(sends, plan.len(), "one reply of the model per message");
    percentile(&lat, 0.95)
}

/// `KINDRED_LOAD_INSTANCES=2 cargo test --release --test it instances_harness --
/// --ignored --nocapture`: the load of [`load_harness`] through Telegram's webhook,
/// first with one instance, then with that many sharing one Postgres database.
#[test]
#[ignore = "a harness run by hand (see the module docs); it prints its measurements"]
fn instances_harness() {
    if crate::helpers::postgres::skipped("instances_harness") {
        return;
    }
    let people = env_usize("KINDRED_LOAD_PEOPLE", 500) as i64;
    let per_person = env_usize("KINDRED_LOAD_MESSAGES", 2);
    let seconds = env_usize("KINDRED_LOAD_SECONDS", 60) as u64;
    let instances = env_usize("KINDRED_LOAD_INSTANCES", 2).max(1);
    let one = shared_load_run(1, people, per_person, seconds);
    if instances > 1 {
        let many = shared_load_run(instances, people, per_person, seconds);
        println!(
            "instances harness: p95 {one:.0} ms with one instance, {many:.0} ms with {instances}"
        );
    }
}
