//! The Discord adapter: serenity's gateway and REST clients with poise's slash
//! commands on one side, Kindred's port on the other. It knows Discord (intents,
//! interactions, buttons, permissions) and nothing about the model or the database.
//!
//! - DMs: every message goes to the engine.
//! - Guild channels: off until a moderator runs `/kindred enable` there (the engine
//!   keeps that setting); then the bot answers messages that mention it. Each member's
//!   session is their own.
//! - Slash commands are deferred at once (Discord allows 3 s) and the engine's answers
//!   to them arrive as ephemeral follow-ups, so nothing sensitive shows in a channel.
//! - Button presses are acknowledged at once (a deferred update) and the engine's
//!   answer follows as an ephemeral message; the rating message is edited in place.
//! - Intents: guilds, guild messages and direct messages. Not message content: a bot
//!   always receives the content of DMs and of messages that mention it, which is all
//!   Kindred reads.
#![forbid(unsafe_code)]

mod commands;
mod convert;
mod send;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use kindred_adapter::{Adapter, AdapterIo, Inbox, Stored};
use poise::serenity_prelude as serenity;
use serenity::{ClientBuilder, FullEvent, GatewayIntents, HttpBuilder};

/// The platform name in [`kindred_adapter::ChatRef::platform`].
pub const PLATFORM: &str = "discord";

/// Everything the adapter needs to run.
#[derive(Clone)]
pub struct DiscordConfig {
    /// The bot token. Never logged.
    pub token: String,
    /// Discord's HTTP API base (`https://discord.com`). Anything else is used as a proxy
    /// for every REST call (serenity's rate limiter is then off, and Kindred retries 429s
    /// itself); the gateway URL is whatever `GET /gateway` there returns.
    pub api_url: String,
    /// Register the slash commands globally at start-up.
    pub register_commands: bool,
    /// Which gateway shards this instance runs (`None`: the one shard of a small bot).
    pub shards: Option<Shards>,
}

/// The gateway shards one instance runs: `first..=last` of `total`, so that several
/// instances split a large bot's guilds. Discord delivers direct messages on shard 0:
/// the instance that runs it receives every DM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shards {
    pub first: u32,
    pub last: u32,
    pub total: u32,
}

impl std::str::FromStr for Shards {
    type Err = String;

    /// `N/TOTAL` or `FIRST-LAST/TOTAL`, e.g. `0-1/4` (shard ids count from 0).
    fn from_str(s: &str) -> Result<Self, String> {
        let usage = || {
            format!("{s:?} is not a shard set: write N/TOTAL or FIRST-LAST/TOTAL, e.g. 0-1/4 (ids from 0)")
        };
        let (ids, total) = s.trim().split_once('/').ok_or_else(usage)?;
        let total: u32 = total.trim().parse().map_err(|_| usage())?;
        let (first, last) = match ids.split_once('-') {
            Some((a, b)) => (
                a.trim().parse().map_err(|_| usage())?,
                b.trim().parse().map_err(|_| usage())?,
            ),
            None => {
                let n: u32 = ids.trim().parse().map_err(|_| usage())?;
                (n, n)
            }
        };
        if total == 0 || first > last || last >= total {
            return Err(usage());
        }
        Ok(Shards { first, last, total })
    }
}

impl std::fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("token", &"[redacted]")
            .field("api_url", &self.api_url)
            .field("register_commands", &self.register_commands)
            .finish()
    }
}

/// The intents Kindred asks for: no privileged ones.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::DIRECT_MESSAGES
}

/// Slash commands whose answer was deferred ("Kindred is thinking…"), by interaction
/// token. The engine's answers carry the token (see `Outbound`'s `interaction`), so they
/// become private follow-ups of the right command whatever else happens in the channel;
/// this set only lets the sender close a command the engine said nothing to.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deferred(Arc<Mutex<HashSet<String>>>);

impl Deferred {
    pub fn insert(&self, token: &str) {
        self.0.lock().unwrap().insert(token.to_string());
    }

    /// Whether `token` was deferred (and is no longer).
    pub fn remove(&self, token: &str) -> bool {
        self.0.lock().unwrap().remove(token)
    }
}

/// What poise hands every command and event.
pub(crate) struct Data {
    pub inbox: Inbox,
    pub deferred: Deferred,
    pub connection: kindred_adapter::Connection,
}

pub(crate) type Error = anyhow::Error;
pub(crate) type Ctx<'a> = poise::Context<'a, Data, Error>;

/// The Discord adapter.
pub struct DiscordAdapter {
    config: DiscordConfig,
}

impl DiscordAdapter {
    pub fn new(config: DiscordConfig) -> Self {
        Self { config }
    }
}

/// Whether the configured API base is Discord itself.
fn is_discord(api_url: &str) -> bool {
    api_url.trim_end_matches('/') == "https://discord.com"
}

impl Adapter for DiscordAdapter {
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
        let mut http = HttpBuilder::new(&self.config.token);
        if !is_discord(&self.config.api_url) {
            // serenity 0.12's rate limiter builds its requests without the proxy.
            http = http
                .proxy(self.config.api_url.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        let http = http.build();
        let deferred = Deferred::default();
        let register = self.config.register_commands;
        let data_inbox = inbound.clone();
        let data_deferred = deferred.clone();
        let data_connection = connection.clone();
        let framework = poise::Framework::builder()
            .options(poise::FrameworkOptions {
                commands: commands::all(),
                event_handler: |ctx, event| Box::pin(on_event(ctx, event)),
                on_error: |err| Box::pin(commands::on_error(err)),
                ..Default::default()
            })
            .setup(move |ctx, ready, framework| {
                Box::pin(async move {
                    tracing::info!(bot = %ready.user.name, guilds = ready.guilds.len(), "connected to Discord");
                    data_connection.up();
                    if register {
                        if let Err(e) =
                            poise::builtins::register_globally(ctx, &framework.options().commands).await
                        {
                            tracing::warn!(error = %e, "registering slash commands failed");
                        }
                    }
                    Ok(Data {
                        inbox: data_inbox,
                        deferred: data_deferred,
                        connection: data_connection,
                    })
                })
            })
            .build();
        let mut client = ClientBuilder::new_with_http(http, intents())
            .framework(framework)
            .await
            .context("cannot set up the Discord client")?;
        let sender = tokio::spawn(send::run_outbound(
            client.http.clone(),
            outbound,
            inbound.clone(),
            deferred,
        ));
        let shards = client.shard_manager.clone();
        let shard_set = self.config.shards;
        if let Some(sh) = shard_set {
            tracing::info!(
                first = sh.first,
                last = sh.last,
                total = sh.total,
                dms = (sh.first == 0),
                "running Discord gateway shards"
            );
        }
        let started = async {
            match shard_set {
                // serenity reads this range's end as the last shard (inclusive).
                Some(sh) => client.start_shard_range(sh.first..sh.last, sh.total).await,
                None => client.start().await,
            }
        };
        let result = tokio::select! {
            r = started => r.map_err(|e| anyhow::anyhow!("the Discord connection failed: {e}")),
            _ = shutdown.recv() => {
                shards.shutdown_all().await;
                Ok(())
            }
        };
        connection.down();
        kindred_adapter::drain_sender(sender).await;
        result
    }
}

/// Gateway events other than slash commands (poise handles those).
async fn on_event(
    ctx: poise::FrameworkContext<'_, Data, Error>,
    event: &FullEvent,
) -> Result<(), Error> {
    let data = ctx.user_data;
    let bot_id = ctx.bot_id();
    match event {
        FullEvent::Message { new_message } => {
            if let Some(ev) = convert::message(new_message, bot_id) {
                if !deliver(&data.inbox, format!("message:{}", new_message.id), ev).await {
                    let _ = new_message
                        .channel_id
                        .say(&ctx.serenity_context.http, NOT_STORED)
                        .await;
                }
            }
        }
        FullEvent::MessageUpdate { event, .. } => {
            if let Some(ev) = convert::edited(event, bot_id) {
                // One key per edit (a message can be edited again).
                let edited_at = event.edited_timestamp.map(|t| t.to_string());
                let key = format!("edit:{}:{}", event.id, edited_at.unwrap_or_default());
                deliver(&data.inbox, key, ev).await;
            }
        }
        FullEvent::InteractionCreate {
            interaction: serenity::Interaction::Component(press),
        } => {
            // Acknowledge within Discord's 3 s; the engine's answer follows.
            if let Err(e) = send::retrying(|| {
                press.create_response(
                    &ctx.serenity_context.http,
                    serenity::CreateInteractionResponse::Acknowledge,
                )
            })
            .await
            {
                tracing::warn!(error = %e, "acknowledging a button press failed");
            }
            let ev = convert::press(press);
            deliver(&data.inbox, format!("interaction:{}", press.id), ev).await;
        }
        FullEvent::Resume { .. } => {
            tracing::info!("Discord connection resumed");
            data.connection.up();
        }
        FullEvent::ShardStageUpdate { event } => {
            if event.new == serenity::ConnectionStage::Connected {
                data.connection.up();
            } else {
                data.connection.down();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Hands an event to the engine, waiting until it is stored. Discord does not redeliver
/// messages, so storing is retried for a few seconds (a briefly locked database); false
/// means it could not be kept and the person should be told.
pub(crate) async fn deliver(inbox: &Inbox, key: String, ev: kindred_adapter::Inbound) -> bool {
    let mut wait = std::time::Duration::from_millis(250);
    for attempt in 1..=5 {
        match inbox.deliver(key.clone(), ev.clone()).await {
            Ok(Stored::New) | Ok(Stored::Duplicate) => return true,
            Ok(Stored::Failed(reason)) => {
                tracing::warn!(%reason, attempt, "an incoming Discord event could not be stored");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(_) => return false,
        }
    }
    false
}

/// Said when an event could not be stored.
pub(crate) const NOT_STORED: &str =
    "Sorry, I couldn't take that in just now. Please send it again in a moment.";

#[cfg(test)]
mod shard_tests {
    use super::Shards;

    #[test]
    fn shard_sets_parse_and_bad_ones_say_how() {
        assert_eq!(
            "0-1/4".parse(),
            Ok(Shards {
                first: 0,
                last: 1,
                total: 4
            })
        );
        assert_eq!(
            "3/4".parse(),
            Ok(Shards {
                first: 3,
                last: 3,
                total: 4
            })
        );
        for bad in ["4/4", "2-1/4", "0-1", "a/4", "0/0"] {
            let err = bad.parse::<Shards>().unwrap_err();
            assert!(err.contains("FIRST-LAST/TOTAL"), "{bad}: {err}");
        }
    }
}
