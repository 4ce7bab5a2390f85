//! Maintainers' views of collected data: `kindred export` (ESConv's own JSON schema, so
//! `kindred train` can learn from it) and `kindred stats`.
//!
//! Exports identify people only by their pseudonym, never by a platform id.

use crate::domain::Speaker;
use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{json, Value};

use crate::model::Strategy;
use crate::store::{Session, Store};

pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339())
        .unwrap_or_default()
}

fn score(v: Option<i64>) -> Value {
    v.map(|n| Value::String(n.to_string()))
        .unwrap_or(Value::Null)
}

/// One session in the canonical ESConv schema, plus a `kindred` block.
pub async fn session_to_esconv(store: &Store, s: &Session) -> Result<Value> {
    let user = store.user(s.user_id).await?;
    let turns = store.turns(s.id).await?;
    let prompts = store.rating_prompts(s.id).await?;
    let mut dialog = Vec::new();
    let mut index_of = BTreeMap::new();
    for t in turns.iter().filter(|t| t.source.is_conversation()) {
        index_of.insert(t.id, dialog.len());
        let mut annotation = serde_json::Map::new();
        if let Some(st) = &t.strategy {
            annotation.insert("strategy".into(), json!(st));
        }
        let mut turn = json!({
            "speaker": if t.speaker == Speaker::Seeker { "seeker" } else { "supporter" },
            "content": t.text,
            "annotation": annotation,
            "kindred": {"index": t.idx, "at": iso(t.created_at), "delivery": t.delivery},
        });
        if let Some(p) = &t.strategy_probs {
            turn["kindred"]["strategy_probs"] = serde_json::from_str(p).unwrap_or(Value::Null);
        }
        dialog.push(turn);
    }
    // ESConv records a rating as the `feedback` of the seeker's next turn.
    let mut ratings = Vec::new();
    for p in &prompts {
        let pair: Vec<Value> = [p.first_turn_id, p.second_turn_id]
            .iter()
            .filter_map(|id| index_of.get(id))
            .map(|i| json!(i))
            .collect();
        if let (Some(stars), Some(&after)) = (p.stars, index_of.get(&p.second_turn_id)) {
            if let Some(next) = dialog
                .iter_mut()
                .skip(after + 1)
                .find(|d| d["speaker"] == "seeker")
            {
                next["annotation"]["feedback"] = json!(stars.to_string());
            }
        }
        ratings.push(json!({"replies": pair, "stars": p.stars, "rated_at": p.rated_at.map(iso)}));
    }
    Ok(json!({
        "experience_type": null,
        "emotion_type": s.emotion_type,
        "problem_type": s.problem_type,
        "situation": s.situation,
        "survey_score": {"seeker": {
            "initial_emotion_intensity": score(s.intensity_before),
            "final_emotion_intensity": score(s.intensity_after),
            "empathy": score(s.empathy),
            "relevance": score(s.relevance),
        }, "supporter": {}},
        "dialog": dialog,
        "kindred": {
            "session": s.id,
            "seeker": user.map(|u| u.pseudonym),
            "platform": s.chat_platform,
            "chat_kind": s.chat_kind,
            "started_at": iso(s.started_at),
            "ended_at": s.ended_at.map(iso),
            "end_reason": s.end_reason,
            "ratings": ratings,
        },
    }))
}

/// Every session started at or after `since_ms`, in ESConv's schema, except those of
/// people who chose that their words are not kept (`/privacy off`).
pub async fn export(store: &Store, since_ms: i64) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for s in store.exportable_sessions(since_ms).await? {
        let v = session_to_esconv(store, &s).await?;
        if !v["dialog"].as_array().is_some_and(|d| d.is_empty()) {
            out.push(v);
        }
    }
    Ok(out)
}

/// Summary statistics of the stored data.
pub async fn stats(store: &Store) -> Result<Value> {
    let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
    store.stats(&names).await
}

/// `stats` as a readable table.
pub fn stats_table(v: &Value) -> String {
    let mut s = String::new();
    let num = |k: &str| match &v[k] {
        Value::Null => "–".to_string(),
        Value::Number(n) if n.is_f64() => format!("{:.2}", n.as_f64().unwrap()),
        other => other.to_string(),
    };
    for (label, key) in [
        ("people", "users"),
        ("conversations", "sessions"),
        ("  still open", "sessions_open"),
        ("messages from people", "seeker_messages"),
        ("bot replies", "bot_replies"),
        ("  not confirmed delivered", "undelivered_replies"),
        ("rating prompts", "rating_prompts"),
        ("ratings given", "ratings"),
        ("mean rating (1–5)", "mean_rating"),
        ("check-ins answered", "checkins"),
        ("surveys answered", "surveys"),
        ("mean intensity before", "mean_intensity_before"),
        ("mean intensity after", "mean_intensity_after"),
        ("mean empathy", "mean_empathy"),
        ("mean relevance", "mean_relevance"),
    ] {
        s.push_str(&format!("{label:<28} {}\n", num(key)));
    }
    s.push_str("ratings by stars            ");
    for k in 1..=5 {
        s.push_str(&format!(" {k}★:{}", v["ratings_by_stars"][k.to_string()]));
    }
    s.push_str("\nstrategies of bot replies:\n");
    for st in Strategy::ALL {
        s.push_str(&format!(
            "  {:<30} {}\n",
            st.name(),
            v["strategies"][st.name()]
        ));
    }
    s
}
