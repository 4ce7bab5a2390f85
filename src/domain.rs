//! Domain values that the engine, the store and the exports share: each is an enum that
//! the store maps to its column, so a misspelt value cannot be written or compared (a
//! recovery that skipped turns whose source was `"safety"`, a value no code then wrote,
//! went unnoticed for as long as these were strings).

use serde::{Deserialize, Serialize};

/// Where a session stands (`sessions.stage`): the optional check-in before the
/// conversation, the conversation, the optional survey after it, closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    CheckinEmotion,
    CheckinProblem,
    CheckinIntensity,
    Chatting,
    SurveyIntensity,
    SurveyEmpathy,
    SurveyRelevance,
    Closed,
}

impl Stage {
    /// One of the check-in questions before the conversation.
    pub fn is_checkin(self) -> bool {
        matches!(
            self,
            Stage::CheckinEmotion | Stage::CheckinProblem | Stage::CheckinIntensity
        )
    }

    /// One of the survey questions after the conversation.
    pub fn is_survey(self) -> bool {
        matches!(
            self,
            Stage::SurveyIntensity | Stage::SurveyEmpathy | Stage::SurveyRelevance
        )
    }
}

/// Why a session ended (`sessions.end_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndReason {
    /// The person ended it (`/end`).
    User,
    /// It was idle longer than `conversation.idle_timeout_minutes`.
    Idle,
    /// The person started over (`/reset`).
    Reset,
}

/// Who said a turn. (The defaults of these three enums describe a person's message as
/// it arrives, so that `NewTurn::default()` is one.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The person seeking support (ESConv `usr` / `seeker`).
    #[default]
    Seeker,
    /// The supporter: the bot, or an ESConv human supporter (`sys` / `supporter`).
    Supporter,
}

/// Where a turn's words came from (`turns.source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnSource {
    /// A person's message.
    #[default]
    User,
    /// The model's reply.
    Model,
    /// Kindred's own words in place of a reply (the model failed, or its reply was
    /// withheld); never part of the model's context.
    System,
    /// A crisis response, sent before the model was asked; it does not answer the turn
    /// before it, so the model's reply is still owed.
    Safety,
}

impl TurnSource {
    /// Whether turns of this source enter the model's context and exports.
    pub fn is_conversation(self) -> bool {
        matches!(self, TurnSource::User | TurnSource::Model)
    }
}

/// How far a turn has got to its platform (`turns.delivery`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// A person's message, stored on receipt.
    #[default]
    Received,
    /// Recorded, not yet confirmed by the platform: re-sent after a restart.
    Pending,
    /// The platform confirmed it.
    Delivered,
    /// The platform refused it.
    Failed,
}

/// The name a domain value has in the database and in exports, and back.
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),*];

            /// The value's name in the database and in exports.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),*
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = UnknownName;

            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($name => Ok($ty::$variant),)*
                    _ => Err(UnknownName { kind: stringify!($ty), name: s.to_string() }),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A stored name that no value of the kind has (a database written by a newer Kindred,
/// or edited by hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

impl std::fmt::Display for UnknownName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a {}", self.name, self.kind)
    }
}

impl std::error::Error for UnknownName {}

names!(Stage {
    CheckinEmotion => "checkin_emotion",
    CheckinProblem => "checkin_problem",
    CheckinIntensity => "checkin_intensity",
    Chatting => "chatting",
    SurveyIntensity => "survey_intensity",
    SurveyEmpathy => "survey_empathy",
    SurveyRelevance => "survey_relevance",
    Closed => "closed",
});
names!(EndReason { User => "user", Idle => "idle", Reset => "reset" });
names!(Speaker { Seeker => "seeker", Supporter => "supporter" });
names!(TurnSource { User => "user", Model => "model", System => "system", Safety => "safety" });
names!(Delivery {
    Received => "received",
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});

/// A rating: one to five stars. Made only from a number in that range, so a press, a
/// stored row or an export never carries anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(try_from = "i64")]
pub struct Stars(u8);

impl Stars {
    pub const MIN: i64 = 1;
    pub const MAX: i64 = 5;

    /// `n` stars, if `n` is between one and five.
    pub fn new(n: i64) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&n)
            .then_some(Stars(n as u8))
    }

    pub fn get(self) -> i64 {
        self.0 as i64
    }
}

impl std::fmt::Display for Stars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A number of stars that is not one to five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotStars(pub String);

impl std::fmt::Display for NotStars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a rating from 1 to 5 stars", self.0)
    }
}

impl std::error::Error for NotStars {}

impl std::str::FromStr for Stars {
    type Err = NotStars;

    fn from_str(s: &str) -> Result<Self, NotStars> {
        s.parse()
            .ok()
            .and_then(Stars::new)
            .ok_or_else(|| NotStars(s.to_string()))
    }
}

impl TryFrom<i64> for Stars {
    type Error = NotStars;

    fn try_from(n: i64) -> Result<Self, NotStars> {
        Stars::new(n).ok_or_else(|| NotStars(n.to_string()))
    }
}

impl serde::Serialize for Stars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The database names are the serde names, so exports and the store agree.
    #[test]
    fn names_round_trip_and_match_serde() {
        fn check<T>(all: &[T])
        where
            T: Copy
                + std::fmt::Debug
                + PartialEq
                + Serialize
                + std::str::FromStr
                + std::fmt::Display,
            <T as std::str::FromStr>::Err: std::fmt::Debug,
        {
            for v in all {
                let name = v.to_string();
                assert_eq!(
                    serde_json::to_value(v).unwrap(),
                    serde_json::Value::from(name.clone())
                );
                assert_eq!(name.parse::<T>().unwrap(), *v);
            }
        }
        check(Stage::ALL);
        check(EndReason::ALL);
        check(Speaker::ALL);
        check(TurnSource::ALL);
        check(Delivery::ALL);
        assert!("sent".parse::<Delivery>().is_err());
    }

    /// Stars are one to five, however they come: a press, `/rate`, a setting, a row.
    #[test]
    fn stars_are_one_to_five() {
        for n in 1..=5 {
            assert_eq!(Stars::new(n).unwrap().get(), n);
            assert_eq!(n.to_string().parse::<Stars>().unwrap().get(), n);
        }
        for bad in ["0", "6", "-1", "3.5", "", "five"] {
            assert!(bad.parse::<Stars>().is_err(), "{bad:?}");
        }
        assert!(Stars::try_from(9).is_err());
        assert_eq!(serde_json::to_value(Stars::new(4).unwrap()).unwrap(), 4);
        assert!(serde_json::from_str::<Stars>("7").is_err());
        assert_eq!(serde_json::from_str::<Stars>("2").unwrap().get(), 2);
    }

    /// A chat kind is stored by the name it has in exports.
    #[test]
    fn chat_kinds_round_trip() {
        use kindred_adapter::ChatKind;
        for kind in [ChatKind::Direct, ChatKind::Group] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
            assert_eq!(ChatKind::try_from(kind.to_string()).unwrap(), kind);
        }
        assert!("channel".parse::<ChatKind>().is_err());
    }
}
