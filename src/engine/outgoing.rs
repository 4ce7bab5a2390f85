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
}

impl Out {
    pub(super) fn to_chat(tx: &mpsc::Sender<Outbound>) -> Self {
        Self {
            tx: tx.clone(),
            interaction: None,
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
        Self {
            tx: tx.clone(),
            interaction,
        }
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

/// The `processed_events` key of a platform message.
pub(super) fn event_key(chat: &ChatRef, message_id: &str) -> String {
    format!("msg:{}:{message_id}", chat.id)
}

pub(super) fn chat_of(s: &Session) -> ChatRef {
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
