//! Two `kindred run` instances on one Postgres, behind Telegram's webhook (the loopback
//! stand-in for the Bot API; the test posts each update to one instance or the other,
//! as a load balancer would): every message is answered once and in order per person,
//! whichever instance received it; then one instance is killed and the other carries on
//! with what it left.

use std::time::{Duration, Instant};

use kindred::domain::{Speaker, TurnSource};
use kindred::store::Store;

use crate::helpers::{self, free_port, postgres as pg, wait_for};
use crate::standins::telegram::TelegramStandIn;

const TOKEN: &str = "123456:SHARED-token";
const SECRET: &str = "shared_webhook-secret-0123456789abcdef";
const PEOPLE: i64 = 12;

fn update(update_id: i64, person: i64, message_id: i64, text: &str) -> serde_json::Value {
    serde_json::json!({"update_id": update_id, "message": {"message_id": message_id, "date": 1_700_000_000,
        "chat": {"id": person, "type": "private", "first_name": "P"},
        "from": {"id": person, "is_bot": false, "first_name": "P"}, "text": text}})
}

/// POSTs an update to an instance's webhook as Telegram does; the HTTP status, or
/// `None` when the instance does not answer (it is down).
fn post(port: u16, body: &serde_json::Value) -> Option<u16> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build();
    match agent
        .post(&format!("http://127.0.0.1:{port}/telegram"))
        .set("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .send_json(body.clone())
    {
        Ok(r) => Some(r.status()),
        Err(ureq::Error::Status(code, _)) => Some(code),
        Err(_) => None,
    }
}

fn text_of(person: i64, i: usize) -> String {
    format!("person {person} says number {i}")
}

/// Each person's conversation in the database: their messages in order, and how many
/// replies followed each.
async fn conversation(store: &Store, person: i64) -> (Vec<String>, Vec<usize>) {
    let Some(user) = store
        .find_user("telegram", &person.to_string())
        .await
        .unwrap()
    else {
        return (Vec::new(), Vec::new());
    };
    let mut said = Vec::new();
    let mut answers: Vec<usize> = Vec::new();
    for s in store.sessions_of_user(user.id).await.unwrap() {
        for t in store.turns(s.id).await.unwrap() {
            match (t.speaker, t.source) {
                (Speaker::Seeker, _) => {
                    said.push(t.text.clone());
                    answers.push(0);
                }
                (Speaker::Supporter, TurnSource::Model | TurnSource::System) => {
                    if let Some(n) = answers.last_mut() {
                        *n += 1;
                    }
                }
                _ => {}
            }
        }
    }
    (said, answers)
}

#[test]
fn two_instances_share_the_work_and_one_carries_on_when_the_other_dies() {
    if pg::skipped("two_instances_share_the_work_and_one_carries_on_when_the_other_dies") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tg = rt.block_on(TelegramStandIn::start(TOKEN));
    let database = pg::fresh_database();
    let dir = tempfile::tempdir().unwrap();
    let common = |listen: u16| {
        vec![
            ("KINDRED__STORAGE__URL", database.url().to_string()),
            ("KINDRED__TELEGRAM__ENABLED", "true".to_string()),
            ("KINDRED__TELEGRAM__API_URL", tg.url.clone()),
            ("KINDRED_TELEGRAM_TOKEN", TOKEN.to_string()),
            ("KINDRED__TELEGRAM__MODE", "webhook".to_string()),
            (
                "KINDRED__TELEGRAM__WEBHOOK_URL",
                "https://kindred.example.org/telegram".to_string(),
            ),
            (
                "KINDRED__TELEGRAM__WEBHOOK_LISTEN",
                format!("127.0.0.1:{listen}"),
            ),
            ("KINDRED_TELEGRAM_WEBHOOK_SECRET", SECRET.to_string()),
        ]
    };

    // Deploy time: the webhook is registered once, with the shared secret.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
        .args(["telegram", "set-webhook"])
        .envs(common(1))
        .env("KINDRED__DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let registered = tg.calls_of("setWebhook");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].body["secret_token"], SECRET);
    assert_eq!(
        registered[0].body["url"],
        "https://kindred.example.org/telegram"
    );

    let (port_a, port_b) = (free_port(), free_port());
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = helpers::DaemonProcess::start(dir_a.path(), &common(port_a), &["TELOXIDE_TOKEN"]);
    let b = helpers::DaemonProcess::start(dir_b.path(), &common(port_b), &["TELOXIDE_TOKEN"]);
    let probe = update(1, 1, 1, "probe");
    for port in [port_a, port_b] {
        wait_for("an instance's webhook", Duration::from_secs(90), || {
            // A forged call (no secret) is refused: that tells the listener is up.
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build();
            matches!(
                agent
                    .post(&format!("http://127.0.0.1:{port}/telegram"))
                    .send_json(probe.clone()),
                Err(ureq::Error::Status(401, _))
            )
        });
    }
    assert_eq!(
        tg.calls_of("setWebhook").len(),
        1,
        "instances never re-register the webhook"
    );

    // Four rounds; a person's consecutive messages go to different instances.
    let mut update_id = 100;
    for round in 0..4 {
        for person in 1..=PEOPLE {
            update_id += 1;
            let port = if (person + round) % 2 == 0 {
                port_a
            } else {
                port_b
            };
            let body = update(
                update_id,
                1000 + person,
                10 + round,
                &text_of(1000 + person, round as usize),
            );
            assert_eq!(post(port, &body), Some(200));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let store = rt
        .block_on(Store::connect(&database, Duration::from_secs(5)))
        .unwrap();
    let all_answered = |rounds: usize| {
        (1..=PEOPLE).all(|p| {
            let (said, answers) = rt.block_on(conversation(&store, 1000 + p));
            said.len() == rounds && answers.iter().all(|&n| n >= 1)
        })
    };
    wait_for("every message answered", Duration::from_secs(120), || {
        all_answered(4)
    });
    for p in 1..=PEOPLE {
        let person = 1000 + p;
        let (said, answers) = rt.block_on(conversation(&store, person));
        let expected: Vec<String> = (0..4).map(|i| text_of(person, i)).collect();
        assert_eq!(
            said, expected,
            "person {person}: every message, in the order sent"
        );
        assert_eq!(answers, [1, 1, 1, 1], "person {person}: one reply each");
    }

    // Everything so far has reached the platform (sends keep to each instance's share
    // of Telegram's pace, so the last may still be queued): the kill below is to test
    // the work just handed over, not sends that happened to be on their way (a reply
    // sent in the instant before a SIGKILL can go out twice; the crash harness counts
    // those).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(1..=PEOPLE).all(|p| tg.texts_to(1000 + p).len() >= 1 + 4 + 2) {
        assert!(
            Instant::now() < deadline,
            "the first four rounds' messages never all went out"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // One instance dies with work just handed to it; the other carries on.
    for person in 1..=PEOPLE {
        update_id += 1;
        let body = update(update_id, 1000 + person, 20, &text_of(1000 + person, 4));
        assert_eq!(post(port_a, &body), Some(200));
    }
    a.kill();
    for person in 1..=PEOPLE {
        update_id += 1;
        let body = update(update_id, 1000 + person, 21, &text_of(1000 + person, 5));
        assert_eq!(
            post(port_b, &body),
            Some(200),
            "the survivor takes everything now"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_answered(6) {
        if Instant::now() > deadline {
            let states: Vec<_> = (1..=PEOPLE)
                .map(|p| rt.block_on(conversation(&store, 1000 + p)))
                .map(|(said, answers)| (said.len(), answers))
                .collect();
            let (_, log) = b.stop();
            panic!("the survivor did not finish: {states:?}\nlog:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in 1..=PEOPLE {
        let person = 1000 + p;
        let (said, answers) = rt.block_on(conversation(&store, person));
        let expected: Vec<String> = (0..6).map(|i| text_of(person, i)).collect();
        assert_eq!(
            said, expected,
            "person {person}: every message, in the order sent"
        );
        assert_eq!(answers, [1; 6], "person {person}: one reply each");
    }
    // On the platform too, once each: the introduction, six replies and a rating
    // question after every second one (sends keep to Telegram's pace, so the last may
    // still be on their way).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(1..=PEOPLE).all(|p| tg.texts_to(1000 + p).len() >= 10) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in 1..=PEOPLE {
        let person = 1000 + p;
        let texts = tg.texts_to(person);
        assert_eq!(texts.len(), 1 + 6 + 3, "person {person} got: {texts:?}");
    }
    // No message is still waiting for its platform, and nothing more goes out.
    let sent_before_check = tg.calls_of("sendMessage").len();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(tg.calls_of("sendMessage").len(), sent_before_check);
    let (status, log) = b.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("sharing the database"), "{log}");
    rt.block_on(store.close());
}
