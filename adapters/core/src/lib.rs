//! The port between chat platforms and the Kindred engine.
//!
//! Adapters (console, Telegram, Discord) translate their platform's events into
//! [`Inbound`] and carry out [`Outbound`]. Nothing here knows about the model or the
//! database, and nothing in the engine knows about a platform: that is what lets the
//! same conversation logic be tested once and run everywhere.
#![forbid(unsafe_code)]

use std::future::Future;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};

mod sending;
pub use sending::{send_per_chat, Bucket, Pace, Sharing, CARE_PREFIX};

/// Whether a chat is private (a DM) or shared with other people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    /// The kind's name, as stored and exported: `direct` or `group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Direct => "direct",
            ChatKind::Group => "group",
        }
    }
}

impl std::fmt::Display for ChatKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ChatKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "direct" => Ok(ChatKind::Direct),
            "group" => Ok(ChatKind::Group),
            _ => Err(format!("{s:?} is not a chat kind (direct or group)")),
        }
    }
}

/// How a stored name becomes a kind again (the store reads it as text).
impl TryFrom<String> for ChatKind {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A chat on a platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatRef {
    /// `console`, `telegram`, `discord`…
    pub platform: String,
    /// The platform's id of the chat (or channel, or thread).
    pub id: String,
    pub kind: ChatKind,
    /// The community the chat belongs to, where the platform has such a thing (a Discord
    /// server's id): moderators' alert settings cover the whole community, not one
    /// channel of it. `None` for direct chats and Telegram groups (a group is its own
    /// community).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
}

impl ChatRef {
    /// A private chat (a DM).
    pub fn direct(platform: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            id: id.into(),
            kind: ChatKind::Direct,
            community: None,
        }
    }

    /// A chat shared with other people, in `community` if the platform has one.
    pub fn group(
        platform: impl Into<String>,
        id: impl Into<String>,
        community: Option<String>,
    ) -> Self {
        Self {
            platform: platform.into(),
            id: id.into(),
            kind: ChatKind::Group,
            community,
        }
    }

    /// The key under which the community's moderator settings are kept: the
    /// community's where the chat has one (`community:ID`), else the chat's own id.
    pub fn community_key(&self) -> String {
        match &self.community {
            Some(c) => format!("community:{c}"),
            None => self.id.clone(),
        }
    }
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
    /// A text message its sender edited after sending it (`message_id` is the original's).
    /// Kindred answered the original and does not answer edits, but screens them: an edit
    /// can add what the original did not say.
    Edited {
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
        /// The text sent with it (a photo's caption), screened for risk like a message.
        caption: Option<String>,
    },
    /// A command such as `/start` (name without the slash, lower-case) with its arguments.
    Command {
        chat: ChatRef,
        user: UserRef,
        message_id: Option<String>,
        name: String,
        args: String,
        /// The platform's handle to answer this command in private (a Discord slash
        /// command's interaction), if any. Every answer to the command then carries it.
        interaction: Option<String>,
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
    /// A moderator's action on a shared chat. Adapters send it only after checking on
    /// the platform that `user` may moderate `chat` (a Telegram group admin, a Discord
    /// member with Manage Server), so the engine can trust it.
    Moderation {
        chat: ChatRef,
        user: UserRef,
        action: ModAction,
        /// The platform's handle to answer in private (an interaction), if any.
        interaction: Option<String>,
    },
}

/// What a moderator asks for a shared chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModAction {
    /// Let Kindred answer in this chat.
    Enable,
    /// Stop Kindred answering in this chat.
    Disable,
    /// Tell the moderator whether Kindred is on here and which crisis resources it shows.
    Status,
    /// Set the crisis resources shown in this chat (empty: back to the configured ones).
    SetResources(String),
    /// Send alerts about risk seen in this chat to `target`, a chat of the same platform
    /// (`None`: no alerts). `include_text`: whether alerts quote the person's words.
    SetAlerts {
        target: Option<String>,
        include_text: bool,
    },
    /// Start linking an alert chat from a platform without channel pickers: Kindred
    /// answers with a one-time code to send from the alert chat.
    LinkAlerts,
    /// Make this chat the alert chat of the chat that issued the code.
    UseAlertCode(String),
}

impl Inbound {
    /// The chat and user of a platform event (`None` for delivery reports).
    pub fn origin(&self) -> Option<(&ChatRef, &UserRef)> {
        match self {
            Inbound::Message { chat, user, .. }
            | Inbound::Edited { chat, user, .. }
            | Inbound::NonText { chat, user, .. }
            | Inbound::Command { chat, user, .. }
            | Inbound::Choice { chat, user, .. }
            | Inbound::Moderation { chat, user, .. } => Some((chat, user)),
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
///
/// `interaction`, where present, is the handle of the platform interaction the
/// message answers (from [`Inbound::Command`], [`Inbound::Moderation`], or a
/// [`Inbound::Choice`] in a shared chat): platforms that can answer an interaction
/// privately (Discord's ephemeral follow-ups) send it there, so that it reaches only
/// the person who asked and never another member's conversation. `None`: the chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outbound {
    /// A text message. `id` (when set, an opaque string) is reported back in [`Inbound::Delivered`].
    Text {
        id: Option<String>,
        chat: ChatRef,
        text: String,
        interaction: Option<String>,
    },
    /// A question with choices (buttons, an inline keyboard, or numbered lines).
    Prompt {
        id: Option<String>,
        chat: ChatRef,
        text: String,
        choices: Vec<Choice>,
        interaction: Option<String>,
    },
    /// A text file (e.g. a person's own data, `/mydata`) with a caption: a document or an
    /// attachment where the platform allows, printed where it does not (the terminal).
    File {
        id: Option<String>,
        chat: ChatRef,
        file_name: String,
        content: String,
        caption: String,
        interaction: Option<String>,
    },
    /// Show that a reply is being written.
    Typing { chat: ChatRef },
    /// Replace an earlier prompt's text (e.g. "You rated 4 ★"), keeping its choices so
    /// that a second press can change the answer; `chosen` is the index of the choice
    /// that is now in effect, for platforms that can show it.
    EditPrompt {
        chat: ChatRef,
        platform_message_id: String,
        text: String,
        choices: Vec<Choice>,
        chosen: Option<usize>,
    },
    /// The engine has finished handling an event from this chat (the console reads its
    /// next scripted line only then). With `interaction`, the event was that interaction:
    /// a platform that deferred its answer can close it if nothing was said.
    Done {
        chat: ChatRef,
        interaction: Option<String>,
    },
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
            | Outbound::File { chat, .. }
            | Outbound::Typing { chat }
            | Outbound::Done { chat, .. }
            | Outbound::EditPrompt { chat, .. }
            | Outbound::Notice { chat, .. } => chat,
        }
    }
}

/// What became of an event handed over with [`Inbox::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Written to the database; it will be handled even if Kindred crashes now.
    New,
    /// Seen before under the same key (a redelivery); it will not be handled twice.
    Duplicate,
    /// Could not be written (the reason). The platform should deliver it again later.
    Failed(String),
}

/// An inbound event as it travels to the engine.
#[derive(Debug)]
pub struct Envelope {
    pub event: Inbound,
    /// Set when the adapter waits for the event to be stored before acknowledging it
    /// to its platform (advancing a Telegram offset, answering a webhook with 200).
    pub receipt: Option<Receipt>,
}

/// The key a platform redelivers an event under, and where to say it was stored.
#[derive(Debug)]
pub struct Receipt {
    /// Unique per platform event, e.g. `update:1234`; a second event with the same key
    /// is a redelivery.
    pub key: String,
    pub stored: oneshot::Sender<Stored>,
}

/// The engine closed its side of the channel (Kindred is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineGone;

impl std::fmt::Display for EngineGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the engine has stopped")
    }
}

impl std::error::Error for EngineGone {}

/// Where an adapter hands platform events to the engine.
///
/// Delivery reports take a lane of their own: they are what marks a reply sent, and
/// behind a busy queue of people's messages they would wait while a crash could come
/// and make the reply go out again.
#[derive(Debug, Clone)]
pub struct Inbox {
    events: mpsc::Sender<Envelope>,
    reports: mpsc::Sender<Inbound>,
    sharing: Sharing,
}

/// The engine's end of an [`Inbox`].
#[derive(Debug)]
pub struct Intake {
    /// Platform events, in arrival order.
    pub events: mpsc::Receiver<Envelope>,
    /// Delivery reports ([`Inbound::Delivered`], [`Inbound::Failed`]).
    pub reports: mpsc::Receiver<Inbound>,
    /// How many instances send for the bot: the engine knows, the adapters' sending
    /// keeps to its share ([`Inbox::sharing`]).
    pub sharing: Sharing,
}

impl Inbox {
    /// An inbox and the engine's end of it.
    pub fn channel(capacity: usize) -> (Inbox, Intake) {
        let (events, events_rx) = mpsc::channel(capacity);
        let (reports, reports_rx) = mpsc::channel(capacity);
        let sharing = Sharing::default();
        (
            Inbox {
                events,
                reports,
                sharing: sharing.clone(),
            },
            Intake {
                events: events_rx,
                reports: reports_rx,
                sharing,
            },
        )
    }

    /// How many instances send for the bot now (see [`Sharing`]): for
    /// [`send_per_chat`].
    pub fn sharing(&self) -> Sharing {
        self.sharing.clone()
    }

    /// Hands over an event the platform will not redeliver (a console line, a delivery
    /// report): returns as soon as the engine has it queued.
    pub async fn send(&self, event: Inbound) -> Result<(), EngineGone> {
        if matches!(event, Inbound::Delivered { .. } | Inbound::Failed { .. }) {
            return self.reports.send(event).await.map_err(|_| EngineGone);
        }
        self.events
            .send(Envelope {
                event,
                receipt: None,
            })
            .await
            .map_err(|_| EngineGone)
    }

    /// Hands over an event and waits until it is stored under `key`. Only then may the
    /// adapter acknowledge it to the platform: a crash before that point means the
    /// platform delivers it again, and the key makes sure it is handled once.
    pub async fn deliver(&self, key: String, event: Inbound) -> Result<Stored, EngineGone> {
        let (stored, rx) = oneshot::channel();
        self.events
            .send(Envelope {
                event,
                receipt: Some(Receipt { key, stored }),
            })
            .await
            .map_err(|_| EngineGone)?;
        rx.await.map_err(|_| EngineGone)
    }
}

/// Whether an adapter is connected to its platform (`/readyz`): the adapter says so when
/// it connects and when it loses the connection; the daemon reads it.
#[derive(Debug, Clone, Default)]
pub struct Connection(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Connection {
    /// The platform answers.
    pub fn up(&self) {
        if !self.0.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::debug!("platform connection up");
        }
    }

    /// The platform does not answer (the adapter is retrying).
    pub fn down(&self) {
        if self.0.swap(false, std::sync::atomic::Ordering::Relaxed) {
            tracing::debug!("platform connection down");
        }
    }

    pub fn is_up(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The channels an adapter is run with.
pub struct AdapterIo {
    /// Where the adapter says whether it is connected.
    pub connection: Connection,
    /// Platform events go here.
    pub inbound: Inbox,
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

/// Splits a message for a platform's length limit, preferring sentence ends, then line
/// breaks, then spaces; a single word longer than the limit is cut. `measure` is the
/// platform's idea of length (Telegram counts UTF-16 units, Discord characters).
pub fn split_message(text: &str, max: usize, measure: fn(&str) -> usize) -> Vec<String> {
    assert!(max > 0, "a message limit must be positive");
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while measure(rest) > max {
        // The longest prefix within the limit, as a byte index on a char boundary.
        let mut fit = 0;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if measure(&rest[..end]) > max {
                break;
            }
            fit = end;
        }
        let window = &rest[..fit];
        let sentence_end = window
            .char_indices()
            .filter(|&(i, c)| {
                matches!(c, '.' | '!' | '?' | '…')
                    && rest[i + c.len_utf8()..].starts_with(char::is_whitespace)
            })
            .map(|(i, c)| i + c.len_utf8())
            .next_back();
        let cut = sentence_end
            .or_else(|| window.rfind('\n'))
            .or_else(|| rest[fit..].starts_with(char::is_whitespace).then_some(fit))
            .or_else(|| window.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(fit.max(rest.chars().next().map_or(1, char::len_utf8)));
        parts.push(rest[..cut].trim_end().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

/// How long a stopping adapter waits for the engine's last messages to be sent.
pub const SENDER_DRAIN: std::time::Duration = std::time::Duration::from_secs(90);

/// Waits for an adapter's sending task once intake has stopped: what the engine still
/// sends (replies finished in its grace period) goes out before the adapter stops. The
/// task ends when the engine closes the outbound channel; after [`SENDER_DRAIN`] it is
/// stopped.
pub async fn drain_sender(mut sender: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(SENDER_DRAIN, &mut sender)
        .await
        .is_err()
    {
        tracing::warn!("messages were still being sent when the adapter stopped");
        sender.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn short_messages_stay_whole() {
        assert_eq!(
            split_message("Hello there.", 20, chars),
            vec!["Hello there."]
        );
    }

    #[test]
    fn long_messages_split_at_sentence_ends_within_the_limit() {
        let text = "One two three. Four five six! Seven eight nine? Ten.";
        let parts = split_message(text, 30, chars);
        assert_eq!(
            parts,
            vec!["One two three. Four five six!", "Seven eight nine? Ten."]
        );
        assert!(parts.iter().all(|p| chars(p) <= 30));
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn without_sentence_ends_it_splits_at_spaces_then_inside_words() {
        let parts = split_message("aaaa bbbb cccc", 9, chars);
        assert_eq!(parts, vec!["aaaa bbbb", "cccc"]);
        let parts = split_message("abcdefghij", 4, chars);
        assert_eq!(parts, vec!["abcd", "efgh", "ij"]);
        let utf16 = |s: &str| s.encode_utf16().count();
        let parts = split_message("😀😀😀", 4, utf16);
        assert_eq!(parts, vec!["😀😀", "😀"]);
    }
}
