//! Crisis screening.
//!
//! A deliberately simple, high-recall screen for language that suggests a risk of
//! self-harm or suicide. It is not a classifier and never decides anything alone: when it
//! fires, the configured crisis resources go out *with* the reply (in the same message),
//! so no model reply can reach a person at risk without them. False positives cost a
//! repeated reminder; false negatives are the failure to avoid, hence the broad patterns.

use regex::RegexSet;
use std::sync::OnceLock;

/// Phrasings of suicidal thoughts and self-harm, as people write them (first person, with
/// the usual contractions and without apostrophes). Each is tested in `flags_risk_language`.
const PATTERNS: &[&str] = &[
    r"\b(kill|killing|hurt|hurting|harm|harming|cut|cutting|shoot|shooting|drown|drowning|poison|poisoning|starve|starving|burn|burning)\s+(my\s?self|myself)\b",
    r"\bsuicid",
    r"\bself[\s-]?harm",
    r"\bun-?aliv(e|ing)\b",
    r"\bsewer\s?slide",
    r"\b(end|ending|ended|take|taking|took)\s+(my|my own)\s+life\b",
    r"\b(end|ending)\s+it\s+(all|now|tonight|today)\b",
    r"\b(want|wanna|going|gonna|plan|planning|ready|deserve)\s+(to\s+)?die\b",
    r"\b(want\s+to|wanna|rather|should)\s+be\s+dead\b",
    r"\brather\s+die\b",
    r"\bwish\s+(i\s+)?(was|were|could\s+be)\s+dead\b",
    r"\bwish\s+(i\s+)?(had|was|were)\s+never\s+(been\s+)?born\b",
    r"\bbetter\s+off\s+(dead|without\s+me)\b",
    r"\b(no|not\s+any|any)\s+(reason|point)\s+(to|in)\s+(keep\s+)?(live|living|go\s+on|going\s+on|being\s+alive)\b",
    r"\bnothing\s+(left\s+)?to\s+live\s+for\b",
    r"\b(life|living)\s+(is\s*n'?t|is\s+not|ain'?t)\s+worth\s+(living|it)\b",
    r"\b(don'?t|do\s+not|no\s+longer)\s+want\s+to\s+(live|be\s+alive|wake\s+up|exist|be\s+here)\b",
    r"\bnot\s+(be|being)\s+(here|around|alive)\s+any\s?more\b",
    r"\bsleep\s+and\s+(never|not)\s+wake\s+up\b",
    r"\boverdos",
    r"\b(take|taking|swallow|swallowing)\s+all\s+(of\s+)?(my|the)\s+(pills|meds|medication|tablets)\b",
    r"\b(slit|slitting|cut|cutting)\s+(my\s+)?wrists?\b",
    r"\bhang(ing)?\s+myself\b",
    r"\bjump(ing)?\s+off\s+(a|the|my)\s+(bridge|building|roof|cliff|balcony)\b",
    r"\b(jump|jumping|step|stepping|throw\s+myself)\s+in\s+front\s+of\b",
    r"\b(can'?t|cannot)\s+go\s+on\b",
];

/// Replies that tell the person to harm themselves. Only encouragement: a supporter who
/// asks "have you thought about hurting yourself?" does what crisis guidance advises.
/// None of ESConv's 15,481 supporter messages matches.
const ENCOURAGEMENT_PATTERNS: &[&str] = &[
    r"\b(should|go|just|must|need\s+to|have\s+to|better)\s+(kill|hurt|harm|cut)\s+yourself\b",
    r"\b(should|go|just|must|need\s+to)\s+(end\s+your\s+(own\s+)?life|take\s+your\s+own\s+life)\b",
    r"\byou\s+(should|deserve\s+to|need\s+to|ought\s+to|must)\s+(just\s+)?die\b",
    r"\b(go|just)\s+die\b",
    r"\bkys\b",
];

/// Whether `text` matches one of `patterns` (compiled once into `set`), case-insensitively
/// and with curly apostrophes, common on phones, read as straight ones.
fn matches(set: &'static OnceLock<RegexSet>, patterns: &[&str], text: &str) -> bool {
    set.get_or_init(|| {
        RegexSet::new(patterns.iter().map(|p| format!("(?i){p}"))).expect("patterns compile")
    })
    .is_match(&text.replace(['\u{2019}', '\u{2018}'], "'"))
}

/// Whether a generated reply encourages self-harm (it must never go out).
pub fn encourages_harm(reply: &str) -> bool {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    matches(&SET, ENCOURAGEMENT_PATTERNS, reply)
}

/// Whether `text` shows a possible risk of self-harm.
pub fn shows_risk(text: &str) -> bool {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    matches(&SET, PATTERNS, text)
}

/// Whether the newest message `last` shows a risk, read alone or as the continuation of
/// the person's `previous` message: a thought split over two messages ("I keep thinking
/// about" / "ending it all") is screened as one. A previous message that showed a risk
/// alone already brought the resources with its own reply, so it does not bring them
/// again to the next.
pub fn shows_risk_after(previous: Option<&str>, last: &str) -> bool {
    shows_risk(last)
        || previous.is_some_and(|p| !shows_risk(p) && shows_risk(&format!("{p} {last}")))
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
            "sometimes I think about ending it all",
            "I just want to end it all",
            "I'm going to end it tonight",
            "everyone would be better off without me",
            "I have nothing left to live for",
            "life isn't worth living",
            "I do not want to live anymore",
            "I dont want to be here anymore",
            "I no longer want to be alive",
            "I'd rather be dead",
            "I wish I had never been born",
            "I want to go to sleep and never wake up",
            "I'm thinking of taking all my pills",
            "I want to slit my wrists",
            "I've thought about hanging myself",
            "I could jump off the bridge",
            "I might step in front of a train",
            "I keep thinking about shooting myself",
            "I want to unalive myself",
            "I don't see any reason to keep living",
            "I took my own life once, almost",
            "I deserve to die",
        ] {
            assert!(shows_risk(t), "missed: {t}");
        }
    }

    #[test]
    fn a_thought_split_over_two_messages_is_screened_as_one() {
        assert!(shows_risk_after(
            Some("sometimes I think about"),
            "ending it all"
        ));
        assert!(shows_risk_after(Some("I just want to"), "die"));
        assert!(shows_risk_after(None, "I want to kill myself"));
        assert!(!shows_risk_after(None, "ending"));
        // The risk message itself brought the resources; the next one alone does not.
        assert!(!shows_risk_after(
            Some("I want to kill myself"),
            "thank you"
        ));
        assert!(!shows_risk_after(
            Some("my exams went badly"),
            "I feel lonely"
        ));
    }

    #[test]
    fn only_replies_that_encourage_harm_are_caught() {
        for t in [
            "you should kill yourself",
            "Just go die.",
            "you deserve to die",
            "maybe you need to end your life",
            "you should take your own life",
            "kys",
        ] {
            assert!(encourages_harm(t), "missed: {t}");
        }
        for t in [
            "Have you had thoughts of hurting yourself?",
            "Please don't hurt yourself.",
            "You should not harm yourself, you matter.",
            "It sounds like you want to end your life, and I'm glad you told me.",
            "I think you should take care of yourself.",
            "You need to take your life back.",
        ] {
            assert!(!encourages_harm(t), "flagged: {t}");
        }
    }

    #[test]
    fn ordinary_distress_is_not_flagged() {
        for t in [
            "I'm so stressed about my exams",
            "my boss is killing me with deadlines",
            "I feel lonely",
            "I cut the cake",
            "I ended it with my boyfriend",
            "this job is killing me",
            "I'm dying to see that film",
            "I can't wait to go to sleep",
        ] {
            assert!(!shows_risk(t), "flagged: {t}");
        }
    }
}
