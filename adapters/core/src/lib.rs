//! The port between chat platforms and the Kindred engine.
//!
//! Adapters (console, Telegram, Discord) translate their platform's events into
//! [`Inbound`] and carry out [`Outbound`]. Nothing here knows about the model or the
//! database, and nothing in the engine knows about a platform: that is what lets the
//! same conversation logic be tested once and run everywhere.

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

/// Whether a chat is private (a DM) or shared with other people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Direct,
    Group,
}

/// A chat on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatRef {
    /// `console`, `telegram`, `discord`…
    pub platform: String,
    /// The platform's id of the chat (or channel, or thread).
    pub id: String,
    pub kind: ChatKind,
}

/// A person on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserRef {
    pub platform: String,
    pub id: String,
    /// For greetings only; never used as an identifier.
    pub display_name: Option<String>,
}

/// What kind of non-text content arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attachment {
    Sticker,
    Image,
    Voice,
    Video,
    File,
    Other(String),
}

/// An event from a platform, in platform-neutral terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Inbound {
    /// A text message. `message_id` is the platform's id, used to drop duplicates.
    Message {
        chat: ChatRef,
        user: UserRef,
        message_id: Option<String>,
        text: String,
    },
    /// A message that is not text (a sticker, a photo, a file…).
    NonText {
        chat: ChatRef,
        user: UserRef,
        message_id: Option<String>,
        attachment: Attachment,
    },
    /// A command such as `/start` (name without the slash, lower-case) with its arguments.
    Command {
        chat: ChatRef,
        user: UserRef,
        message_id: Option<String>,
        name: String,
        args: String,
    },
    /// A button or numbered choice was pressed. `payload` is the opaque string the engine
    /// put on the choice; it is checked, never trusted.
    Choice {
        chat: ChatRef,
        user: UserRef,
        payload: String,
        /// The platform's handle to answer this press (a callback query, an interaction).
        interaction: Option<String>,
    },
    /// An outbound message was delivered; `platform_message_id` is its id on the platform.
    Delivered {
        outbound_id: String,
        platform_message_id: Option<String>,
    },
    /// An outbound message could not be delivered.
    Failed { outbound_id: String, reason: String },
}

impl Inbound {
    /// The chat and user of a platform event (`None` for delivery reports).
    pub fn origin(&self) -> Option<(&ChatRef, &UserRef)> {
        match self {
            Inbound::Message { chat, user, .. }
            | Inbound::NonText { chat, user, .. }
            | Inbound::Command { chat, user, .. }
            | Inbound::Choice { chat, user, .. } => Some((chat, user)),
            Inbound::Delivered { .. } | Inbound::Failed { .. } => None,
        }
    }
}

/// One choice of a prompt: the label shown and the payload sent back when pressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub label: String,
    pub payload: String,
}

/// Something the engine asks an adapter to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outbound {
    /// A text message. `id` (when set, an opaque string) is reported back in [`Inbound::Delivered`].
    Text {
        id: Option<String>,
        chat: ChatRef,
        text: String,
    },
    /// A question with choices (buttons, an inline keyboard, or numbered lines).
    Prompt {
        id: Option<String>,
        chat: ChatRef,
        text: String,
        choices: Vec<Choice>,
    },
    /// Show that a reply is being written.
    Typing { chat: ChatRef },
    /// Replace an earlier prompt's text and remove its choices (e.g. "You rated 4 ★").
    EditPrompt {
        chat: ChatRef,
        platform_message_id: String,
        text: String,
    },
    /// The engine has finished handling the last event from this chat. Platforms ignore
    /// it; the console uses it to read the next scripted line only when the bot is done.
    Done { chat: ChatRef },
    /// A short notice for one person only (an answer to a button press where the
    /// platform supports it; otherwise a plain message).
    Notice {
        chat: ChatRef,
        user: UserRef,
        interaction: Option<String>,
        text: String,
    },
}

impl Outbound {
    pub fn chat(&self) -> &ChatRef {
        match self {
            Outbound::Text { chat, .. }
            | Outbound::Prompt { chat, .. }
            | Outbound::Typing { chat }
            | Outbound::Done { chat }
            | Outbound::EditPrompt { chat, .. }
            | Outbound::Notice { chat, .. } => chat,
        }
    }
}

/// The channels an adapter is run with.
pub struct AdapterIo {
    /// Platform events go here.
    pub inbound: mpsc::Sender<Inbound>,
    /// What to send arrives here.
    pub outbound: mpsc::Receiver<Outbound>,
    /// Fires once when the daemon shuts down.
    pub shutdown: broadcast::Receiver<()>,
}

/// A platform adapter.
pub trait Adapter: Send + 'static {
    /// The platform name used in [`ChatRef::platform`].
    fn platform(&self) -> &'static str;
    /// Runs until shutdown or a fatal error.
    fn run(self, io: AdapterIo) -> impl Future<Output = anyhow::Result<()>> + Send;
}
