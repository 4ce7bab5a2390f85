//! Decoding options: how the strategy is chosen and the reply sampled. A model
//! directory's defaults, the settings and a caller's choices override one another by
//! name ([`DecodingOptions::overridden`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StrategySelection {
    /// Sample the strategy from its distribution (the Joint model as published).
    Sample,
    /// Take the most likely strategy.
    Argmax,
}

/// Decoding settings; the defaults are the recipe's interactive ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodingOptions {
    pub strategy_selection: StrategySelection,
    pub strategy_temperature: f64,
    pub strategy_top_p: f64,
    /// 0 means greedy decoding.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 means off.
    pub top_k: usize,
    pub repetition_penalty: f64,
    /// 0 means off.
    pub no_repeat_ngram_size: usize,
    /// Reply tokens (the strategy token and eos not counted) before eos is allowed.
    pub min_length: usize,
    /// Reply tokens at most (eos not counted).
    pub max_length: usize,
    /// A fixed seed makes replies reproducible; none draws one per reply.
    pub seed: Option<u64>,
}

impl Default for DecodingOptions {
    fn default() -> Self {
        Self {
            strategy_selection: StrategySelection::Sample,
            strategy_temperature: 0.7,
            strategy_top_p: 0.9,
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.03,
            no_repeat_ngram_size: 3,
            min_length: 10,
            max_length: 40,
            seed: None,
        }
    }
}

impl DecodingOptions {
    /// The paper's own decoding for its published checkpoints.
    pub fn paper() -> Self {
        Self {
            top_k: 30,
            min_length: 5,
            no_repeat_ngram_size: 0,
            ..Self::default()
        }
    }

    /// Deterministic decoding: argmax strategy, greedy reply, no sampling.
    pub fn greedy(max_length: usize) -> Self {
        Self {
            strategy_selection: StrategySelection::Argmax,
            temperature: 0.0,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            min_length: 0,
            max_length,
            ..Self::default()
        }
    }

    /// These options with the fields named in `overrides` replaced (a model's
    /// `kindred.json` over its lineage's defaults, then `model.decoding` settings over
    /// those). Unknown names and invalid values are errors.
    pub fn overridden(
        &self,
        overrides: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let fields = v.as_object_mut().expect("options serialise to an object");
        for (k, val) in overrides {
            fields.insert(k.clone(), val.clone());
        }
        let opts: Self = serde_json::from_value(v).map_err(|e| e.to_string())?;
        opts.validate()?;
        Ok(opts)
    }

    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        check(
            self.temperature >= 0.0,
            "temperature must be ≥ 0 (0 = greedy)",
        )?;
        check(
            self.strategy_temperature > 0.0,
            "strategy_temperature must be > 0",
        )?;
        check(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "top_p must be in (0, 1]",
        )?;
        check(
            self.strategy_top_p > 0.0 && self.strategy_top_p <= 1.0,
            "strategy_top_p must be in (0, 1]",
        )?;
        check(
            self.repetition_penalty > 0.0,
            "repetition_penalty must be > 0",
        )?;
        check(self.max_length >= 1, "max_length must be ≥ 1")?;
        check(
            self.min_length <= self.max_length,
            "min_length must be ≤ max_length",
        )?;
        Ok(())
    }
}
