//! ESConv conversations in the formats maintainers meet, and training examples built
//! from them exactly as the recipe says.
//!
//! Formats read:
//! * the JSON-lines split files (`train.jsonl`: `dialog[].text`, `speaker: usr|sys`, `strategy`);
//! * the canonical `ESConv.json` array (`dialog[].content`, `speaker: seeker|supporter` –
//!   or `speaker|listener` in some releases – `annotation.strategy`, `survey_score`);
//! * Kindred's own export (`kindred export`), which writes the canonical schema plus a
//!   few fields of its own, so conversations collected by the bot can be trained on.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::model::{ContextTurn, JointModel, Speaker, Strategy};

/// One ESConv conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub emotion_type: Option<String>,
    pub problem_type: Option<String>,
    pub situation: Option<String>,
    pub turns: Vec<ContextTurn>,
    /// The stars a person gave each turn (a Kindred export's `kindred.ratings`: each
    /// rating covers the replies it names), aligned with `turns`; none when unrated.
    pub stars: Vec<Option<i64>>,
}

fn speaker_of(s: &str) -> Option<Speaker> {
    match s {
        "usr" | "seeker" | "speaker" | "user" => Some(Speaker::Seeker),
        "sys" | "supporter" | "listener" | "bot" => Some(Speaker::Supporter),
        _ => None,
    }
}

fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

/// Parses one conversation object of any supported schema. `at` names it in errors.
pub fn parse_conversation(v: &Value, at: &str) -> Result<Conversation> {
    let dialog = v
        .get("dialog")
        .and_then(Value::as_array)
        .with_context(|| format!("{at}: no \"dialog\" array"))?;
    let mut turns = Vec::with_capacity(dialog.len());
    for (i, t) in dialog.iter().enumerate() {
        let speaker_name = t
            .get("speaker")
            .and_then(Value::as_str)
            .with_context(|| format!("{at}, turn {i}: no \"speaker\""))?;
        let speaker = speaker_of(speaker_name).with_context(|| {
            format!("{at}, turn {i}: unknown speaker {speaker_name:?} (expected usr/sys or seeker/supporter)")
        })?;
        let text = t
            .get("text")
            .or_else(|| t.get("content"))
            .and_then(Value::as_str)
            .with_context(|| format!("{at}, turn {i}: no \"text\" or \"content\""))?;
        let strategy_name = t
            .get("strategy")
            .and_then(Value::as_str)
            .or_else(|| t.pointer("/annotation/strategy").and_then(Value::as_str));
        let strategy = match (speaker, strategy_name) {
            (Speaker::Supporter, Some(name)) => Some(
                Strategy::from_any_name(name)
                    .with_context(|| format!("{at}, turn {i}: unknown strategy {name:?}"))?,
            ),
            _ => None,
        };
        turns.push(ContextTurn {
            speaker,
            text: text.to_string(),
            strategy,
        });
    }
    let mut stars = vec![None; turns.len()];
    for r in v
        .pointer("/kindred/ratings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(n) = r.get("stars").and_then(Value::as_i64) else {
            continue;
        };
        for i in r
            .get("replies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(slot) = i.as_u64().and_then(|i| stars.get_mut(i as usize)) {
                *slot = Some(n);
            }
        }
    }
    Ok(Conversation {
        emotion_type: opt_str(v, "emotion_type"),
        problem_type: opt_str(v, "problem_type"),
        situation: opt_str(v, "situation"),
        turns,
        stars,
    })
}

/// Reads a file of conversations: JSON lines, or one JSON array (canonical ESConv / export).
pub fn read_conversations(path: &Path) -> Result<Vec<Conversation>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        let all: Value = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{name}: not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            )
        })?;
        let arr = all.as_array().context("expected an array")?;
        arr.iter()
            .enumerate()
            .map(|(i, c)| parse_conversation(c, &format!("{name}: conversation {}", i + 1)))
            .collect()
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = format!("{name}:{}", i + 1);
            let v: Value = serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!("{at}: not valid JSON (column {}): {e}", e.column())
            })?;
            // A Kindred export's header line says how it was made; it is no conversation.
            if v.get("kindred_export").is_some() {
                continue;
            }
            out.push(parse_conversation(&v, &at)?);
        }
        if out.is_empty() {
            bail!("{name} holds no conversations");
        }
        Ok(out)
    }
}

/// One training example: the encoder context and the decoder labels
/// (`[strategy] + reply + [eos]`, cut to the reply budget).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub context: Vec<u32>,
    pub labels: Vec<u32>,
    pub strategy: Strategy,
    /// The reference reply text (for evaluation).
    pub reply: String,
    /// Index of the supporter turn in its conversation, and the conversation's.
    pub conversation: usize,
    pub turn: usize,
}

/// Options for building examples.
#[derive(Debug, Clone)]
pub struct ExampleOptions {
    /// Reply tokens kept (the recipe: 40, so labels are at most 41 with the strategy).
    pub max_reply_tokens: usize,
    /// Only replies that people rated at least this many stars (Kindred exports carry
    /// the ratings): fine-tuning on the replies people found helpful.
    pub min_rating: Option<crate::domain::Stars>,
}

impl Default for ExampleOptions {
    fn default() -> Self {
        Self {
            max_reply_tokens: 40,
            min_rating: None,
        }
    }
}

/// One example per supporter turn that has something before it (the recipe skips a
/// supporter turn that opens the dialogue). Supporter turns without a strategy label are
/// trained as `Others`.
pub fn build_examples(
    model: &JointModel,
    conversations: &[Conversation],
    opts: &ExampleOptions,
) -> Result<Vec<Example>> {
    let eos = model.model.eos_token_id();
    let mut out = Vec::new();
    for (ci, conv) in conversations.iter().enumerate() {
        for (ti, turn) in conv.turns.iter().enumerate() {
            if turn.speaker != Speaker::Supporter || ti == 0 {
                continue;
            }
            if let Some(min) = opts.min_rating {
                if conv
                    .stars
                    .get(ti)
                    .copied()
                    .flatten()
                    .is_none_or(|n| n < min.get())
                {
                    continue;
                }
            }
            let strategy = turn.strategy.unwrap_or(Strategy::Others);
            let context = model.context_ids(conv.situation.as_deref(), &conv.turns[..ti])?;
            let mut labels = vec![model.strategy_ids[strategy.index()]];
            labels.extend(
                model
                    .tokenizer
                    .encode(&crate::model::context::normalize_text(&turn.text))?,
            );
            labels.push(eos);
            labels.truncate(opts.max_reply_tokens + 1);
            out.push(Example {
                context,
                labels,
                strategy,
                reply: turn.text.clone(),
                conversation: ci,
                turn: ti,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_three_schemas_parse_to_the_same_conversation() {
        let jsonl: Value = serde_json::json!({"situation": "s", "dialog": [
            {"text": "hi", "speaker": "usr", "rating": null},
            {"text": "hello", "speaker": "sys", "strategy": "Question"}]});
        let canonical: Value = serde_json::json!({"situation": "s", "dialog": [
            {"content": "hi", "speaker": "seeker", "annotation": {}},
            {"content": "hello", "speaker": "supporter", "annotation": {"strategy": "Questions"}}]});
        let failed: Value = serde_json::json!({"situation": "s", "dialog": [
            {"content": "hi", "speaker": "speaker", "annotation": {}},
            {"content": "hello", "speaker": "listener", "annotation": {"strategy": "Question"}}]});
        let a = parse_conversation(&jsonl, "a").unwrap();
        assert_eq!(a, parse_conversation(&canonical, "b").unwrap());
        assert_eq!(a, parse_conversation(&failed, "c").unwrap());
        assert_eq!(a.turns[1].strategy, Some(Strategy::Question));
    }

    #[test]
    fn malformed_input_names_the_line_and_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.jsonl");
        std::fs::write(
            &p,
            "{\"dialog\": [{\"text\": \"hi\", \"speaker\": \"usr\"}]}\n{\"dialog\": [{\"text\": \"x\", \"speaker\": \"robot\"}]}\n",
        )
        .unwrap();
        let err = read_conversations(&p).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl:2") && err.contains("unknown speaker \"robot\""),
            "{err}"
        );
        std::fs::write(&p, "{\"dialog\": [}\n").unwrap();
        let err = read_conversations(&p).unwrap_err().to_string();
        assert!(
            err.contains("bad.jsonl:1") && err.contains("not valid JSON"),
            "{err}"
        );
        std::fs::write(
            &p,
            "{\"dialog\": [{\"text\": \"x\", \"speaker\": \"sys\", \"strategy\": \"Hugging\"}]}\n",
        )
        .unwrap();
        let err = read_conversations(&p).unwrap_err().to_string();
        assert!(err.contains("unknown strategy \"Hugging\""), "{err}");
    }
}
