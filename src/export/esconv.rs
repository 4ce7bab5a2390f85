//! One stored session in ESConv's canonical schema, plus a `kindred` block (strategy
//! probabilities, ratings, times). What `kindred export` and `/mydata` write.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::{json, Value};

use crate::domain::Speaker;
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
