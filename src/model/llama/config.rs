//! A Llama model's hyper-parameters: an HF `config.json`, or the same facts from a GGUF
//! file's metadata.

use super::*;

/// An HF `LlamaConfig` (`config.json` with `"model_type": "llama"`), or the same facts
/// read from a GGUF file's metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default = "default_positions")]
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// transformers 5 writes `{"rope_type": "default", "rope_theta": …}` here instead of
    /// `rope_theta` and `rope_scaling`.
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_positions() -> usize {
    2048
}
fn default_act() -> String {
    "silu".into()
}

/// `eos_token_id` is a number or a list of numbers in HF configs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn first(&self) -> Option<u32> {
        match self {
            TokenIds::One(i) => Some(*i),
            TokenIds::Many(v) => v.first().copied(),
        }
    }
}

impl Config {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// What this implementation cannot run, said plainly.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads == 0 || self.hidden_size == 0 || self.num_hidden_layers == 0 {
            return Err(
                "hidden_size, num_attention_heads and num_hidden_layers must be > 0".into(),
            );
        }
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(format!(
                "num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!("head_dim {} must be even", self.head_dim()));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only silu)",
                self.hidden_act
            ));
        }
        if self.attention_bias || self.mlp_bias {
            return Err("attention or MLP biases are not supported".into());
        }
        if self.rope_scaling.as_ref().is_some_and(|v| !v.is_null()) {
            return Err("rope_scaling is not supported".into());
        }
        if let Some(p) = &self.rope_parameters {
            match p.get("rope_type").and_then(|t| t.as_str()) {
                None | Some("default") => {}
                Some(other) => return Err(format!("rope_type {other:?} is not supported")),
            }
        }
        Ok(())
    }

    /// The rotary embedding's base, wherever the config keeps it.
    pub fn theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|p| p.get("rope_theta"))
            .and_then(|t| t.as_f64())
            .unwrap_or(self.rope_theta)
    }

    /// The same facts from a GGUF file's `llama.*` metadata.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self> {
        let md = &content.metadata;
        let arch = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            bail!(
                "its architecture is {arch:?}; Kindred runs GGUF files of the llama architecture"
            );
        }
        let int = |k: &str| -> Result<usize> {
            md.get(k)
                .with_context(|| format!("the metadata lacks {k}"))?
                .to_u32()
                .map(|v| v as usize)
                .with_context(|| format!("the metadata's {k} is not a number"))
        };
        let opt_u32 = |k: &str| md.get(k).and_then(|v| v.to_u32().ok());
        let heads = int("llama.attention.head_count")?;
        let hidden = int("llama.embedding_length")?;
        let vocab = match int("llama.vocab_size") {
            Ok(v) => v,
            Err(_) => md
                .get("tokenizer.ggml.tokens")
                .and_then(|v| v.to_vec().ok())
                .map(|v| v.len())
                .context("the metadata has neither llama.vocab_size nor tokenizer.ggml.tokens")?,
        };
        let tied = !content.tensor_infos.contains_key("output.weight");
        Ok(Self {
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: int("llama.feed_forward_length")?,
            num_hidden_layers: int("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: Some(int("llama.attention.head_count_kv").unwrap_or(heads)),
            head_dim: Some(int("llama.rope.dimension_count").unwrap_or(hidden / heads.max(1))),
            rms_norm_eps: md
                .get("llama.attention.layer_norm_rms_epsilon")
                .and_then(|v| v.to_f32().ok())
                .map(f64::from)
                .unwrap_or(1e-5),
            rope_theta: md
                .get("llama.rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .map(f64::from)
                .unwrap_or(10_000.0),
            max_position_embeddings: int("llama.context_length").unwrap_or(2048),
            tie_word_embeddings: tied,
            bos_token_id: opt_u32("tokenizer.ggml.bos_token_id"),
            eos_token_id: opt_u32("tokenizer.ggml.eos_token_id").map(TokenIds::One),
            pad_token_id: opt_u32("tokenizer.ggml.padding_token_id"),
            hidden_act: "silu".into(),
            attention_bias: false,
            mlp_bias: false,
            rope_scaling: None,
            rope_parameters: None,
        })
    }

    /// Parameters, counting tied embeddings once.
    pub fn parameter_count(&self) -> usize {
        let (h, i, kv) = (
            self.hidden_size,
            self.intermediate_size,
            self.kv_heads() * self.head_dim(),
        );
        let q = self.num_attention_heads * self.head_dim();
        let layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * h
        };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }
}
