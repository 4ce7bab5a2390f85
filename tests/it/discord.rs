//! Discord end to end: the real serenity + poise client in Kindred's Discord adapter,
//! talking REST and WebSocket to a stand-in on loopback, with the real engine, the tiny
//! model and a SQLite file in a temp dir.

use crate::{helpers, standins};
use std::time::Duration;

use crate::standins::discord::{DiscordStandIn, RestCall};
use kindred::startup::{AppBuilder, Running};
use kindred_discord::{DiscordAdapter, DiscordConfig};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "TEST.discord.token-never-real";

async fn start(dir: &std::path::Path, dc: &DiscordStandIn) -> Running {
    start_shards(dir, dc, None).await
}

/// The same, running the gateway shards given.
async fn start_shards(
    dir: &std::path::Path,
    dc: &DiscordStandIn,
    shards: Option<kindred_discord::Shards>,
) -> Running {
    // Never Discord itself: a misconfigured client would fall back to discord.gg.
    assert!(dc.url.starts_with("http://127.0.0.1:") && dc.ws_url.starts_with("ws://127.0.0.1:"));
    let engine = kindred::startup::build_engine(
        helpers::test_settings(dir, &[("KINDRED__CONVERSATION__CHECKIN", "false")]),
        &helpers::tiny_model(),
    )
    .await
    .unwrap();
    let app = AppBuilder::new()
        .with_adapter(DiscordAdapter::new(DiscordConfig {
            token: TOKEN.into(),
            api_url: dc.url.clone(),
            register_commands: true,
            shards,
        }))
        .start(engine);
    dc.wait_until("IDENTIFY and READY", WAIT, |d| {
        d.connected() && !d.identifies().is_empty()
    })
    .await;
    app
}

async fn stop(running: Running) {
    let _ = running.shutdown.send(());
    let _ = tokio::time::timeout(Duration::from_secs(20), running.wait()).await;
}

fn custom_ids(c: &RestCall) -> Vec<String> {
    c.body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .map(|b| b["custom_id"].as_str().unwrap_or("").to_string())
        .collect()
}

fn has_buttons(c: &RestCall) -> bool {
    !custom_ids(c).is_empty()
}

fn followups(dc: &DiscordStandIn, token: &str) -> Vec<String> {
    dc.calls_to(
        "POST",
        &format!("/webhooks/{}/{token}", standins::discord::APP_ID),
    )
    .iter()
    .map(|c| c.body["content"].as_str().unwrap_or("").to_string())
    .collect()
}

/// `/kindred enable` by a member with Manage Server, waited for until Kindred confirms.
async fn enable_channel(dc: &DiscordStandIn, guild: u64, channel: u64, moderator: u64) {
    let enable = dc.slash(
        channel,
        Some(guild),
        moderator,
        "32",
        "kindred",
        Some("enable"),
        json!([]),
    );
    dc.wait_until("enabled", WAIT, |d| {
        followups(d, &format!("slash-token-{enable}"))
            .iter()
            .any(|t| t.contains("now on"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_conversation_with_button_ratings_and_refused_presses() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;

    // Intents: guilds, guild messages, direct messages; no privileged message content.
    let intents = dc.identifies()[0]["intents"].as_u64().unwrap();
    assert_eq!(intents, 1 | 512 | 4096, "intents {intents:#b}");
    assert!(dc.identifies()[0]["token"]
        .as_str()
        .unwrap()
        .ends_with(TOKEN));
    // Slash commands registered, the moderator group hidden from non-moderators.
    dc.wait_until("commands registered", WAIT, |d| {
        !d.calls_to("PUT", "/commands").is_empty()
    })
    .await;
    let registered = dc.calls_to("PUT", "/commands")[0].body.clone();
    let names: Vec<&str> = registered
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["start", "end", "reset", "rate", "forget", "privacy", "mydata", "help", "kindred"]
    );
    let kindred = registered
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "kindred")
        .unwrap();
    assert_eq!(kindred["default_member_permissions"], "32", "Manage Server");

    let (dm, ana) = (7001, 8001);
    dc.message(dm, None, ana, "hello, I had a rough week", false);
    dc.wait_until("first reply", WAIT, |d| d.texts_in(dm).len() >= 2)
        .await;
    assert!(
        !dc.calls_to("POST", &format!("/channels/{dm}/typing"))
            .is_empty(),
        "typing shown"
    );
    assert!(dc.posted(dm).iter().all(|c| !has_buttons(c)));
    dc.message(
        dm,
        None,
        ana,
        "my exams went badly and I feel useless",
        false,
    );
    dc.wait_until("the rating prompt", WAIT, |d| {
        d.posted(dm).iter().any(has_buttons)
    })
    .await;
    let prompt = dc.posted(dm).into_iter().find(has_buttons).unwrap();
    let ids = custom_ids(&prompt);
    assert_eq!(ids.len(), 5);
    let prompt_id: u64 = prompt.result["id"].as_str().unwrap().parse().unwrap();

    // A press: acknowledged (deferred update), recorded, the message edited.
    let press = dc.press(dm, None, prompt_id, ana, &ids[3]);
    dc.wait_until("the edit", WAIT, |d| {
        !d.calls_to("PATCH", &format!("/channels/{dm}/messages/{prompt_id}"))
            .is_empty()
    })
    .await;
    let ack = dc
        .calls_to("POST", &format!("/interactions/{press}/"))
        .pop()
        .unwrap();
    assert_eq!(ack.body["type"], 6, "deferred update");
    let edit = dc
        .calls_to("PATCH", &format!("/channels/{dm}/messages/{prompt_id}"))
        .pop()
        .unwrap();
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .contains("You rated 4 ★"),
        "{}",
        edit.body
    );
    let buttons = &edit.body["components"][0]["components"];
    assert_eq!(
        buttons[3]["disabled"], true,
        "the chosen button disabled: {buttons}"
    );
    assert_eq!(buttons[3]["style"], 3, "and green");
    dc.wait_until("ephemeral notice", WAIT, |d| {
        !followups(d, &format!("press-token-{press}")).is_empty()
    })
    .await;
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(4)]);

    // Pressing again changes it; another member's press and a forged id change nothing.
    dc.press(dm, None, prompt_id, ana, &ids[1]);
    dc.wait_until("second edit", WAIT, |d| {
        d.calls_to("PATCH", &format!("/messages/{prompt_id}")).len() >= 2
    })
    .await;
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(2)]);
    let other = dc.press(dm, None, prompt_id, 8999, &ids[4]);
    let forged = dc.press(dm, None, prompt_id, ana, "r:1:forged:5");
    dc.wait_until("refusals", WAIT, |d| {
        !followups(d, &format!("press-token-{other}")).is_empty()
            && !followups(d, &format!("press-token-{forged}")).is_empty()
    })
    .await;
    assert!(followups(&dc, &format!("press-token-{other}"))[0].contains("Only the person"));
    assert!(followups(&dc, &format!("press-token-{forged}"))[0].contains("no longer valid"));
    let body = dc.calls_to(
        "POST",
        &format!(
            "/webhooks/{}/press-token-{other}",
            standins::discord::APP_ID
        ),
    )[0]
    .body
    .clone();
    let flags = body["flags"].as_u64().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(flags & 64, 64, "ephemeral");
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(2)]);
    assert_eq!(
        dc.calls_to("PATCH", &format!("/messages/{prompt_id}"))
            .len(),
        2
    );

    // /mydata in a DM: the person's record as an attachment of the follow-up.
    let mydata = dc.slash(dm, None, ana, "0", "mydata", None, json!([]));
    let token = format!("slash-token-{mydata}");
    dc.wait_until("/mydata answered", WAIT, |d| {
        !followups(d, &token).is_empty()
    })
    .await;
    let call = dc
        .calls_to(
            "POST",
            &format!("/webhooks/{}/{token}", standins::discord::APP_ID),
        )
        .pop()
        .unwrap();
    let file = &call.body["files"][0];
    assert_eq!(file["name"], "kindred-my-data.json");
    let record: serde_json::Value =
        serde_json::from_str(file["content"].as_str().unwrap()).unwrap();
    assert!(!record["conversations"].as_array().unwrap().is_empty());
    assert!(!file["content"].as_str().unwrap().contains(&ana.to_string()));

    // A slash command in a DM: deferred ephemerally, answered as a follow-up.
    let rate = dc.slash(
        dm,
        None,
        ana,
        "0",
        "rate",
        None,
        json!([{"name": "stars", "type": 4, "value": 5}]),
    );
    dc.wait_until("/rate answered", WAIT, |d| {
        !followups(d, &format!("slash-token-{rate}")).is_empty()
    })
    .await;
    let defer = dc
        .calls_to("POST", &format!("/interactions/{rate}/"))
        .pop()
        .unwrap();
    assert_eq!(
        (
            defer.body["type"].as_u64(),
            defer.body["data"]["flags"].as_u64()
        ),
        (Some(5), Some(64))
    );
    assert!(followups(&dc, &format!("slash-token-{rate}"))[0].contains("5 ★"));
    assert_eq!(helpers::stars_in_db(dir.path()).await, vec![Some(5)]);

    // Bots are ignored; a file gets the kind text-only answer.
    let before = dc.texts_in(dm).len();
    dc.dispatch("MESSAGE_CREATE", {
        let mut m = json!({"id": dc.new_id().to_string(), "channel_id": dm.to_string(),
            "author": standins::discord::user_json(5555, true), "content": "beep",
            "timestamp": "2026-11-24T07:00:00.000000+00:00", "tts": false, "mention_everyone": false,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": false, "type": 0});
        m["edited_timestamp"] = Value::Null;
        m
    });
    dc.dispatch(
        "MESSAGE_CREATE",
        json!({"id": dc.new_id().to_string(), "channel_id": dm.to_string(),
        "author": standins::discord::user_json(ana, false), "content": "",
        "timestamp": "2026-11-24T07:00:00.000000+00:00", "tts": false, "mention_everyone": false,
        "mentions": [], "mention_roles": [], "embeds": [], "pinned": false, "type": 0,
        "attachments": [{"id": "1", "filename": "scan.png", "size": 10, "url": "https://cdn/x.png",
            "proxy_url": "https://cdn/x.png", "content_type": "image/png"}]}),
    );
    dc.wait_until("text-only answer", WAIT, |d| {
        d.texts_in(dm).iter().any(|t| t.contains("only read text"))
    })
    .await;
    assert_eq!(
        dc.texts_in(dm).len(),
        before + 1,
        "the bot's message got nothing"
    );

    // An edit is not answered, but risk language added in one brings the crisis
    // resources; a link preview's update (no edit time) is nothing.
    let before = dc.texts_in(dm).len();
    let first = dc.message(dm, None, ana, "I'm ok", false);
    dc.wait_until("a reply to the message", WAIT, |d| {
        d.texts_in(dm).len() > before
    })
    .await;
    // Settled (a rating prompt may follow the reply).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = dc.texts_in(dm).len();
    let mut preview = json!({"id": first.to_string(), "channel_id": dm.to_string(),
        "author": standins::discord::user_json(ana, false), "content": "I'm ok, I want to die",
        "embeds": []});
    dc.dispatch("MESSAGE_UPDATE", preview.clone());
    preview["edited_timestamp"] = json!("2026-11-24T07:05:00.000000+00:00");
    dc.dispatch("MESSAGE_UPDATE", preview);
    dc.wait_until("crisis resources for the edit", WAIT, |d| {
        d.texts_in(dm).len() > before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = dc.texts_in(dm);
    assert_eq!(after.len(), before + 1, "{after:?}");
    assert!(after[before].contains("crisis line"), "{after:?}");
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guild_channels_are_off_until_a_moderator_enables_them() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;
    let (guild, channel) = (6001, 6101);
    let (member, moderator) = (8101, 8102);

    dc.message(
        channel,
        Some(guild),
        member,
        &format!("<@{}> hi, can we talk?", standins::discord::BOT_ID),
        true,
    );
    // A member without Manage Server cannot enable the channel (checked server-side,
    // from the permissions Discord sends with the interaction).
    let refused = dc.slash(
        channel,
        Some(guild),
        member,
        "0",
        "kindred",
        Some("enable"),
        json!([]),
    );
    dc.wait_until("refusal", WAIT, |d| {
        !d.calls_to("POST", &format!("/interactions/{refused}/"))
            .is_empty()
    })
    .await;
    let answer = dc
        .calls_to("POST", &format!("/interactions/{refused}/"))
        .pop()
        .unwrap()
        .body;
    assert_eq!(answer["type"], 4);
    assert_eq!(answer["data"]["flags"], 64, "ephemeral");
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Manage Server"),
        "{answer}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        dc.texts_in(channel).is_empty(),
        "nothing said in a disabled channel"
    );

    enable_channel(&dc, guild, channel, moderator).await;
    let resources = dc.slash(
        channel,
        Some(guild),
        moderator,
        "32",
        "kindred",
        Some("resources"),
        json!([{"name": "text", "type": 3, "value": "Call the Campus Line: 555-0100"}]),
    );
    dc.wait_until("resources set", WAIT, |d| {
        !followups(d, &format!("slash-token-{resources}")).is_empty()
    })
    .await;

    // Enabled: a mention is answered in the channel, with the privacy suggestion; a
    // message without a mention is not.
    dc.message(
        channel,
        Some(guild),
        member,
        "just talking to friends",
        false,
    );
    dc.message(
        channel,
        Some(guild),
        member,
        &format!("<@{}> I feel low today", standins::discord::BOT_ID),
        true,
    );
    dc.wait_until("a reply in the channel", WAIT, |d| {
        d.texts_in(channel).len() >= 3
    })
    .await;
    let texts = dc.texts_in(channel);
    assert!(
        texts.iter().any(|t| t.contains("direct message")),
        "{texts:?}"
    );
    // The channel's own crisis resources are what /help shows there.
    let help = dc.slash(channel, Some(guild), member, "0", "help", None, json!([]));
    dc.wait_until("help", WAIT, |d| {
        !followups(d, &format!("slash-token-{help}")).is_empty()
    })
    .await;
    assert!(followups(&dc, &format!("slash-token-{help}"))[0].contains("Campus Line"));
    stop(app).await;
}

/// One member's slash command and another member's conversation in the same channel,
/// at the same time: each answer reaches only its own addressee. (Answers were once
/// matched to slash commands by channel, first come first served, so a reply could
/// become another member's private follow-up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_a_busy_channel_reach_only_the_member_they_answer() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;
    let (guild, channel) = (6002, 6201);
    let (moderator, bea, cai) = (8111, 8112, 8113);
    enable_channel(&dc, guild, channel, moderator).await;

    // Bea's conversation is held up: the channel's first messages fail twice (retried),
    // and Cai asks for /help while Bea's greeting, privacy suggestion and reply wait.
    let path = format!("/api/v10/channels/{channel}/messages");
    dc.fail("POST", &path, 500, 2);
    dc.message(
        channel,
        Some(guild),
        bea,
        &format!("<@{}> I can't sleep lately", standins::discord::BOT_ID),
        true,
    );
    dc.wait_until("the first failed send", WAIT, |d| {
        !d.calls_to("POST", &path).is_empty()
    })
    .await;
    let help = dc.slash(channel, Some(guild), cai, "0", "help", None, json!([]));
    dc.wait_until("Bea's reply and Cai's help", WAIT, |d| {
        d.texts_in(channel).len() >= 3 && !followups(d, &format!("slash-token-{help}")).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let to_cai = followups(&dc, &format!("slash-token-{help}"));
    assert_eq!(to_cai.len(), 1, "{to_cai:?}");
    assert!(
        to_cai[0].contains("/forget"),
        "Cai got the help: {to_cai:?}"
    );
    let in_channel = dc.texts_in(channel);
    assert_eq!(in_channel.len(), 3, "{in_channel:?}");
    assert!(in_channel[1].contains("direct message"), "{in_channel:?}");
    assert!(
        in_channel.iter().all(|t| !t.contains("/forget: delete")),
        "the help went only to Cai: {in_channel:?}"
    );
    // Cai's command was answered, so it is not also told Kindred is off here.
    assert!(dc
        .calls_to("PATCH", &format!("slash-token-{help}/messages/@original"))
        .is_empty());
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_gateway_connection_resumes_without_losing_or_repeating_a_message() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;
    let (dm, ana) = (7101, 8201);
    dc.message(dm, None, ana, "hello", false);
    dc.wait_until("first reply", WAIT, |d| d.texts_in(dm).len() >= 2)
        .await;

    dc.drop_connection();
    // Sent while the connection is down: Discord keeps it for the resumed session.
    let id = dc.message(dm, None, ana, "are you still there?", false);
    dc.wait_until("resumed", WAIT, |d| {
        !d.resumes().is_empty() && d.connected()
    })
    .await;
    // Its reply, then the rating prompt (second reply).
    dc.wait_until("the missed message answered", WAIT, |d| {
        d.texts_in(dm).len() >= 4
    })
    .await;
    assert_eq!(dc.identifies().len(), 1, "resumed, not re-identified");
    assert!(dc.resumes()[0]["session_id"]
        .as_str()
        .unwrap()
        .starts_with("session-"));

    // The same message delivered again (Discord may replay on resume) gets no second reply.
    dc.message_with_id(id, dm, None, ana, "are you still there?", false);
    dc.message(dm, None, ana, "thanks", false);
    dc.wait_until("the next reply", WAIT, |d| d.texts_in(dm).len() >= 5)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dc.texts_in(dm).len(), 5, "{:?}", dc.texts_in(dm));
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_rate_limits_and_outages_are_retried() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (dm, ana) = (7201, 8301);
    dc.fail("POST", &format!("/api/v10/channels/{dm}/messages"), 429, 1);
    dc.fail("POST", &format!("/api/v10/channels/{dm}/messages"), 502, 1);
    let app = start(dir.path(), &dc).await;
    dc.message(dm, None, ana, "hello", false);
    dc.wait_until("delivered after a 429 and a 502", WAIT, |d| {
        d.texts_in(dm).len() >= 2
    })
    .await;
    let attempts = dc.calls_to("POST", &format!("/channels/{dm}/messages"));
    assert_eq!(
        attempts[0].body["content"], attempts[2].body["content"],
        "the same message retried"
    );
    stop(app).await;
}

#[test]
fn kindred_run_serves_discord_and_never_logs_the_token() {
    use std::process::Command;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dc = rt.block_on(DiscordStandIn::start());
    // A failing call first, so errors get logged too.
    dc.fail("GET", "/api/v10/oauth2/applications/@me", 502, 1);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("discord.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    assert!(dc.url.starts_with("http://127.0.0.1:"));
    let daemon = helpers::DaemonProcess::start(
        dir.path(),
        &[
            ("KINDRED__DISCORD__ENABLED", "true".to_string()),
            ("KINDRED__DISCORD__API_URL", dc.url.clone()),
            (
                "KINDRED__DISCORD__TOKEN_FILE",
                token_file.display().to_string(),
            ),
        ],
        &["KINDRED_DISCORD_TOKEN"],
    );
    let replied = rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while (!dc.connected() || dc.identifies().is_empty())
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dc.message(7301, None, 8401, "hello, is anyone there?", false);
        while dc.texts_in(7301).len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        dc.texts_in(7301).len() >= 2
    });
    let (status, log) = daemon.stop();
    assert!(replied, "no reply; log:\n{log}");
    assert!(status.success(), "{log}");
    assert!(log.contains("connected to Discord"), "{log}");
    assert!(
        !log.contains(TOKEN) && !log.contains("never-real"),
        "the token leaked into the log:\n{log}"
    );

    // Without a token, `kindred run` says where to put one.
    let out = Command::new(env!("CARGO_BIN_EXE_kindred"))
        .env("KINDRED__DATA_DIR", dir.path())
        .env("KINDRED__DISCORD__ENABLED", "true")
        .env_remove("KINDRED_DISCORD_TOKEN")
        .arg("run")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("KINDRED_DISCORD_TOKEN") && err.contains("token_file"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reply_sent_again_after_a_crash_is_not_posted_twice() {
    // The window that remains after a crash: Discord has the reply, the database never
    // heard. The engine sends it again at the next start; the nonce it carries (with
    // enforce_nonce) makes Discord answer with the message it already has.
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;
    let (dm, ana) = (7301, 8301);
    dc.message(dm, None, ana, "hello, I had a rough week", false);
    dc.wait_until("the reply", WAIT, |d| d.texts_in(dm).len() >= 2)
        .await;
    let posted = dc.posted(dm);
    // The reply (a recorded turn) carries its nonce; the introduction is not recorded.
    assert!(posted.iter().any(|c| c.body["enforce_nonce"] == true
        && c.body["nonce"]
            .as_str()
            .is_some_and(|n| n.starts_with("turn:"))));
    let db =
        kindred::store::Store::connect(&helpers::database_of(dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
    let pool = db.pool().clone();
    // Wait for the delivery to be recorded, then forget it, as a crash would have.
    until_one_delivered_reply(&pool).await;
    stop(app).await;
    sqlx::query(
        "UPDATE turns SET delivery = 'pending', platform_message_id = NULL WHERE source = 'model'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let before = dc.texts_in(dm).len();
    let resends_before = dc
        .calls_to("POST", &format!("/channels/{dm}/messages"))
        .len();
    let app = start(dir.path(), &dc).await;
    // Recovery sends it again (the stand-in sees the call) and records it delivered ...
    dc.wait_until("the re-send", WAIT, |d| {
        d.calls_to("POST", &format!("/channels/{dm}/messages"))
            .len()
            > resends_before
    })
    .await;
    until_one_delivered_reply(&pool).await;
    // ... but the person sees it once.
    assert_eq!(dc.texts_in(dm).len(), before);
    stop(app).await;
}

/// Waits until the database holds one model reply recorded delivered, with the platform's
/// message id.
async fn until_one_delivered_reply(pool: &sqlx::AnyPool) {
    tokio::time::timeout(WAIT, async {
        loop {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM turns WHERE source = 'model' AND delivery = 'delivered' AND platform_message_id IS NOT NULL",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if n == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("one reply recorded delivered in time");
}

/// Alerts are the server's: set from one channel, they come for risk seen in any channel
/// of that server (and never for another server's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_get_an_alert_from_any_channel_of_their_server_without_the_words() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start(dir.path(), &dc).await;
    let (guild, channel, other_channel, mods) = (6002, 6201, 6202, 6299);
    let (elsewhere_guild, elsewhere_channel) = (6003, 6301);
    let (member, moderator) = (8201, 8202);
    enable_channel(&dc, guild, channel, moderator).await;
    enable_channel(&dc, guild, other_channel, moderator).await;
    enable_channel(&dc, elsewhere_guild, elsewhere_channel, moderator).await;

    // /kindred alerts channel:#mods in one channel, as Discord sends a channel option
    // (its id).
    let set = dc.slash(
        channel,
        Some(guild),
        moderator,
        "32",
        "kindred",
        Some("alerts"),
        json!([{"name": "channel", "type": 7, "value": mods.to_string()}]),
    );
    dc.wait_until("alerts set", WAIT, |d| {
        !followups(d, &format!("slash-token-{set}")).is_empty()
    })
    .await;
    let confirmation = followups(&dc, &format!("slash-token-{set}")).join(" ");
    assert!(confirmation.contains("alert"), "{confirmation}");

    // Risk in another server: resources there, no alert to this server's moderators.
    let risk = format!(
        "<@{}> I bought a rope and I want to end it tonight",
        standins::discord::BOT_ID
    );
    dc.message(
        elsewhere_channel,
        Some(elsewhere_guild),
        member,
        &risk,
        true,
    );
    dc.wait_until("resources in the other server", WAIT, |d| {
        d.texts_in(elsewhere_channel)
            .iter()
            .any(|t| t.contains("988") || t.contains("emergency"))
    })
    .await;
    assert!(dc.texts_in(mods).is_empty(), "{:?}", dc.texts_in(mods));

    // Risk in another channel of this server: the moderators hear of it.
    dc.message(other_channel, Some(guild), member, &risk, true);
    dc.wait_until("an alert in the moderators' channel", WAIT, |d| {
        !d.texts_in(mods).is_empty()
    })
    .await;
    let alert = dc.texts_in(mods).join("\n");
    assert!(alert.contains("at risk"), "{alert}");
    assert!(
        alert.contains(&format!("<@{member}>")) && alert.contains(&format!("<#{other_channel}>")),
        "how to reach them, and where: {alert}"
    );
    assert!(
        !alert.contains("rope") && !alert.contains("tonight"),
        "no words by default: {alert}"
    );
    // The person got the resources in the channel where they wrote.
    dc.wait_until("resources for the member", WAIT, |d| {
        d.texts_in(other_channel)
            .iter()
            .any(|t| t.contains("988") || t.contains("emergency"))
    })
    .await;
    // Only the moderators' channel and the two channels with risk were written to.
    let channels: std::collections::BTreeSet<String> = dc
        .calls()
        .into_iter()
        .filter(|c| c.method == "POST" && c.path.ends_with("/messages"))
        .map(|c| c.path)
        .collect();
    assert_eq!(channels.len(), 3, "{channels:?}");
    assert_eq!(dc.texts_in(mods).len(), 1, "one alert");
    stop(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_runs_the_gateway_shards_it_is_given() {
    let dc = DiscordStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let app = start_shards(dir.path(), &dc, Some("2-3/4".parse().unwrap())).await;
    dc.wait_until("two IDENTIFYs", WAIT, |d| d.identifies().len() >= 2)
        .await;
    let mut shards: Vec<serde_json::Value> =
        dc.identifies().iter().map(|d| d["shard"].clone()).collect();
    shards.sort_by_key(|s| s[0].as_u64());
    assert_eq!(
        shards,
        [serde_json::json!([2, 4]), serde_json::json!([3, 4])]
    );
    stop(app).await;
}
