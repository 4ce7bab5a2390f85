//! The Telegram adapter: teloxide's Bot API client on one side, Kindred's port on the
//! other. It knows Telegram (updates, inline keyboards, callback queries, group admins)
//! and nothing about the model or the database.
//!
//! Why it runs its own `getUpdates` loop instead of teloxide's dispatcher: an update may
//! only be acknowledged (the offset moved past it) once Kindred has stored it, so that a
//! crash between receipt and reply loses nothing. The dispatcher acknowledges as soon as
//! it has fetched. Webhook mode keeps the same promise by answering Telegram's POST only
//! after the event is stored (Telegram retries anything else).
#![forbid(unsafe_code)]

mod convert;
mod send;
mod webhook;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use kindred_adapter::{Adapter, AdapterIo, Inbox, Stored};
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, BotCommand, Update};
use teloxide::RequestError;
pub use url::Url;

pub use convert::{Converted, Converter};

/// The platform name in [`kindred_adapter::ChatRef::platform`].
pub const PLATFORM: &str = "telegram";

/// How updates reach Kindred.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Long polling with `getUpdates`; `timeout` is how long one call waits for news.
    Polling { timeout: Duration },
    /// Telegram posts updates to `public_url`, which reaches Kindred at `listen`. With a
    /// fixed `secret` the webhook was registered at deploy time ([`set_webhook`]) and
    /// is left alone (several instances share it); without one, a fresh secret is made
    /// and registered at every start.
    Webhook {
        public_url: Url,
        listen: SocketAddr,
        secret: Option<String>,
    },
}

/// Everything the adapter needs to run.
#[derive(Clone)]
pub struct TelegramConfig {
    /// The bot token. Never logged: see [`Redactor`].
    pub token: String,
    /// The Bot API server (the public one, a self-hosted one, or a test stand-in).
    pub api_url: Url,
    pub mode: Mode,
    /// Messages a second to all chats together (see [`kindred_adapter::Pace::TELEGRAM`]).
    pub messages_per_second: u32,
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramConfig")
            .field("token", &"[redacted]")
            .field("api_url", &self.api_url.as_str())
            .field("mode", &self.mode)
            .field("messages_per_second", &self.messages_per_second)
            .finish()
    }
}

/// Removes the token from error texts: reqwest puts the request URL, and with it
/// `/bot<TOKEN>/`, into its errors.
#[derive(Clone)]
pub struct Redactor(String);

impl Redactor {
    pub fn new(token: &str) -> Self {
        Self(token.to_string())
    }

    pub fn clean(&self, e: &dyn std::fmt::Display) -> String {
        let text = e.to_string();
        if self.0.is_empty() {
            text
        } else {
            text.replace(&self.0, "[token]")
        }
    }
}

/// The commands shown in Telegram's menu (`setMyCommands`).
pub fn menu_commands() -> Vec<BotCommand> {
    vec![
        BotCommand::new("start", "Begin a conversation"),
        BotCommand::new("end", "Finish the conversation (with a short survey)"),
        BotCommand::new("reset", "Start fresh, leaving earlier messages aside"),
        BotCommand::new("rate", "Rate my last two replies: /rate 1 to 5"),
        BotCommand::new("forget", "Delete everything stored about you"),
        BotCommand::new(
            "privacy",
            "Whether your words are kept: /privacy on or /privacy off",
        ),
        BotCommand::new("mydata", "Everything stored about you, as a file"),
        BotCommand::new("help", "What I can do, and crisis resources"),
    ]
}

/// The menu group admins see: everyone's commands, and the ones that run their group.
pub fn admin_menu_commands() -> Vec<BotCommand> {
    let mut commands = menu_commands();
    commands.extend([
        BotCommand::new("enable", "Turn Kindred on in this group"),
        BotCommand::new("disable", "Turn Kindred off in this group"),
        BotCommand::new(
            "alerts",
            "Send risk alerts to a moderators' chat: /alerts, /alerts CODE, /alerts off",
        ),
    ]);
    commands
}

/// The Telegram adapter.
pub struct TelegramAdapter {
    config: TelegramConfig,
}

impl TelegramAdapter {
    pub fn new(config: TelegramConfig) -> Self {
        Self { config }
    }

    fn bot(&self) -> Bot {
        Bot::new(self.config.token.clone()).set_api_url(self.config.api_url.clone())
    }
}

impl Adapter for TelegramAdapter {
    fn platform(&self) -> &'static str {
        PLATFORM
    }

    async fn run(self, io: AdapterIo) -> Result<()> {
        let AdapterIo {
            inbound,
            outbound,
            mut shutdown,
            connection,
        } = io;
        let bot = self.bot();
        let redact = Redactor::new(&self.config.token);
        let me = tokio::select! {
            _ = shutdown.recv() => return Ok(()),
            me = get_me_with_retries(&bot, &redact) => me?,
        };
        let username = me.user.username.clone().unwrap_or_default();
        tracing::info!(bot = %username, api = %self.config.api_url, "connected to Telegram");
        connection.up();
        if let Err(e) = send::retrying(|| bot.set_my_commands(menu_commands()).send()).await {
            tracing::warn!(error = %redact.clean(&e), "registering the command menu failed");
        }
        let admins = teloxide::types::BotCommandScope::AllChatAdministrators;
        if let Err(e) = send::retrying(|| {
            bot.set_my_commands(admin_menu_commands())
                .scope(admins.clone())
                .send()
        })
        .await
        {
            tracing::warn!(error = %redact.clean(&e), "registering the admins' command menu failed");
        }
        let converter = Converter::new(me.user.id, &username);
        let sender = tokio::spawn(send::run_outbound(
            bot.clone(),
            outbound,
            inbound.clone(),
            redact.clone(),
            self.config.messages_per_second,
        ));
        let handler = UpdateHandler {
            bot: bot.clone(),
            converter,
            inbox: inbound,
            redact: redact.clone(),
        };
        let result = match self.config.mode.clone() {
            Mode::Polling { timeout } => {
                poll(&bot, &handler, timeout, &connection, &mut shutdown).await
            }
            Mode::Webhook {
                public_url,
                listen,
                secret,
            } => webhook::serve(&bot, handler, public_url, listen, secret, &mut shutdown).await,
        };
        connection.down();
        kindred_adapter::drain_sender(sender).await;
        result
    }
}

/// Registers the webhook at `public_url` with the fixed `secret` (once, at deploy time,
/// for instances that share it): `kindred telegram set-webhook`.
pub async fn set_webhook(config: &TelegramConfig, public_url: &Url, secret: &str) -> Result<()> {
    webhook::check_secret(secret)?;
    let bot = Bot::new(config.token.clone()).set_api_url(config.api_url.clone());
    let redact = Redactor::new(&config.token);
    send::retrying(|| {
        bot.set_webhook(public_url.clone())
            .secret_token(secret.to_string())
            .allowed_updates(allowed_updates())
            .send()
    })
    .await
    .map_err(|e| anyhow::anyhow!("setWebhook failed: {}", redact.clean(&e)))?;
    Ok(())
}

/// `getMe` until it works: the network may not be up yet when the daemon starts. A
/// rejected token is final.
async fn get_me_with_retries(bot: &Bot, redact: &Redactor) -> Result<teloxide::types::Me> {
    let mut wait = Duration::from_secs(1);
    loop {
        match bot.get_me().send().await {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(e)) => {
                bail!(
                    "Telegram refused the bot token ({}): check KINDRED_TELEGRAM_TOKEN or telegram.token_file",
                    redact.clean(&e)
                )
            }
            Err(RequestError::RetryAfter(s)) => tokio::time::sleep(s.duration()).await,
            Err(e) => {
                tracing::warn!(error = %redact.clean(&e), retry_in_s = wait.as_secs(), "cannot reach Telegram yet");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// What became of one update.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored, a duplicate, or nothing Kindred handles: Telegram may forget it.
    Acknowledge,
    /// Could not be stored: Telegram must deliver it again (for as long as it takes: a
    /// database that cannot store is everyone's problem, not this update's).
    Retry,
    /// Telegram failed us while handling it (a network error): delivered again, but only
    /// [`PLATFORM_ATTEMPTS`] times, so that one update cannot stop all intake.
    RetryPlatform,
    /// Kindred is stopping.
    Stop,
}

/// Turns updates into engine events.
#[derive(Clone)]
pub(crate) struct UpdateHandler {
    bot: Bot,
    converter: Converter,
    inbox: Inbox,
    redact: Redactor,
}

impl UpdateHandler {
    pub(crate) async fn handle(&self, update: Update) -> Outcome {
        let key = format!("update:{}", update.id.0);
        match self.converter.convert(update) {
            Converted::Ignore(why) => {
                tracing::debug!(%why, "update ignored");
                Outcome::Acknowledge
            }
            Converted::Event(ev) => self.deliver(key, ev).await,
            Converted::Moderation {
                event,
                by_anonymous_admin: true,
                ..
            } => self.deliver(key, event).await,
            Converted::Moderation {
                event,
                chat_id,
                user_id,
                by_anonymous_admin: false,
            } => {
                // Only a group's admins may moderate it: ask Telegram, never the message.
                let privileged = send::retrying(|| {
                    self.bot
                        .get_chat_member(ChatId(chat_id), UserId(user_id))
                        .send()
                })
                .await;
                match privileged {
                    Ok(member) if member.is_privileged() => self.deliver(key, event).await,
                    Ok(_) => {
                        let _ = send::retrying(|| {
                            self.bot
                                .send_message(ChatId(chat_id), convert::ADMINS_ONLY)
                                .send()
                        })
                        .await;
                        Outcome::Acknowledge
                    }
                    // Telegram's own refusal (the bot left the group, the chat is gone) will
                    // not change on a retry: the command is skipped.
                    Err(RequestError::Api(e)) => {
                        tracing::warn!(error = %e, "checking a group admin was refused; the command is skipped");
                        Outcome::Acknowledge
                    }
                    Err(e) => {
                        tracing::warn!(error = %self.redact.clean(&e), "checking a group admin failed");
                        Outcome::RetryPlatform
                    }
                }
            }
        }
    }

    async fn deliver(&self, key: String, ev: kindred_adapter::Inbound) -> Outcome {
        match self.inbox.deliver(key, ev).await {
            Ok(Stored::New) | Ok(Stored::Duplicate) => Outcome::Acknowledge,
            Ok(Stored::Failed(_)) => Outcome::Retry,
            Err(_) => Outcome::Stop,
        }
    }
}

/// The update kinds Kindred reads; everything else is never sent.
pub fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
    ]
}

/// Times an update whose handling Telegram's side keeps failing is tried before it is
/// skipped (with the back-off, about 1.5 minutes).
const PLATFORM_ATTEMPTS: u32 = 8;

/// Long polling. The offset only moves past an update once it is stored.
async fn poll(
    bot: &Bot,
    handler: &UpdateHandler,
    timeout: Duration,
    connection: &kindred_adapter::Connection,
    shutdown: &mut tokio::sync::broadcast::Receiver<()>,
) -> Result<()> {
    // A webhook left over from webhook mode would make getUpdates fail with 409.
    if let Err(e) = send::retrying(|| bot.delete_webhook().send()).await {
        tracing::warn!(error = %handler.redact.clean(&e), "removing an old webhook failed");
    }
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_millis(500);
    // Failed attempts of updates that Telegram's side kept failing, by next offset.
    let mut attempts: std::collections::HashMap<i32, u32> = Default::default();
    loop {
        let request = bot
            .get_updates()
            .offset(offset)
            .timeout(timeout.as_secs() as u32)
            .allowed_updates(allowed_updates());
        let updates = tokio::select! {
            _ = shutdown.recv() => break,
            r = request.send() => r,
        };
        let updates = match updates {
            Ok(u) => {
                backoff = Duration::from_millis(500);
                connection.up();
                u
            }
            Err(RequestError::RetryAfter(s)) => {
                tracing::warn!(retry_after_s = s.seconds(), "Telegram asked to slow down");
                if sleep_or_shutdown(s.duration(), shutdown).await {
                    break;
                }
                continue;
            }
            Err(e) => {
                connection.down();
                tracing::warn!(error = %handler.redact.clean(&e), retry_in_ms = backoff.as_millis() as u64, "getUpdates failed");
                if sleep_or_shutdown(backoff, shutdown).await {
                    break;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        for update in updates {
            let next = update.id.0 as i32 + 1;
            let outcome = match handler.handle(update).await {
                Outcome::RetryPlatform => {
                    let n = attempts.entry(next).or_insert(0);
                    *n += 1;
                    if *n >= PLATFORM_ATTEMPTS {
                        tracing::warn!(
                            update = next - 1,
                            attempts = *n,
                            "an update kept failing and is skipped"
                        );
                        attempts.remove(&next);
                        Outcome::Acknowledge
                    } else {
                        Outcome::Retry
                    }
                }
                other => other,
            };
            match outcome {
                Outcome::Acknowledge => offset = offset.max(next),
                Outcome::RetryPlatform | Outcome::Retry => {
                    // Stop here; the same updates come back with the next call.
                    if sleep_or_shutdown(backoff, shutdown).await {
                        return acknowledge(bot, offset, &handler.redact).await;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    break;
                }
                Outcome::Stop => return acknowledge(bot, offset, &handler.redact).await,
            }
        }
    }
    acknowledge(bot, offset, &handler.redact).await
}

/// Tells Telegram which updates are done before stopping, so none is redelivered.
async fn acknowledge(bot: &Bot, offset: i32, redact: &Redactor) -> Result<()> {
    if offset > 0 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            bot.get_updates().offset(offset).timeout(0).limit(1).send(),
        )
        .await;
        if let Ok(Err(e)) = r {
            tracing::debug!(error = %redact.clean(&e), "final acknowledgement failed (updates will be deduplicated)");
        }
    }
    Ok(())
}

/// Sleeps; true if shutdown came first.
async fn sleep_or_shutdown(
    d: Duration,
    shutdown: &mut tokio::sync::broadcast::Receiver<()>,
) -> bool {
    tokio::select! {
        _ = shutdown.recv() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// Checks the configured URL before anything is sent: a typo must not send the token
/// to an unexpected host.
pub fn parse_api_url(s: &str) -> Result<Url> {
    let url = Url::parse(s).with_context(|| format!("telegram.api_url {s:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("telegram.api_url must be http:// or https://, not {s:?}");
    }
    Ok(url)
}
