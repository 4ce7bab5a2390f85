//! A stand-in Telegram Bot API server on loopback, speaking the real HTTP/JSON protocol
//! (`POST /bot<TOKEN>/<method>`, `{"ok":…,"result":…}`) to the real teloxide client.
//! It keeps an update queue with offsets and long polling, records every call, answers
//! with objects shaped like Telegram's, and can fail chosen calls (429 with
//! `retry_after`) or hold them (never answer) to simulate trouble.
#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub const BOT_ID: i64 = 4242;
pub const BOT_USERNAME: &str = "KindredTestBot";

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Lower-cased method name (`sendmessage`).
    pub method: String,
    pub body: Value,
    /// The `result` answered (null for failures and held calls).
    pub result: Value,
    /// When the call arrived.
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update_id: i64,
    /// The highest offset a `getUpdates` call has confirmed.
    confirmed: i64,
    calls: Vec<Call>,
    next_message_id: i64,
    /// Planned failures per method: (HTTP status, retry_after).
    failures: HashMap<String, VecDeque<(u16, Option<u64>)>>,
    /// Methods whose calls are never answered.
    held: Vec<String>,
    /// Chats whose sendMessage calls wait until released.
    held_chats: Vec<i64>,
    /// (chat, user) → status for getChatMember ("gone": Telegram refuses, as when the
    /// bot has left the chat).
    members: HashMap<(i64, i64), String>,
}

#[derive(Clone)]
pub struct TelegramStandIn {
    pub url: String,
    pub token: String,
    inner: Arc<Mutex<Inner>>,
    news: Arc<Notify>,
}

impl TelegramStandIn {
    /// Starts on 127.0.0.1 with a random port, in the current tokio runtime.
    pub async fn start(token: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let this = Self {
            url: format!("http://{addr}/"),
            token: token.to_string(),
            inner: Arc::new(Mutex::new(Inner {
                next_update_id: 1000,
                next_message_id: 500,
                ..Default::default()
            })),
            news: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(api))
            .fallback(|| async { not_found().0 })
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        this
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Queues an update (its `update_id` is assigned here) and returns the id.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut s = self.lock();
            s.next_update_id += 1;
            let id = s.next_update_id;
            update["update_id"] = json!(id);
            s.updates.push_back(update);
            id
        };
        self.news.notify_waiters();
        id
    }

    /// A text message from `user` in a private chat with them.
    pub fn dm(&self, user: i64, text: &str) -> i64 {
        let mid = self.next_message_id();
        self.push_update(json!({"message": {
            "message_id": mid, "date": 1_700_000_000,
            "chat": {"id": user, "type": "private", "first_name": format!("User{user}")},
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "text": text}}))
    }

    /// A text message from `user` in group `chat`.
    pub fn group_message(&self, chat: i64, user: i64, text: &str) -> i64 {
        let mid = self.next_message_id();
        self.push_update(json!({"message": {
            "message_id": mid, "date": 1_700_000_000,
            "chat": {"id": chat, "type": "supergroup", "title": "Support circle"},
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "text": text}}))
    }

    /// A press on an inline button of the bot's message `message_id` in `chat`; returns
    /// the callback query id (what `answerCallbackQuery` names).
    pub fn press(&self, chat: i64, message_id: i64, user: i64, data: &str) -> String {
        let chat_obj = if chat > 0 {
            json!({"id": chat, "type": "private", "first_name": format!("User{chat}")})
        } else {
            json!({"id": chat, "type": "supergroup", "title": "Support circle"})
        };
        let query_id = format!("cbq-{}", self.next_message_id());
        self.push_update(json!({"callback_query": {
            "id": query_id,
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "chat_instance": "ci-1",
            "data": data,
            "message": {"message_id": message_id, "date": 1_700_000_000, "chat": chat_obj,
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "Kindred", "username": BOT_USERNAME},
                "text": "How helpful were my last two replies?"}}}));
        query_id
    }

    fn next_message_id(&self) -> i64 {
        let mut s = self.lock();
        s.next_message_id += 1;
        s.next_message_id
    }

    /// The next `times` calls of `method` fail with 429 and `retry_after` seconds.
    pub fn rate_limit(&self, method: &str, times: usize, retry_after: u64) {
        let mut s = self.lock();
        let q = s.failures.entry(method.to_lowercase()).or_default();
        for _ in 0..times {
            q.push_back((429, Some(retry_after)));
        }
    }

    /// Answers `method` again.
    pub fn release(&self, method: &str) {
        let m = method.to_lowercase();
        self.lock().held.retain(|h| *h != m);
    }

    /// Calls of `method` are never answered from now on.
    pub fn hold(&self, method: &str) {
        self.lock().held.push(method.to_lowercase());
    }

    /// sendMessage calls to `chat` wait (unanswered) until [`Self::release_chat`]: a
    /// chat whose sends hang.
    pub fn hold_chat(&self, chat: i64) {
        self.lock().held_chats.push(chat);
    }

    pub fn release_chat(&self, chat: i64) {
        self.lock().held_chats.retain(|c| *c != chat);
    }

    pub fn set_member(&self, chat: i64, user: i64, status: &str) {
        self.lock().members.insert((chat, user), status.to_string());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let m = method.to_lowercase();
        self.calls().into_iter().filter(|c| c.method == m).collect()
    }

    /// Texts of `sendMessage` calls to `chat`, in order.
    pub fn texts_to(&self, chat: i64) -> Vec<String> {
        self.calls_of("sendMessage")
            .into_iter()
            .filter(|c| c.body["chat_id"].as_i64() == Some(chat))
            .map(|c| c.body["text"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// The highest offset confirmed by `getUpdates` so far.
    pub fn confirmed_offset(&self) -> i64 {
        self.lock().confirmed
    }

    /// Waits until `check` holds over the recorded calls.
    pub async fn wait_until(&self, what: &str, timeout: Duration, check: impl Fn(&[Call]) -> bool) {
        let start = Instant::now();
        loop {
            if check(&self.calls()) {
                return;
            }
            if start.elapsed() > timeout {
                let summary: Vec<String> = self
                    .calls()
                    .iter()
                    .filter(|c| c.method != "getupdates")
                    .map(|c| format!("{} {}", c.method, c.body))
                    .collect();
                panic!(
                    "timed out waiting for {what}; calls so far:\n{}",
                    summary.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ok(result: Value) -> (Response, Value) {
    (
        Json(json!({"ok": true, "result": result.clone()})).into_response(),
        result,
    )
}

fn error(status: StatusCode, description: &str, retry_after: Option<u64>) -> (Response, Value) {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Some(s) = retry_after {
        body["parameters"] = json!({"retry_after": s});
    }
    ((status, Json(body)).into_response(), Value::Null)
}

fn not_found() -> (Response, Value) {
    error(StatusCode::NOT_FOUND, "Not Found", None)
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Kindred", "username": BOT_USERNAME})
}

fn chat_of(id: i64) -> Value {
    if id > 0 {
        json!({"id": id, "type": "private", "first_name": format!("User{id}")})
    } else {
        json!({"id": id, "type": "supergroup", "title": "Support circle"})
    }
}

async fn api(
    State(st): State<TelegramStandIn>,
    Path((bot, method)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(st.token.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None).0;
    }
    let method = method.to_lowercase();
    // Methods that upload files (sendDocument, setWebhook's certificate) arrive as
    // multipart forms.
    let body: Value = match super::multipart_boundary(&headers) {
        Some(boundary) => form_fields(&body, &boundary),
        None => serde_json::from_slice(&body).unwrap_or(json!({})),
    };
    if method == "sendmessage" {
        if let Some(chat) = body["chat_id"].as_i64() {
            let mut announced = false;
            while st.lock().held_chats.contains(&chat) {
                if !announced {
                    // Seen (for tests that wait on it), answered later.
                    st.lock().calls.push(Call {
                        method: "held:sendmessage".into(),
                        body: body.clone(),
                        result: Value::Null,
                        at: Instant::now(),
                    });
                    announced = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let planned = {
        let mut s = st.lock();
        if s.held.contains(&method) {
            s.calls.push(Call {
                method: method.clone(),
                body: body.clone(),
                result: Value::Null,
                at: Instant::now(),
            });
            None
        } else {
            Some(s.failures.get_mut(&method).and_then(|q| q.pop_front()))
        }
    };
    let response = answer(&st, &method, &body, planned).await;
    if planned.is_some() {
        let result = response.1.clone();
        st.lock().calls.push(Call {
            method,
            body,
            result,
            at: Instant::now(),
        });
    }
    response.0
}

async fn answer(
    st: &TelegramStandIn,
    method: &str,
    body: &Value,
    planned: Option<Option<(u16, Option<u64>)>>,
) -> (Response, Value) {
    let Some(failure) = planned else {
        std::future::pending::<()>().await;
        unreachable!()
    };
    if let Some((status, retry_after)) = failure {
        let code = StatusCode::from_u16(status).unwrap();
        let text = match retry_after {
            Some(s) => format!("Too Many Requests: retry after {s}"),
            None => "Bad Request".to_string(),
        };
        return error(code, &text, retry_after);
    }
    match method {
        "getme" => ok(
            json!({"id": BOT_ID, "is_bot": true, "first_name": "Kindred",
            "username": BOT_USERNAME, "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false}),
        ),
        "getupdates" => get_updates(st.clone(), body.clone()).await,
        "sendmessage" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let mut m = json!({"message_id": st.next_message_id(), "date": 1_700_000_100,
                "chat": chat_of(chat), "from": bot_user(), "text": body["text"].clone()});
            if let Some(markup) = body.get("reply_markup") {
                m["reply_markup"] = markup.clone();
            }
            ok(m)
        }
        "editmessagetext" | "editmessagereplymarkup" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            ok(
                json!({"message_id": body["message_id"].clone(), "date": 1_700_000_100,
                "edit_date": 1_700_000_200, "chat": chat_of(chat), "from": bot_user(),
                "text": body.get("text").cloned().unwrap_or(json!(""))}),
            )
        }
        "sendchataction"
        | "answercallbackquery"
        | "setmycommands"
        | "deletewebhook"
        | "setwebhook" => ok(json!(true)),
        "getchatmember" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let user = body["user_id"].as_i64().unwrap_or(0);
            let status = st
                .lock()
                .members
                .get(&(chat, user))
                .cloned()
                .unwrap_or("member".into());
            if status == "gone" {
                // What Telegram answers once the bot is no longer in the chat.
                return error(StatusCode::BAD_REQUEST, "Bad Request: chat not found", None);
            }
            let user_obj =
                json!({"id": user, "is_bot": false, "first_name": format!("User{user}")});
            ok(match status.as_str() {
                "creator" => json!({"status": "creator", "user": user_obj, "is_anonymous": false}),
                _ => json!({"status": "member", "user": user_obj}),
            })
        }
        _ => not_found(),
    }
}

/// Long polling: confirms updates below `offset`, then answers with what is pending,
/// waiting up to `timeout` seconds (capped well under teloxide's 17 s) for news.
async fn get_updates(st: TelegramStandIn, body: Value) -> (Response, Value) {
    let offset = body["offset"].as_i64().unwrap_or(0);
    let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0).min(10));
    let limit = body["limit"].as_u64().unwrap_or(100) as usize;
    let deadline = Instant::now() + timeout;
    loop {
        let notified = st.news.notified();
        {
            let mut s = st.lock();
            if offset > 0 {
                s.confirmed = s.confirmed.max(offset);
                s.updates
                    .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            let pending: Vec<Value> = s.updates.iter().take(limit).cloned().collect();
            if !pending.is_empty() || Instant::now() >= deadline {
                return ok(Value::Array(pending));
            }
        }
        let _ = tokio::time::timeout_at(deadline.into(), notified).await;
    }
}

/// The text fields of a multipart/form-data body as a JSON object (values that parse as
/// JSON, such as numbers and arrays, are kept as such).
fn form_fields(body: &[u8], boundary: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for (name, _, value) in super::multipart_parts(body, boundary) {
        let parsed = serde_json::from_str(&value).unwrap_or_else(|_| json!(value));
        fields.insert(name, parsed);
    }
    // A file sent as `attach://NAME` is the part called NAME.
    let attached: Vec<(String, Value)> = fields
        .iter()
        .filter_map(|(k, v)| {
            let part = v.as_str()?.strip_prefix("attach://")?;
            Some((k.clone(), fields.get(part)?.clone()))
        })
        .collect();
    for (k, v) in attached {
        fields.insert(k, v);
    }
    Value::Object(fields)
}
