//! The conversation: sessions, turns, ratings, surveys and commands, in platform-neutral
//! terms. Every inbound turn is written before it is acted on and every reply before it
//! is sent, so a crash loses nothing and a restart can resume ([`Engine::recover`]).
//!
//! [`Engine::handle`] processes one event for one person; the runtime ([`runtime`])
//! serialises each person's events and runs different people concurrently.
//!
//! The engine's work is split along its seams, one file each: [`replies`] (a message and
//! the model's answer), [`care`] (the crisis screen's response and moderator alerts),
//! [`commands`], [`ratings`], [`presses`] (buttons), [`surveys`], [`recovery`] (after a
//! restart) and [`outgoing`] (where answers go). This file holds the engine itself, the
//! dispatch of an event to those, and sessions.

mod care;
mod commands;
mod limits;
mod outgoing;
mod presses;
mod ratings;
mod recovery;
mod replies;
pub mod runtime;
mod surveys;
pub mod texts;
pub mod worker;

pub use commands::forget_person;
use outgoing::*;
use ratings::*;
pub use replies::display_text;
use replies::*;
use surveys::*;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use kindred_adapter::{ChatKind, ChatRef, Choice, Inbound, Outbound, UserRef};
use tokio::sync::mpsc;

use crate::configuration::Settings;
use crate::domain::{Delivery, EndReason, Speaker, Stage, Stars, TurnSource};
use crate::model::{ContextTurn, Strategy, StrategyChoice};
use crate::safety;
use crate::store::{now_ms, FieldValue, NewTurn, Session, SessionField, Store, Turn, User};
pub use worker::ModelWorker;

/// The conversation engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    model: ModelWorker,
    settings: Arc<Settings>,
    screen: Arc<safety::Screen>,
    responses: Arc<safety::Responses>,
    actions: Arc<limits::ActionLimit>,
    group_events: Arc<limits::ActionLimit>,
    /// How many instances share the work (kept up to date by `runtime::serve`).
    instances: kindred_adapter::Sharing,
}

impl Engine {
    /// The engine over `store` and `model`. Fails only on a community phrase list that
    /// does not compile (settings are checked at start-up, so not in practice).
    pub fn new(store: Store, model: ModelWorker, settings: Arc<Settings>) -> Self {
        let screen = settings
            .safety
            .screen()
            .expect("safety settings are validated at start-up");
        let responses = settings.safety.responses();
        let actions = limits::ActionLimit::new(settings.conversation.max_actions_per_minute);
        let instances = kindred_adapter::Sharing::default();
        let group_events = limits::ActionLimit::shared(
            settings.conversation.max_group_events_per_minute,
            instances.clone(),
        );
        Self {
            actions: Arc::new(actions),
            group_events: Arc::new(group_events),
            instances,
            store,
            model,
            settings,
            screen: Arc::new(screen),
            responses: Arc::new(responses),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The model thread's health, for `/readyz` and `/metrics`.
    pub fn model_health(&self) -> Arc<worker::ModelHealth> {
        self.model.health()
    }

    /// How long a reply may take (a batch running longer means a hung model).
    pub fn reply_timeout(&self) -> Duration {
        self.model.timeout()
    }

    /// Handles one event; everything to send goes to `out`, ending with `Outbound::Done`
    /// for the event's chat.
    pub async fn handle(&self, ev: Inbound, tx: &mpsc::Sender<Outbound>) -> Result<()> {
        let chat = ev.origin().map(|(c, _)| c.clone());
        let out = &Out::answering(tx, &ev);
        // Kept for the crisis screen should handling fail before it was done.
        let words = match &ev {
            Inbound::Message { text, .. } | Inbound::Edited { text, .. } => Some(text.clone()),
            Inbound::NonText { caption, .. } => caption.clone(),
            Inbound::Command { args, .. } => Some(args.clone()),
            _ => None,
        };
        let result = self.dispatch(ev, out).await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "handling an event failed");
            if let Some(chat) = &chat {
                if let (Some(words), false) = (&words, out.has_sent_care()) {
                    self.care_despite_failure(chat, words, out).await;
                }
                let _ = out
                    .send(Outbound::Text {
                        id: None,
                        chat: chat.clone(),
                        text: texts::MODEL_FAILED.into(),
                        interaction: None,
                    })
                    .await;
            }
        }
        if let Some(chat) = chat {
            let _ = out
                .send(Outbound::Done {
                    chat,
                    interaction: None,
                })
                .await;
        }
        result
    }

    async fn dispatch(&self, ev: Inbound, out: &Out) -> Result<()> {
        match ev {
            Inbound::Delivered {
                outbound_id,
                platform_message_id,
            } => {
                self.delivered(&outbound_id, platform_message_id.as_deref(), out)
                    .await
            }
            Inbound::Failed {
                outbound_id,
                reason,
            } => {
                tracing::warn!(outbound = %outbound_id, %reason, "delivery failed");
                crate::metrics::metrics().send_failures.inc();
                if let Some(id) = recorded_turn(&outbound_id) {
                    if !self.store.mark_failed(id).await? {
                        tracing::error!(
                            turn = id,
                            "a message could not be delivered after every attempt; given up"
                        );
                    }
                }
                Ok(())
            }
            Inbound::Moderation {
                chat,
                user,
                action,
                interaction,
            } => self.moderate(&chat, &user, action, interaction, out).await,
            Inbound::Message { ref chat, .. }
            | Inbound::Edited { ref chat, .. }
            | Inbound::NonText { ref chat, .. }
            | Inbound::Command { ref chat, .. }
                if !self.answers_in(chat).await? =>
            {
                // A shared chat its moderators have not turned Kindred on in: stay silent.
                Ok(())
            }
            Inbound::Message {
                chat,
                user,
                message_id,
                text,
            } => {
                // Recorded as processed together with the person's turn (`message`), not
                // before it: a crash in between must not turn a redelivery into a loss.
                if let Some(id) = message_id.as_deref() {
                    if self
                        .store
                        .event_processed(&chat.platform, &event_key(&chat, id))
                        .await?
                    {
                        // Stored before, but perhaps never answered: the instance that
                        // stored it stopped before replying (its event was left unhandled,
                        // so it comes back here).
                        return self.answer_if_owed(&chat, &user, out).await;
                    }
                }
                self.message(&chat, &user, message_id.as_deref(), &text, out)
                    .await
            }
            Inbound::Edited {
                chat, user, text, ..
            } => self.edited(&chat, &user, &text, out).await,
            Inbound::NonText {
                chat,
                user,
                message_id,
                attachment,
                caption,
            } => {
                if !self.first_time(&chat, message_id.as_deref()).await? {
                    return Ok(());
                }
                tracing::debug!(?attachment, "non-text message");
                // A photo's caption can say what the person cannot say otherwise.
                if let Some(caption) = caption.as_deref() {
                    self.screen_aside(&chat, &user, caption, out).await?;
                }
                if !self.within_action_limit(&chat, &user, out).await {
                    return Ok(());
                }
                send_text(out, &chat, texts::NON_TEXT).await;
                Ok(())
            }
            Inbound::Command {
                chat,
                user,
                message_id,
                name,
                args,
                ..
            } => {
                if !self.first_time(&chat, message_id.as_deref()).await? {
                    return Ok(());
                }
                // "/start I want to die": the words after a command are screened too.
                if !args.trim().is_empty() {
                    self.screen_aside(&chat, &user, &args, out).await?;
                }
                let privacy = matches!(name.as_str(), "forget" | "privacy");
                if !privacy && !self.within_action_limit(&chat, &user, out).await {
                    return Ok(());
                }
                self.command(&chat, &user, &name, &args, out).await
            }
            Inbound::Choice {
                chat,
                user,
                payload,
                interaction,
            } => {
                // A press confirming /forget is never held back.
                if !payload.starts_with("f:") && !self.within_action_limit(&chat, &user, out).await
                {
                    return Ok(());
                }
                self.press(&chat, &user, &payload, interaction, out).await
            }
        }
    }

    /// Counts a press, command or file of `user` against their limit (see [`limits`]);
    /// false when it is not to be carried out (the first such time in a minute, the
    /// person is told why).
    async fn within_action_limit(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> bool {
        if !self.within_group_limit(chat, out).await {
            return false;
        }
        let verdict = self
            .actions
            .check(&format!("{}:{}", user.platform, user.id));
        obey(verdict, chat, texts::SLOW_DOWN_ACTIONS, out).await
    }

    /// Counts an event in a shared chat against the chat's limit
    /// (`conversation.max_group_events_per_minute`); always true in direct chats. Past
    /// it the chat is told once a minute and the event is not answered.
    async fn within_group_limit(&self, chat: &ChatRef, out: &Out) -> bool {
        if chat.kind != ChatKind::Group {
            return true;
        }
        let verdict = self
            .group_events
            .check(&format!("{}:{}", chat.platform, chat.id));
        obey(verdict, chat, texts::GROUP_BUSY, out).await
    }

    /// Whether Kindred answers in this chat: always in DMs; in shared chats as the
    /// moderators decided, else the platform's default (`group_default_enabled`).
    async fn answers_in(&self, chat: &ChatRef) -> Result<bool> {
        if chat.kind == kindred_adapter::ChatKind::Direct {
            return Ok(true);
        }
        Ok(
            match self.store.chat_enabled(&chat.platform, &chat.id).await? {
                Some(on) => on,
                None => self.settings.group_default_enabled(&chat.platform),
            },
        )
    }

    /// Records a platform message id; false when it was seen before (a redelivery).
    async fn first_time(&self, chat: &ChatRef, message_id: Option<&str>) -> Result<bool> {
        match message_id {
            Some(id) => {
                self.store
                    .mark_event_processed(&chat.platform, &event_key(chat, id))
                    .await
            }
            None => Ok(true),
        }
    }

    /// The person (created on first contact) and their open session in this chat, as
    /// stored (no idle check).
    async fn user_and_open_session(
        &self,
        user: &UserRef,
        chat: &ChatRef,
    ) -> Result<(User, Option<Session>)> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        let session = self
            .store
            .open_session(u.id, &chat.platform, &chat.id)
            .await?;
        Ok((u, session))
    }

    /// The open session of this user in this chat, ending it first if it has been idle.
    async fn current_session(
        &self,
        user: &User,
        chat: &ChatRef,
        out: &Out,
    ) -> Result<Option<Session>> {
        let Some(s) = self
            .store
            .open_session(user.id, &chat.platform, &chat.id)
            .await?
        else {
            return Ok(None);
        };
        let idle_ms = self.settings.conversation.idle_timeout_minutes as i64 * 60_000;
        if now_ms() - s.last_activity_at > idle_ms {
            self.store
                .end_session(s.id, EndReason::Idle, Stage::Closed)
                .await?;
            if s.stage == Stage::Chatting {
                send_text(out, chat, texts::IDLE_RESTART).await;
            }
            return Ok(None);
        }
        Ok(Some(s))
    }

    async fn new_session(&self, user: &User, chat: &ChatRef, stage: Stage) -> Result<Session> {
        self.store.create_session(user.id, chat, stage).await
    }

    async fn notice(
        &self,
        out: &Out,
        chat: &ChatRef,
        user: &UserRef,
        interaction: Option<String>,
        text: &str,
    ) {
        let _ = out
            .send(Outbound::Notice {
                chat: chat.clone(),
                user: user.clone(),
                interaction,
                text: text.into(),
            })
            .await;
    }
}

/// Carries out a limit's verdict: true to go on; on the first event past the limit in a
/// minute, `notice` goes to the chat; every event held back is counted.
async fn obey(verdict: limits::Verdict, chat: &ChatRef, notice: &str, out: &Out) -> bool {
    if verdict == limits::Verdict::Allow {
        return true;
    }
    crate::metrics::metrics().held_back.inc();
    if verdict == limits::Verdict::Tell {
        tracing::info!(platform = %chat.platform, kind = ?chat.kind, "events are being held back for a minute");
        send_text(out, chat, notice).await;
    }
    false
}
