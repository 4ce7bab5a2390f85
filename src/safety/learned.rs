//! The learned part of the screen: a logistic regression over the words and word pairs
//! of a normalised message, trained by `tools/safety/train_classifier.py` and embedded
//! from `classifier.json`.
//!
//! It catches what no phrase of the lexicon was written for (on messages written after
//! the lexicon was tuned it raised recall from 0.49 to 0.77 at about the same precision;
//! see the README), and it explains itself: the words that weighed most towards risk are
//! the cue. It reads the message after figures of speech are blanked out and is not
//! consulted for messages framed as study, news or fiction, or told as past recovery.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

#[derive(Deserialize)]
struct Weights {
    bias: f64,
    threshold: f64,
    /// The classifier fires only when a feature with a content word weighs at least this
    /// much: without the gate, "I keep thinking about my ex" fired on "i keep".
    gate: f64,
    function_words: std::collections::HashSet<String>,
    weights: HashMap<String, f64>,
}

/// The trained model, parsed once.
fn model() -> &'static Weights {
    static MODEL: OnceLock<Weights> = OnceLock::new();
    MODEL.get_or_init(|| {
        serde_json::from_str(include_str!("classifier.json")).expect("classifier.json parses")
    })
}

/// A learned verdict: the probability of risk and the features that pushed it up most.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub probability: f64,
    pub top_features: Vec<String>,
    /// Whether a feature with a content word weighs at least the gate.
    pub content_cue: bool,
}

/// Scores normalised text (words separated by single spaces).
pub fn score(normalized: &str) -> Verdict {
    let m = model();
    let words: Vec<&str> = normalized
        .split(' ')
        .filter(|w| !w.is_empty() && *w != "~")
        .collect();
    let mut seen: Vec<(String, f64)> = Vec::new();
    let mut z = m.bias;
    let mut add = |f: String| {
        if seen.iter().any(|(g, _)| *g == f) {
            return;
        }
        if let Some(w) = m.weights.get(&f) {
            z += w;
            seen.push((f, *w));
        }
    };
    for w in &words {
        add(w.to_string());
    }
    for pair in words.windows(2) {
        add(format!("{} {}", pair[0], pair[1]));
    }
    seen.sort_by(|a, b| b.1.total_cmp(&a.1));
    let content_cue = seen
        .iter()
        .any(|(f, w)| *w >= m.gate && f.split(' ').any(|t| !m.function_words.contains(t)));
    Verdict {
        probability: 1.0 / (1.0 + (-z).exp()),
        content_cue,
        top_features: seen
            .into_iter()
            .filter(|(_, w)| *w > 0.0)
            .take(3)
            .map(|(f, _)| f)
            .collect(),
    }
}

/// Whether a verdict counts as risk.
pub fn fires(v: &Verdict) -> bool {
    v.probability >= model().threshold && v.content_cue
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::normalize;

    #[test]
    fn words_it_never_saw_in_a_phrase_still_weigh() {
        let v = score(&normalize(
            "the blade is right here and my hands are shaking",
        ));
        assert!(v.probability > 0.0 && v.probability < 1.0);
        for calm in [
            "I had pasta for lunch and went for a walk",
            "I keep thinking about my ex",
        ] {
            let v = score(&normalize(calm));
            assert!(!fires(&v), "{calm}: {v:?}");
        }
        let risk = score(&normalize(
            "I am suicidal and I do not want to be alive anymore",
        ));
        assert!(fires(&risk), "{risk:?}");
        assert!(!risk.top_features.is_empty());
    }
}
