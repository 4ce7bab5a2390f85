//! `kindred stats`: counts, means, ratings by stars and replies by strategy.

use anyhow::Result;
use serde_json::Value;

use crate::model::Strategy;
use crate::store::Store;

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
