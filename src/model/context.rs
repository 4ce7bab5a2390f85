//! Turning a conversation into the encoder input the Joint model was trained on.
//!
//! The same function builds training examples and live contexts, so what the model sees
//! in a chat is exactly what it saw in training.

use super::lineage::Lineage;
use super::strategy::Strategy;
use super::tokenizer::Tokenizer;
use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use crate::domain::Speaker;

/// One utterance of a conversation, as the model sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextTurn {
    pub speaker: Speaker,
    pub text: String,
    /// The supporter's strategy for that turn (stored with every bot reply).
    pub strategy: Option<Strategy>,
}

impl ContextTurn {
    pub fn seeker(text: impl Into<String>) -> Self {
        Self {
            speaker: Speaker::Seeker,
            text: text.into(),
            strategy: None,
        }
    }
    pub fn supporter(text: impl Into<String>, strategy: Option<Strategy>) -> Self {
        Self {
            speaker: Speaker::Supporter,
            text: text.into(),
            strategy,
        }
    }
}

/// Collapses runs of whitespace to one space and trims, as the reference did.
pub fn normalize_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// How a context becomes encoder ids for one lineage.
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    pub lineage: Lineage,
    pub eos_id: u32,
    /// The strategy token id of each [`Strategy`] (by `Strategy::index`).
    pub strategy_ids: [u32; 8],
    /// Keep at most this many tokens (the recipe: the last 160).
    pub max_tokens: usize,
    /// Keep at most this many utterances (0 = all). The paper's interactive loop kept ~5.
    pub max_turns: usize,
}

impl ContextBuilder {
    /// Encoder ids for `turns` (oldest first), optionally led by the seeker's situation.
    pub fn build(
        &self,
        tokenizer: &Tokenizer,
        situation: Option<&str>,
        turns: &[ContextTurn],
    ) -> Result<Vec<u32>> {
        let start = if self.max_turns > 0 && turns.len() > self.max_turns {
            turns.len() - self.max_turns
        } else {
            0
        };
        let mut pieces: Vec<Vec<u32>> = Vec::new();
        if let Some(s) = situation.map(normalize_text).filter(|s| !s.is_empty()) {
            pieces.push(tokenizer.encode(&s)?);
        }
        for turn in &turns[start..] {
            let mut ids = Vec::new();
            if turn.speaker == Speaker::Supporter {
                if let Some(s) = turn.strategy {
                    ids.push(self.strategy_ids[s.index()]);
                }
            }
            ids.extend(tokenizer.encode(&normalize_text(&turn.text))?);
            pieces.push(ids);
        }
        Ok(match self.lineage {
            Lineage::Recipe => {
                // Every utterance followed by eos, the final eos dropped, the last N kept.
                let mut ids: Vec<u32> = Vec::new();
                for p in pieces {
                    ids.extend(p);
                    ids.push(self.eos_id);
                }
                ids.pop();
                if ids.len() > self.max_tokens {
                    ids.drain(..ids.len() - self.max_tokens);
                }
                ids
            }
            Lineage::Paper => {
                // Every utterance followed by eos; whole utterances dropped from the front
                // until the rest fits.
                let mut kept: Vec<Vec<u32>> = Vec::new();
                let mut total = 0;
                for mut p in pieces.into_iter().rev() {
                    p.push(self.eos_id);
                    if total + p.len() > self.max_tokens {
                        if kept.is_empty() {
                            // A single utterance longer than the budget keeps its end.
                            p.drain(..p.len() - self.max_tokens);
                            kept.push(p);
                        }
                        break;
                    }
                    total += p.len();
                    kept.push(p);
                }
                kept.into_iter().rev().flatten().collect()
            }
        })
    }
}
