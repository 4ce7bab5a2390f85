//! Everything Kindred says that is not a model reply, in one place.

pub const INTRO: &str = "Hi, I'm Kindred. I'm an AI supporter: I'm here to listen and talk things through with you. I'm not a therapist and not an emergency service.\n\nWhat I store: our messages, which support strategy each of my replies used, and any ratings or survey answers you give, so the people who maintain me can study and improve it. Type /privacy off if you'd rather I didn't keep your words after our conversation, or /forget at any time to delete everything about you. /help lists what else I can do.";

pub const INTRO_SHORT: &str = "Hi, I'm Kindred, an AI supporter (not a therapist or an emergency service). I store our conversation to improve; /forget deletes it, /help shows more.";

pub const WELCOME_BACK: &str = "Welcome back, we can pick up where we left off. (/reset starts a fresh conversation, /end finishes this one.)";

pub const HELP: &str = "Just write to me whenever you like. Commands:\n/start: begin a conversation\n/end: finish it (with a short, optional survey)\n/reset: start fresh; I won't look at our earlier messages\n/rate N: rate my last two replies from 1 to 5\n/forget: delete everything I have stored about you\n/privacy off: don't keep your words after a conversation (/privacy on to allow it again)\n/mydata: everything I have stored about you, as a file\n/help: this message";

pub const CHECKIN_EMOTION: &str = "Before we start, a short check-in (you can skip it). Which feeling is closest to what you're going through?";
pub const CHECKIN_PROBLEM: &str = "What is it mostly about?";
pub const CHECKIN_INTENSITY: &str =
    "How intense is it right now, from 1 (mild) to 5 (overwhelming)?";
pub const CHECKIN_DONE: &str = "Thank you. Tell me what's on your mind, I'm listening.";
pub const CHECKIN_SKIPPED: &str = "No problem. Tell me what's on your mind, I'm listening.";

pub const SURVEY_INTENSITY: &str = "Before you go, three quick questions (all optional). How intense are your feelings now, from 1 (mild) to 5 (overwhelming)?";
pub const SURVEY_EMPATHY: &str =
    "How well did you feel understood, from 1 (not at all) to 5 (completely)?";
pub const SURVEY_RELEVANCE: &str =
    "How relevant were my replies to what you shared, from 1 (not at all) to 5 (very)?";
pub const GOODBYE: &str = "Thank you for talking with me. Take care of yourself, and write /start whenever you want to talk again.";

pub const RATING_QUESTION: &str = "How helpful were my last two replies?";

pub const EMPTY_MESSAGE: &str =
    "It looks like that message was empty. Write whenever you're ready.";
pub const NON_TEXT: &str = "I can only read text, so I can't see stickers, pictures, voice messages or files. Could you tell me in words?";
/// Sent instead of a generated reply that encouraged self-harm (after the crisis
/// resources).
pub const REPLY_WITHHELD: &str =
    "I'm sorry, I lost my words there. I'm still here with you: could you tell me a bit more about how you're feeling?";
/// Sent when the model takes longer than `model.reply_timeout_seconds`.
pub const MODEL_TIMED_OUT: &str =
    "I'm sorry, I'm taking too long to find my words right now. I'm still here: please write again in a moment.";
pub const MODEL_FAILED: &str =
    "I'm sorry, I couldn't put a reply together just now. Please try again in a moment.";
pub const NOTHING_TO_END: &str =
    "We're not in a conversation right now. Just write to me to start one.";
pub const RESET_DONE: &str =
    "Starting fresh. I won't look at our earlier messages in this conversation.";
pub const IDLE_RESTART: &str = "It's been a while, so I've started a fresh conversation.";
pub const NOTHING_TO_RATE: &str =
    "There's nothing to rate yet. I ask for a rating after every two of my replies.";
pub const RATE_USAGE: &str = "Use /rate with a number from 1 to 5, for example /rate 4.";

pub const FORGET_QUESTION: &str = "This permanently deletes everything I have stored about you: all our conversations, ratings and survey answers. Are you sure?";
pub const FORGET_YES: &str = "Yes, delete everything";
pub const FORGET_NO: &str = "No, keep it";
pub const FORGET_DONE: &str = "Done. Everything I had stored about you has been deleted. If you write again, we'll start from scratch.";
pub const FORGET_KEPT: &str = "Okay, nothing was deleted.";
pub const NOTHING_STORED: &str = "I have nothing stored about you.";

pub const SLOW_DOWN_ACTIONS: &str = "That's a lot of taps and commands at once. I'll catch up in a minute; your conversation is safe, and you can keep writing to me.";
pub const GROUP_BUSY: &str = "This chat is moving faster than I can keep up with, so I'll sit the next minute out. If you need me now, write to me privately: I'm here.";
pub const SLOW_DOWN: &str = "You're writing faster than I can read. I've kept your messages; give me a moment and then tell me more.";
pub const STALE_BUTTON: &str = "That button is no longer valid.";
pub const NOT_YOUR_BUTTON: &str = "Only the person in this conversation can answer that.";
pub const ENDED_CONVERSATION: &str =
    "That conversation has ended, so this can't be changed any more.";

pub fn long_message(limit: usize) -> String {
    format!(
        "Your message was long, so I focused on its first {limit} characters. All of it is kept."
    )
}

pub fn unknown_command(name: &str) -> String {
    format!("I don't know the command /{name}.\n\n{HELP}")
}

pub const PRIVACY_KEPT: &str = "I keep your words after our conversations, so the people who maintain me can study them and improve how I support people. Type /privacy off if you'd rather I didn't; /forget deletes everything now.";
pub const PRIVACY_NOT_KEPT: &str = "I don't keep your words: while we talk I read our conversation to answer you, and when it ends its words are erased, yours and mine. I keep only which kind of support I offered and any ratings you give. Type /privacy on to let me keep them again.";
pub const PRIVACY_NOW_NOT_KEPT: &str = "Done: I won't keep your words. The words of our earlier conversations are erased now, and this one's when it ends. I keep only which kind of support I offered and any ratings you give; /forget deletes those too.";
pub const PRIVACY_NOW_KEPT: &str = "Done: I'll keep the words of our conversations from now on, to help improve how I support people. /privacy off changes that again.";
pub const MYDATA: &str = "Here is everything I have stored about you: our conversations, which kind of support each of my replies used, your ratings and survey answers. /forget deletes all of it.";
pub const MYDATA_ONLY_DIRECT: &str = "I only send your data in a direct message, where nobody else can see it: write /mydata to me there.";
pub const PRIVACY_USAGE: &str = "Use /privacy on or /privacy off (or /privacy to see your choice).";

pub fn rated(stars: crate::domain::Stars) -> String {
    format!("You rated {stars} ★ — thank you.")
}

pub const EMOTIONS: [&str; 8] = [
    "anxiety",
    "depression",
    "sadness",
    "anger",
    "fear",
    "shame",
    "loneliness",
    "stress",
];
pub const PROBLEMS: [&str; 7] = [
    "job crisis",
    "breakup with partner",
    "problems with friends",
    "academic pressure",
    "ongoing depression",
    "family conflict",
    "something else",
];

pub const GROUP_PRIVACY: &str = "This chat is shared, so others here can read what you write. For a private conversation, send me a direct message; I keep each person's conversation separate either way.";
pub const ENABLED: &str =
    "Kindred is now on in this chat: people can mention me or reply to me to talk.";
pub const DISABLED: &str = "Kindred is now off in this chat. Direct messages still work.";
pub const RESOURCES_SET: &str =
    "Done. Replies here that need them will show these crisis resources:";
pub const RESOURCES_RESET: &str = "Done. This chat shows the default crisis resources again.";

pub fn status(on: bool, custom_resources: bool, resources: &str) -> String {
    format!(
        "Kindred is {} in this chat. Crisis resources ({}):\n{resources}",
        if on { "on" } else { "off" },
        if custom_resources {
            "set for this chat"
        } else {
            "the default"
        }
    )
}

pub fn alerts_on(include_text: bool) -> String {
    format!(
        "Done. When someone here may be at risk, Kindred will post an alert there: the kind of risk, a pseudonym and how to reach them{}. Kindred still answers them at once with the crisis resources.",
        if include_text {
            ", with their words"
        } else {
            " (not their words)"
        }
    )
}
pub const ALERTS_OFF: &str = "Done. Kindred sends no alerts about this chat.";
pub fn alert_link_code(code: &str) -> String {
    format!("To receive alerts about risk seen in this group, send /alerts {code} in your moderators' group (as an admin there) within the hour. /alerts off here stops them.")
}
pub const ALERTS_LINKED: &str =
    "Done. Alerts about risk seen in the group that issued the code will come here.";
pub const ALERT_CODE_UNKNOWN: &str = "That code is unknown or older than an hour. Send /alerts in the group you want alerts about, for a new one.";

/// An alert for a community's moderators: what kind of risk, who (a pseudonym and how the
/// platform lets them reach the person), where, and their words only if opted in.
pub fn risk_alert(
    category: &str,
    pseudonym: &str,
    reach: &str,
    chat: &str,
    words: Option<&str>,
) -> String {
    let mut t = format!(
        "Kindred alert: a member may be at risk ({category}) in {chat}. Member {pseudonym}; to reach them: {reach}. Kindred has already sent them the crisis resources."
    );
    if let Some(w) = words {
        t.push_str(&format!("\n\nTheir message: {w}"));
    }
    t
}
