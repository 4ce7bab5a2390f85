//! The guard on generated replies: a sampled model can say anything, and a reply that
//! tells a person to harm themselves must never go out.

use std::sync::OnceLock;

use regex::RegexSet;

use super::{normalize, set_of};

/// Replies that tell the person to harm themselves. Only encouragement: a supporter who
/// asks "have you thought about hurting yourself?" does what crisis guidance advises.
/// None of ESConv's 15,481 supporter messages matches.
const ENCOURAGEMENT_PATTERNS: &[&str] = &[
    r"\b(?:should|go|just|must|need to|have to|better) (?:kill|hurt|harm|cut) (?:yourself|urself|your self)\b",
    r"\b(?:should|go|just|must|need to) (?:end your (?:own )?life|take your own life)\b",
    r"\byou (?:should|deserve to|need to|ought to|must) (?:just )?die\b",
    r"\b(?:go|just) die\b",
    r"\bkys\b",
];

/// Whether a generated reply encourages self-harm (it must never go out).
pub fn encourages_harm(reply: &str) -> bool {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| set_of(ENCOURAGEMENT_PATTERNS))
        .is_match(&normalize(reply))
}
