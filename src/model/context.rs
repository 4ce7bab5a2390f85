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

/// The system prompt the backbone recipe trains with (tools/backbone/train_joint.py),
/// for a decoder-only model whose `kindred.json` names none.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a kind, supportive listener. Reply briefly.";

/// How turns are laid out for the network.
#[derive(Debug, Clone)]
pub enum ContextFormat {
    /// For an encoder (BlenderBot-small): utterances separated by eos, as the lineage says.
    EosSeparated,
    /// For a decoder-only model: ChatML messages, as the backbone recipe trains them.
    ChatMl(ChatMl),
}

/// ChatML as the backbone recipe writes it:
///
/// ```text
/// <|im_start|>system\n{system}[ Situation: …]<|im_end|>\n
/// <|im_start|>user\n{seeker}<|im_end|>\n
/// <|im_start|>assistant\n[Strategy]{supporter}<|im_end|>\n
/// …
/// <|im_start|>assistant\n                        (the prompt ends here)
/// ```
///
/// Whole messages are dropped from the front until the rest fits the budget.
#[derive(Debug, Clone)]
pub struct ChatMl {
    pub system: String,
    im_start: u32,
    im_end: u32,
    newline: Vec<u32>,
    system_role: Vec<u32>,
    user_role: Vec<u32>,
    assistant_role: Vec<u32>,
}

impl ChatMl {
    pub fn new(tokenizer: &Tokenizer, system: impl Into<String>) -> Result<Self> {
        let id = |t: &str| {
            tokenizer.token_to_id(t).ok_or_else(|| {
                anyhow::anyhow!("the tokenizer has no {t} token, which ChatML needs")
            })
        };
        Ok(Self {
            system: system.into(),
            im_start: id("<|im_start|>")?,
            im_end: id("<|im_end|>")?,
            newline: tokenizer.encode("\n")?,
            system_role: tokenizer.encode("system\n")?,
            user_role: tokenizer.encode("user\n")?,
            assistant_role: tokenizer.encode("assistant\n")?,
        })
    }

    /// The token that ends a message (and so a reply).
    pub fn end_id(&self) -> u32 {
        self.im_end
    }

    fn message(&self, role: &[u32], body: &[u32]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(body.len() + role.len() + 3);
        ids.push(self.im_start);
        ids.extend_from_slice(role);
        ids.extend_from_slice(body);
        ids.push(self.im_end);
        ids.extend_from_slice(&self.newline);
        ids
    }

    fn build(
        &self,
        tokenizer: &Tokenizer,
        strategy_ids: &[u32; 8],
        max_tokens: usize,
        situation: Option<&str>,
        turns: &[ContextTurn],
    ) -> Result<Vec<u32>> {
        let system = |situation: Option<&str>| -> Result<Vec<u32>> {
            let mut text = self.system.clone();
            if let Some(s) = situation.map(normalize_text).filter(|s| !s.is_empty()) {
                text.push_str(" Situation: ");
                text.push_str(&s);
            }
            Ok(self.message(&self.system_role, &tokenizer.encode(&text)?))
        };
        let mut tail = vec![self.im_start];
        tail.extend_from_slice(&self.assistant_role);
        let mut head = system(situation)?;
        // As in training, the situation stays however little room it leaves; only one
        // that leaves none at all is left out.
        if head.len() + tail.len() >= max_tokens {
            head = system(None)?;
        }
        let mut budget = max_tokens.saturating_sub(head.len() + tail.len());
        let mut kept: Vec<Vec<u32>> = Vec::new();
        for turn in turns.iter().rev() {
            let mut body = Vec::new();
            let role = match turn.speaker {
                Speaker::Supporter => {
                    if let Some(s) = turn.strategy {
                        body.push(strategy_ids[s.index()]);
                    }
                    &self.assistant_role
                }
                Speaker::Seeker => &self.user_role,
            };
            body.extend(tokenizer.encode(&normalize_text(&turn.text))?);
            let mut ids = self.message(role, &body);
            if ids.len() > budget {
                if kept.is_empty() {
                    // One utterance longer than the budget keeps its end.
                    ids.drain(..ids.len() - budget);
                    kept.push(ids);
                }
                break;
            }
            budget -= ids.len();
            kept.push(ids);
        }
        let mut ids = head;
        ids.extend(kept.into_iter().rev().flatten());
        ids.extend(tail);
        Ok(ids)
    }
}

/// How a context becomes the network's input ids for one lineage.
#[derive(Debug, Clone)]
pub struct ContextBuilder {
    pub format: ContextFormat,
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
    /// Input ids for `turns` (oldest first), optionally led by the seeker's situation.
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
        if let ContextFormat::ChatMl(chat) = &self.format {
            return chat.build(
                tokenizer,
                &self.strategy_ids,
                self.max_tokens,
                situation,
                &turns[start..],
            );
        }
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
