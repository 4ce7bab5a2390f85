//! Discord events into platform-neutral ones. Pure: no network.

use kindred_adapter::{Attachment, ChatKind, ChatRef, Inbound, UserRef};
use poise::serenity_prelude as serenity;

use crate::PLATFORM;

pub fn chat_ref(channel: serenity::ChannelId, guild: Option<serenity::GuildId>) -> ChatRef {
    match guild {
        Some(guild) => ChatRef::group(
            PLATFORM,
            channel.get().to_string(),
            Some(guild.get().to_string()),
        ),
        None => ChatRef::direct(PLATFORM, channel.get().to_string()),
    }
}

pub fn user_ref(u: &serenity::User) -> UserRef {
    UserRef {
        platform: PLATFORM.into(),
        id: u.id.get().to_string(),
        display_name: Some(u.global_name.clone().unwrap_or_else(|| u.name.clone())),
    }
}

/// The handle the engine passes back to answer an interaction: `id:token`.
pub fn interaction_handle(id: serenity::InteractionId, token: &str) -> String {
    format!("{}:{token}", id.get())
}

/// A message, if Kindred should see it: DMs always, guild messages only when they
/// mention the bot (the engine then checks the channel is enabled). Bots are ignored.
pub fn message(m: &serenity::Message, bot_id: serenity::UserId) -> Option<Inbound> {
    if m.author.bot || m.author.id == bot_id {
        return None;
    }
    if !matches!(
        m.kind,
        serenity::MessageType::Regular | serenity::MessageType::InlineReply
    ) {
        return None;
    }
    let chat = chat_ref(m.channel_id, m.guild_id);
    if chat.kind == ChatKind::Group {
        let replied_to_us = m
            .referenced_message
            .as_ref()
            .is_some_and(|r| r.author.id == bot_id);
        if !m.mentions_user_id(bot_id) && !replied_to_us {
            return None;
        }
    }
    let user = user_ref(&m.author);
    let message_id = Some(m.id.get().to_string());
    let text = if chat.kind == ChatKind::Group {
        remove_mention(&m.content, bot_id)
    } else {
        m.content.clone()
    };
    if text.trim().is_empty() {
        let attachment = if !m.sticker_items.is_empty() {
            Some(Attachment::Sticker)
        } else {
            m.attachments
                .first()
                .map(|a| match a.content_type.as_deref().unwrap_or("") {
                    t if t.starts_with("image/") => Attachment::Image,
                    t if t.starts_with("audio/") => Attachment::Voice,
                    t if t.starts_with("video/") => Attachment::Video,
                    _ => Attachment::File,
                })
        };
        if let Some(attachment) = attachment {
            // Discord sends an attachment's words as the message's content, handled as
            // a message below; an attachment alone has none.
            return Some(Inbound::NonText {
                chat,
                user,
                message_id,
                attachment,
                caption: None,
            });
        }
    }
    if let Some(rest) = text.trim_start().strip_prefix('/') {
        // Typed as text rather than picked from the slash-command menu.
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Some(Inbound::Command {
            chat,
            user,
            message_id,
            name: name.to_lowercase(),
            args: args.trim().to_string(),
            interaction: None,
        });
    }
    Some(Inbound::Message {
        chat,
        user,
        message_id,
        text,
    })
}

/// A button press.
pub fn press(p: &serenity::ComponentInteraction) -> Inbound {
    Inbound::Choice {
        chat: chat_ref(p.channel_id, p.guild_id),
        user: user_ref(&p.user),
        payload: p.data.custom_id.clone(),
        interaction: Some(interaction_handle(p.id, &p.token)),
    }
}

/// A person's edit of their text message, if Kindred should screen it (the engine does
/// not answer edits): under a new message's rules, and only real edits (Discord also sends
/// an update without `edited_timestamp` when a link's preview is added).
pub fn edited(ev: &serenity::MessageUpdateEvent, bot_id: serenity::UserId) -> Option<Inbound> {
    let (author, content) = (ev.author.as_ref()?, ev.content.as_ref()?);
    ev.edited_timestamp?;
    if author.bot || author.id == bot_id {
        return None;
    }
    let chat = chat_ref(ev.channel_id, ev.guild_id);
    let text = if chat.kind == ChatKind::Group {
        let mentioned = ev
            .mentions
            .as_ref()
            .is_some_and(|m| m.iter().any(|u| u.id == bot_id));
        let replied_to_us =
            matches!(&ev.referenced_message, Some(Some(r)) if r.author.id == bot_id);
        if !mentioned && !replied_to_us {
            return None;
        }
        remove_mention(content, bot_id)
    } else {
        content.clone()
    };
    if text.trim().is_empty() || text.trim_start().starts_with('/') {
        return None;
    }
    Some(Inbound::Edited {
        chat,
        user: user_ref(author),
        message_id: Some(ev.id.get().to_string()),
        text,
    })
}

fn remove_mention(text: &str, bot_id: serenity::UserId) -> String {
    let id = bot_id.get();
    text.replace(&format!("<@{id}>"), "")
        .replace(&format!("<@!{id}>"), "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
