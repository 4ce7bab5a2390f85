//! Crisis screening: which messages show a risk, of what kind, and what the person gets.
//!
//! Every message a person sends (and every edit, caption and command argument) is read by
//! the [`Screen`] before anything else happens. When it finds a risk, the response for its
//! [`Category`] goes out at once, recorded as a turn of its own, before and independent of
//! the model (see `engine::replies`): a slow, failing or hung model never withholds or
//! delays it.
//!
//! How the screen reads a message:
//! 1. [`normalize`] folds it into plain words: lower case, look-alike letters and
//!    leetspeak undone, zero-width characters dropped, apostrophes gone (`im`, `dont`).
//! 2. *Firm* cues are matched (phrasings that no context explains away).
//! 3. Figures of speech, accidents and negations ("this exam is killing me", "I cut myself
//!    shaving", "I would never hurt myself") are blanked out, then *strong* cues matched.
//! 4. *Weak* cues (a bare "suicide", "kills himself") count only when nothing stronger
//!    fired and the message is not framed as study, news, fiction, prevention or grief.
//! 5. A recovery told as past ("I used to cut, two years clean now") makes self-harm cues
//!    history, unless the message also speaks of now ("again", "lately", "tonight").
//!
//! The lexicon is in [`lexicon`]; its measured recall and precision on a labelled set of
//! messages written for the purpose (`tests/fixtures/safety/labelled.tsv`) are asserted in
//! the tests and reported in the README. It is a screen, deliberately broad: a false alarm
//! costs a reminder of where help is, a miss is the failure that must not happen.
//! A small learned classifier ([`learned`]) backs the lexicon up: consulted only when no
//! cue fired and the message is not framed as study, fiction or past recovery, it catches
//! some phrasings no cue was written for, and names the words that decided it.

pub mod care;
pub mod guard;
pub mod languages;
pub mod learned;
pub mod lexicon;
pub mod normalize;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

pub use care::Responses;
pub use guard::encourages_harm;
pub use normalize::normalize;

use lexicon::Force;

/// The kinds of risk, most urgent first; each has its own response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// An attempt made or under way, being at the place, means at hand now: the
    /// emergency number comes first.
    Imminent,
    /// Suicidal thoughts (direct or indirect), self-harm, farewells, seeking a method, plans.
    SelfHarm,
    /// A friend or relative who is suicidal or in danger.
    OtherAtRisk,
    /// Violence or threats from a partner, parent or anyone; not safe at home.
    Abuse,
    /// Thoughts or plans of hurting someone else.
    HarmToOthers,
}

impl Category {
    pub const ALL: [Category; 5] = [
        Category::Imminent,
        Category::SelfHarm,
        Category::OtherAtRisk,
        Category::Abuse,
        Category::HarmToOthers,
    ];

    /// The name used in settings, logs, metrics and `kindred safety check`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Imminent => "imminent",
            Category::SelfHarm => "self_harm",
            Category::OtherAtRisk => "other_at_risk",
            Category::Abuse => "abuse",
            Category::HarmToOthers => "harm_to_others",
        }
    }

    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the screen found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The most urgent category found; it leads the response.
    pub category: Category,
    /// Every category found, most urgent first (the first is `category`).
    pub categories: Vec<Category>,
    /// The name of the cue that decided `category` (never the message's words).
    pub cue: String,
}

/// A community's own additions: phrases that mean risk there, and phrases that do not.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScreenOptions {
    /// Extra phrases by category name (`self_harm = ["..."]`), matched as whole words
    /// after normalisation.
    #[serde(default)]
    pub extra_phrases: std::collections::BTreeMap<String, Vec<String>>,
    /// Phrases that are never risk in this community (e.g. a game's "suicide run"):
    /// blanked out before any cue is read.
    #[serde(default)]
    pub allow_phrases: Vec<String>,
}

impl ScreenOptions {
    /// Checks a community's phrases without compiling the whole lexicon (settings are
    /// validated at start-up; the engine then builds the screen once).
    pub fn validate(&self) -> Result<()> {
        self.compiled_extra_phrases()?;
        phrase_regex(&self.allow_phrases)?;
        Ok(())
    }

    /// The extra phrases by category, compiled; an unknown category name is an error
    /// that names it.
    fn compiled_extra_phrases(&self) -> Result<Vec<(Category, Regex)>> {
        let mut out = Vec::new();
        for (name, phrases) in &self.extra_phrases {
            let category = Category::from_name(name).with_context(|| {
                format!(
                    "safety.extra_phrases: unknown category {name:?} (expected one of {})",
                    Category::ALL.map(Category::name).join(", ")
                )
            })?;
            if let Some(re) = phrase_regex(phrases)? {
                out.push((category, re));
            }
        }
        Ok(out)
    }
}

/// The compiled screen. Built once ([`Screen::standard`] or [`Screen::new`]) and shared.
pub struct Screen {
    firm: Compiled,
    strong: Compiled,
    weak: Compiled,
    not_risk: Regex,
    not_risk_even_firm: Regex,
    safe_frame: RegexSet,
    fiction_frame: RegexSet,
    recovery: RegexSet,
    recovered: RegexSet,
    present: RegexSet,
    allow: Option<Regex>,
    first_person: Regex,
    /// What a person worried about someone else says of themselves.
    helper_words: Regex,
    about_someone_else: Regex,
    extra: Vec<(Category, Regex)>,
}

/// A set of cues compiled together, with each cue's category and name by index.
struct Compiled {
    set: RegexSet,
    cues: Vec<(Category, &'static str)>,
}

impl Compiled {
    fn new(force: Force) -> Compiled {
        let chosen: Vec<&lexicon::Cue> = lexicon::cues().filter(|c| c.force == force).collect();
        let set = regex::RegexSetBuilder::new(chosen.iter().map(|c| lexicon::expand(c.pattern)))
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .expect("the lexicon's patterns compile");
        Compiled {
            set,
            cues: chosen.iter().map(|c| (c.category, c.name)).collect(),
        }
    }

    fn matches<'a>(&'a self, text: &str) -> impl Iterator<Item = (Category, &'static str)> + 'a {
        self.set
            .matches(text)
            .into_iter()
            .map(move |i| self.cues[i])
    }
}

pub(crate) fn set_of(patterns: &[&str]) -> RegexSet {
    regex::RegexSetBuilder::new(patterns.iter().map(|p| lexicon::expand(p)))
        .size_limit(64 << 20)
        .dfa_size_limit(64 << 20)
        .build()
        .expect("the lexicon's patterns compile")
}

/// A whole-word regex for a list of literal phrases, normalised like messages are.
fn phrase_regex(phrases: &[String]) -> Result<Option<Regex>> {
    let words: Vec<String> = phrases
        .iter()
        .map(|p| normalize(p).trim().to_string())
        .filter(|p| !p.is_empty())
        .map(|p| regex::escape(&p))
        .collect();
    if words.is_empty() {
        return Ok(None);
    }
    Ok(Some(Regex::new(&format!(r"\b(?:{})\b", words.join("|")))?))
}

impl Screen {
    /// The built-in screen, compiled once.
    pub fn standard() -> &'static Screen {
        static SCREEN: OnceLock<Screen> = OnceLock::new();
        SCREEN.get_or_init(|| Screen::new(&ScreenOptions::default()).expect("the built-in screen"))
    }

    /// The built-in screen with a community's additions; an unknown category name in
    /// `extra_phrases` is an error that names it.
    pub fn new(options: &ScreenOptions) -> Result<Screen> {
        let mut extra = Vec::new();
        for (category, re) in options.compiled_extra_phrases()? {
            extra.push((category, re));
        }

        let alternation = |patterns: &[&str]| {
            regex::RegexBuilder::new(
                &patterns
                    .iter()
                    .map(|p| format!("(?:{})", lexicon::expand(p)))
                    .collect::<Vec<_>>()
                    .join("|"),
            )
            .size_limit(64 << 20)
            .dfa_size_limit(64 << 20)
            .build()
            .expect("the lexicon's patterns compile")
        };
        Ok(Screen {
            not_risk_even_firm: alternation(lexicon::NOT_RISK_EVEN_FIRM),
            not_risk: alternation(lexicon::NOT_RISK),
            firm: Compiled::new(Force::Firm),
            strong: Compiled::new(Force::Strong),
            weak: Compiled::new(Force::Weak),
            safe_frame: set_of(lexicon::SAFE_FRAMES),
            fiction_frame: set_of(lexicon::FICTION_FRAMES),
            recovery: set_of(lexicon::RECOVERY),
            recovered: set_of(lexicon::RECOVERED),
            present: set_of(lexicon::PRESENT_RISK),
            allow: phrase_regex(&options.allow_phrases)?,
            about_someone_else: Regex::new(&lexicon::expand(
                r"\b(?:{other}|his|her|their|him|them)\b",
            ))
            .expect("compiles"),
            first_person: Regex::new(r"\b(?:i|im|ive|id|ill|i m|myself|asking for a friend|hypothetically|my self|me too|without me|miss me|notice me|me gone|me dead|my (?:arms?|legs?|wrists?|skin|body|thighs?|stomach|face|hands?))\b|^ (?:(?:already|just|finally) (?:took|taken|did|done|swallowed|drank|cut|wrote|had|overdosed)|cant|gonna|wanna|going to|about to) ")
                .expect("compiles"),
            helper_words: Regex::new(lexicon::HELPER_WORDS).expect("compiles"),
            extra,
        })
    }

    /// Screens one message.
    pub fn screen(&self, text: &str) -> Option<Finding> {
        self.screen_with(text, true)
    }

    /// Screens `text`; `learned` says whether the classifier may back the lexicon up (not
    /// on two messages read together, where its word counts mean less).
    fn screen_with(&self, text: &str, learned: bool) -> Option<Finding> {
        let mut norm = normalize(text);
        if norm.trim().is_empty() {
            return None;
        }
        if let Some(allow) = &self.allow {
            norm = allow.replace_all(&norm, " ~ ").into_owned();
        }
        let norm = self.not_risk_even_firm.replace_all(&norm, " ~ ");
        let mut found: Vec<(Category, &str, Force)> = Vec::new();
        for (c, name) in self.firm.matches(&norm) {
            found.push((c, name, Force::Firm));
        }
        for (c, re) in &self.extra {
            if re.is_match(&norm) {
                found.push((*c, "community phrase", Force::Firm));
            }
        }
        let cleaned = self.not_risk.replace_all(&norm, " ~ ");
        for (c, name) in self.strong.matches(&cleaned) {
            found.push((c, name, Force::Strong));
        }
        let history = self.recovery.is_match(&norm)
            && self.recovered.is_match(&norm)
            && !self.present.is_match(&norm);
        if history {
            // Self-harm told as past, with recovery: history, not risk.
            found.retain(|(c, _, f)| !(*c == Category::SelfHarm && *f == Force::Strong));
        }
        // "We read a novel about a girl who self-harms": someone else, in a story.
        if self.fiction_frame.is_match(&norm) {
            found.retain(|(c, _, f)| *c != Category::OtherAtRisk || *f == Force::Firm);
        }
        // "My partner said she wants to end it all": about someone else, when the person
        // does not speak of themselves as well (a helper's own words, "i dont know what
        // to do", do not count as speaking of themselves).
        let speaks_of_self = self
            .first_person
            .is_match(&self.helper_words.replace_all(&norm, " ~ "));
        if !speaks_of_self {
            if found.iter().any(|(c, _, _)| *c == Category::OtherAtRisk) {
                found.retain(|(c, _, f)| {
                    !matches!(c, Category::SelfHarm | Category::Imminent) || *f == Force::Firm
                });
            } else if self.about_someone_else.is_match(&norm) {
                // "My roommate says she wants to jump off the balcony": a cue for oneself,
                // said of someone else, is someone else at risk.
                for (c, _, f) in found.iter_mut() {
                    if matches!(c, Category::SelfHarm | Category::Imminent) && *f != Force::Firm {
                        *c = Category::OtherAtRisk;
                    }
                }
            }
        }
        let framed = self.safe_frame.is_match(&norm);
        if found.is_empty() && !history && !framed {
            for (c, name) in self.weak.matches(&cleaned) {
                found.push((c, name, Force::Weak));
            }
        }
        let mut learned_cue = String::new();
        if learned && found.is_empty() && !history && !framed {
            let verdict = learned::score(&cleaned);
            if learned::fires(&verdict) {
                // About someone else when only others are spoken of.
                let category = if self.about_someone_else.is_match(&cleaned)
                    && !self.first_person.is_match(&cleaned)
                {
                    Category::OtherAtRisk
                } else {
                    Category::SelfHarm
                };
                learned_cue = format!("learned ({})", verdict.top_features.join(", "));
                found.push((category, "learned", Force::Weak));
            }
        }
        found.sort_by_key(|(c, _, _)| *c);
        let (category, cue, _) = *found.first()?;
        let categories: BTreeSet<Category> = found.iter().map(|(c, _, _)| *c).collect();
        Some(Finding {
            category,
            categories: categories.into_iter().collect(),
            cue: if cue == "learned" {
                learned_cue
            } else {
                cue.to_string()
            },
        })
    }

    /// Screens the newest message `last`, alone and as the continuation of the person's
    /// `previous` one: a thought split over two messages ("I keep thinking about" /
    /// "ending it all") is screened as one. A previous message that showed a risk alone
    /// already brought its response, so it does not bring it again.
    pub fn screen_after(&self, previous: Option<&str>, last: &str) -> Option<Finding> {
        self.screen(last).or_else(|| {
            let p = previous?;
            if self.screen(p).is_some() {
                return None;
            }
            self.screen_with(&format!("{p} {last}"), false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(text: &str) -> Option<Category> {
        Screen::standard().screen(text).map(|f| f.category)
    }

    #[test]
    fn each_category_is_recognised() {
        use Category::*;
        for (text, want) in [
            ("I want to kill myself", SelfHarm),
            ("I took a bunch of pills an hour ago", Imminent),
            ("I'm standing on the roof right now", Imminent),
            (
                "my friend texted me she is going to kill herself tonight",
                OtherAtRisk,
            ),
            (
                "He hits me every night and I'm scared he will kill me",
                Abuse,
            ),
            (
                "I keep having thoughts of stabbing people at work",
                HarmToOthers,
            ),
            ("Im gonna kms", SelfHarm),
            ("quiero morir", SelfHarm),
            ("मैं मरना चाहता हूँ", SelfHarm),
        ] {
            assert_eq!(category(text), Some(want), "{text}");
        }
    }

    #[test]
    fn figures_of_speech_and_study_are_not_risk() {
        for text in [
            "this exam is killing me",
            "I watched a documentary about suicide prevention for my psychology class",
            "I would never hurt myself, I'm just tired",
            "my mom is going to kill me when she sees my grades",
            "I cut myself shaving this morning",
            "I used to self-harm years ago but I've been clean for three years now",
            "",
        ] {
            assert_eq!(category(text), None, "{text}");
        }
    }

    #[test]
    fn a_thought_split_over_two_messages_is_screened_as_one() {
        let s = Screen::standard();
        assert!(s
            .screen_after(Some("sometimes I think about"), "ending it all")
            .is_some());
        assert!(s.screen_after(Some("I just want to"), "die").is_some());
        assert!(s.screen_after(None, "ending").is_none());
        // The risk message itself brought the response; the next one alone does not.
        assert!(s
            .screen_after(Some("I want to kill myself"), "thank you")
            .is_none());
    }

    #[test]
    fn communities_add_and_allow_phrases() {
        let mut options = ScreenOptions::default();
        options
            .extra_phrases
            .insert("self_harm".into(), vec!["going to the quiet place".into()]);
        options.allow_phrases.push("suicide run".into());
        let s = Screen::new(&options).unwrap();
        assert_eq!(
            s.screen("I am going to the quiet place")
                .map(|f| f.category),
            Some(Category::SelfHarm)
        );
        assert!(Screen::standard()
            .screen("I am going to the quiet place")
            .is_none());
        assert!(s.screen("we did the suicide run at the raid").is_none());
        options
            .extra_phrases
            .insert("nonsense".into(), vec!["x".into()]);
        let err = Screen::new(&options).err().unwrap().to_string();
        assert!(
            err.contains("nonsense") && err.contains("self_harm"),
            "{err}"
        );
    }

    #[test]
    fn the_emergency_number_leads_for_imminent_danger() {
        let r = Responses {
            emergency_message: "CALL 112".into(),
            self_harm_message: "I'm glad you told me.".into(),
            other_at_risk_message: "About your friend.".into(),
            abuse_message: "ABUSE LINE".into(),
            harm_to_others_message: "Step away.".into(),
        };
        let f = Screen::standard()
            .screen("I took all my pills and he hits me")
            .unwrap();
        let text = r.compose(&f, "CRISIS LINE");
        assert!(text.starts_with("CALL 112"), "{text}");
        assert!(
            text.contains("CRISIS LINE") && text.contains("ABUSE LINE"),
            "{text}"
        );
        let f = Screen::standard().screen("my dad beats me").unwrap();
        assert_eq!(r.compose(&f, "CRISIS LINE"), "ABUSE LINE");
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
}

/// The labelled set (`tests/fixtures/safety/labelled.tsv`) measured: recall and precision
/// per category and overall. A risk message counts as recalled when the screen finds any
/// risk; its category is right when the screen's leading category is the label.
#[cfg(test)]
mod labelled_set {
    use super::*;

    const SET: &str = include_str!("../../tests/fixtures/safety/labelled.tsv");
    const HOLDOUT: &str = include_str!("../../tests/fixtures/safety/holdout.tsv");
    const FRESH: &str = include_str!("../../tests/fixtures/safety/fresh.tsv");
    const UNSEEN: &str = include_str!("../../tests/fixtures/safety/unseen.tsv");
    const FIFTH: &str = include_str!("../../tests/fixtures/safety/fifth.tsv");
    const SIXTH: &str = include_str!("../../tests/fixtures/safety/sixth.tsv");
    const SEVENTH: &str = include_str!("../../tests/fixtures/safety/seventh.tsv");
    const EIGHTH: &str = include_str!("../../tests/fixtures/safety/eighth.tsv");
    const NINTH: &str = include_str!("../../tests/fixtures/safety/ninth.tsv");
    const TENTH: &str = include_str!("../../tests/fixtures/safety/tenth.tsv");
    const ELEVENTH: &str = include_str!("../../tests/fixtures/safety/eleventh.tsv");
    const TWELFTH: &str = include_str!("../../tests/fixtures/safety/twelfth.tsv");

    fn rows() -> Vec<(Option<Category>, &'static str)> {
        rows_of(SET)
    }

    fn rows_of(set: &'static str) -> Vec<(Option<Category>, &'static str)> {
        set.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (label, text) = l.split_once('\t').expect("label<TAB>message");
                let label = (label != "none")
                    .then(|| Category::from_name(label).unwrap_or_else(|| panic!("label {label}")));
                (label, text)
            })
            .collect()
    }

    #[test]
    fn the_screen_meets_its_goals_on_the_labelled_set() {
        let screen = Screen::standard();
        let rows = rows();
        let risk = rows.iter().filter(|(l, _)| l.is_some()).count();
        assert!(
            rows.len() >= 400 && risk * 2 >= rows.len() - 20,
            "{} rows, {risk} risk",
            rows.len()
        );
        let mut report = String::new();
        let (mut tp, mut fp, mut fneg) = (0, 0, 0);
        let mut misses = Vec::new();
        let mut false_alarms = Vec::new();
        let mut wrong_category = Vec::new();
        for (label, text) in &rows {
            let finding = screen.screen(text);
            let found = finding.as_ref().map(|f| f.category);
            match (label, found) {
                (Some(l), Some(c)) => {
                    tp += 1;
                    if *l != c {
                        wrong_category.push(format!(
                            "{text} ({l} read as {c}: {})",
                            finding.as_ref().unwrap().cue
                        ));
                    }
                }
                (Some(_), None) => {
                    fneg += 1;
                    misses.push(*text)
                }
                (None, Some(c)) => {
                    fp += 1;
                    false_alarms.push(format!("{text} ({c}: {})", finding.unwrap().cue))
                }
                (None, None) => {}
            }
        }
        let recall = tp as f64 / (tp + fneg) as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        report.push_str(&format!(
            "risk: recall {recall:.3}, precision {precision:.3}\n"
        ));
        let mut imminent_recall = 1.0;
        for c in Category::ALL {
            let labelled = rows.iter().filter(|(l, _)| *l == Some(c)).count();
            let caught = rows
                .iter()
                .filter(|(l, t)| *l == Some(c) && screen.screen(t).is_some())
                .count();
            let right = rows
                .iter()
                .filter(|(l, t)| *l == Some(c) && screen.screen(t).map(|f| f.category) == Some(c))
                .count();
            let predicted = rows
                .iter()
                .filter(|(_, t)| screen.screen(t).map(|f| f.category) == Some(c))
                .count();
            let r = caught as f64 / labelled as f64;
            if c == Category::Imminent {
                imminent_recall = r;
            }
            report.push_str(&format!(
                "{c}: {labelled} labelled, recall {r:.3}, category right {:.3}, category precision {:.3}\n",
                right as f64 / labelled as f64,
                right as f64 / predicted.max(1) as f64,
            ));
        }
        println!("{report}misses: {misses:#?}\nfalse alarms: {false_alarms:#?}\nwrong category: {wrong_category:#?}");
        assert!(
            recall >= 0.97,
            "recall {recall:.3} < 0.97\n{report}misses: {misses:#?}"
        );
        assert!(
            imminent_recall >= 0.99,
            "imminent recall {imminent_recall:.3}\n{report}"
        );
        assert!(
            precision >= 0.9,
            "precision {precision:.3}\n{report}false alarms: {false_alarms:#?}"
        );
    }

    /// The later sets: each was measured once before the lexicon was tuned on it (the
    /// README has those first numbers); now they guard against losing what was learned.
    #[test]
    fn the_screen_on_the_holdout_set() {
        report_on(HOLDOUT, "holdout", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_fresh_set() {
        report_on(FRESH, "fresh", 0.9, 0.8);
    }

    #[test]
    fn the_screen_on_the_unseen_set() {
        report_on(UNSEEN, "unseen", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_fifth_set() {
        report_on(FIFTH, "fifth", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_sixth_set() {
        report_on(SIXTH, "sixth", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_seventh_set() {
        report_on(SEVENTH, "seventh", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_eighth_set() {
        report_on(EIGHTH, "eighth", 0.95, 0.95);
    }

    /// A message with no subject that starts with what was done ("already took them")
    /// is the person's own; one that starts with what was heard is about the other.
    #[test]
    fn a_subjectless_message_is_the_persons_own_but_news_of_someone_else_is_not() {
        let screen = Screen::standard();
        let category = |text: &str| screen.screen(text).map(|f| f.category);
        assert_eq!(
            category("ALREADY TOOK THEM. ITS TOO LATE"),
            Some(Category::Imminent)
        );
        assert_eq!(
            category("just heard my brother took a bunch of pills"),
            Some(Category::OtherAtRisk)
        );
    }

    #[test]
    fn the_screen_on_the_ninth_set() {
        report_on(NINTH, "ninth", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_tenth_set() {
        report_on(TENTH, "tenth", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_eleventh_set() {
        report_on(ELEVENTH, "eleventh", 0.95, 0.95);
    }

    #[test]
    fn the_screen_on_the_twelfth_set() {
        report_on(TWELFTH, "twelfth", 0.95, 0.95);
    }

    /// "Asking for a friend" and "hypothetically" are covers, not news of someone else.
    #[test]
    fn asking_for_a_friend_is_the_persons_own_risk() {
        assert_eq!(
            Screen::standard()
                .screen("asking for a friend, how much insulin would be too much for someone")
                .map(|f| f.category),
            Some(Category::SelfHarm)
        );
        assert_eq!(
            Screen::standard()
                .screen("hypothetically if someone wanted to disappear for good how would they do it painlessly")
                .map(|f| f.category),
            Some(Category::SelfHarm)
        );
    }

    fn report_on(set: &'static str, name: &str, min_recall: f64, min_precision: f64) {
        let screen = Screen::standard();
        let rows = rows_of(set);
        let (mut tp, mut fp, mut fneg, mut imm, mut imm_caught) = (0, 0, 0, 0, 0);
        let mut misses = Vec::new();
        let mut false_alarms = Vec::new();
        for (label, text) in &rows {
            let found = screen.screen(text);
            if *label == Some(Category::Imminent) {
                imm += 1;
                imm_caught += found.is_some() as usize;
            }
            match (label, &found) {
                (Some(_), Some(_)) => tp += 1,
                (Some(_), None) => {
                    fneg += 1;
                    misses.push(*text)
                }
                (None, Some(f)) => {
                    fp += 1;
                    false_alarms.push(format!("{text} ({}: {})", f.category, f.cue))
                }
                (None, None) => {}
            }
        }
        let recall = tp as f64 / (tp + fneg) as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        println!(
            "{name}: {} messages, recall {recall:.3}, precision {precision:.3}, imminent {imm_caught}/{imm}\nmisses: {misses:#?}\nfalse alarms: {false_alarms:#?}",
            rows.len()
        );
        assert!(
            recall >= min_recall && precision >= min_precision,
            "{name}: recall {recall:.3}, precision {precision:.3}"
        );
    }
}
