//! Telegram updates into platform-neutral events. Pure: no network, easy to test.
//!
//! Rules:
//! - Private chats: every message goes to the engine.
//! - Groups: only messages that mention the bot (`@name`), reply to one of its
//!   messages, or are commands; the mention is removed from the text. Each person's
//!   session in a group is their own (the engine keys sessions by chat and person).
//! - `/enable`, `/disable`, `/status`, `/resources TEXT` in groups are moderation: the
//!   caller checks the sender is an admin with `getChatMember` before passing them on.
//!   An admin who posts anonymously writes as the group itself (`sender_chat` is the
//!   chat), which Telegram allows only admins: those commands need no check, and their
//!   other messages are ignored (there is no person to keep a conversation with).
//! - Messages from bots, channel posts and service messages are ignored.
//! - Edited text messages become `Inbound::Edited`, under the same rules: the engine does
//!   not answer them (it answered the original; answering the edit too would repeat the
//!   conversation) but screens them for risk. (Documented in the README.)

use kindred_adapter::{Attachment, ChatKind, ChatRef, Inbound, ModAction, UserRef};
use teloxide::types::{MaybeInaccessibleMessage, Message, Update, UpdateKind, UserId};

use crate::PLATFORM;

pub const ADMINS_ONLY: &str = "Only this group's admins can change how Kindred works here.";

/// What an update means for Kindred.
#[derive(Debug, PartialEq)]
pub enum Converted {
    Event(Inbound),
    /// A moderation command: to be passed on only if `user_id` administers `chat_id`
    /// (already known when `by_anonymous_admin`).
    Moderation {
        event: Inbound,
        chat_id: i64,
        user_id: u64,
        by_anonymous_admin: bool,
    },
    Ignore(&'static str),
}

/// Converts updates for one bot (its id and username decide what counts as addressed to it).
#[derive(Debug, Clone)]
pub struct Converter {
    bot_id: UserId,
    mention: String,
}

impl Converter {
    pub fn new(bot_id: UserId, username: &str) -> Self {
        Self {
            bot_id,
            mention: format!("@{}", username.to_lowercase()),
        }
    }

    pub fn convert(&self, update: Update) -> Converted {
        match update.kind {
            UpdateKind::Message(m) => self.message(&m),
            UpdateKind::EditedMessage(m) => match self.message(&m) {
                // Under the same rules as a new message (in groups: addressed to the bot).
                Converted::Event(Inbound::Message {
                    chat,
                    user,
                    message_id,
                    text,
                }) => Converted::Event(Inbound::Edited {
                    chat,
                    user,
                    message_id,
                    text,
                }),
                _ => Converted::Ignore("edited message that is not text"),
            },
            UpdateKind::CallbackQuery(q) => {
                if q.from.is_bot {
                    return Converted::Ignore("callback from a bot");
                }
                let Some(MaybeInaccessibleMessage::Regular(m)) = q.message else {
                    // Too old for Telegram to show us: still answer it, as a stale press.
                    return Converted::Event(Inbound::Choice {
                        chat: ChatRef::direct(PLATFORM, q.from.id.0.to_string()),
                        user: user_ref(&q.from),
                        payload: String::new(),
                        interaction: Some(q.id.0),
                    });
                };
                let Some(chat) = chat_ref(&m) else {
                    return Converted::Ignore("callback in a channel");
                };
                Converted::Event(Inbound::Choice {
                    chat,
                    user: user_ref(&q.from),
                    payload: q.data.unwrap_or_default(),
                    interaction: Some(q.id.0),
                })
            }
            UpdateKind::Error(_) => Converted::Ignore("malformed update"),
            _ => Converted::Ignore("update kind not handled"),
        }
    }

    fn message(&self, m: &Message) -> Converted {
        let Some(from) = &m.from else {
            return Converted::Ignore("message without a sender");
        };
        // Sent on behalf of the group itself: only its admins can do that.
        let anonymous_admin = m.sender_chat.as_ref().is_some_and(|c| c.id == m.chat.id);
        if from.is_bot && !anonymous_admin {
            return Converted::Ignore("message from a bot");
        }
        let Some(chat) = chat_ref(m) else {
            return Converted::Ignore("channel post");
        };
        let user = user_ref(from);
        let message_id = Some(m.id.0.to_string());
        let group = chat.kind == ChatKind::Group;
        if let Some(text) = m.text() {
            if let Some(rest) = text.strip_prefix('/') {
                let (word, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                let (name, addressee) = word.split_once('@').unwrap_or((word, ""));
                if !addressee.is_empty() && format!("@{}", addressee.to_lowercase()) != self.mention
                {
                    return Converted::Ignore("command for another bot");
                }
                let name = name.to_lowercase();
                let args = args.trim().to_string();
                if group {
                    let action = match name.as_str() {
                        "enable" => Some(ModAction::Enable),
                        "disable" => Some(ModAction::Disable),
                        "status" => Some(ModAction::Status),
                        "resources" => Some(ModAction::SetResources(args.clone())),
                        // /alerts: a code to link an alert group; /alerts CODE (in the
                        // alert group): link it; /alerts off; /alerts text on|off.
                        "alerts" => Some(match args.to_lowercase().as_str() {
                            "" => ModAction::LinkAlerts,
                            "off" => ModAction::SetAlerts {
                                target: None,
                                include_text: false,
                            },
                            code => ModAction::UseAlertCode(code.to_string()),
                        }),
                        _ => None,
                    };
                    if let Some(action) = action {
                        return Converted::Moderation {
                            event: Inbound::Moderation {
                                chat,
                                user,
                                action,
                                interaction: None,
                            },
                            chat_id: m.chat.id.0,
                            user_id: from.id.0,
                            by_anonymous_admin: anonymous_admin,
                        };
                    }
                }
                if anonymous_admin {
                    return Converted::Ignore("an anonymous admin's command");
                }
                return Converted::Event(Inbound::Command {
                    chat,
                    user,
                    message_id,
                    name,
                    args,
                    interaction: None,
                });
            }
            if anonymous_admin {
                return Converted::Ignore("an anonymous admin's message");
            }
            let text = if group {
                let replied_to_us = m
                    .reply_to_message()
                    .and_then(|r| r.from.as_ref())
                    .is_some_and(|u| u.id == self.bot_id);
                let mentioned = text.to_lowercase().contains(&self.mention);
                if !mentioned && !replied_to_us {
                    return Converted::Ignore("group message not addressed to the bot");
                }
                remove_mention(text, &self.mention)
            } else {
                text.to_string()
            };
            return Converted::Event(Inbound::Message {
                chat,
                user,
                message_id,
                text,
            });
        }
        let attachment = if m.sticker().is_some() {
            Attachment::Sticker
        } else if m.photo().is_some() {
            Attachment::Image
        } else if m.voice().is_some() || m.audio().is_some() {
            Attachment::Voice
        } else if m.video().is_some() || m.video_note().is_some() || m.animation().is_some() {
            Attachment::Video
        } else if m.document().is_some() {
            Attachment::File
        } else {
            // Joins, leaves, pinned messages and other service messages.
            return Converted::Ignore("service message");
        };
        if group {
            let replied_to_us = m
                .reply_to_message()
                .and_then(|r| r.from.as_ref())
                .is_some_and(|u| u.id == self.bot_id);
            let caption_mentions = m
                .caption()
                .is_some_and(|c| c.to_lowercase().contains(&self.mention));
            if !replied_to_us && !caption_mentions {
                return Converted::Ignore("group attachment not addressed to the bot");
            }
        }
        Converted::Event(Inbound::NonText {
            chat,
            user,
            message_id,
            attachment,
            caption: m
                .caption()
                .map(str::to_string)
                .filter(|c| !c.trim().is_empty()),
        })
    }
}

fn chat_ref(m: &Message) -> Option<ChatRef> {
    let kind = if m.chat.is_private() {
        ChatKind::Direct
    } else if m.chat.is_group() || m.chat.is_supergroup() {
        ChatKind::Group
    } else {
        return None;
    };
    Some(ChatRef {
        platform: PLATFORM.into(),
        id: m.chat.id.0.to_string(),
        kind,
        community: None,
    })
}

fn user_ref(u: &teloxide::types::User) -> UserRef {
    UserRef {
        platform: PLATFORM.into(),
        id: u.id.0.to_string(),
        display_name: Some(u.first_name.clone()),
    }
}

/// Removes `@botname` (any case) from a group message.
fn remove_mention(text: &str, mention: &str) -> String {
    let lower = text.to_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    // Lower-casing can change byte lengths for a few scripts; fall back to the text as is.
    if lower.len() != text.len() {
        return text.trim().to_string();
    }
    while let Some(pos) = lower[i..].find(mention) {
        out.push_str(&text[i..i + pos]);
        i += pos + mention.len();
    }
    out.push_str(&text[i..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv() -> Converter {
        Converter::new(UserId(42), "KindredBot")
    }

    fn update(v: serde_json::Value) -> Update {
        serde_json::from_str(&v.to_string()).expect("a valid update")
    }

    fn msg(chat: serde_json::Value, text: &str) -> Update {
        update(json!({"update_id": 1, "message": {
            "message_id": 7, "date": 1700000000, "chat": chat,
            "from": {"id": 5, "is_bot": false, "first_name": "Ana"}, "text": text}}))
    }

    fn private() -> serde_json::Value {
        json!({"id": 5, "type": "private", "first_name": "Ana"})
    }

    fn group() -> serde_json::Value {
        json!({"id": -100, "type": "supergroup", "title": "Friends"})
    }

    #[test]
    fn private_text_is_a_message_and_slash_words_are_commands() {
        match conv().convert(msg(private(), "hello")) {
            Converted::Event(Inbound::Message {
                text,
                chat,
                message_id,
                ..
            }) => {
                assert_eq!(
                    (text.as_str(), chat.kind, message_id.as_deref()),
                    ("hello", ChatKind::Direct, Some("7"))
                );
            }
            other => panic!("{other:?}"),
        }
        match conv().convert(msg(private(), "/Rate@kindredbot 4")) {
            Converted::Event(Inbound::Command { name, args, .. }) => {
                assert_eq!((name.as_str(), args.as_str()), ("rate", "4"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            conv().convert(msg(private(), "/start@OtherBot")),
            Converted::Ignore(_)
        ));
    }

    #[test]
    fn groups_need_a_mention_or_a_reply_and_lose_the_mention() {
        assert!(matches!(
            conv().convert(msg(group(), "just chatting")),
            Converted::Ignore(_)
        ));
        match conv().convert(msg(group(), "@KindredBot I feel low")) {
            Converted::Event(Inbound::Message { text, chat, .. }) => {
                assert_eq!((text.as_str(), chat.kind), ("I feel low", ChatKind::Group))
            }
            other => panic!("{other:?}"),
        }
        let reply = update(json!({"update_id": 2, "message": {
            "message_id": 8, "date": 1700000000, "chat": group(),
            "from": {"id": 5, "is_bot": false, "first_name": "Ana"}, "text": "thanks",
            "reply_to_message": {"message_id": 3, "date": 1700000000, "chat": group(),
                "from": {"id": 42, "is_bot": true, "first_name": "Kindred", "username": "KindredBot"}, "text": "hi"}}}));
        assert!(matches!(
            conv().convert(reply),
            Converted::Event(Inbound::Message { .. })
        ));
    }

    #[test]
    fn moderation_commands_in_groups_need_an_admin_check() {
        match conv().convert(msg(group(), "/resources Call 112")) {
            Converted::Moderation {
                event: Inbound::Moderation { action, .. },
                chat_id,
                user_id,
                by_anonymous_admin,
            } => {
                assert_eq!(
                    (action, chat_id, user_id, by_anonymous_admin),
                    (ModAction::SetResources("Call 112".into()), -100, 5, false)
                );
            }
            other => panic!("{other:?}"),
        }
        // Alerts: a link code, linking with one, and off.
        for (text, want) in [
            ("/alerts", ModAction::LinkAlerts),
            ("/alerts k3yc0de", ModAction::UseAlertCode("k3yc0de".into())),
            (
                "/alerts off",
                ModAction::SetAlerts {
                    target: None,
                    include_text: false,
                },
            ),
        ] {
            match conv().convert(msg(group(), text)) {
                Converted::Moderation {
                    event: Inbound::Moderation { action, .. },
                    ..
                } => assert_eq!(action, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        // An anonymous admin (as Telegram sends it: from GroupAnonymousBot, sender_chat
        // the group): moderation passes without a check; anything else is ignored.
        let anonymous = |text: &str| {
            update(json!({"update_id": 9, "message": {
                "message_id": 12, "date": 1700000000, "chat": group(),
                "from": {"id": 1087968824u64, "is_bot": true, "first_name": "Group", "username": "GroupAnonymousBot"},
                "sender_chat": group(), "text": text}}))
        };
        assert!(matches!(
            conv().convert(anonymous("/enable")),
            Converted::Moderation {
                event: Inbound::Moderation {
                    action: ModAction::Enable,
                    ..
                },
                by_anonymous_admin: true,
                ..
            }
        ));
        assert!(matches!(
            conv().convert(anonymous("@KindredBot hello")),
            Converted::Ignore(_)
        ));
        assert!(matches!(
            conv().convert(anonymous("/start")),
            Converted::Ignore(_)
        ));
        // Another bot posting as some other chat is still a bot.
        let other = update(json!({"update_id": 10, "message": {
            "message_id": 13, "date": 1700000000, "chat": group(),
            "from": {"id": 136817688u64, "is_bot": true, "first_name": "Channel"},
            "sender_chat": {"id": -100777, "title": "News", "type": "channel"}, "text": "/enable"}}));
        assert!(matches!(conv().convert(other), Converted::Ignore(_)));
        // In a DM the same word is just an unknown command for the engine to explain.
        assert!(matches!(
            conv().convert(msg(private(), "/enable")),
            Converted::Event(Inbound::Command { .. })
        ));
    }

    #[test]
    fn bots_stickers_edits_and_callbacks() {
        let from_bot = update(
            json!({"update_id": 3, "message": {"message_id": 9, "date": 1700000000,
            "chat": private(), "from": {"id": 6, "is_bot": true, "first_name": "B"}, "text": "hi"}}),
        );
        assert!(matches!(conv().convert(from_bot), Converted::Ignore(_)));
        let sticker = update(
            json!({"update_id": 4, "message": {"message_id": 10, "date": 1700000000,
            "chat": private(), "from": {"id": 5, "is_bot": false, "first_name": "Ana"},
            "sticker": {"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                "is_animated": false, "is_video": false}}}),
        );
        assert!(matches!(
            conv().convert(sticker),
            Converted::Event(Inbound::NonText {
                attachment: Attachment::Sticker,
                ..
            })
        ));
        let edited = update(
            json!({"update_id": 5, "edited_message": {"message_id": 7, "date": 1700000000,
            "edit_date": 1700000100, "chat": private(), "from": {"id": 5, "is_bot": false, "first_name": "Ana"}, "text": "hello!"}}),
        );
        // Edits are passed on as such (the engine screens them, answers nothing)...
        assert!(matches!(
            conv().convert(edited),
            Converted::Event(Inbound::Edited { text, message_id, .. })
                if text == "hello!" && message_id.as_deref() == Some("7")
        ));
        // ...under a new message's rules: in a group, only those addressed to the bot.
        let edited_in_group = |text: &str| {
            update(json!({"update_id": 5, "edited_message": {"message_id": 8,
                "date": 1700000000, "edit_date": 1700000100, "chat": group(),
                "from": {"id": 5, "is_bot": false, "first_name": "Ana"}, "text": text}}))
        };
        assert!(matches!(
            conv().convert(edited_in_group("I can't go on")),
            Converted::Ignore(_)
        ));
        assert!(matches!(
            conv().convert(edited_in_group("@KindredBot I can't go on")),
            Converted::Event(Inbound::Edited { text, .. }) if text == "I can't go on"
        ));
        let press = update(
            json!({"update_id": 6, "callback_query": {"id": "cb1", "chat_instance": "ci",
            "from": {"id": 5, "is_bot": false, "first_name": "Ana"}, "data": "r:1:n:4",
            "message": {"message_id": 11, "date": 1700000000, "chat": private(),
                "from": {"id": 42, "is_bot": true, "first_name": "Kindred"}, "text": "How helpful?"}}}),
        );
        match conv().convert(press) {
            Converted::Event(Inbound::Choice {
                payload,
                interaction,
                user,
                ..
            }) => {
                assert_eq!(
                    (payload.as_str(), interaction.as_deref(), user.id.as_str()),
                    ("r:1:n:4", Some("cb1"), "5")
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
