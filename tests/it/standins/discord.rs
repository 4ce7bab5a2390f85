//! A stand-in for Discord on loopback: the REST API (`/api/v10/…`) and the gateway
//! WebSocket (HELLO, IDENTIFY → READY, heartbeats and ACKs, dispatches with sequence
//! numbers, RESUME → replay + RESUMED), speaking Discord's real protocols to the real
//! serenity client. Payloads follow Discord's documentation; every REST call is recorded.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const BOT_ID: u64 = 9_000_000_000_000_001;
pub const APP_ID: u64 = 9_000_000_000_000_001;

/// A recorded REST call.
#[derive(Debug, Clone)]
pub struct RestCall {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub result: Value,
}

enum Ctl {
    Frame(String),
    /// Cut the connection without a close frame, as a network failure would.
    Drop,
}

#[derive(Default)]
struct Inner {
    calls: Vec<RestCall>,
    next_id: u64,
    seq: u64,
    /// Every dispatch sent or due: (seq, frame), for RESUME.
    log: Vec<(u64, String)>,
    session_id: String,
    conn: Option<mpsc::UnboundedSender<Ctl>>,
    identifies: Vec<Value>,
    resumes: Vec<Value>,
    heartbeats: usize,
    /// Planned REST failures: (method, path prefix) → statuses.
    failures: HashMap<(String, String), VecDeque<u16>>,
    /// Messages posted with enforce_nonce, by "channel/nonce".
    nonces: HashMap<String, Value>,
}

#[derive(Clone)]
pub struct DiscordStandIn {
    /// The base URL for REST (`HttpBuilder::proxy`).
    pub url: String,
    pub ws_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl DiscordStandIn {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let this = Self {
            url: format!("http://{addr}"),
            ws_url: format!("ws://{addr}"),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1_000_000_000_000_000,
                ..Default::default()
            })),
        };
        let app = Router::new()
            .route("/", any(gateway))
            .fallback(rest)
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        this
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    pub fn new_id(&self) -> u64 {
        let mut s = self.lock();
        s.next_id += 1;
        s.next_id
    }

    /// Sends (or, while disconnected, keeps for RESUME) a gateway dispatch.
    pub fn dispatch(&self, event: &str, d: Value) {
        let mut s = self.lock();
        s.seq += 1;
        let frame = json!({"op": 0, "t": event, "s": s.seq, "d": d}).to_string();
        let seq = s.seq;
        s.log.push((seq, frame.clone()));
        if let Some(c) = &s.conn {
            let _ = c.send(Ctl::Frame(frame));
        }
    }

    /// A MESSAGE_CREATE from `user` in `channel` (a DM when `guild` is None).
    pub fn message(
        &self,
        channel: u64,
        guild: Option<u64>,
        user: u64,
        content: &str,
        mentions_bot: bool,
    ) -> u64 {
        let id = self.new_id();
        self.message_with_id(id, channel, guild, user, content, mentions_bot);
        id
    }

    pub fn message_with_id(
        &self,
        id: u64,
        channel: u64,
        guild: Option<u64>,
        user: u64,
        content: &str,
        mentions_bot: bool,
    ) {
        let mut d = message_json(id, channel, &user_json(user, false), content);
        if mentions_bot {
            d["mentions"] = json!([user_json(BOT_ID, true)]);
        }
        if let Some(g) = guild {
            d["guild_id"] = json!(g.to_string());
            d["member"] = json!({"roles": [], "joined_at": "2025-01-01T00:00:00.000000+00:00",
                "deaf": false, "mute": false, "flags": 0});
        }
        self.dispatch("MESSAGE_CREATE", d);
    }

    /// A press of button `custom_id` on the bot's message `message_id` by `user`.
    pub fn press(
        &self,
        channel: u64,
        guild: Option<u64>,
        message_id: u64,
        user: u64,
        custom_id: &str,
    ) -> u64 {
        let id = self.new_id();
        let mut d = json!({
            "id": id.to_string(), "application_id": APP_ID.to_string(), "type": 3,
            "data": {"custom_id": custom_id, "component_type": 2},
            "channel_id": channel.to_string(),
            "token": format!("press-token-{id}"), "version": 1,
            "message": message_json(message_id, channel, &user_json(BOT_ID, true), "How helpful were my last two replies?"),
            "locale": "en-US", "entitlements": [], "attachment_size_limit": 10_485_760,
            "app_permissions": "2248473465835073",
        });
        with_invoker(&mut d, guild, user, "0");
        self.dispatch("INTERACTION_CREATE", d);
        id
    }

    /// A slash command: `name` with an optional subcommand, by `user` whose permissions
    /// in the channel (as Discord computes them) are `permissions`.
    #[allow(clippy::too_many_arguments)]
    pub fn slash(
        &self,
        channel: u64,
        guild: Option<u64>,
        user: u64,
        permissions: &str,
        name: &str,
        sub: Option<&str>,
        options: Value,
    ) -> u64 {
        let id = self.new_id();
        // Channel options (type 7) come with the channel itself under `resolved`.
        let mut channels = serde_json::Map::new();
        for o in options.as_array().into_iter().flatten() {
            if o["type"] == 7 {
                let cid = o["value"].as_str().unwrap_or_default().to_string();
                channels.insert(
                    cid.clone(),
                    json!({"id": cid, "name": "mods", "type": 0, "permissions": "2248473465835073"}),
                );
            }
        }
        let opts = match sub {
            Some(s) => json!([{"name": s, "type": 1, "options": options}]),
            None => options,
        };
        let mut d = json!({
            "id": id.to_string(), "application_id": APP_ID.to_string(), "type": 2,
            "data": {"id": self.new_id().to_string(), "name": name, "type": 1, "options": opts,
                "resolved": {"channels": channels}},
            "channel_id": channel.to_string(),
            "token": format!("slash-token-{id}"), "version": 1,
            "locale": "en-US", "entitlements": [], "attachment_size_limit": 10_485_760,
            "app_permissions": "2248473465835073",
        });
        with_invoker(&mut d, guild, user, permissions);
        self.dispatch("INTERACTION_CREATE", d);
        id
    }

    /// Cuts the gateway connection (no close frame).
    pub fn drop_connection(&self) {
        let mut s = self.lock();
        if let Some(c) = s.conn.take() {
            let _ = c.send(Ctl::Drop);
        }
    }

    pub fn connected(&self) -> bool {
        self.lock().conn.is_some()
    }

    pub fn identifies(&self) -> Vec<Value> {
        self.lock().identifies.clone()
    }

    pub fn resumes(&self) -> Vec<Value> {
        self.lock().resumes.clone()
    }

    /// The next `times` calls of `method` on paths starting with `path` fail with `status`.
    pub fn fail(&self, method: &str, path: &str, status: u16, times: usize) {
        let mut s = self.lock();
        let q = s
            .failures
            .entry((method.to_string(), path.to_string()))
            .or_default();
        for _ in 0..times {
            q.push_back(status);
        }
    }

    pub fn calls(&self) -> Vec<RestCall> {
        self.lock().calls.clone()
    }

    /// Messages posted to `channel` (content, components, id), in order.
    pub fn posted(&self, channel: u64) -> Vec<RestCall> {
        let path = format!("/api/v10/channels/{channel}/messages");
        self.calls()
            .into_iter()
            .filter(|c| c.method == "POST" && c.path == path && !c.result.is_null())
            .collect()
    }

    pub fn texts_in(&self, channel: u64) -> Vec<String> {
        self.posted(channel)
            .iter()
            .map(|c| c.body["content"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Calls whose path contains `fragment`.
    pub fn calls_to(&self, method: &str, fragment: &str) -> Vec<RestCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method && c.path.contains(fragment))
            .collect()
    }

    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DiscordStandIn) -> bool,
    ) {
        let start = Instant::now();
        while !check(self) {
            if start.elapsed() > timeout {
                let calls: Vec<String> = self
                    .calls()
                    .iter()
                    .map(|c| format!("{} {} {}", c.method, c.path, c.body))
                    .collect();
                panic!(
                    "timed out waiting for {what}; REST calls:\n{}",
                    calls.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub fn user_json(id: u64, bot: bool) -> Value {
    json!({"id": id.to_string(), "username": format!("user{id}"), "discriminator": "0",
        "global_name": null, "avatar": null, "bot": bot})
}

fn message_json(id: u64, channel: u64, author: &Value, content: &str) -> Value {
    json!({"id": id.to_string(), "channel_id": channel.to_string(), "author": author,
        "content": content, "timestamp": "2026-11-24T07:00:00.000000+00:00", "edited_timestamp": null,
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0, "components": []})
}

fn with_invoker(d: &mut Value, guild: Option<u64>, user: u64, permissions: &str) {
    match guild {
        Some(g) => {
            d["guild_id"] = json!(g.to_string());
            d["member"] = json!({"user": user_json(user, false), "roles": [],
                "joined_at": "2025-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "pending": false, "permissions": permissions});
        }
        None => d["user"] = user_json(user, false),
    }
}

async fn gateway(State(st): State<DiscordStandIn>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| connection(st, socket))
}

async fn connection(st: DiscordStandIn, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Ctl>();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}}).to_string();
    if socket.send(WsMessage::Text(hello.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            ctl = rx.recv() => match ctl {
                Some(Ctl::Frame(f)) => {
                    if socket.send(WsMessage::Text(f.into())).await.is_err() { break; }
                }
                Some(Ctl::Drop) | None => return, // dropped without a close frame
            },
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { break };
                let text = match frame {
                    WsMessage::Text(t) => t.to_string(),
                    WsMessage::Binary(b) => String::from_utf8_lossy(&b).to_string(),
                    WsMessage::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(1) => {
                        st.lock().heartbeats += 1;
                        let ack = json!({"op": 11}).to_string();
                        if socket.send(WsMessage::Text(ack.into())).await.is_err() { break; }
                    }
                    Some(2) => {
                        let ready = {
                            let mut s = st.lock();
                            s.identifies.push(v["d"].clone());
                            s.session_id = format!("session-{}", s.identifies.len());
                            s.seq += 1;
                            let frame = json!({"op": 0, "t": "READY", "s": s.seq, "d": {
                                "v": 10, "user": user_json(BOT_ID, true), "guilds": [],
                                "session_id": s.session_id, "resume_gateway_url": st.ws_url,
                                "application": {"id": APP_ID.to_string(), "flags": 0},
                                "private_channels": [], "relationships": []}}).to_string();
                            let seq = s.seq;
                            s.log.push((seq, frame.clone()));
                            s.conn = Some(tx.clone());
                            frame
                        };
                        if socket.send(WsMessage::Text(ready.into())).await.is_err() { break; }
                    }
                    Some(6) => {
                        let (frames, ok) = {
                            let mut s = st.lock();
                            s.resumes.push(v["d"].clone());
                            let ok = v["d"]["session_id"].as_str() == Some(s.session_id.as_str());
                            let after = v["d"]["seq"].as_u64().unwrap_or(0);
                            let mut frames: Vec<String> = s.log.iter().filter(|(q, _)| *q > after).map(|(_, f)| f.clone()).collect();
                            if ok {
                                s.seq += 1;
                                let resumed = json!({"op": 0, "t": "RESUMED", "s": s.seq, "d": {}}).to_string();
                                let seq = s.seq;
                                s.log.push((seq, resumed.clone()));
                                frames.push(resumed);
                                s.conn = Some(tx.clone());
                            }
                            (frames, ok)
                        };
                        if !ok {
                            let invalid = json!({"op": 9, "d": false}).to_string();
                            let _ = socket.send(WsMessage::Text(invalid.into())).await;
                            continue;
                        }
                        for f in frames {
                            if socket.send(WsMessage::Text(f.into())).await.is_err() { break; }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    // A clean close from the client: finish the handshake.
    let _ = socket.send(WsMessage::Close(None)).await;
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "404: Not Found", "code": 0})),
    )
        .into_response()
}

async fn rest(
    State(st): State<DiscordStandIn>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = uri.path().to_string();
    let method = method.as_str().to_string();
    let body: Value = match super::multipart_boundary(&headers) {
        // Messages with attachments: `payload_json` and `files[N]` parts. The body is
        // recorded as the payload, with the files' contents under "files".
        Some(boundary) => multipart_message(&body, &boundary),
        None => serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    let planned = {
        let mut s = st.lock();
        let key = s
            .failures
            .keys()
            .find(|(m, p)| *m == method && path.starts_with(p.as_str()))
            .cloned();
        key.and_then(|k| s.failures.get_mut(&k).and_then(|q| q.pop_front()))
    };
    let (response, result) = match planned {
        Some(429) => (
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1"), ("x-ratelimit-remaining", "0"), ("x-ratelimit-reset-after", "0.3")],
                Json(json!({"message": "You are being rate limited.", "retry_after": 0.3, "global": false})),
            )
                .into_response(),
            Value::Null,
        ),
        Some(code) => (
            (StatusCode::from_u16(code).unwrap(), Json(json!({"message": "Server error", "code": 0}))).into_response(),
            Value::Null,
        ),
        None => answer(&st, &method, &path, &body),
    };
    st.lock().calls.push(RestCall {
        method,
        path,
        body,
        result,
    });
    response
}

fn answer(st: &DiscordStandIn, method: &str, path: &str, body: &Value) -> (Response, Value) {
    let ok = |v: Value| (Json(v.clone()).into_response(), v);
    let no_content = || (StatusCode::NO_CONTENT.into_response(), json!({}));
    let Some(rest) = path.strip_prefix("/api/v10") else {
        return (not_found(), Value::Null);
    };
    let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({"url": st.ws_url})),
        ("GET", ["gateway", "bot"]) => ok(json!({"url": st.ws_url, "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})),
        ("GET", ["oauth2", "applications", "@me"]) => {
            ok(json!({"id": APP_ID.to_string(), "name": "Kindred",
            "icon": null, "description": "", "bot_public": true, "bot_require_code_grant": false,
            "verify_key": "00", "team": null, "owner": user_json(42, false), "flags": 0}))
        }
        ("GET", ["users", "@me"]) => ok(user_json(BOT_ID, true)),
        ("PUT", ["applications", _, "commands"]) => {
            let cmds: Vec<Value> = body
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|mut c| {
                    c["id"] = json!(st.new_id().to_string());
                    c["application_id"] = json!(APP_ID.to_string());
                    c["version"] = json!("1");
                    if c.get("type").is_none() {
                        c["type"] = json!(1);
                    }
                    if c.get("options").is_none() {
                        c["options"] = json!([]);
                    }
                    c
                })
                .collect();
            ok(Value::Array(cmds))
        }
        ("POST", ["channels", ch, "messages"]) => {
            // Discord's de-duplication: a message whose nonce this channel has seen
            // (with enforce_nonce) is answered with the first one, not posted again.
            let nonce_key = match (body["enforce_nonce"].as_bool(), body["nonce"].as_str()) {
                (Some(true), Some(n)) => Some(format!("{ch}/{n}")),
                _ => None,
            };
            if let Some(k) = &nonce_key {
                if let Some(first) = st.lock().nonces.get(k).cloned() {
                    // (Recorded without a result: it is no new message.)
                    return (Json(first).into_response(), Value::Null);
                }
            }
            let id = st.new_id();
            let mut m = message_json(
                id,
                ch.parse().unwrap_or(0),
                &user_json(BOT_ID, true),
                body["content"].as_str().unwrap_or(""),
            );
            m["components"] = body.get("components").cloned().unwrap_or(json!([]));
            if let Some(k) = nonce_key {
                st.lock().nonces.insert(k, m.clone());
            }
            ok(m)
        }
        ("PATCH", ["channels", ch, "messages", mid]) => {
            let mut m = message_json(
                mid.parse().unwrap_or(0),
                ch.parse().unwrap_or(0),
                &user_json(BOT_ID, true),
                body["content"].as_str().unwrap_or(""),
            );
            m["components"] = body.get("components").cloned().unwrap_or(json!([]));
            ok(m)
        }
        ("POST", ["channels", _, "typing"]) => no_content(),
        ("POST", ["interactions", _, _, "callback"]) => no_content(),
        ("POST", ["webhooks", _, _]) | ("PATCH", ["webhooks", _, _, "messages", _]) => {
            let id = st.new_id();
            let mut m = message_json(
                id,
                1,
                &user_json(BOT_ID, true),
                body["content"].as_str().unwrap_or(""),
            );
            m["flags"] = body.get("flags").cloned().unwrap_or(json!(0));
            ok(m)
        }
        _ => (not_found(), Value::Null),
    }
}

fn multipart_message(body: &[u8], boundary: &str) -> Value {
    let mut payload = json!({});
    let mut files = Vec::new();
    for (name, file_name, value) in super::multipart_parts(body, boundary) {
        if name == "payload_json" {
            payload = serde_json::from_str(&value).unwrap_or(json!({}));
        } else if name.starts_with("files") {
            files.push(json!({"name": file_name.unwrap_or_default(), "content": value}));
        }
    }
    payload["files"] = Value::Array(files);
    payload
}
