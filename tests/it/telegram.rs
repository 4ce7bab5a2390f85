//! Telegram end to end: the real teloxide client in Kindred's Telegram adapter, talking
//! HTTP to a stand-in Bot API server on loopback, with the real engine, the tiny model
//! and a SQLite file in a temp dir.

use crate::helpers;
use std::time::Duration;

use crate::standins::telegram::{Call, TelegramStandIn};
use kindred::startup::{AppBuilder, Running};
use kindred_telegram::{Mode, TelegramAdapter, TelegramConfig};

const TOKEN: &str = "123456:TEST-token-never-real";
const WAIT: Duration = Duration::from_secs(20);

fn config(standin: &TelegramStandIn) -> TelegramConfig {
    let api_url = kindred_telegram::parse_api_url(&standin.url).unwrap();
    // Never the real Bot API: a misconfigured client would send the token there.
    assert!(
        matches!(
            api_url.host_str(),
            Some("127.0.0.1") | Some("::1") | Some("localhost")
        ),
        "tests talk to loopback only, not {api_url}"
    );
    TelegramConfig {
        token: TOKEN.into(),
        api_url,
        mode: Mode::Polling {
            timeout: Duration::from_secs(1),
        },
        messages_per_second: 30,
    }
}

async fn start(
    dir: &std::path::Path,
    standin: &TelegramStandIn,
    extra: &[(&str, &str)],
) -> Running {
    let mut settings: Vec<(&str, &str)> = vec![("KINDRED__CONVERSATION__CHECKIN", "false")];
    settings.extend_from_slice(extra);
    let engine = kindred::startup::build_engine(
        helpers::test_settings(dir, &settings),
        &helpers::tiny_model(),
    )
    .await
    .unwrap();
    AppBuilder::new()
        .with_adapter(TelegramAdapter::new(config(standin)))
        .start(engine)
}

async fn stop(running: Running) {
    let _ = running.shutdown.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), running.wait()).await;
}

fn has_keyboard(c: &Call) -> bool {
    c.body["reply_markup"]["inline_keyboard"].is_array()
}

/// The callback data of each button of a sendMessage call, in order.
fn buttons(c: &Call) -> Vec<String> {
    c.body["reply_markup"]["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter())
        .map(|b| b["callback_data"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_conversation_with_rating_keyboard_presses_and_refusals() {
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;

    // The command menu is registered, BotFather-style.
    tg.wait_until("setMyCommands", WAIT, |c| {
        c.iter().any(|c| c.method == "setmycommands")
    })
    .await;
    let menu: Vec<String> = tg.calls_of("setMyCommands")[0].body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        menu,
        ["start", "end", "reset", "rate", "forget", "privacy", "mydata", "help"]
    );
    // Group admins see the commands that run their group too.
    tg.wait_until("the admins' menu", WAIT, |c| {
        c.iter().filter(|c| c.method == "setmycommands").count() >= 2
    })
    .await;
    let admins = &tg.calls_of("setMyCommands")[1].body;
    assert_eq!(admins["scope"]["type"], "all_chat_administrators");
    let admin_menu: Vec<&str> = admins["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert!(
        admin_menu.ends_with(&["enable", "disable", "alerts"]),
        "{admin_menu:?}"
    );

    let ana = 501;
    tg.dm(ana, "hello, I had a rough week");
    tg.wait_until("first reply", WAIT, |_| tg.texts_to(ana).len() >= 2)
        .await;
    assert!(tg
        .calls_of("sendChatAction")
        .iter()
        .any(|c| c.body["action"] == "typing"));
    assert!(
        tg.calls_of("sendMessage").iter().all(|c| !has_keyboard(c)),
        "no rating after the first reply"
    );
    tg.dm(ana, "my exams went badly and I feel useless");
    tg.wait_until("rating keyboard after the second reply", WAIT, |calls| {
        calls
            .iter()
            .any(|c| c.method == "sendmessage" && has_keyboard(c))
    })
    .await;
    let prompts: Vec<Call> = tg
        .calls_of("sendMessage")
        .into_iter()
        .filter(has_keyboard)
        .collect();
    assert_eq!(prompts.len(), 1);
    let data = buttons(&prompts[0]);
    assert_eq!(data.len(), 5, "five star buttons");
    assert!(
        data.iter().all(|d| d.len() <= 64),
        "callback data fits Telegram's 64 bytes"
    );
    let labels: Vec<String> = prompts[0].body["reply_markup"]["inline_keyboard"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(labels, ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]);
    // The prompt's message id, as the stand-in answered it.
    let prompt_mid = prompts[0].result["message_id"].as_i64().unwrap();
    tg.press(ana, prompt_mid, ana, &data[3]);
    tg.wait_until("the prompt edited", WAIT, |calls| {
        calls.iter().any(|c| c.method == "editmessagetext")
            && calls.iter().any(|c| c.method == "answercallbackquery")
    })
    .await;
    assert_eq!(
        tg.calls_of("editMessageText")[0].body["message_id"].as_i64(),
        Some(prompt_mid)
    );
    let answer = &tg.calls_of("answerCallbackQuery")[0].body;
    assert!(answer["text"].as_str().unwrap().contains("4 ★"), "{answer}");
    let edit = &tg.calls_of("editMessageText")[0].body;
    assert!(
        edit["text"].as_str().unwrap().contains("You rated 4 ★"),
        "{edit}"
    );
    assert!(
        edit["reply_markup"]["inline_keyboard"]
            .to_string()
            .contains("✓ 4 ★"),
        "the keyboard stays, the choice marked: {edit}"
    );
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(4)]);

    // Pressing again changes the rating.
    tg.press(ana, prompt_mid, ana, &data[1]);
    // (Once, with many tests running at the same time, the second edit seen was not the
    // 2 ★ one: what must hold is that the rating in effect, the last edit, shows 2 ★.)
    tg.wait_until("second edit", WAIT, |_| {
        tg.calls_of("editMessageText")
            .iter()
            .any(|c| c.body["text"].as_str().unwrap_or("").contains("2 ★"))
    })
    .await;
    assert!(tg.calls_of("editMessageText").last().unwrap().body["text"]
        .as_str()
        .unwrap()
        .contains("2 ★"));
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(2)]);

    // A forged payload and a press by someone else are refused and change nothing.
    let forged = data[4].replace(data[4].split(':').nth(2).unwrap(), "forgednonce");
    // Different people's presses are handled concurrently: match answers by query id.
    let refusals = [
        (tg.press(ana, prompt_mid, ana, &forged), "no longer valid"),
        (tg.press(ana, prompt_mid, 777, &data[4]), "Only the person"),
        (
            tg.press(ana, prompt_mid, ana, "garbage that is not a payload"),
            "no longer valid",
        ),
    ];
    let answer_to = |id: &str| {
        tg.calls_of("answerCallbackQuery")
            .into_iter()
            .find(|c| c.body["callback_query_id"] == id)
            .map(|c| c.body["text"].as_str().unwrap_or("").to_string())
    };
    tg.wait_until("three refusals", WAIT, |_| {
        refusals.iter().all(|(id, _)| answer_to(id).is_some())
    })
    .await;
    for (id, expected) in &refusals {
        let text = answer_to(id).unwrap();
        assert!(text.contains(expected), "{id}: {text}");
    }
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(2)]);
    assert_eq!(
        tg.calls_of("editMessageText").len(),
        2,
        "refused presses edit nothing"
    );

    // A sticker gets a kind text-only reply.
    tg.push_update(
        serde_json::json!({"message": {"message_id": 9001, "date": 1_700_000_000,
        "chat": {"id": ana, "type": "private", "first_name": "Ana"},
        "from": {"id": ana, "is_bot": false, "first_name": "Ana"},
        "sticker": {"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 512,
            "height": 512, "is_animated": false, "is_video": false}}}),
    );
    tg.wait_until("text-only reply", WAIT, |_| {
        tg.texts_to(ana)
            .iter()
            .any(|t| t.contains("I can only read text"))
    })
    .await;

    // An edit is not answered, but risk language added in one brings the crisis
    // resources, and nothing else.
    let before = tg.texts_to(ana).len();
    tg.push_update(
        serde_json::json!({"edited_message": {"message_id": 9002, "date": 1_700_000_000,
        "edit_date": 1_700_000_100, "chat": {"id": ana, "type": "private", "first_name": "Ana"},
        "from": {"id": ana, "is_bot": false, "first_name": "Ana"},
        "text": "hello, I had a rough week and I want to die"}}),
    );
    tg.wait_until("crisis resources for the edit", WAIT, |_| {
        tg.texts_to(ana).len() > before
    })
    .await;
    let after = tg.texts_to(ana);
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert!(after[before].contains("crisis line"), "{after:?}");

    // Every call went to the stand-in with the token in the path, and nothing else.
    assert!(tg.calls().iter().all(|c| !c.method.is_empty()));
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_answer_mentions_only_and_admins_turn_it_off() {
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;
    let group = -1001;
    let (ana, ben, admin) = (601, 602, 603);
    tg.set_member(group, admin, "creator");

    tg.group_message(group, ana, "anyone around? just chatting with friends");
    tg.group_message(group, ben, "@KindredTestBot I feel low today");
    tg.wait_until("a reply to the mention", WAIT, |_| {
        tg.texts_to(group).len() >= 3
    })
    .await;
    let texts = tg.texts_to(group);
    assert!(
        texts.iter().any(|t| t.contains("direct message")),
        "privacy suggestion: {texts:?}"
    );
    let acted = tg.confirmed_offset();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        tg.texts_to(group).len(),
        3,
        "the unaddressed message got nothing: {texts:?}"
    );
    assert!(acted > 0);

    // A member cannot turn Kindred off; an admin can (checked with getChatMember).
    tg.group_message(group, ana, "/disable");
    tg.wait_until("refusal", WAIT, |_| {
        tg.texts_to(group)
            .iter()
            .any(|t| t.contains("Only this group's admins"))
    })
    .await;
    tg.group_message(group, admin, "/disable");
    tg.wait_until("disabled", WAIT, |_| {
        tg.texts_to(group).iter().any(|t| t.contains("now off"))
    })
    .await;
    assert!(tg.calls_of("getChatMember").len() >= 2);
    let before = tg.texts_to(group).len();
    tg.group_message(group, ben, "@KindredTestBot are you there?");
    tg.dm(ben, "hello in private");
    tg.wait_until("the DM still answered", WAIT, |_| {
        tg.texts_to(ben).len() >= 2
    })
    .await;
    assert_eq!(
        tg.texts_to(group).len(),
        before,
        "silent in a disabled group"
    );
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_and_the_reply_still_arrives() {
    let tg = TelegramStandIn::start(TOKEN).await;
    tg.rate_limit("sendMessage", 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;
    tg.dm(701, "hello there");
    tg.wait_until("messages delivered despite 429s", WAIT, |_| {
        tg.calls_of("sendMessage").len() >= 4
    })
    .await;
    // Two refused attempts, then the intro and the reply, in order.
    let texts: Vec<String> = tg.texts_to(701);
    assert_eq!(texts[0], texts[1], "the same message retried");
    assert_eq!(texts[1], texts[2], "the same message retried");
    stop(app).await;
}

#[test]
fn a_crash_between_receipt_and_reply_loses_nothing_and_repeats_nothing() {
    let standin_rt = tokio::runtime::Runtime::new().unwrap();
    let tg = standin_rt.block_on(TelegramStandIn::start(TOKEN));
    let dir = tempfile::tempdir().unwrap();
    let ana = 801;

    // Run 1: the message is received and stored; the reply is stuck (the Bot API never
    // answers the typing action that goes before it), and then the process dies.
    tg.hold("sendChatAction");
    let rt1 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let update_id = tg.dm(ana, "I can't sleep and everything feels heavy");
    rt1.block_on(async {
        let _app = start(dir.path(), &tg, &[]).await;
        tg.wait_until("the update acknowledged", WAIT, |_| {
            tg.confirmed_offset() > update_id
        })
        .await;
        tg.wait_until("the reply under way", WAIT, |c| {
            c.iter().any(|c| c.method == "sendchataction")
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        std::mem::forget(_app);
    });
    rt1.shutdown_background(); // the crash: no shutdown, tasks simply stop
    let replies_before = tg.texts_to(ana).len();
    assert_eq!(
        replies_before, 1,
        "only the greeting went out before the crash"
    );

    // Run 2 on the same database: the reply arrives, once.
    tg.release("sendChatAction");
    let rt2 = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt2.block_on(async {
        let app = start(dir.path(), &tg, &[]).await;
        tg.wait_until("the reply after restart", WAIT, |_| {
            tg.texts_to(ana).len() >= 2
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        stop(app).await;
    });
    let texts = tg.texts_to(ana);
    assert_eq!(
        texts.len(),
        2,
        "greeting + one reply, nothing repeated: {texts:?}"
    );
    assert!(!texts[1].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret_token_and_answers_after_storing() {
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let public_url =
        kindred_telegram::Url::parse(&format!("http://127.0.0.1:{port}/telegram/hook")).unwrap();
    let mut cfg = config(&tg);
    cfg.mode = Mode::Webhook {
        public_url: public_url.clone(),
        listen,
        secret: None,
    };
    let engine = kindred::startup::build_engine(
        helpers::test_settings(dir.path(), &[("KINDRED__CONVERSATION__CHECKIN", "false")]),
        &helpers::tiny_model(),
    )
    .await
    .unwrap();
    let app = AppBuilder::new()
        .with_adapter(TelegramAdapter::new(cfg))
        .start(engine);
    tg.wait_until("setWebhook", WAIT, |c| {
        c.iter().any(|c| c.method == "setwebhook")
    })
    .await;
    let hook = tg.calls_of("setWebhook")[0].body.clone();
    assert_eq!(hook["url"], public_url.as_str());
    let secret = hook["secret_token"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32);
    assert!(
        tg.calls_of("getUpdates").is_empty(),
        "no polling in webhook mode"
    );

    let update = serde_json::json!({"update_id": 77, "message": {"message_id": 5, "date": 1_700_000_000,
        "chat": {"id": 901, "type": "private", "first_name": "Ana"},
        "from": {"id": 901, "is_bot": false, "first_name": "Ana"}, "text": "hello"}});
    let client = reqwest_like_post(port, "/telegram/hook", Some("wrong-secret"), &update).await;
    assert_eq!(client, 401, "a forged webhook call is refused");
    assert_eq!(
        reqwest_like_post(port, "/telegram/hook", None, &update).await,
        401
    );
    assert_eq!(
        reqwest_like_post(port, "/telegram/hook", Some(&secret), &update).await,
        200
    );
    tg.wait_until("the reply", WAIT, |_| tg.texts_to(901).len() >= 2)
        .await;
    // Telegram redelivers when unsure; the same update is not answered twice.
    assert_eq!(
        reqwest_like_post(port, "/telegram/hook", Some(&secret), &update).await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tg.texts_to(901).len(), 2, "{:?}", tg.texts_to(901));
    stop(app).await;
}

/// A minimal HTTP/1.1 POST on loopback (what Telegram's servers would send), returning the status.
async fn reqwest_like_post(
    port: u16,
    path: &str,
    secret: Option<&str>,
    body: &serde_json::Value,
) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let secret_header = secret
        .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{secret_header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    resp.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn kindred_run_serves_telegram_and_never_logs_the_token() {
    use std::process::Command;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tg = rt.block_on(TelegramStandIn::start(TOKEN));
    // Some calls fail at first, so errors (which carry request URLs) get logged too.
    tg.rate_limit("getMe", 1, 1);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("telegram.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    assert!(tg.url.starts_with("http://127.0.0.1:"));
    let daemon = helpers::DaemonProcess::start(
        dir.path(),
        &[
            ("KINDRED__TELEGRAM__ENABLED", "true".to_string()),
            ("KINDRED__TELEGRAM__API_URL", tg.url.clone()),
            (
                "KINDRED__TELEGRAM__TOKEN_FILE",
                token_file.display().to_string(),
            ),
            ("KINDRED__TELEGRAM__POLL_TIMEOUT_SECONDS", "1".to_string()),
        ],
        &["KINDRED_TELEGRAM_TOKEN", "TELOXIDE_TOKEN"],
    );
    let replied = rt.block_on(async {
        tg.dm(1001, "hello, is anyone there?");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while tg.texts_to(1001).len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tg.texts_to(1001).len() >= 2
    });
    let (status, log) = daemon.stop();
    assert!(replied, "no reply; calls {:?}\nlog:\n{log}", tg.calls());
    assert!(status.success(), "{log}");
    assert!(log.contains("connected to Telegram"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains("TEST-token"),
        "the token leaked into the log:\n{log}"
    );

    // Without a token, `kindred run` says where to put one, before loading anything.
    let out = Command::new(env!("CARGO_BIN_EXE_kindred"))
        .env("KINDRED__DATA_DIR", dir.path())
        .env("KINDRED__TELEGRAM__ENABLED", "true")
        .env_remove("KINDRED_TELEGRAM_TOKEN")
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KINDRED_TELEGRAM_TOKEN") && err.contains("token_file"),
        "{err}"
    );
}

#[tokio::test]
async fn an_update_telegram_refuses_to_let_us_check_is_skipped_and_intake_goes_on() {
    // A group command whose sender cannot be checked (Telegram refuses getChatMember:
    // the bot has left the group) must not stop every later update from being read.
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;
    let (group, ana, ben) = (-1002, 611, 612);
    tg.set_member(group, ana, "gone");
    tg.group_message(group, ana, "/disable");
    tg.dm(ben, "hello, I had a rough day");
    tg.wait_until("ben's reply", WAIT, |_| !tg.texts_to(ben).is_empty())
        .await;
    assert!(!tg.calls_of("getChatMember").is_empty());
    app.shutdown.send(()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mydata_arrives_as_a_document_with_only_the_persons_own_words() {
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;
    tg.dm(1001, "my landlord wants us out by march");
    tg.dm(1002, "ben's words, not for anyone else");
    tg.wait_until("both answered", WAIT, |_| {
        tg.texts_to(1001).len() >= 2 && tg.texts_to(1002).len() >= 2
    })
    .await;
    tg.dm(1001, "/mydata");
    tg.wait_until("a document", WAIT, |c| {
        c.iter().any(|c| c.method == "senddocument")
    })
    .await;
    let doc = &tg.calls_of("sendDocument")[0].body;
    assert_eq!(doc["chat_id"], 1001);
    assert!(doc["caption"]
        .as_str()
        .unwrap()
        .contains("everything I have stored"));
    let record = &doc["document"];
    let text = record.to_string();
    assert!(text.contains("my landlord wants us out by march"), "{text}");
    assert!(!text.contains("ben's words"), "{text}");
    assert_eq!(record["conversations"].as_array().unwrap().len(), 1);
    assert!(
        !text.contains("1001"),
        "no platform id in the record: {text}"
    );
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_whose_sends_hang_holds_back_no_other_chat() {
    // Sends go out one queue per chat: a chat whose messages hang (a slow or failing
    // send being retried) must not delay anyone else's replies.
    let tg = TelegramStandIn::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &tg, &[]).await;
    let (stuck, other) = (2001, 2002);
    tg.hold_chat(stuck);
    tg.dm(stuck, "hello, is anyone there?");
    tg.wait_until("the stuck chat's first send", WAIT, |c| {
        c.iter().any(|c| c.method == "held:sendmessage")
    })
    .await;
    tg.dm(other, "hello, I had a rough day");
    tg.wait_until("the other chat's introduction and reply", WAIT, |_| {
        tg.texts_to(other).len() >= 2
    })
    .await;
    assert!(
        tg.texts_to(stuck).is_empty(),
        "the stuck chat is still waiting: {:?}",
        tg.texts_to(stuck)
    );
    // Released, the stuck chat gets its messages, in order.
    tg.release_chat(stuck);
    tg.wait_until("the stuck chat's messages", WAIT, |_| {
        tg.texts_to(stuck).len() >= 2
    })
    .await;
    assert!(tg.texts_to(stuck)[0].starts_with("Hi, I'm Kindred"));
    stop(app).await;
}
