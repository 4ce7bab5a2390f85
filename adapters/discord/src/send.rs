//! Carrying out the engine's requests with Discord's REST API.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kindred_adapter::{split_message, ChatKind, Choice, Inbound, Inbox, Outbound};
use poise::serenity_prelude as serenity;
use serenity::{
    ButtonStyle, ChannelId, CreateActionRow, CreateAttachment, CreateButton,
    CreateInteractionResponseFollowup, CreateMessage, EditInteractionResponse, EditMessage, Http,
    MessageId, Nonce,
};

use crate::Deferred;
use serenity::Builder as _;

/// Discord's limit for one message, in characters.
pub const MESSAGE_LIMIT: usize = 2000;

/// Runs a request, retrying rate limits (429), server errors and network failures
/// with back-off. Other errors (a missing channel, no permission) return at once.
pub async fn retrying<T, F, Fut>(mut request: F) -> serenity::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = serenity::Result<T>>,
{
    let mut wait = Duration::from_millis(500);
    for attempt in 1.. {
        match request().await {
            Err(e) if attempt < 5 && retryable(&e) => {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Discord request failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    unreachable!()
}

fn retryable(e: &serenity::Error) -> bool {
    match e {
        serenity::Error::Http(serenity::HttpError::UnsuccessfulRequest(r)) => {
            r.status_code.as_u16() == 429 || r.status_code.is_server_error()
        }
        serenity::Error::Http(serenity::HttpError::Request(_)) => true,
        serenity::Error::Io(_) => true,
        _ => false,
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Buttons, five to a row (Discord's maximum), at most five rows. The chosen one (an
/// answer in effect) is green and disabled; the others stay so it can be changed.
pub fn buttons(choices: &[Choice], chosen: Option<usize>) -> Vec<CreateActionRow> {
    choices
        .chunks(5)
        .take(5)
        .enumerate()
        .map(|(row, chunk)| {
            CreateActionRow::Buttons(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let picked = chosen == Some(row * 5 + i);
                        CreateButton::new(c.payload.clone())
                            .label(c.label.chars().take(80).collect::<String>())
                            .style(if picked {
                                ButtonStyle::Success
                            } else {
                                ButtonStyle::Secondary
                            })
                            .disabled(picked)
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The token of an interaction handle (`id:token`).
fn token_of(handle: &str) -> &str {
    handle.split_once(':').map_or(handle, |(_, t)| t)
}

/// Sends what the engine asks, in order, reporting deliveries back.
pub async fn run_outbound(
    http: Arc<Http>,
    outbound: tokio::sync::mpsc::Receiver<Outbound>,
    inbox: Inbox,
    deferred: Deferred,
) {
    // Interactions something was said to, until the engine is done with them (an
    // interaction's answers and its end come through its own chat's queue, in order).
    let answered: Arc<Mutex<HashSet<String>>> = Default::default();
    // One queue per channel (see `send_per_chat`): a busy or failing channel holds back
    // only itself.
    kindred_adapter::send_per_chat(
        outbound,
        SENDS_AT_ONCE,
        kindred_adapter::Pace::DISCORD,
        inbox.sharing(),
        move |o| {
            let (http, inbox, deferred, answered) = (
                http.clone(),
                inbox.clone(),
                deferred.clone(),
                answered.clone(),
            );
            async move { send_one(&http, o, &inbox, &deferred, &answered).await }
        },
    )
    .await
}

/// Sends in flight at once, across channels.
const SENDS_AT_ONCE: usize = 8;

/// Sends one outbound message and reports how it went.
async fn send_one(
    http: &Http,
    o: Outbound,
    inbox: &Inbox,
    deferred: &Deferred,
    answered: &Mutex<HashSet<String>>,
) {
    let chat = o.chat().clone();
    let Ok(channel) = chat.id.parse::<u64>().map(ChannelId::new) else {
        tracing::warn!(chat = %chat.id, "not a Discord channel id");
        return;
    };
    match o {
        Outbound::Text {
            id,
            text,
            interaction,
            ..
        } => {
            let to = interaction.as_deref().map(token_of);
            answered.lock().unwrap().extend(to.map(String::from));
            let r = send_text(http, channel, to, &text, &[], id.as_deref()).await;
            report(inbox, id, r).await;
        }
        Outbound::Prompt {
            id,
            text,
            choices,
            interaction,
            ..
        } => {
            let to = interaction.as_deref().map(token_of);
            answered.lock().unwrap().extend(to.map(String::from));
            let r = send_text(http, channel, to, &text, &choices, id.as_deref()).await;
            report(inbox, id, r).await;
        }
        Outbound::File {
            id,
            file_name,
            content,
            caption,
            interaction,
            ..
        } => {
            let file = CreateAttachment::bytes(content.into_bytes(), file_name);
            let sent = match interaction.as_deref().map(token_of) {
                Some(token) => {
                    answered.lock().unwrap().insert(token.to_string());
                    let f = CreateInteractionResponseFollowup::new()
                        .content(caption)
                        .add_file(file)
                        .ephemeral(true);
                    retrying(|| f.clone().execute(http, (None, token))).await
                }
                None => {
                    let mut m = CreateMessage::new().content(caption).add_file(file);
                    if let Some(id) = &id {
                        m = m.nonce(Nonce::String(nonce_of(id, 0))).enforce_nonce(true);
                    }
                    retrying(|| channel.send_message(http, m.clone())).await
                }
            };
            report(
                inbox,
                id,
                sent.map(|m| m.id.get().to_string())
                    .map_err(|e| e.to_string()),
            )
            .await;
        }
        Outbound::Typing { .. } => {
            let _ = channel.broadcast_typing(http).await;
        }
        Outbound::EditPrompt {
            platform_message_id,
            text,
            choices,
            chosen,
            ..
        } => {
            let Ok(mid) = platform_message_id.parse::<u64>().map(MessageId::new) else {
                return;
            };
            let r = retrying(|| {
                channel.edit_message(
                    http,
                    mid,
                    EditMessage::new()
                        .content(text.clone())
                        .components(buttons(&choices, chosen)),
                )
            })
            .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "editing a prompt failed");
            }
        }
        Outbound::Notice {
            interaction: Some(handle),
            text,
            ..
        } => {
            answered
                .lock()
                .unwrap()
                .insert(token_of(&handle).to_string());
            let followup = CreateInteractionResponseFollowup::new()
                .content(text.clone())
                .ephemeral(true);
            let r = retrying(|| followup.clone().execute(http, (None, token_of(&handle)))).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "answering an interaction failed");
            }
        }
        Outbound::Notice {
            interaction: None,
            text,
            ..
        } => {
            let r = send_text(http, channel, None, &text, &[], None).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "sending a notice failed");
            }
        }
        Outbound::Done {
            interaction: Some(handle),
            ..
        } => {
            // A deferred slash command the engine said nothing to (e.g. in a channel
            // where Kindred is off): say why instead of leaving it "thinking".
            let token = token_of(&handle);
            let was_answered = answered.lock().unwrap().remove(token);
            if deferred.remove(token) && !was_answered {
                let text = match chat.kind {
                    ChatKind::Group => "Kindred isn't answering in this channel. You can talk to me in a direct message.",
                    ChatKind::Direct => "Done.",
                };
                let _ = EditInteractionResponse::new()
                    .content(text)
                    .execute(http, token)
                    .await;
            }
        }
        Outbound::Done {
            interaction: None, ..
        } => {}
    }
}

/// A message part's nonce: Discord takes at most 25 characters, so a long id is hashed.
fn nonce_of(id: &str, part: usize) -> String {
    let nonce = format!("{id}.{part}");
    if nonce.len() <= 25 {
        return nonce;
    }
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    nonce.hash(&mut h);
    format!("k{:016x}", h.finish())
}

/// Sends a text (split for Discord's limit), with buttons on its last part: into the
/// channel, or as private follow-ups of the interaction with token `to`. Returns the
/// id of the message that carries the buttons (or the last part).
///
/// A message the engine recorded (`id`, e.g. `turn:42`, or `care:43` for crisis
/// resources) carries a nonce made of it and the part's number, with `enforce_nonce`:
/// sent again after a crash (the engine re-sends
/// what it never heard was delivered), Discord answers with the message it already has
/// instead of posting it twice.
async fn send_text(
    http: &Http,
    channel: ChannelId,
    to: Option<&str>,
    text: &str,
    choices: &[Choice],
    id: Option<&str>,
) -> Result<String, String> {
    let parts = split_message(text, MESSAGE_LIMIT, chars);
    let mut last = String::new();
    for (i, part) in parts.iter().enumerate() {
        let rows = if i + 1 == parts.len() {
            buttons(choices, None)
        } else {
            Vec::new()
        };
        let sent = match to {
            Some(token) => {
                let f = CreateInteractionResponseFollowup::new()
                    .content(part.clone())
                    .ephemeral(true)
                    .components(rows);
                retrying(|| f.clone().execute(http, (None, token))).await
            }
            None => {
                let mut m = CreateMessage::new().content(part.clone()).components(rows);
                if let Some(id) = id {
                    m = m.nonce(Nonce::String(nonce_of(id, i))).enforce_nonce(true);
                }
                retrying(|| channel.send_message(http, m.clone())).await
            }
        };
        match sent {
            Ok(m) => last = m.id.get().to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(last)
}

async fn report(inbox: &Inbox, id: Option<String>, r: Result<String, String>) {
    let ev = match (id, r) {
        (Some(outbound_id), Ok(mid)) => Inbound::Delivered {
            outbound_id,
            platform_message_id: Some(mid),
        },
        (Some(outbound_id), Err(reason)) => {
            tracing::warn!(error = %reason, "sending a message failed");
            Inbound::Failed {
                outbound_id,
                reason,
            }
        }
        (None, Err(reason)) => {
            tracing::warn!(error = %reason, "sending a message failed");
            return;
        }
        (None, Ok(_)) => return,
    };
    let _ = inbox.send(ev).await;
}
