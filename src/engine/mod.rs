//! The conversation: sessions, turns, ratings, surveys and commands, in platform-neutral
//! terms. Every inbound turn is written before it is acted on and every reply before it
//! is sent, so a crash loses nothing and a restart can resume ([`Engine::recover`]).
//!
//! [`Engine::handle`] processes one event for one person; the runtime ([`runtime`])
//! serialises each person's events and runs different people concurrently.

pub mod runtime;
pub mod texts;
pub mod worker;

use std::sync::Arc;

use anyhow::Result;
use kindred_adapter::{ChatRef, Choice, Inbound, Outbound, UserRef};
use tokio::sync::mpsc;

use crate::configuration::Settings;
use crate::domain::{Delivery, Speaker, TurnSource};
use crate::model::{ContextTurn, Strategy, StrategyChoice};
use crate::safety;
use crate::store::{now_ms, FieldValue, NewTurn, Session, SessionField, Store, Turn, User};
pub use worker::ModelWorker;

/// Session stages (the `sessions.stage` column).
pub mod stage {
    pub const CHECKIN_EMOTION: &str = "checkin_emotion";
    pub const CHECKIN_PROBLEM: &str = "checkin_problem";
    pub const CHECKIN_INTENSITY: &str = "checkin_intensity";
    pub const CHATTING: &str = "chatting";
    pub const SURVEY_INTENSITY: &str = "survey_intensity";
    pub const SURVEY_EMPATHY: &str = "survey_empathy";
    pub const SURVEY_RELEVANCE: &str = "survey_relevance";
    pub const CLOSED: &str = "closed";
}

/// The conversation engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    model: ModelWorker,
    settings: Arc<Settings>,
    screen: Arc<safety::Screen>,
    responses: Arc<safety::Responses>,
}

/// Where the answers to one event go. It stamps them with the platform interaction
/// they answer (see [`Outbound`]), so that every answer to a private interaction stays
/// private, however deep in the engine it is sent.
struct Out {
    tx: mpsc::Sender<Outbound>,
    interaction: Option<String>,
}

impl Out {
    fn to_chat(tx: &mpsc::Sender<Outbound>) -> Self {
        Self {
            tx: tx.clone(),
            interaction: None,
        }
    }

    /// Answers to `ev`: those to a slash command or a moderator's action, and those to a
    /// button press in a shared chat, go to that interaction.
    fn answering(tx: &mpsc::Sender<Outbound>, ev: &Inbound) -> Self {
        let interaction = match ev {
            Inbound::Command { interaction, .. } | Inbound::Moderation { interaction, .. } => {
                interaction.clone()
            }
            Inbound::Choice {
                chat, interaction, ..
            } if chat.kind == kindred_adapter::ChatKind::Group => interaction.clone(),
            _ => None,
        };
        Self {
            tx: tx.clone(),
            interaction,
        }
    }

    async fn send(&self, mut o: Outbound) -> Result<(), mpsc::error::SendError<Outbound>> {
        if let Some(handle) = &self.interaction {
            if let Outbound::Text { interaction, .. }
            | Outbound::Prompt { interaction, .. }
            | Outbound::Done { interaction, .. } = &mut o
            {
                interaction.get_or_insert_with(|| handle.clone());
            }
        }
        self.tx.send(o).await
    }
}

/// What a button press says, parsed from its payload. Payloads carry a nonce of the
/// session (or of the pending /forget) so that a forged or stale press is recognised.
#[derive(Debug, Clone, PartialEq)]
enum Press {
    Rating {
        prompt_id: i64,
        nonce: String,
        stars: i64,
    },
    Survey {
        session_id: i64,
        nonce: String,
        field: char,
        value: Option<String>,
    },
    Forget {
        user_id: i64,
        nonce: String,
        confirm: bool,
    },
}

fn parse_press(payload: &str) -> Option<Press> {
    let parts: Vec<&str> = payload.split(':').collect();
    match parts.as_slice() {
        ["r", id, nonce, stars] => {
            let stars: i64 = stars.parse().ok()?;
            (1..=5).contains(&stars).then_some(())?;
            Some(Press::Rating {
                prompt_id: id.parse().ok()?,
                nonce: nonce.to_string(),
                stars,
            })
        }
        ["s", id, nonce, field, value] => Some(Press::Survey {
            session_id: id.parse().ok()?,
            nonce: nonce.to_string(),
            field: field.chars().next()?,
            value: (*value != "skip").then(|| value.to_string()),
        }),
        ["f", id, nonce, answer] => Some(Press::Forget {
            user_id: id.parse().ok()?,
            nonce: nonce.to_string(),
            confirm: *answer == "yes",
        }),
        _ => None,
    }
}

/// Turns model output into text for people: sentence capitals, a capital "I", no space
/// before punctuation (BlenderBot-small's tokenizer lower-cases and splits punctuation).
pub fn display_text(s: &str) -> String {
    // A reply cut at its length limit can end inside a word (BPE `@@` continuation).
    let mut t = s.trim().trim_end_matches("@@").trim_end().to_string();
    for (from, to) in [
        (" .", "."),
        (" ,", ","),
        (" ?", "?"),
        (" !", "!"),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 's", "'s"),
        (" 'm", "'m"),
        (" 're", "'re"),
        (" 've", "'ve"),
        (" 'll", "'ll"),
        (" 'd", "'d"),
    ] {
        t = t.replace(from, to);
    }
    let mut out = String::with_capacity(t.len());
    let mut capitalise = true;
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let word_i = c == 'i'
            && (i == 0 || !chars[i - 1].is_alphanumeric())
            && chars.get(i + 1).is_none_or(|n| !n.is_alphanumeric());
        if capitalise && c.is_alphabetic() || word_i {
            out.extend(c.to_uppercase());
            capitalise = false;
        } else {
            out.push(c);
            if c.is_alphanumeric() {
                capitalise = false;
            }
        }
        if matches!(c, '.' | '!' | '?') {
            capitalise = true;
        }
    }
    out
}

fn rating_choices(prompt_id: i64, nonce: &str) -> Vec<Choice> {
    (1..=5)
        .map(|s| Choice {
            label: format!("{s} ★"),
            payload: format!("r:{prompt_id}:{nonce}:{s}"),
        })
        .collect()
}

fn survey_choices(session: &Session, field: char, options: &[&str]) -> Vec<Choice> {
    let mut v: Vec<Choice> = options
        .iter()
        .map(|o| Choice {
            label: o.to_string(),
            payload: format!("s:{}:{}:{field}:{o}", session.id, session.nonce),
        })
        .collect();
    v.push(Choice {
        label: "Skip".into(),
        payload: format!("s:{}:{}:{field}:skip", session.id, session.nonce),
    });
    v
}

const SCALE: [&str; 5] = ["1", "2", "3", "4", "5"];

/// The question after a check-in or survey answer: its stage, text, field and options.
type NextQuestion = (&'static str, &'static str, char, &'static [&'static str]);

impl Engine {
    /// The engine over `store` and `model`. Fails only on a community phrase list that
    /// does not compile (settings are checked at start-up, so not in practice).
    pub fn new(store: Store, model: ModelWorker, settings: Arc<Settings>) -> Self {
        let screen = settings
            .safety
            .screen()
            .expect("safety settings are validated at start-up");
        let responses = settings.safety.responses();
        Self {
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

    /// Handles one event; everything to send goes to `out`, ending with `Outbound::Done`
    /// for the event's chat.
    pub async fn handle(&self, ev: Inbound, tx: &mpsc::Sender<Outbound>) -> Result<()> {
        let chat = ev.origin().map(|(c, _)| c.clone());
        let out = &Out::answering(tx, &ev);
        let result = self.dispatch(ev, out).await;
        if let Err(e) = &result {
            tracing::error!(error = %format!("{e:#}"), "handling an event failed");
            if let Some(chat) = &chat {
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
                if let Some(id) = outbound_id
                    .strip_prefix("turn:")
                    .and_then(|s| s.parse().ok())
                {
                    self.store.mark_failed(id).await?;
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
                        return Ok(());
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
                self.command(&chat, &user, &name, &args, out).await
            }
            Inbound::Choice {
                chat,
                user,
                payload,
                interaction,
            } => self.press(&chat, &user, &payload, interaction, out).await,
        }
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

    /// A moderator's action (already checked by the adapter against platform permissions).
    async fn moderate(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        action: kindred_adapter::ModAction,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        use kindred_adapter::ModAction;
        let default_on = self.settings.group_default_enabled(&chat.platform);
        let reply = match action {
            ModAction::Enable => {
                self.store
                    .set_chat_enabled(&chat.platform, &chat.id, true)
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, "enabled in a shared chat");
                texts::ENABLED.to_string()
            }
            ModAction::Disable => {
                self.store
                    .set_chat_enabled(&chat.platform, &chat.id, false)
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, "disabled in a shared chat");
                texts::DISABLED.to_string()
            }
            ModAction::Status => {
                let on = self.answers_in(chat).await?;
                let custom = self
                    .store
                    .chat_crisis_message(&chat.platform, &chat.id)
                    .await?;
                texts::status(on, custom.is_some(), &self.crisis_message(chat).await?)
            }
            ModAction::SetResources(text) => {
                let text = text.trim();
                let value = (!text.is_empty()).then_some(text);
                self.store
                    .set_chat_crisis_message(&chat.platform, &chat.id, value, default_on)
                    .await?;
                match value {
                    Some(v) => format!("{}\n\n{v}", texts::RESOURCES_SET),
                    None => texts::RESOURCES_RESET.to_string(),
                }
            }
            ModAction::SetAlerts {
                target,
                include_text,
            } => {
                self.store
                    .set_chat_alerts(
                        &chat.platform,
                        &chat.id,
                        target.as_deref(),
                        include_text,
                        default_on,
                    )
                    .await?;
                tracing::info!(platform = %chat.platform, chat = %chat.id, on = target.is_some(), "risk alerts set");
                match target {
                    Some(_) => texts::alerts_on(include_text),
                    None => texts::ALERTS_OFF.to_string(),
                }
            }
            ModAction::LinkAlerts => {
                let code = crate::store::random_token(8);
                self.store
                    .set_alert_link_code(&chat.platform, &chat.id, &code, default_on)
                    .await?;
                texts::alert_link_code(&code)
            }
            ModAction::UseAlertCode(code) => {
                match self
                    .store
                    .use_alert_link_code(&chat.platform, code.trim(), &chat.id, 3_600_000)
                    .await?
                {
                    Some(source) => {
                        tracing::info!(platform = %chat.platform, chat = %source, "risk alerts linked");
                        texts::ALERTS_LINKED.to_string()
                    }
                    None => texts::ALERT_CODE_UNKNOWN.to_string(),
                }
            }
        };
        self.notice(out, chat, user, interaction, &reply).await;
        Ok(())
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

    async fn delivered(
        &self,
        outbound_id: &str,
        platform_message_id: Option<&str>,
        out: &Out,
    ) -> Result<()> {
        if let Some(id) = outbound_id
            .strip_prefix("turn:")
            .and_then(|s| s.parse().ok())
        {
            self.store.mark_delivered(id, platform_message_id).await?;
        } else if let Some(id) = outbound_id
            .strip_prefix("rating:")
            .and_then(|s| s.parse().ok())
        {
            if let Some(pmid) = platform_message_id {
                self.store.set_prompt_message_id(id, pmid).await?;
                // A press can overtake the report that its prompt was delivered (the
                // person pressed before the platform's answer to the send came back):
                // the rating was recorded then, but the message had no id to edit yet.
                if let Some(p) = self.store.rating_prompt(id).await? {
                    if let (Some(stars), Some(s)) =
                        (p.stars, self.store.session(p.session_id).await?)
                    {
                        edit_rated_prompt(out, &chat_of(&s), p.id, pmid, stars, &s.nonce).await;
                    }
                }
            }
        }
        Ok(())
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
            self.store.end_session(s.id, "idle", stage::CLOSED).await?;
            if s.stage == stage::CHATTING {
                send_text(out, chat, texts::IDLE_RESTART).await;
            }
            return Ok(None);
        }
        Ok(Some(s))
    }

    async fn new_session(&self, user: &User, chat: &ChatRef, stage: &str) -> Result<Session> {
        let kind = match chat.kind {
            kindred_adapter::ChatKind::Direct => "direct",
            kindred_adapter::ChatKind::Group => "group",
        };
        self.store
            .create_session(user.id, &chat.platform, &chat.id, kind, stage)
            .await
    }

    async fn message(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        message_id: Option<&str>,
        text: &str,
        out: &Out,
    ) -> Result<()> {
        if text.trim().is_empty() {
            send_text(out, chat, texts::EMPTY_MESSAGE).await;
            return Ok(());
        }
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        let mut session = match self.current_session(&u, chat, out).await? {
            Some(s) if s.stage.starts_with("survey_") => {
                // Writing during the survey means the person wants to talk: close it.
                self.store.set_stage(s.id, stage::CLOSED).await?;
                None
            }
            other => other,
        };
        let opened = session.is_none();
        if opened {
            session = Some(self.new_session(&u, chat, stage::CHATTING).await?);
        }
        let session = session.unwrap();
        if session.stage.starts_with("checkin_") {
            // Talking instead of answering ends the check-in.
            self.store.set_stage(session.id, stage::CHATTING).await?;
        }
        let key = message_id.map(|id| event_key(chat, id));
        let stored = self
            .store
            .add_turn_once(
                session.id,
                key.as_deref().map(|k| (chat.platform.as_str(), k)),
                NewTurn {
                    speaker: Speaker::Seeker,
                    text,
                    source: TurnSource::User,
                    platform_message_id: message_id,
                    delivery: Delivery::Received,
                    ..Default::default()
                },
            )
            .await?;
        if stored.is_none() {
            // The same message, delivered twice at once: handled by the first.
            return Ok(());
        }
        tracing::info!(
            session = session.id,
            chars = text.chars().count(),
            "message received"
        );
        let limit = self.settings.conversation.max_message_chars;
        if text.chars().count() > limit {
            send_text(out, chat, &texts::long_message(limit)).await;
        }
        // The screen comes first: its response goes out now, whatever the model does,
        // and before the introduction of a new conversation.
        let risk = self.screen_seeker_turn(&session, chat, out).await?;
        if opened {
            send_text(out, chat, texts::INTRO_SHORT).await;
            if chat.kind == kindred_adapter::ChatKind::Group {
                send_text(out, chat, texts::GROUP_PRIVACY).await;
            }
        }
        let recent = self.store.messages_since(u.id, now_ms() - 60_000).await?;
        if recent > self.settings.conversation.max_messages_per_minute as i64 {
            // Kept in the conversation, but no model reply until they slow down. A risk
            // message has had its response already.
            send_text(out, chat, texts::SLOW_DOWN).await;
            return Ok(());
        }
        self.reply(&session, chat, risk, out).await
    }

    /// Screens the newest seeker turn of `session` (with the one before it) and, when it
    /// shows a risk, records and sends the response for its category unless a response
    /// to that turn is already recorded (a restart after it was). Returns the category.
    async fn screen_seeker_turn(
        &self,
        session: &Session,
        chat: &ChatRef,
        out: &Out,
    ) -> Result<Option<safety::Category>> {
        let stored = self.store.turns(session.id).await?;
        let Some(last_at) = stored
            .iter()
            .rposition(|t| t.speaker == Speaker::Seeker && t.source == TurnSource::User)
        else {
            return Ok(None);
        };
        let last = &stored[last_at].text;
        let Some(finding) = self.screen.screen_after(previous_message(&stored), last) else {
            return Ok(None);
        };
        let already = stored[last_at + 1..]
            .iter()
            .any(|t| t.source == TurnSource::Safety);
        if !already {
            let words = last.clone();
            self.send_risk_response(Some(session), chat, session.user_id, &words, &finding, out)
                .await?;
        }
        Ok(Some(finding.category))
    }

    /// Sends the response to `finding`: recorded as a turn of `session` first (so that a
    /// crash re-sends it), or, outside a conversation, sent as it is.
    async fn send_risk_response(
        &self,
        session: Option<&Session>,
        chat: &ChatRef,
        user_id: i64,
        words: &str,
        finding: &safety::Finding,
        out: &Out,
    ) -> Result<()> {
        let text = self
            .responses
            .compose(finding, &self.crisis_message(chat).await?);
        // Which category, never who or what they wrote.
        tracing::info!(
            session = session.map(|s| s.id),
            category = %finding.category,
            "risk detected: crisis response sent"
        );
        tracing::debug!(cue = %finding.cue, categories = ?finding.categories, "what the screen found");
        let id = match session {
            Some(s) => {
                let turn = self
                    .store
                    .add_turn(
                        s.id,
                        NewTurn {
                            speaker: Speaker::Supporter,
                            text: &text,
                            source: TurnSource::Safety,
                            delivery: Delivery::Pending,
                            ..Default::default()
                        },
                    )
                    .await?;
                Some(format!("turn:{}", turn.id))
            }
            None => None,
        };
        let _ = out
            .send(Outbound::Text {
                id,
                chat: chat.clone(),
                text,
                interaction: None,
            })
            .await;
        self.alert_moderators(chat, user_id, words, finding, out)
            .await
    }

    /// Tells a community's moderators, where they asked for it (`/kindred alerts`,
    /// `/alerts`), that someone in their shared chat may be at risk: the category, the
    /// person's pseudonym and how to reach them, and their words only if the community
    /// opted in. Never for direct messages: those stay between the person and Kindred.
    async fn alert_moderators(
        &self,
        chat: &ChatRef,
        user_id: i64,
        words: &str,
        finding: &safety::Finding,
        out: &Out,
    ) -> Result<()> {
        if chat.kind != kindred_adapter::ChatKind::Group {
            return Ok(());
        }
        let Some(route) = self.store.chat_alerts(&chat.platform, &chat.id).await? else {
            return Ok(());
        };
        let Some(user) = self.store.user(user_id).await? else {
            return Ok(());
        };
        let (reach, place) = match chat.platform.as_str() {
            "discord" => (
                format!("<@{}>", user.platform_user_id),
                format!("<#{}>", chat.id),
            ),
            "telegram" => (
                format!("tg://user?id={}", user.platform_user_id),
                "the linked group".to_string(),
            ),
            _ => (
                format!("user {}", user.platform_user_id),
                format!("chat {}", chat.id),
            ),
        };
        let text = texts::risk_alert(
            finding.category.name(),
            &user.pseudonym,
            &reach,
            &place,
            route.include_text.then_some(words),
        );
        tracing::info!(category = %finding.category, "risk alert sent to the moderators");
        let _ = out
            .send(Outbound::Text {
                id: None,
                chat: ChatRef {
                    platform: chat.platform.clone(),
                    id: route.target,
                    kind: kindred_adapter::ChatKind::Group,
                },
                text,
                interaction: None,
            })
            .await;
        Ok(())
    }

    /// Screens words that are not a conversation turn (an edit, a caption, a command's
    /// arguments) and sends the response if they show a risk, recorded in the person's
    /// open conversation where there is one.
    async fn screen_aside(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        text: &str,
        out: &Out,
    ) -> Result<Option<safety::Category>> {
        let Some(finding) = self.screen.screen(text) else {
            return Ok(None);
        };
        let (u, session) = self.user_and_open_session(user, chat).await?;
        self.send_risk_response(session.as_ref(), chat, u.id, text, &finding, out)
            .await?;
        Ok(Some(finding.category))
    }

    /// A message its sender edited. Kindred answered the original and does not answer
    /// the edit (the conversation would repeat itself), and the stored conversation keeps
    /// what was first sent; but an edit can add what the original did not say, so risk
    /// language in it brings the crisis resources.
    async fn edited(&self, chat: &ChatRef, user: &UserRef, text: &str, out: &Out) -> Result<()> {
        self.screen_aside(chat, user, text, out).await?;
        Ok(())
    }

    /// Generates, records and sends the reply to the last seeker turn of `session`. `risk`
    /// is what the screen found in that turn: its response has gone out already; on
    /// imminent danger the reply neither suggests nor informs.
    async fn reply(
        &self,
        session: &Session,
        chat: &ChatRef,
        risk: Option<safety::Category>,
        out: &Out,
    ) -> Result<()> {
        let _ = out.send(Outbound::Typing { chat: chat.clone() }).await;
        let limit = self.settings.conversation.max_message_chars;
        let stored = self.store.turns(session.id).await?;
        let turns: Vec<ContextTurn> = stored
            .into_iter()
            .filter(|t| t.source.is_conversation())
            .map(|t| {
                let text: String = t.text.chars().take(limit).collect();
                if t.speaker == Speaker::Seeker {
                    ContextTurn::seeker(text)
                } else {
                    ContextTurn::supporter(
                        text,
                        t.strategy.as_deref().and_then(Strategy::from_any_name),
                    )
                }
            })
            .collect();
        let crisis = self.crisis_message(chat).await?;
        let choice = match risk {
            Some(safety::Category::Imminent) => StrategyChoice::PredictExcept(&[
                Strategy::ProvidingSuggestions,
                Strategy::Information,
            ]),
            _ => StrategyChoice::Predict,
        };
        let generated = self
            .model
            .reply(session.situation.clone(), turns, choice)
            .await;
        let (text, source, strategy, probs) = match generated {
            Ok(r) if !r.text.trim().is_empty() => {
                match outgoing_reply(&self.screen, display_text(&r.text), risk.is_some(), &crisis) {
                    Outgoing::Reply(text) => (
                        text,
                        TurnSource::Model,
                        r.strategy,
                        Some(serde_json::to_string(&r.strategy_probs)?),
                    ),
                    Outgoing::Withheld(text) => {
                        // The reply's text stays out of the logs like every message's.
                        tracing::warn!(
                            session = session.id,
                            "a generated reply encouraged self-harm and was withheld"
                        );
                        (text, TurnSource::System, None, None)
                    }
                }
            }
            Ok(_) | Err(_) => {
                let timed_out = match &generated {
                    Err(e) if e.downcast_ref::<worker::TimedOut>().is_some() => {
                        tracing::warn!(session = session.id, error = %e, "generation timed out");
                        true
                    }
                    Err(e) => {
                        tracing::error!(session = session.id, error = %format!("{e:#}"), "generation failed");
                        false
                    }
                    Ok(_) => false,
                };
                let text = if timed_out {
                    texts::MODEL_TIMED_OUT
                } else {
                    texts::MODEL_FAILED
                };
                (text.to_string(), TurnSource::System, None, None)
            }
        };
        // Recorded before it is sent; marked delivered when the adapter confirms.
        let turn = self
            .store
            .add_turn(
                session.id,
                NewTurn {
                    speaker: Speaker::Supporter,
                    text: &text,
                    source,
                    strategy: strategy.map(|s| s.name()),
                    strategy_probs: probs,
                    delivery: Delivery::Pending,
                    ..Default::default()
                },
            )
            .await?;
        let _ = out
            .send(Outbound::Text {
                id: Some(format!("turn:{}", turn.id)),
                chat: chat.clone(),
                text,
                interaction: None,
            })
            .await;
        if source == TurnSource::Model {
            let n = self.store.count_bot_reply(session.id).await?;
            let every = self.settings.conversation.rating_every as i64;
            if n % every == 0 {
                self.ask_rating(session, chat, out).await?;
            }
        }
        Ok(())
    }

    /// The crisis resources for a chat: its own (set by its moderators) or the configured ones.
    async fn crisis_message(&self, chat: &ChatRef) -> Result<String> {
        Ok(
            match self
                .store
                .chat_crisis_message(&chat.platform, &chat.id)
                .await?
            {
                Some(m) => m,
                None => self.settings.safety.crisis_message.clone(),
            },
        )
    }

    async fn ask_rating(&self, session: &Session, chat: &ChatRef, out: &Out) -> Result<()> {
        let model_turns: Vec<_> = self
            .store
            .turns(session.id)
            .await?
            .into_iter()
            .filter(|t| t.source == TurnSource::Model)
            .collect();
        if model_turns.len() < 2 {
            return Ok(());
        }
        let (a, b) = (
            &model_turns[model_turns.len() - 2],
            &model_turns[model_turns.len() - 1],
        );
        let prompt = self
            .store
            .create_rating_prompt(session.id, a.id, b.id)
            .await?;
        let _ = out
            .send(Outbound::Prompt {
                id: Some(format!("rating:{}", prompt.id)),
                chat: chat.clone(),
                text: texts::RATING_QUESTION.into(),
                choices: rating_choices(prompt.id, &session.nonce),
                interaction: None,
            })
            .await;
        Ok(())
    }

    async fn command(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        name: &str,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        match name {
            "start" => self.start(chat, user, out).await,
            "end" | "stop" => self.end(chat, user, out).await,
            "reset" => self.reset(chat, user, out).await,
            "forget" => self.forget(chat, user, args, out).await,
            "help" => {
                send_text(
                    out,
                    chat,
                    &format!("{}\n\n{}", texts::HELP, self.crisis_message(chat).await?),
                )
                .await;
                Ok(())
            }
            "rate" => self.rate_command(chat, user, args, out).await,
            other => {
                send_text(out, chat, &texts::unknown_command(other)).await;
                Ok(())
            }
        }
    }

    async fn start(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        if let Some(s) = self.current_session(&u, chat, out).await? {
            if s.stage == stage::CHATTING || s.stage.starts_with("checkin_") {
                self.store.touch(s.id).await?;
                send_text(out, chat, texts::WELCOME_BACK).await;
                return Ok(());
            }
            self.store.set_stage(s.id, stage::CLOSED).await?;
        }
        send_text(out, chat, texts::INTRO).await;
        if self.settings.conversation.checkin {
            let s = self.new_session(&u, chat, stage::CHECKIN_EMOTION).await?;
            prompt(
                out,
                chat,
                texts::CHECKIN_EMOTION,
                survey_choices(&s, 'e', &texts::EMOTIONS),
            )
            .await;
        } else {
            self.new_session(&u, chat, stage::CHATTING).await?;
            send_text(out, chat, texts::CHECKIN_SKIPPED).await;
        }
        Ok(())
    }

    async fn end(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        match self.current_session(&u, chat, out).await? {
            Some(s) if !s.stage.starts_with("survey_") => {
                if self.settings.conversation.survey {
                    self.store
                        .end_session(s.id, "user", stage::SURVEY_INTENSITY)
                        .await?;
                    prompt(
                        out,
                        chat,
                        texts::SURVEY_INTENSITY,
                        survey_choices(&s, 'a', &SCALE),
                    )
                    .await;
                } else {
                    self.store.end_session(s.id, "user", stage::CLOSED).await?;
                    send_text(out, chat, texts::GOODBYE).await;
                }
            }
            _ => send_text(out, chat, texts::NOTHING_TO_END).await,
        }
        Ok(())
    }

    async fn reset(&self, chat: &ChatRef, user: &UserRef, out: &Out) -> Result<()> {
        let u = self
            .store
            .get_or_create_user(&user.platform, &user.id)
            .await?;
        if let Some(s) = self
            .store
            .open_session(u.id, &chat.platform, &chat.id)
            .await?
        {
            self.store.end_session(s.id, "reset", stage::CLOSED).await?;
        }
        self.new_session(&u, chat, stage::CHATTING).await?;
        send_text(out, chat, texts::RESET_DONE).await;
        Ok(())
    }

    async fn forget_person(&self, user_id: i64, platform: &str, platform_id: &str) -> Result<()> {
        forget_person(&self.store, user_id, platform, platform_id).await
    }

    async fn forget(&self, chat: &ChatRef, user: &UserRef, args: &str, out: &Out) -> Result<()> {
        let Some(u) = self.store.find_user(&user.platform, &user.id).await? else {
            send_text(out, chat, texts::NOTHING_STORED).await;
            return Ok(());
        };
        if args.trim() == "confirm" && u.forget_nonce.is_some() {
            self.forget_person(u.id, &user.platform, &user.id).await?;
            tracing::info!("a user's data was deleted on request");
            send_text(out, chat, texts::FORGET_DONE).await;
            return Ok(());
        }
        let nonce = crate::store::random_token(12);
        self.store.set_forget_nonce(u.id, Some(&nonce)).await?;
        let choices = vec![
            Choice {
                label: texts::FORGET_YES.into(),
                payload: format!("f:{}:{nonce}:yes", u.id),
            },
            Choice {
                label: texts::FORGET_NO.into(),
                payload: format!("f:{}:{nonce}:no", u.id),
            },
        ];
        prompt(out, chat, texts::FORGET_QUESTION, choices).await;
        Ok(())
    }

    async fn rate_command(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        args: &str,
        out: &Out,
    ) -> Result<()> {
        let Ok(stars) = args.trim().parse::<i64>() else {
            send_text(out, chat, texts::RATE_USAGE).await;
            return Ok(());
        };
        if !(1..=5).contains(&stars) {
            send_text(out, chat, texts::RATE_USAGE).await;
            return Ok(());
        }
        let (_, session) = self.user_and_open_session(user, chat).await?;
        let prompt = match &session {
            Some(s) => self.store.latest_rating_prompt(s.id).await?,
            None => None,
        };
        let Some(p) = prompt else {
            send_text(out, chat, texts::NOTHING_TO_RATE).await;
            return Ok(());
        };
        self.apply_rating(chat, &p, stars, out).await?;
        send_text(out, chat, &texts::rated(stars)).await;
        Ok(())
    }

    async fn apply_rating(
        &self,
        chat: &ChatRef,
        p: &crate::store::RatingPrompt,
        stars: i64,
        out: &Out,
    ) -> Result<()> {
        self.store.set_rating(p.id, stars).await?;
        let nonce = self.store.session(p.session_id).await?.map(|s| s.nonce);
        // The message's id read again after the rating is stored: a delivery report
        // handled meanwhile may have brought it (and found no rating yet). Without an id
        // (the delivery not reported yet) the edit is made when the report comes: see
        // `delivered`.
        let pmid = match self.store.rating_prompt(p.id).await? {
            Some(now) => now.platform_message_id,
            None => p.platform_message_id.clone(),
        };
        if let (Some(pmid), Some(nonce)) = (pmid, nonce) {
            edit_rated_prompt(out, chat, p.id, &pmid, stars, &nonce).await;
        }
        Ok(())
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

    /// The session a press refers to, if the press is genuine: the session exists, the
    /// payload carries its nonce and the presser is its owner. Otherwise, the notice to show.
    async fn session_for_press(
        &self,
        session_id: i64,
        nonce: &str,
        presser: Option<&User>,
    ) -> Result<std::result::Result<Session, &'static str>> {
        let Some(s) = self.store.session(session_id).await? else {
            return Ok(Err(texts::STALE_BUTTON));
        };
        if s.nonce != nonce {
            return Ok(Err(texts::STALE_BUTTON));
        }
        if presser.map(|u| u.id) != Some(s.user_id) {
            return Ok(Err(texts::NOT_YOUR_BUTTON));
        }
        Ok(Ok(s))
    }

    async fn press(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        payload: &str,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        let Some(press) = parse_press(payload) else {
            self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                .await;
            return Ok(());
        };
        let presser = self.store.find_user(&user.platform, &user.id).await?;
        match press {
            Press::Rating {
                prompt_id,
                nonce,
                stars,
            } => {
                let Some(p) = self.store.rating_prompt(prompt_id).await? else {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                };
                match self
                    .session_for_press(p.session_id, &nonce, presser.as_ref())
                    .await?
                {
                    Err(text) => self.notice(out, chat, user, interaction, text).await,
                    Ok(s) if s.ended_at.is_some() => {
                        self.notice(out, chat, user, interaction, texts::ENDED_CONVERSATION)
                            .await
                    }
                    Ok(_) => {
                        self.apply_rating(chat, &p, stars, out).await?;
                        self.notice(out, chat, user, interaction, &texts::rated(stars))
                            .await;
                    }
                }
                Ok(())
            }
            Press::Survey {
                session_id,
                nonce,
                field,
                value,
            } => match self
                .session_for_press(session_id, &nonce, presser.as_ref())
                .await?
            {
                Err(text) => {
                    self.notice(out, chat, user, interaction, text).await;
                    Ok(())
                }
                Ok(s) => {
                    self.survey_answer(chat, user, &s, field, value, interaction, out)
                        .await
                }
            },
            Press::Forget {
                user_id,
                nonce,
                confirm,
            } => {
                let Some(u) = presser.filter(|u| u.id == user_id) else {
                    self.notice(out, chat, user, interaction, texts::NOT_YOUR_BUTTON)
                        .await;
                    return Ok(());
                };
                if u.forget_nonce.as_deref() != Some(nonce.as_str()) {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                }
                if confirm {
                    self.forget_person(u.id, &user.platform, &user.id).await?;
                    tracing::info!("a user's data was deleted on request");
                    self.notice(out, chat, user, interaction, texts::FORGET_DONE)
                        .await;
                } else {
                    self.store.set_forget_nonce(u.id, None).await?;
                    self.notice(out, chat, user, interaction, texts::FORGET_KEPT)
                        .await;
                }
                Ok(())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn survey_answer(
        &self,
        chat: &ChatRef,
        user: &UserRef,
        s: &Session,
        field: char,
        value: Option<String>,
        interaction: Option<String>,
        out: &Out,
    ) -> Result<()> {
        // Which stage each question belongs to, the column it fills, and what follows.
        let (expected, column, next): (&str, SessionField, Option<NextQuestion>) = match field {
            'e' => (
                stage::CHECKIN_EMOTION,
                SessionField::EmotionType,
                Some((
                    stage::CHECKIN_PROBLEM,
                    texts::CHECKIN_PROBLEM,
                    'p',
                    &texts::PROBLEMS,
                )),
            ),
            'p' => (
                stage::CHECKIN_PROBLEM,
                SessionField::ProblemType,
                Some((
                    stage::CHECKIN_INTENSITY,
                    texts::CHECKIN_INTENSITY,
                    'i',
                    &SCALE,
                )),
            ),
            'i' => (
                stage::CHECKIN_INTENSITY,
                SessionField::IntensityBefore,
                None,
            ),
            'a' => (
                stage::SURVEY_INTENSITY,
                SessionField::IntensityAfter,
                Some((stage::SURVEY_EMPATHY, texts::SURVEY_EMPATHY, 'm', &SCALE)),
            ),
            'm' => (
                stage::SURVEY_EMPATHY,
                SessionField::Empathy,
                Some((
                    stage::SURVEY_RELEVANCE,
                    texts::SURVEY_RELEVANCE,
                    'v',
                    &SCALE,
                )),
            ),
            'v' => (stage::SURVEY_RELEVANCE, SessionField::Relevance, None),
            _ => {
                self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                    .await;
                return Ok(());
            }
        };
        if s.stage != expected {
            self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                .await;
            return Ok(());
        }
        let checkin = field == 'e' || field == 'p' || field == 'i';
        let Some(value) = value else {
            // Skip ends the whole check-in or survey in one step.
            if checkin {
                self.store.set_stage(s.id, stage::CHATTING).await?;
                self.notice(out, chat, user, interaction, texts::CHECKIN_SKIPPED)
                    .await;
            } else {
                self.store.set_stage(s.id, stage::CLOSED).await?;
                self.notice(out, chat, user, interaction, texts::GOODBYE)
                    .await;
            }
            return Ok(());
        };
        match column {
            SessionField::EmotionType | SessionField::ProblemType => {
                let allowed: &[&str] = if field == 'e' {
                    &texts::EMOTIONS
                } else {
                    &texts::PROBLEMS
                };
                if !allowed.contains(&value.as_str()) {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                }
                self.store
                    .set_session_field(s.id, column, FieldValue::Text(&value))
                    .await?;
            }
            _ => {
                let Some(n) = value.parse::<i64>().ok().filter(|n| (1..=5).contains(n)) else {
                    self.notice(out, chat, user, interaction, texts::STALE_BUTTON)
                        .await;
                    return Ok(());
                };
                self.store
                    .set_session_field(s.id, column, FieldValue::Int(n))
                    .await?;
            }
        }
        self.notice(out, chat, user, interaction, &format!("Noted: {value}."))
            .await;
        match next {
            Some((next_stage, question, next_field, options)) => {
                self.store.set_stage(s.id, next_stage).await?;
                prompt(out, chat, question, survey_choices(s, next_field, options)).await;
            }
            None if checkin => {
                self.store.set_stage(s.id, stage::CHATTING).await?;
                send_text(out, chat, texts::CHECKIN_DONE).await;
            }
            None => {
                self.store.set_stage(s.id, stage::CLOSED).await?;
                send_text(out, chat, texts::GOODBYE).await;
            }
        }
        Ok(())
    }

    /// After a restart: re-sends replies that were recorded but never confirmed delivered,
    /// and answers seeker messages that were stored but not yet replied to.
    pub async fn recover(
        &self,
        out_for: impl Fn(&str) -> Option<mpsc::Sender<Outbound>>,
    ) -> Result<usize> {
        let mut n = 0;
        for t in self.store.undelivered_turns().await? {
            let Some(s) = self.store.session(t.session_id).await? else {
                continue;
            };
            let Some(out) = out_for(&s.chat_platform).map(|tx| Out::to_chat(&tx)) else {
                continue;
            };
            let chat = chat_of(&s);
            let _ = out
                .send(Outbound::Text {
                    id: Some(format!("turn:{}", t.id)),
                    chat,
                    text: t.text.clone(),
                    interaction: None,
                })
                .await;
            n += 1;
        }
        for s in self.store.chatting_sessions().await? {
            let turns = self.store.turns(s.id).await?;
            // A crisis response recorded after the person's turn does not answer it: the
            // model's reply is still owed.
            let Some(last) = turns.iter().rev().find(|t| t.source != TurnSource::Safety) else {
                continue;
            };
            if last.speaker == Speaker::Seeker {
                let Some(out) = out_for(&s.chat_platform).map(|tx| Out::to_chat(&tx)) else {
                    continue;
                };
                let chat = chat_of(&s);
                let risk = self.screen_seeker_turn(&s, &chat, &out).await?;
                self.reply(&s, &chat, risk, &out).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Ends sessions idle past the timeout and applies the retention period (run
    /// periodically by the runtime).
    pub async fn end_idle_sessions(&self) -> Result<usize> {
        let cutoff = now_ms() - self.settings.conversation.idle_timeout_minutes as i64 * 60_000;
        let idle = self.store.idle_sessions(cutoff).await?;
        for s in &idle {
            self.store.end_session(s.id, "idle", stage::CLOSED).await?;
        }
        let days = self.settings.conversation.retention_days;
        if days > 0 {
            let removed = self
                .store
                .delete_sessions_ended_before(now_ms() - days as i64 * 86_400_000)
                .await?;
            if removed > 0 {
                tracing::info!(removed, "conversations past the retention period deleted");
            }
        }
        Ok(idle.len())
    }
}

/// Shows on a rating prompt the stars given (the buttons stay, so the rating can change).
async fn edit_rated_prompt(
    out: &Out,
    chat: &ChatRef,
    prompt_id: i64,
    platform_message_id: &str,
    stars: i64,
    nonce: &str,
) {
    let _ = out
        .send(Outbound::EditPrompt {
            chat: chat.clone(),
            platform_message_id: platform_message_id.to_string(),
            text: format!("{} {}", texts::RATING_QUESTION, texts::rated(stars)),
            choices: rating_choices(prompt_id, nonce),
            chosen: Some(stars as usize - 1),
        })
        .await;
}

/// The `processed_events` key of a platform message.
fn event_key(chat: &ChatRef, message_id: &str) -> String {
    format!("msg:{}:{message_id}", chat.id)
}

fn chat_of(s: &Session) -> ChatRef {
    ChatRef {
        platform: s.chat_platform.clone(),
        id: s.chat_id.clone(),
        kind: if s.chat_kind == "group" {
            kindred_adapter::ChatKind::Group
        } else {
            kindred_adapter::ChatKind::Direct
        },
    }
}

async fn send_text(out: &Out, chat: &ChatRef, text: &str) {
    let _ = out
        .send(Outbound::Text {
            id: None,
            chat: chat.clone(),
            text: text.into(),
            interaction: None,
        })
        .await;
}

async fn prompt(out: &Out, chat: &ChatRef, text: &str, choices: Vec<Choice>) {
    let _ = out
        .send(Outbound::Prompt {
            id: None,
            chat: chat.clone(),
            text: text.into(),
            choices,
            interaction: None,
        })
        .await;
}

/// A generated reply on its way out.
#[derive(Debug, PartialEq)]
enum Outgoing {
    /// The model's reply, after the crisis resources where they are due.
    Reply(String),
    /// The model's reply told the person to harm themselves: it never goes out. They get
    /// the crisis resources and an invitation to go on instead.
    Withheld(String),
}

/// What the model's reply `body` becomes. A reply that encourages self-harm (a sampled
/// small model can say anything) is replaced; a reply that itself speaks of risk gets the
/// `crisis` resources first, unless the person's message brought them already
/// (`responded`).
fn outgoing_reply(
    screen: &safety::Screen,
    body: String,
    responded: bool,
    crisis: &str,
) -> Outgoing {
    if safety::encourages_harm(&body) {
        return Outgoing::Withheld(format!("{crisis}\n\n{}", texts::REPLY_WITHHELD));
    }
    if !responded && screen.screen(&body).is_some() {
        Outgoing::Reply(format!("{crisis}\n\n{body}"))
    } else {
        Outgoing::Reply(body)
    }
}

/// The person's message before their newest one, among a session's stored turns (their
/// newest is stored before it is answered): crisis screening reads the two together.
fn previous_message(turns: &[Turn]) -> Option<&str> {
    turns
        .iter()
        .rev()
        .filter(|t| t.speaker == Speaker::Seeker && t.source == TurnSource::User)
        .nth(1)
        .map(|t| t.text.as_str())
}

/// Deletes everything stored about a person: their record (and with it every
/// conversation, rating and survey answer) and their events still waiting in the inbox.
/// What `/forget` and `kindred db forget` do.
pub async fn forget_person(
    store: &Store,
    user_id: i64,
    platform: &str,
    platform_id: &str,
) -> Result<()> {
    let waiting: Vec<i64> = store
        .inbox_unhandled()
        .await?
        .into_iter()
        .filter(|(_, payload)| {
            serde_json::from_str::<Inbound>(payload).is_ok_and(|ev| {
                ev.origin()
                    .is_some_and(|(_, u)| u.platform == platform && u.id == platform_id)
            })
        })
        .map(|(id, _)| id)
        .collect();
    store.delete_user(user_id, &waiting).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_gets_the_crisis_resources_where_due_and_never_encourages_harm() {
        let crisis = "CALL 988";
        assert_eq!(
            outgoing_reply(
                safety::Screen::standard(),
                "How are you feeling?".into(),
                false,
                crisis
            ),
            Outgoing::Reply("How are you feeling?".into())
        );
        // The person's message brought the resources already: the reply goes as it is.
        assert_eq!(
            outgoing_reply(
                safety::Screen::standard(),
                "How are you feeling?".into(),
                true,
                crisis
            ),
            Outgoing::Reply("How are you feeling?".into())
        );
        // A reply that itself speaks of risk brings them.
        let risky = "It sounds like you want to end it all.";
        assert_eq!(
            outgoing_reply(safety::Screen::standard(), risky.into(), false, crisis),
            Outgoing::Reply(format!("CALL 988\n\n{risky}"))
        );
        // Asking about self-harm directly is good practice, and goes out.
        let asking = "Have you had thoughts of hurting yourself?";
        assert_eq!(
            outgoing_reply(safety::Screen::standard(), asking.into(), true, crisis),
            Outgoing::Reply(asking.to_string())
        );
        for harmful in [
            "Maybe you should just kill yourself.",
            "I think you should end your life.",
            "You deserve to die.",
        ] {
            let Outgoing::Withheld(text) =
                outgoing_reply(safety::Screen::standard(), harmful.into(), false, crisis)
            else {
                panic!("went out: {harmful}");
            };
            assert!(text.starts_with("CALL 988") && !text.contains(harmful));
        }
    }

    #[test]
    fn display_text_reads_like_a_person_wrote_it() {
        assert_eq!(
            display_text("i ' m sorry to hear that . have you tried talking to them ?"),
            "I'm sorry to hear that. Have you tried talking to them?"
        );
        assert_eq!(
            display_text("that is hard, i think."),
            "That is hard, I think."
        );
    }

    #[test]
    fn payloads_parse_or_are_rejected() {
        assert_eq!(
            parse_press("r:3:abc:4"),
            Some(Press::Rating {
                prompt_id: 3,
                nonce: "abc".into(),
                stars: 4
            })
        );
        assert_eq!(parse_press("r:3:abc:9"), None);
        assert_eq!(parse_press("r:x:abc:4"), None);
        assert_eq!(parse_press("garbage"), None);
        assert!(matches!(
            parse_press("s:1:n:a:skip"),
            Some(Press::Survey { value: None, .. })
        ));
        assert!(matches!(
            parse_press("f:1:n:yes"),
            Some(Press::Forget { confirm: true, .. })
        ));
    }
}
