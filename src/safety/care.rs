//! Care: what a person gets for what the screen found. Each category has its own
//! message, from the settings; the emergency number leads wherever a life may be in
//! danger now, and the crisis lines come once.

use anyhow::{bail, Result};
use serde::Deserialize;

use super::{Category, Finding};

/// What a person gets for each category, from the settings (`[safety]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Responses {
    /// First, for imminent danger: call the emergency number now.
    pub emergency_message: String,
    /// Before the resources, for thoughts of suicide or self-harm.
    pub self_harm_message: String,
    /// For someone worried about another person.
    pub other_at_risk_message: String,
    /// For violence or threats against the person (with its own helplines).
    pub abuse_message: String,
    /// For thoughts of hurting someone else.
    pub harm_to_others_message: String,
}

impl Responses {
    /// Checks that no response is empty (each names its key).
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("emergency_message", &self.emergency_message),
            ("self_harm_message", &self.self_harm_message),
            ("other_at_risk_message", &self.other_at_risk_message),
            ("abuse_message", &self.abuse_message),
            ("harm_to_others_message", &self.harm_to_others_message),
        ] {
            if v.trim().is_empty() {
                bail!("safety.{key} must not be empty: it is what a person at risk reads");
            }
        }
        Ok(())
    }

    /// The response to `finding`. `resources` is the crisis-line text of the chat (its
    /// moderators' own, or the configured `crisis_message`). The emergency number leads
    /// wherever a life may be in danger now; every category found adds its part, and the
    /// resources come once.
    pub fn compose(&self, finding: &Finding, resources: &str) -> String {
        let has = |c| finding.categories.contains(&c);
        let mut parts: Vec<&str> = Vec::new();
        if has(Category::Imminent) {
            parts.push(&self.emergency_message);
        }
        if has(Category::Imminent) || has(Category::SelfHarm) {
            parts.push(&self.self_harm_message);
        }
        if has(Category::OtherAtRisk) {
            parts.push(&self.other_at_risk_message);
        }
        if has(Category::HarmToOthers) {
            parts.push(&self.harm_to_others_message);
        }
        let needs_resources = finding.categories.iter().any(|c| *c != Category::Abuse);
        if needs_resources {
            parts.push(resources);
        }
        if has(Category::Abuse) {
            parts.push(&self.abuse_message);
        }
        parts.join("\n\n")
    }
}
