//! The eight ESConv support strategies and how model vocabularies spell them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of ESConv's eight support strategies, in the recipe's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Strategy {
    Question,
    RestatementOrParaphrasing,
    ReflectionOfFeelings,
    SelfDisclosure,
    AffirmationAndReassurance,
    ProvidingSuggestions,
    Information,
    Others,
}

impl Strategy {
    pub const ALL: [Strategy; 8] = [
        Strategy::Question,
        Strategy::RestatementOrParaphrasing,
        Strategy::ReflectionOfFeelings,
        Strategy::SelfDisclosure,
        Strategy::AffirmationAndReassurance,
        Strategy::ProvidingSuggestions,
        Strategy::Information,
        Strategy::Others,
    ];

    /// ESConv's name, e.g. `Restatement or Paraphrasing`.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Question => "Question",
            Strategy::RestatementOrParaphrasing => "Restatement or Paraphrasing",
            Strategy::ReflectionOfFeelings => "Reflection of feelings",
            Strategy::SelfDisclosure => "Self-disclosure",
            Strategy::AffirmationAndReassurance => "Affirmation and Reassurance",
            Strategy::ProvidingSuggestions => "Providing Suggestions",
            Strategy::Information => "Information",
            Strategy::Others => "Others",
        }
    }

    /// The recipe's vocabulary token, e.g. `[Question]`.
    pub fn token(self) -> String {
        format!("[{}]", self.name())
    }

    /// Position in [`Strategy::ALL`].
    pub fn index(self) -> usize {
        Strategy::ALL.iter().position(|s| *s == self).unwrap()
    }

    /// Recognises a strategy by any of the names found in ESConv releases and checkpoints
    /// (`Questions`, `Other`, with or without brackets, any case).
    pub fn from_any_name(name: &str) -> Option<Strategy> {
        let n = name
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim()
            .to_ascii_lowercase();
        let s = match n.as_str() {
            "question" | "questions" => Strategy::Question,
            "restatement or paraphrasing" | "restatement" | "paraphrasing" => {
                Strategy::RestatementOrParaphrasing
            }
            "reflection of feelings" | "reflection of feeling" => Strategy::ReflectionOfFeelings,
            "self-disclosure" | "self disclosure" => Strategy::SelfDisclosure,
            // "Approval and Reassurance" appears in some ESConv.json releases.
            "affirmation and reassurance" | "approval and reassurance" => {
                Strategy::AffirmationAndReassurance
            }
            // "Direct Guidance" is the early name found in some ESConv.json releases.
            "providing suggestions" | "providing suggestion" | "direct guidance" => {
                Strategy::ProvidingSuggestions
            }
            "information" => Strategy::Information,
            "others" | "other" => Strategy::Others,
            _ => return None,
        };
        Some(s)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::from_any_name(s).ok_or_else(|| {
            format!(
                "unknown strategy {s:?}; expected one of: {}",
                Strategy::ALL.map(|s| s.name()).join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_both_lineages_map_to_the_same_strategy() {
        assert_eq!(
            Strategy::from_any_name("[Questions]"),
            Some(Strategy::Question)
        );
        assert_eq!(
            Strategy::from_any_name("Question"),
            Some(Strategy::Question)
        );
        assert_eq!(Strategy::from_any_name("[Other]"), Some(Strategy::Others));
        assert_eq!(Strategy::from_any_name("[CLS]"), None);
        for s in Strategy::ALL {
            assert_eq!(Strategy::from_any_name(&s.token()), Some(s));
        }
    }
}
