//! Crisis screening.
//!
//! A deliberately simple, high-recall screen for language that suggests a risk of
//! self-harm or suicide. It is not a classifier and never decides anything alone: when it
//! fires, the configured crisis resources go out *with* the reply (in the same message),
//! so no model reply can reach a person at risk without them. False positives cost a
//! repeated reminder; false negatives are the failure to avoid, hence the broad patterns.

use regex::RegexSet;
use std::sync::OnceLock;

const PATTERNS: &[&str] = &[
    r"\b(kill|killing|hurt|hurting|harm|harming|cut|cutting)\s+(my\s?self|myself)\b",
    r"\bsuicid",
    r"\bself[\s-]?harm",
    r"\b(end|ending|take|taking)\s+(my|my own)\s+life\b",
    r"\b(want|wanna|going|plan|planning|ready)\s+(to\s+)?die\b",
    r"\bwish\s+(i\s+)?(was|were)\s+dead\b",
    r"\bbetter\s+off\s+dead\b",
    r"\b(no|not\s+any)\s+(reason|point)\s+(to|in)\s+(live|living|go\s+on|going\s+on)\b",
    r"\bdon'?t\s+want\s+to\s+(live|be\s+alive|wake\s+up|exist)\b",
    r"\boverdos",
    r"\bhang\s+myself\b",
    r"\bjump\s+off\s+(a|the)\s+(bridge|building|roof)\b",
    r"\b(can'?t|cannot)\s+go\s+on\b",
    r"\bend\s+it\s+all\b",
];

fn patterns() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new(PATTERNS.iter().map(|p| format!("(?i){p}"))).expect("crisis patterns compile")
    })
}

/// Whether `text` shows a possible risk of self-harm.
pub fn shows_risk(text: &str) -> bool {
    // Curly apostrophes are common on phones.
    let t = text.replace(['\u{2019}', '\u{2018}'], "'");
    patterns().is_match(&t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_risk_language() {
        for t in [
            "I want to kill myself",
            "sometimes i think about suicide",
            "I've been self-harming again",
            "I just want to die",
            "there's no reason to live anymore",
            "I don’t want to wake up tomorrow",
            "I'm going to end my life",
            "I took an overdose last year",
            "I can't go on like this",
        ] {
            assert!(shows_risk(t), "missed: {t}");
        }
    }

    #[test]
    fn ordinary_distress_is_not_flagged() {
        for t in [
            "I'm so stressed about my exams",
            "my boss is killing me with deadlines",
            "I feel lonely",
            "I cut the cake",
        ] {
            assert!(!shows_risk(t), "flagged: {t}");
        }
    }
}
