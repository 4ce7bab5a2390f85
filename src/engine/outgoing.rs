//! Where the engine's answers go: [`Out`] stamps each with the interaction it answers,
//! so that an answer to a private interaction stays private however deep in the engine it
//! is sent; and the two shapes every answer takes, a text or a prompt with choices.

use super::*;

/// Where the answers to one event go. It stamps them with the platform interaction
/// they answer (see [`Outbound`]), so that every answer to a private interaction stays
/// private, however deep in the engine it is sent.
pub(super) struct Out {
    tx: mpsc::Sender<Outbound>,
    interaction: Option<String>,
    /// When the person's message this answers reached the engine, until its reply has
    /// gone out (the reply latency metric).
    message_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Whether crisis resources went out for the event this answers.
    care_sent: std::sync::atomic::AtomicBool,
}

impl Out {
    pub(super) fn to_chat(tx: &mpsc::Sender<Outbound>) -> Self {
        Self {
            tx: tx.clone(),
            interaction: None,
            message_at: Default::default(),
            care_sent: Default::default(),
        }
    }

    /// Answers to `ev`: those to a slash command or a moderator's action, and those to a
    /// button press in a shared chat, go to that interaction.
    pub(super) fn answering(tx: &mpsc::Sender<Outbound>, ev: &Inbound) -> Self {
        let interaction = match ev {
            Inbound::Command { interaction, .. } | Inbound::Moderation { interaction, .. } => {
                interaction.clone()
            }
            Inbound::Choice {
                chat, interaction, ..
            } if chat.kind == kindred_adapter::ChatKind::Group => interaction.clone(),
            _ => None,
        };
        let message_at = matches!(ev, Inbound::Message { .. }).then(std::time::Instant::now);
        Self {
            tx: tx.clone(),
            interaction,
            message_at: std::sync::Mutex::new(message_at),
            care_sent: Default::default(),
        }
    }

    /// Records that crisis resources went out for this event.
    pub(super) fn care_sent(&self) {
        self.care_sent
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether crisis resources went out for this event.
    pub(super) fn has_sent_care(&self) -> bool {
        self.care_sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) async fn send(
        &self,
        mut o: Outbound,
    ) -> Result<(), mpsc::error::SendError<Outbound>> {
        if let Some(handle) = &self.interaction {
            if let Outbound::Text { interaction, .. }
            | Outbound::Prompt { interaction, .. }
            | Outbound::File { interaction, .. }
            | Outbound::Done { interaction, .. } = &mut o
            {
                interaction.get_or_insert_with(|| handle.clone());
            }
        }
        let kind = match &o {
            Outbound::Text { id: Some(id), .. } if id.starts_with("turn:") => Some("reply"),
            Outbound::Text { id: Some(id), .. } if id.starts_with(CARE_PREFIX) => Some("care"),
            Outbound::Text { .. } => Some("text"),
            Outbound::Prompt { .. } => Some("prompt"),
            Outbound::EditPrompt { .. } => Some("edit"),
            Outbound::File { .. } => Some("file"),
            Outbound::Notice { .. } => Some("notice"),
            _ => None,
        };
        if let Some(kind) = kind {
            let m = crate::metrics::metrics();
            m.message_sent(&o.chat().platform, kind);
            // The first answer to a message, crisis resources or the model's reply.
            if kind == "reply" || kind == "care" {
                let started = self.message_at.lock().map(|mut t| t.take()).unwrap_or(None);
                if let Some(started) = started {
                    m.reply_latency.observe(started.elapsed().as_secs_f64());
                }
            }
        }
        self.tx.send(o).await
    }
}

pub(super) async fn send_text(out: &Out, chat: &ChatRef, text: &str) {
    let _ = out
        .send(Outbound::Text {
            id: None,
            chat: chat.clone(),
            text: text.into(),
            interaction: None,
        })
        .await;
}

pub(super) async fn prompt(out: &Out, chat: &ChatRef, text: &str, choices: Vec<Choice>) {
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

/// What a recorded turn is called on its way out (reported back in [`Inbound::Delivered`]
/// and [`Inbound::Failed`], and the Discord nonce): `care:N` for crisis resources, which
/// platforms send ahead of everything waiting for their rate budget (see
/// [`kindred_adapter::send_per_chat`]), `turn:N` for the rest.
pub(super) fn turn_outbound_id(t: &crate::store::Turn) -> String {
    if t.source == TurnSource::Safety {
        format!("{CARE_PREFIX}{}", t.id)
    } else {
        format!("turn:{}", t.id)
    }
}

/// The outbound id of crisis resources sent without a turn recorded for them (the
/// store failed): it goes ahead of the platform's budget like every `care:` message,
/// names no turn, and is unique (Discord's nonce is made of it).
pub(super) fn unrecorded_care_id() -> String {
    format!("{CARE_PREFIX}now-{}", crate::store::random_token(10))
}

/// The turn an outbound id names, if it names one.
pub(super) fn recorded_turn(outbound_id: &str) -> Option<i64> {
    outbound_id
        .strip_prefix("turn:")
        .or_else(|| outbound_id.strip_prefix(CARE_PREFIX))
        .and_then(|n| n.parse().ok())
}

use kindred_adapter::CARE_PREFIX;

/// The `processed_events` key of a platform message.
pub(super) fn event_key(chat: &ChatRef, message_id: &str) -> String {
    format!("msg:{}:{message_id}", chat.id)
}

pub(super) fn chat_of(s: &Session) -> ChatRef {
    ChatRef {
        platform: s.chat_platform.clone(),
        id: s.chat_id.clone(),
        kind: s.chat_kind,
        community: s.chat_community.clone(),
    }
}
