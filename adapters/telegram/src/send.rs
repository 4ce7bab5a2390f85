//! Carrying out the engine's requests with the Bot API, retrying what can be retried.

use std::future::Future;
use std::time::Duration;

use kindred_adapter::{split_message, Choice, Inbound, Inbox, Outbound};
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, MessageId,
};
use teloxide::RequestError;

use crate::Redactor;

/// Telegram's limit for one message, in UTF-16 code units.
pub const MESSAGE_LIMIT: usize = 4096;

/// Runs a request, waiting out `429 retry_after` and retrying network errors with
/// back-off. API errors (a blocked bot, a deleted chat) are returned at once.
pub async fn retrying<T, F, Fut>(mut request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match request().await {
            Err(RequestError::RetryAfter(s)) if attempt < 6 => {
                let wait = s.duration().min(Duration::from_secs(120));
                tracing::warn!(
                    retry_after_s = wait.as_secs(),
                    "Telegram rate limit; waiting"
                );
                tokio::time::sleep(wait).await;
            }
            Err(RequestError::Network(_)) | Err(RequestError::Io(_)) if attempt < 6 => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            other => return other,
        }
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// An inline keyboard: short labels (star ratings, 1–5 scales) in one row, longer
/// ones two to a row so they stay readable on a phone.
pub fn keyboard(choices: &[Choice]) -> InlineKeyboardMarkup {
    let buttons: Vec<InlineKeyboardButton> = choices
        .iter()
        .map(|c| InlineKeyboardButton::callback(c.label.clone(), c.payload.clone()))
        .collect();
    let per_row = if choices.iter().all(|c| c.label.chars().count() <= 4) {
        buttons.len().max(1)
    } else {
        2
    };
    InlineKeyboardMarkup::new(
        buttons
            .chunks(per_row)
            .map(|r| r.to_vec())
            .collect::<Vec<_>>(),
    )
}

/// Marks the chosen button so a second look shows the answer in effect.
fn with_choice_marked(choices: &[Choice], chosen: Option<usize>) -> Vec<Choice> {
    choices
        .iter()
        .enumerate()
        .map(|(i, c)| Choice {
            label: if Some(i) == chosen {
                format!("✓ {}", c.label)
            } else {
                c.label.clone()
            },
            payload: c.payload.clone(),
        })
        .collect()
}

/// Sends what the engine asks, in order within each chat, reporting deliveries back.
pub async fn run_outbound(
    bot: Bot,
    outbound: tokio::sync::mpsc::Receiver<Outbound>,
    inbox: Inbox,
    redact: Redactor,
    messages_per_second: u32,
) {
    // One queue per chat (see `send_per_chat`), kept to Telegram's pace; 429s are still
    // retried as Telegram asks.
    let pace = kindred_adapter::Pace {
        platform: kindred_adapter::Bucket::per_second(messages_per_second.max(1)),
        ..kindred_adapter::Pace::TELEGRAM
    };
    let sharing = inbox.sharing();
    kindred_adapter::send_per_chat(outbound, SENDS_AT_ONCE, pace, sharing, move |o| {
        let (bot, inbox, redact) = (bot.clone(), inbox.clone(), redact.clone());
        async move { send_one(&bot, o, &inbox, &redact).await }
    })
    .await
}

/// Sends in flight at once, across chats.
const SENDS_AT_ONCE: usize = 8;

/// Sends one outbound message and reports how it went.
async fn send_one(bot: &Bot, o: Outbound, inbox: &Inbox, redact: &Redactor) {
    let Ok(chat_id) = o.chat().id.parse::<i64>().map(ChatId) else {
        tracing::warn!(chat = %o.chat().id, "not a Telegram chat id");
        return;
    };
    match o {
        Outbound::Text { id, text, .. } => {
            let mut last = None;
            let mut error = None;
            for part in split_message(&text, MESSAGE_LIMIT, utf16_len) {
                match retrying(|| bot.send_message(chat_id, part.clone()).send()).await {
                    Ok(m) => last = Some(m.id.0.to_string()),
                    Err(e) => {
                        error = Some(redact.clean(&e));
                        break;
                    }
                }
            }
            report(inbox, id, last, error).await;
        }
        Outbound::Prompt {
            id, text, choices, ..
        } => {
            let r = retrying(|| {
                bot.send_message(chat_id, text.clone())
                    .reply_markup(keyboard(&choices))
                    .send()
            })
            .await;
            match r {
                Ok(m) => report(inbox, id, Some(m.id.0.to_string()), None).await,
                Err(e) => report(inbox, id, None, Some(redact.clean(&e))).await,
            }
        }
        Outbound::File {
            id,
            file_name,
            content,
            caption,
            ..
        } => {
            let r = retrying(|| {
                bot.send_document(
                    chat_id,
                    InputFile::memory(content.clone().into_bytes()).file_name(file_name.clone()),
                )
                .caption(caption.clone())
                .send()
            })
            .await;
            match r {
                Ok(m) => report(inbox, id, Some(m.id.0.to_string()), None).await,
                Err(e) => report(inbox, id, None, Some(redact.clean(&e))).await,
            }
        }
        Outbound::Typing { .. } => {
            // Cosmetic: never retried, never worth a warning.
            let _ = bot
                .send_chat_action(chat_id, ChatAction::Typing)
                .send()
                .await;
        }
        Outbound::EditPrompt {
            platform_message_id,
            text,
            choices,
            chosen,
            ..
        } => {
            let Ok(mid) = platform_message_id.parse::<i32>() else {
                return;
            };
            let marked = with_choice_marked(&choices, chosen);
            let r = retrying(|| {
                let req = bot.edit_message_text(chat_id, MessageId(mid), text.clone());
                if marked.is_empty() {
                    req.send()
                } else {
                    req.reply_markup(keyboard(&marked)).send()
                }
            })
            .await;
            if let Err(e) = r {
                // "message is not modified" when the same rating is pressed twice.
                tracing::debug!(error = %redact.clean(&e), "editing a prompt failed");
            }
        }
        Outbound::Notice {
            interaction: Some(q),
            text,
            ..
        } => {
            let r = retrying(|| {
                bot.answer_callback_query(q.clone().into())
                    .text(text.clone())
                    .send()
            })
            .await;
            if let Err(e) = r {
                // A callback query expires after a while; say it in the chat instead.
                tracing::debug!(error = %redact.clean(&e), "answering a button press failed");
                let _ = retrying(|| bot.send_message(chat_id, text.clone()).send()).await;
            }
        }
        Outbound::Notice {
            interaction: None,
            text,
            ..
        } => {
            if let Err(e) = retrying(|| bot.send_message(chat_id, text.clone()).send()).await {
                tracing::warn!(error = %redact.clean(&e), "sending a notice failed");
            }
        }
        Outbound::Done { .. } => {}
    }
}

async fn report(inbox: &Inbox, id: Option<String>, sent: Option<String>, error: Option<String>) {
    let Some(outbound_id) = id else {
        if let Some(e) = error {
            tracing::warn!(error = %e, "sending a message failed");
        }
        return;
    };
    let ev = match error {
        None => Inbound::Delivered {
            outbound_id,
            platform_message_id: sent,
        },
        Some(reason) => {
            tracing::warn!(error = %reason, "sending a message failed");
            Inbound::Failed {
                outbound_id,
                reason,
            }
        }
    };
    let _ = inbox.send(ev).await;
}
