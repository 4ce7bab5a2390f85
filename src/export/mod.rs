//! Maintainers' views of collected data: `kindred export` and `kindred stats`.
//!
//! An export is made to be handed to researchers without hurting anyone in it:
//! completed conversations in direct chats only (unless asked otherwise), never those of
//! people who chose that their words are not kept, people named by keyed pseudonyms
//! ([`scrub::PseudonymKey`]), emails, phone numbers, web addresses and mentions replaced
//! by placeholders, times rounded to the day, and a header saying all of that. Formats:
//! * `esconv`: ESConv's canonical JSON array, which `kindred train` and `kindred eval`
//!   read back (the header goes to `FILE.header.json`);
//! * `esconv-lines`: the same, one conversation a line after a header line;
//! * `jsonl`: one rating a line: the two rated replies with their strategies and
//!   probabilities, the conversation before them, the stars and the session's survey;
//! * `csv`: the same ratings as a table, the header as `#` lines.

mod esconv;
pub mod plots;
pub mod scrub;
mod stats;

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

pub(crate) use esconv::iso;
pub use esconv::session_to_esconv;
pub use scrub::{PseudonymKey, Scrubber};
pub use stats::{stats, stats_table};

use crate::domain::Stars;
use crate::store::{Session, Store};
use kindred_adapter::ChatKind;

/// An export's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Esconv,
    EsconvLines,
    Jsonl,
    Csv,
}

/// Which conversations an export holds and how they are made safe.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Conversations started at or after this time (ms).
    pub since_ms: i64,
    /// … and before this one.
    pub until_ms: Option<i64>,
    pub platform: Option<String>,
    /// Conversations with at least one rating in this range.
    pub min_rating: Option<Stars>,
    pub max_rating: Option<Stars>,
    /// Conversations still open too.
    pub include_open: bool,
    /// Conversations in shared chats too.
    pub include_groups: bool,
    /// Export pseudonyms; without a key the stored (random) ones.
    pub key: Option<PseudonymKey>,
    /// Placeholders for personal details, times rounded to the day.
    pub scrub: bool,
}

impl Default for ExportOptions {
    /// What `kindred export` does unless told otherwise.
    fn default() -> Self {
        Self {
            since_ms: 0,
            until_ms: None,
            platform: None,
            min_rating: None,
            max_rating: None,
            include_open: false,
            include_groups: false,
            key: None,
            scrub: true,
        }
    }
}

impl ExportOptions {
    /// Every conversation that may be exported at all, as stored (tests, `/mydata`-like uses).
    pub fn everything() -> Self {
        Self {
            include_open: true,
            include_groups: true,
            scrub: false,
            ..Self::default()
        }
    }

    /// What an export's header says about how it was made (and, when known, how many
    /// conversations it holds: a streamed export's first line is written before).
    pub fn header(&self, conversations: Option<usize>) -> Value {
        let day = |ms: i64| iso(ms).get(..10).unwrap_or_default().to_string();
        json!({
            "kindred_export": {
                "made": day(crate::store::now_ms()),
                "conversations": conversations,
                "filters": {
                    "since": (self.since_ms > 0).then(|| day(self.since_ms)),
                    "until": self.until_ms.map(day),
                    "platform": self.platform,
                    "min_rating": self.min_rating,
                    "max_rating": self.max_rating,
                    "completed_only": !self.include_open,
                    "direct_chats_only": !self.include_groups,
                    "people_who_chose_their_words_not_kept": "never included",
                },
                "scrubbed": if self.scrub {
                    json!(["emails", "phone numbers", "web addresses", "@mentions", "times rounded to the day"])
                } else {
                    json!([])
                },
                "pseudonyms": if self.key.is_some() { "keyed (HMAC-SHA256 of the platform id)" } else { "stored (random)" },
            }
        })
    }

    fn keeps(&self, s: &Session, stars: &[Stars]) -> bool {
        s.started_at >= self.since_ms
            && self.until_ms.is_none_or(|u| s.started_at < u)
            && self.platform.as_ref().is_none_or(|p| &s.chat_platform == p)
            && (self.include_open || s.ended_at.is_some())
            && (self.include_groups || s.chat_kind == ChatKind::Direct)
            && (self.min_rating.is_none() && self.max_rating.is_none()
                || stars.iter().any(|&n| {
                    self.min_rating.is_none_or(|m| n >= m) && self.max_rating.is_none_or(|m| n <= m)
                }))
    }
}

/// The exported conversations, one at a time, in ESConv's schema: filtered, pseudonymised
/// and scrubbed as `opts` say. `each` is called for every conversation kept.
pub async fn for_each_conversation(
    store: &Store,
    opts: &ExportOptions,
    mut each: impl FnMut(Value) -> Result<()>,
) -> Result<usize> {
    let scrubber = Scrubber::new();
    let sessions = store.exportable_sessions(opts.since_ms).await?;
    let bar = indicatif::ProgressBar::new(sessions.len() as u64);
    let mut n = 0;
    for s in sessions {
        bar.inc(1);
        // The stars are read here only for a rating filter; the conversation reads its
        // prompts itself below.
        let stars: Vec<Stars> = if opts.min_rating.is_some() || opts.max_rating.is_some() {
            store
                .rating_prompts(s.id)
                .await?
                .iter()
                .filter_map(|p| p.stars)
                .collect()
        } else {
            Vec::new()
        };
        if !opts.keeps(&s, &stars) {
            continue;
        }
        let mut v = session_to_esconv(store, &s).await?;
        if v["dialog"].as_array().is_none_or(|d| d.is_empty()) {
            continue;
        }
        if let (Some(key), Some(user)) = (&opts.key, store.user(s.user_id).await?) {
            v["kindred"]["seeker"] = json!(key.pseudonym(&user.platform, &user.platform_user_id));
        }
        if opts.scrub {
            scrub_conversation(&mut v, &scrubber);
        }
        each(v)?;
        n += 1;
    }
    bar.finish_and_clear();
    Ok(n)
}

/// Every exported conversation in memory (small stores and tests).
pub async fn export(store: &Store, opts: &ExportOptions) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for_each_conversation(store, opts, |v| {
        out.push(v);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Placeholders in every text of a conversation; its times cut to the day.
fn scrub_conversation(v: &mut Value, scrubber: &Scrubber) {
    let day = |t: &mut Value| {
        if let Some(s) = t.as_str() {
            *t = json!(s.get(..10).unwrap_or(s));
        }
    };
    if let Some(s) = v["situation"].as_str() {
        v["situation"] = json!(scrubber.scrub(s));
    }
    if let Some(dialog) = v["dialog"].as_array_mut() {
        for turn in dialog {
            if let Some(c) = turn["content"].as_str() {
                turn["content"] = json!(scrubber.scrub(c));
            }
            day(&mut turn["kindred"]["at"]);
        }
    }
    for key in ["started_at", "ended_at"] {
        day(&mut v["kindred"][key]);
    }
    if let Some(ratings) = v["kindred"]["ratings"].as_array_mut() {
        for r in ratings {
            day(&mut r["rated_at"]);
        }
    }
}

/// One row per rating of a conversation: the two rated replies, the conversation before
/// them, the stars and the session's survey.
pub fn rating_rows(conversation: &Value) -> Vec<Value> {
    let dialog = conversation["dialog"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let survey = &conversation["survey_score"]["seeker"];
    let mut rows = Vec::new();
    for r in conversation["kindred"]["ratings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(stars) = r["stars"].as_i64() else {
            continue;
        };
        let replies: Vec<usize> = r["replies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_u64().map(|i| i as usize))
            .filter(|&i| i < dialog.len())
            .collect();
        let Some(&first) = replies.first() else {
            continue;
        };
        let reply = |i: usize| {
            let t = &dialog[i];
            json!({
                "text": t["content"],
                "strategy": t["annotation"]["strategy"],
                "strategy_probs": t["kindred"]["strategy_probs"],
            })
        };
        rows.push(json!({
            "session": conversation["kindred"]["session"],
            "seeker": conversation["kindred"]["seeker"],
            "platform": conversation["kindred"]["platform"],
            "emotion_type": conversation["emotion_type"],
            "problem_type": conversation["problem_type"],
            "context": dialog[..first]
                .iter()
                .map(|t| json!({"speaker": t["speaker"], "text": t["content"]}))
                .collect::<Vec<_>>(),
            "replies": replies.iter().map(|&i| reply(i)).collect::<Vec<_>>(),
            "stars": stars,
            "rated_at": r["rated_at"],
            "survey": survey,
        }));
    }
    rows
}

/// The CSV columns of a rating row.
pub const CSV_COLUMNS: [&str; 15] = [
    "session",
    "seeker",
    "platform",
    "stars",
    "reply_1",
    "strategy_1",
    "reply_2",
    "strategy_2",
    "context",
    "emotion_type",
    "problem_type",
    "initial_emotion_intensity",
    "final_emotion_intensity",
    "empathy",
    "relevance",
];

/// A rating row as one CSV line (RFC 4180 quoting; the context's turns joined by " | ").
pub fn csv_line(row: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let reply = |i: usize, key: &str| text(&row["replies"][i][key]);
    let context: Vec<String> = row["context"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| format!("{}: {}", text(&t["speaker"]), text(&t["text"])))
        .collect();
    let fields = [
        text(&row["session"]),
        text(&row["seeker"]),
        text(&row["platform"]),
        text(&row["stars"]),
        reply(0, "text"),
        reply(0, "strategy"),
        reply(1, "text"),
        reply(1, "strategy"),
        context.join(" | "),
        text(&row["emotion_type"]),
        text(&row["problem_type"]),
        text(&row["survey"]["initial_emotion_intensity"]),
        text(&row["survey"]["final_emotion_intensity"]),
        text(&row["survey"]["empathy"]),
        text(&row["survey"]["relevance"]),
    ];
    fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writes an export in `format` to `out`, one conversation at a time; the header goes
/// inside it (or, for `esconv`, which is a bare array, to `header_out`). Returns the
/// number of conversations.
pub async fn write(
    store: &Store,
    opts: &ExportOptions,
    format: Format,
    out: &mut dyn Write,
    header_out: &mut dyn FnMut(&Value) -> Result<()>,
) -> Result<usize> {
    match format {
        Format::Esconv => out.write_all(b"[")?,
        Format::Csv => {
            for line in serde_json::to_string_pretty(&opts.header(None))?.lines() {
                writeln!(out, "# {line}")?;
            }
            writeln!(out, "{}", CSV_COLUMNS.join(","))?;
        }
        Format::EsconvLines | Format::Jsonl => writeln!(out, "{}", opts.header(None))?,
    }
    let mut first = true;
    let n = for_each_conversation(store, opts, |v| {
        match format {
            Format::Esconv => {
                out.write_all(if first { b"\n" } else { b",\n" })?;
                out.write_all(serde_json::to_string(&v)?.as_bytes())?;
            }
            Format::EsconvLines => writeln!(out, "{v}")?,
            Format::Jsonl => {
                for row in rating_rows(&v) {
                    writeln!(out, "{row}")?;
                }
            }
            Format::Csv => {
                for row in rating_rows(&v) {
                    writeln!(out, "{}", csv_line(&row))?;
                }
            }
        }
        first = false;
        Ok(())
    })
    .await?;
    if format == Format::Esconv {
        out.write_all(b"\n]\n")?;
    }
    header_out(&opts.header(Some(n)))?;
    Ok(n)
}
