//! The model's hyper-parameters, as in a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};

/// The model's hyper-parameters, read from (and written to) a Hugging Face `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Config {
    #[serde(default)]
    pub model_type: String,
    #[serde(default)]
    pub architectures: Vec<String>,
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "one")]
    pub bos_token_id: u32,
    #[serde(default = "two")]
    pub eos_token_id: u32,
    #[serde(default = "one")]
    pub decoder_start_token_id: u32,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub activation_dropout: f64,
    #[serde(default = "default_init_std")]
    pub init_std: f64,
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    #[serde(default = "yes")]
    pub is_encoder_decoder: bool,
}

fn default_activation() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_init_std() -> f64 {
    0.02
}
fn one() -> u32 {
    1
}
fn two() -> u32 {
    2
}
fn yes() -> bool {
    true
}

impl Config {
    /// Checks that this configuration describes a model this file can run, so that a
    /// directory holding another architecture fails with a clear reason instead of a
    /// shape error deep in the forward pass.
    pub fn validate(&self) -> Result<(), String> {
        let arch_ok = self.model_type == "blenderbot-small"
            || (self.model_type.is_empty()
                && self
                    .architectures
                    .iter()
                    .any(|a| a == "BlenderbotSmallForConditionalGeneration"));
        if !arch_ok {
            return Err(format!(
                "model_type is {:?} (architectures {:?}); Kindred runs only BlenderbotSmallForConditionalGeneration",
                self.model_type, self.architectures
            ));
        }
        if self.encoder_attention_heads == 0
            || !self.d_model.is_multiple_of(self.encoder_attention_heads)
            || self.decoder_attention_heads == 0
            || !self.d_model.is_multiple_of(self.decoder_attention_heads)
        {
            return Err(format!(
                "d_model {} is not divisible by the attention heads ({} / {})",
                self.d_model, self.encoder_attention_heads, self.decoder_attention_heads
            ));
        }
        match self.activation_function.as_str() {
            "gelu" | "gelu_new" | "relu" | "gelu_pytorch_tanh" => {}
            other => return Err(format!("activation_function {other:?} is not supported")),
        }
        Ok(())
    }

    /// A rough parameter count (embeddings shared), for `model info` and model cards.
    pub fn parameter_count(&self) -> usize {
        let d = self.d_model;
        let attn = 4 * (d * d + d);
        let ln = 2 * d;
        let enc_layer = attn
            + ln
            + (d * self.encoder_ffn_dim + self.encoder_ffn_dim)
            + (self.encoder_ffn_dim * d + d)
            + ln;
        let dec_layer = 2 * attn
            + 2 * ln
            + (d * self.decoder_ffn_dim + self.decoder_ffn_dim)
            + (self.decoder_ffn_dim * d + d)
            + ln;
        self.vocab_size * d
            + 2 * self.max_position_embeddings * d
            + 2 * ln
            + self.encoder_layers * enc_layer
            + self.decoder_layers * dec_layer
            + self.vocab_size
    }
}
