//! Which training code a model directory comes from, and `kindred.json`.
//!
//! Two lineages of Joint models exist and they differ in more than token names: the
//! recipe's (`codes_zcj`, what `kindred train` produces) and the paper's original code
//! (the published `lsy641/ESC_Blender_Strategy`). Each is run the way its authors ran it.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lineage {
    /// The recipe: 8 appended strategy tokens, context cut to the last 160 tokens with the
    /// final eos dropped, the strategy chosen among the 8 tokens, then the reply with them banned.
    Recipe,
    /// The paper's checkpoints: `[Questions]`…`[CLS]` tokens, eos-terminated utterances cut
    /// at an utterance boundary to 512 positions, the strategy simply the first sampled token.
    Paper,
}

impl std::fmt::Display for Lineage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lineage::Recipe => "recipe",
            Lineage::Paper => "paper",
        })
    }
}

/// `kindred.json`: optional facts about a model directory. Everything has a default, and
/// a missing file is inferred from the tokenizer.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ModelMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the weights come from, when not trained here (e.g. a published checkpoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    /// Encoder budget in tokens (recipe 160, paper 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context_tokens: Option<usize>,
    /// Utterances kept in the context (0 = as many as fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_context_turns: Option<usize>,
    /// Whether the seeker's situation was prepended in training.
    #[serde(default)]
    pub situation: bool,
    /// A decoder-only model's system message (the backbone recipe's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Decoding defaults for this model that differ from its lineage's (e.g.
    /// `{"temperature": 0.5}`); settings and callers override them in turn.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub decoding: serde_json::Map<String, serde_json::Value>,
}

impl ModelMeta {
    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join("kindred.json");
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)?;
        let meta = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?;
        Ok(Some(meta))
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::write(
            dir.join("kindred.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        Ok(())
    }
}
