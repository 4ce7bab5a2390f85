//! BlenderBot-small (`BlenderbotSmallForConditionalGeneration`) in candle.
//!
//! A post-layer-norm encoder–decoder with learned positions, scaled embeddings, a
//! `layernorm_embedding` on both sides and a `final_logits_bias`, exactly as in
//! transformers' `modeling_blenderbot_small.py`. The same code serves three uses:
//!
//! * teacher-forced scoring and training ([`BlenderbotSmall::forward`]), where the
//!   whole decoder sequence is processed at once under a causal mask;
//! * generation ([`BlenderbotSmall::encode`] then [`BlenderbotSmall::decode_step`]),
//!   where the cross-attention keys and values are computed once per reply and the
//!   decoder self-attention keeps a KV cache;
//! * training with gradients: candle 0.11's fused softmax and layer norm have no
//!   backward pass, so a model built with `Mode::Train` uses the slower composite ops.

use std::sync::Arc;

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, Init, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use super::attention::CACHE_HEADROOM;
use super::q8::{self, Q8Matrix};
use super::{activation, attention, norm};

mod cache;
mod proj;

use cache::*;
use proj::*;

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

/// Whether the model is built for inference (fused kernels) or training (ops with gradients, dropout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Inference,
    Train,
}

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    mode: Mode,
}

impl LayerNorm {
    fn load(dim: usize, vb: VarBuilder, mode: Mode) -> candle_core::Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(Self { weight, bias, mode })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.mode {
            Mode::Inference if norm::applies(x) => {
                norm::add_layer_norm(x, None, &self.weight, &self.bias, 1e-5)
            }
            Mode::Inference => candle_nn::ops::layer_norm(x, &self.weight, &self.bias, 1e-5),
            Mode::Train => candle_nn::ops::layer_norm_slow(x, &self.weight, &self.bias, 1e-5),
        }
    }

    /// `layer_norm(x + residual)`: fused into one pass at inference (`norm.rs`).
    fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> candle_core::Result<Tensor> {
        if self.mode == Mode::Inference && norm::applies(x) && x.dims() == residual.dims() {
            return norm::add_layer_norm(x, Some(residual), &self.weight, &self.bias, 1e-5);
        }
        self.forward(&(x + residual)?)
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    GeluErf,
    GeluTanh,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Self {
        match name {
            "relu" => Self::Relu,
            "gelu_new" | "gelu_pytorch_tanh" => Self::GeluTanh,
            _ => Self::GeluErf,
        }
    }
    fn apply(&self, x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
        match self {
            Self::GeluErf
                if mode == Mode::Inference
                    && x.dtype() == DType::F32
                    && matches!(x.device(), Device::Cpu) =>
            {
                x.contiguous()?.apply_op1_no_bwd(&activation::GeluErf)
            }
            Self::GeluErf => x.gelu_erf(),
            Self::GeluTanh => x.gelu(),
            Self::Relu => x.relu(),
        }
    }
}

fn softmax_last(x: &Tensor, mode: Mode) -> candle_core::Result<Tensor> {
    match mode {
        Mode::Inference => candle_nn::ops::softmax_last_dim(x),
        Mode::Train => candle_nn::ops::softmax(x, D::Minus1),
    }
}

fn dropout(x: &Tensor, p: f64, mode: Mode) -> candle_core::Result<Tensor> {
    if mode == Mode::Train && p > 0.0 {
        candle_nn::ops::dropout(x, p as f32)
    } else {
        Ok(x.clone())
    }
}

/// How an attention layer projects its inputs to queries, keys and values.
///
/// For inference the projections that read the same input are stacked into one matrix:
/// one product (and, quantised, one quantisation of the input) instead of two or three,
/// which matters when a decoding step is a long row of small products.
#[derive(Debug, Clone)]
enum InputProjections {
    /// As stored in the checkpoint (training, and dense inference).
    Separate { q: Proj, k: Proj, v: Proj },
    /// Self-attention: `[q | k | v]` from one product.
    FusedQkv(Proj),
    /// Cross-attention: `q` from the decoder, `[k | v]` from the encoder in one product.
    FusedKv { q: Proj, kv: Proj },
}

#[derive(Debug, Clone)]
struct Attention {
    inputs: InputProjections,
    out_proj: Proj,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
    /// Whether queries are still to be multiplied by `scaling`: until [`Attention::fuse`]
    /// folds it into the query projection's weights (a pass over the queries less).
    scale_queries: bool,
    dropout: f64,
    mode: Mode,
}

/// Whether an attention layer attends to its own input or to the encoder's output
/// (which decides how its projections can be fused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttentionKind {
    SelfAttention,
    Cross,
}

impl Attention {
    fn load(
        d: usize,
        heads: usize,
        cfg: &Config,
        vb: VarBuilder,
        mode: Mode,
    ) -> candle_core::Result<Self> {
        let std = cfg.init_std;
        let head_dim = d / heads;
        Ok(Self {
            inputs: InputProjections::Separate {
                q: linear(d, d, vb.pp("q_proj"), std)?,
                k: linear(d, d, vb.pp("k_proj"), std)?,
                v: linear(d, d, vb.pp("v_proj"), std)?,
            },
            out_proj: linear(d, d, vb.pp("out_proj"), std)?,
            num_heads: heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
            scale_queries: true,
            dropout: cfg.attention_dropout,
            mode,
        })
    }

    /// Stacks the projections that read the same input (see [`InputProjections`]).
    /// Also folds the query scaling into the query projection (`W·s`, `b·s`).
    fn fuse(&mut self, kind: AttentionKind) -> candle_core::Result<()> {
        if let InputProjections::Separate { q, k, v } = &self.inputs {
            let Proj::Dense(q_dense) = q else {
                candle_core::bail!("projections are fused before they are quantised");
            };
            let q = Proj::Dense(Linear::new(
                (q_dense.weight() * self.scaling)?,
                q_dense.bias().map(|b| b * self.scaling).transpose()?,
            ));
            self.inputs = match kind {
                AttentionKind::SelfAttention => {
                    InputProjections::FusedQkv(Proj::stack(&[&q, k, v])?)
                }
                AttentionKind::Cross => InputProjections::FusedKv {
                    q,
                    kv: Proj::stack(&[k, v])?,
                },
            };
            self.scale_queries = false;
        }
        Ok(())
    }

    /// Queries from the query projection's output: scaled, unless the scaling is
    /// folded into the projection.
    fn scaled(&self, q: Tensor) -> candle_core::Result<Tensor> {
        if self.scale_queries {
            q * self.scaling
        } else {
            Ok(q)
        }
    }

    fn quantize(&mut self) -> candle_core::Result<()> {
        match &mut self.inputs {
            InputProjections::Separate { q, k, v } => {
                q.quantize()?;
                k.quantize()?;
                v.quantize()?;
            }
            InputProjections::FusedQkv(qkv) => qkv.quantize()?,
            InputProjections::FusedKv { q, kv } => {
                q.quantize()?;
                kv.quantize()?;
            }
        }
        self.out_proj.quantize()
    }

    /// `(b, t, d)` → `(b, heads, t, head_dim)`: see [`Attention::split_stacked`].
    fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.split_stacked(x, 1)?.pop().expect("one part"))
    }

    /// `(b, t, n·d)` → the `n` slices of width `d`, each split into heads `(b, heads, t,
    /// head_dim)`. At inference these are views of `y` (the attention kernels and the
    /// 8-bit keys and values read through strides): copying them out was an 8-person
    /// encoder's largest single-threaded step. Elsewhere they are contiguous copies.
    fn split_stacked(&self, y: &Tensor, n: usize) -> candle_core::Result<Vec<Tensor>> {
        let (b, t, _) = y.dims3()?;
        let y = y
            .contiguous()?
            .reshape((b, t, n, self.num_heads, self.head_dim))?;
        let views = self.mode == Mode::Inference && attention::applies(&y);
        (0..n)
            .map(|i| {
                let part = y.narrow(2, i, 1)?.squeeze(2)?.transpose(1, 2)?;
                if views {
                    Ok(part)
                } else {
                    part.contiguous()
                }
            })
            .collect()
    }

    /// Scaled queries for `x`, split into heads.
    fn project_q(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let q = match &self.inputs {
            InputProjections::Separate { q, .. } | InputProjections::FusedKv { q, .. } => {
                q.forward(x)?
            }
            InputProjections::FusedQkv(qkv) => {
                let d = self.num_heads * self.head_dim;
                qkv.forward(x)?.narrow(2, 0, d)?
            }
        };
        self.split_heads(&self.scaled(q)?)
    }

    /// Keys and values for `source` (used once per reply for cross-attention).
    fn project_kv(&self, source: &Tensor) -> candle_core::Result<KeyValue> {
        let (k, v) = match &self.inputs {
            InputProjections::Separate { k, v, .. } => (
                self.split_heads(&k.forward(source)?)?,
                self.split_heads(&v.forward(source)?)?,
            ),
            InputProjections::FusedKv { kv, .. } => {
                let mut parts = self.split_stacked(&kv.forward(source)?, 2)?;
                let v = parts.pop().expect("two parts");
                (parts.pop().expect("two parts"), v)
            }
            InputProjections::FusedQkv(qkv) => {
                let mut parts = self.split_stacked(&qkv.forward(source)?, 3)?;
                let v = parts.pop().expect("three parts");
                (parts.pop().expect("three parts"), v)
            }
        };
        Ok(KeyValue { k, v })
    }

    /// Scaled queries and the keys and values of `x` attending to itself.
    fn project_self(&self, x: &Tensor) -> candle_core::Result<(Tensor, KeyValue)> {
        match &self.inputs {
            InputProjections::FusedQkv(qkv) => {
                let y = qkv.forward(x)?;
                let mut parts = self.split_stacked(&y, 3)?;
                let v = parts.pop().expect("three parts");
                let k = parts.pop().expect("three parts");
                let mut q = parts.pop().expect("three parts");
                if self.scale_queries {
                    q = self.scaled(q)?;
                }
                Ok((q, KeyValue { k, v }))
            }
            _ => Ok((self.project_q(x)?, self.project_kv(x)?)),
        }
    }

    /// Attends with queries `q` `(b, heads, t, head_dim)` to `kv`; `mask` is additive
    /// and broadcast to `(b, heads, tq, tk)`. Returns `(b, t, d)` after `out_proj`.
    fn attend(
        &self,
        q: &Tensor,
        kv: &KeyValue,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, _, t, _) = q.dims4()?;
        // At inference, attention straight from the tensors' memory (`attention.rs`):
        // a decoding step (one query per conversation, a padding mask at most) by a
        // direct kernel, more positions by two single-threaded products per head.
        let mask_fits = mask.is_none_or(|m| m.dims() == [b, 1, 1, kv.k.dim(2).unwrap_or(0)]);
        if self.mode == Mode::Inference && attention::applies(q) {
            let out = if t == 1 && mask_fits {
                attention::attend_one_position(q, &kv.k, &kv.v, mask)?
            } else {
                attention::attend_positions(q, &kv.k, &kv.v, mask)?
            };
            return self.out_proj.forward(&out);
        }
        let mut scores = q.matmul(&kv.k.t()?)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = softmax_last(&scores, self.mode)?;
        let probs = dropout(&probs, self.dropout, self.mode)?;
        let out = probs.matmul(&kv.v)?; // (b, h, t, hd)
        let out = out
            .transpose(1, 2)?
            .reshape((b, t, self.num_heads * self.head_dim))?;
        self.out_proj.forward(&out)
    }

    /// [`Attention::attend`] to a decoder layer's cross-attention keys and values.
    fn attend_cross(
        &self,
        q: &Tensor,
        cross: &CrossKv,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        match cross {
            CrossKv::Dense(kv) => self.attend(q, kv, mask),
            CrossKv::Quantized { k, v } => self.attend_quantized(q, k, v, mask),
        }
    }

    /// [`Attention::attend`] to keys and values in 8 bits. A decoding step (one query
    /// per conversation) reads them directly; more queries (teacher forcing) attend to
    /// their dequantised values, the same numbers.
    fn attend_quantized(
        &self,
        q: &Tensor,
        k: &attention::QuantizedHeads,
        v: &attention::QuantizedHeads,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, _, t, _) = q.dims4()?;
        let mask_fits = mask.is_none_or(|m| m.dims() == [b, 1, 1, k.dims().2]);
        if t == 1 && mask_fits && attention::applies(q) {
            let out = attention::attend_one_position_quantized(q, k, v, mask)?;
            return self.out_proj.forward(&out);
        }
        let kv = KeyValue {
            k: k.dequantize()?.to_dtype(q.dtype())?,
            v: v.dequantize()?.to_dtype(q.dtype())?,
        };
        self.attend(q, &kv, mask)
    }
}

/// The position-wise feed-forward block with its residual and post-layer-norm, shared by
/// encoder and decoder layers.
#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Proj,
    fc2: Proj,
    final_layer_norm: LayerNorm,
    activation: Activation,
    dropout: f64,
    activation_dropout: f64,
    mode: Mode,
}

impl FeedForward {
    fn load(
        cfg: &Config,
        ffn_dim: usize,
        vb: &VarBuilder,
        mode: Mode,
    ) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            fc1: linear(d, ffn_dim, vb.pp("fc1"), cfg.init_std)?,
            fc2: linear(ffn_dim, d, vb.pp("fc2"), cfg.init_std)?,
            final_layer_norm: LayerNorm::load(d, vb.pp("final_layer_norm"), mode)?,
            activation: Activation::from_name(&cfg.activation_function),
            dropout: cfg.dropout,
            activation_dropout: cfg.activation_dropout,
            mode,
        })
    }

    fn quantize(&mut self) -> candle_core::Result<()> {
        self.fc1.quantize()?;
        self.fc2.quantize()
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.fc1.forward_activated(x, self.activation, self.mode)?;
        let h = dropout(&h, self.activation_dropout, self.mode)?;
        let h = self.fc2.forward(&h)?;
        self.final_layer_norm
            .forward_residual(x, &dropout(&h, self.dropout, self.mode)?)
    }
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    dropout: f64,
    mode: Mode,
}

impl EncoderLayer {
    fn load(cfg: &Config, vb: VarBuilder, mode: Mode) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: Attention::load(
                d,
                cfg.encoder_attention_heads,
                cfg,
                vb.pp("self_attn"),
                mode,
            )?,
            self_attn_layer_norm: LayerNorm::load(d, vb.pp("self_attn_layer_norm"), mode)?,
            ffn: FeedForward::load(cfg, cfg.encoder_ffn_dim, &vb, mode)?,
            dropout: cfg.dropout,
            mode,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (q, kv) = self.self_attn.project_self(x)?;
        let h = self.self_attn.attend(&q, &kv, mask)?;
        let x = self
            .self_attn_layer_norm
            .forward_residual(x, &dropout(&h, self.dropout, self.mode)?)?;
        self.ffn.forward(&x)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    ffn: FeedForward,
    dropout: f64,
    mode: Mode,
}

impl DecoderLayer {
    fn load(cfg: &Config, vb: VarBuilder, mode: Mode) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.decoder_attention_heads;
        Ok(Self {
            self_attn: Attention::load(d, heads, cfg, vb.pp("self_attn"), mode)?,
            self_attn_layer_norm: LayerNorm::load(d, vb.pp("self_attn_layer_norm"), mode)?,
            encoder_attn: Attention::load(d, heads, cfg, vb.pp("encoder_attn"), mode)?,
            encoder_attn_layer_norm: LayerNorm::load(d, vb.pp("encoder_attn_layer_norm"), mode)?,
            ffn: FeedForward::load(cfg, cfg.decoder_ffn_dim, &vb, mode)?,
            dropout: cfg.dropout,
            mode,
        })
    }

    /// One decoder layer. `self_kv` holds the keys/values of earlier positions (and is
    /// extended with this call's, in 8 bits if `quantize_self_kv`), `cross_kv` the
    /// encoder's projected keys/values.
    fn forward(
        &self,
        x: &Tensor,
        self_kv: &mut Option<SelfCache>,
        quantize_self_kv: bool,
        self_mask: Option<&Tensor>,
        cross_kv: &CrossKv,
        cross_mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (q, new_kv) = self.self_attn.project_self(x)?;
        let h = match self_kv {
            // A decoding step over an 8-bit cache: appended and attended in one pass.
            Some(SelfCache::Quantized { k, v })
                if self_mask.is_none() && q.dim(2)? == 1 && attention::applies(&q) =>
            {
                let out =
                    attention::append_and_attend_one_position(&q, &new_kv.k, &new_kv.v, k, v)?;
                self.self_attn.out_proj.forward(&out)?
            }
            _ => match SelfCache::append(self_kv, new_kv, quantize_self_kv)? {
                CacheView::Dense(kv) => self.self_attn.attend(&q, &kv, self_mask)?,
                CacheView::Quantized(k, v) => {
                    self.self_attn.attend_quantized(&q, k, v, self_mask)?
                }
            },
        };
        let x = self
            .self_attn_layer_norm
            .forward_residual(x, &dropout(&h, self.dropout, self.mode)?)?;
        let q = self.encoder_attn.project_q(&x)?;
        let h = self.encoder_attn.attend_cross(&q, cross_kv, cross_mask)?;
        let x = self
            .encoder_attn_layer_norm
            .forward_residual(&x, &dropout(&h, self.dropout, self.mode)?)?;
        self.ffn.forward(&x)
    }
}

/// Per-reply decoding state: the encoder's cross-attention keys/values, the padding
/// mask, and each decoder layer's self-attention cache.
///
/// Not `Clone`: the self-attention caches are written in place, so two copies would
/// write into the same memory.
#[derive(Debug)]
pub struct DecoderState {
    cross_kv: Vec<CrossKv>,
    cross_mask: Option<Tensor>,
    self_kv: Vec<Option<SelfCache>>,
    /// Whether the self-attention caches are kept in 8 bits (quantised models).
    quantized_self_kv: bool,
    /// Number of decoder positions already processed.
    pub position: usize,
}

impl DecoderState {
    /// Keeps only the batch rows in `rows` (used when finished sequences leave a batch).
    pub fn select_rows(&mut self, rows: &Tensor) -> candle_core::Result<()> {
        let picked: Vec<usize> = rows
            .to_dtype(DType::U32)?
            .to_vec1::<u32>()?
            .into_iter()
            .map(|r| r as usize)
            .collect();
        for cross in self.cross_kv.iter_mut() {
            match cross {
                CrossKv::Dense(kv) => {
                    kv.k = kv.k.index_select(rows, 0)?;
                    kv.v = kv.v.index_select(rows, 0)?;
                }
                CrossKv::Quantized { k, v } => {
                    *k = k.select(&picked);
                    *v = v.select(&picked);
                }
            }
        }
        if let Some(m) = self.cross_mask.as_mut() {
            *m = m.index_select(rows, 0)?;
        }
        for cache in self.self_kv.iter_mut().flatten() {
            cache.select_rows(rows, &picked)?;
        }
        Ok(())
    }
}

/// `BlenderbotSmallForConditionalGeneration`.
#[derive(Debug, Clone)]
pub struct BlenderbotSmall {
    shared: Embedding,
    encoder_positions: Embedding,
    encoder_layernorm_embedding: LayerNorm,
    encoder_layers: Vec<EncoderLayer>,
    decoder_positions: Embedding,
    decoder_layernorm_embedding: LayerNorm,
    decoder_layers: Vec<DecoderLayer>,
    lm_head: Proj,
    /// Whether decoding keeps the cross-attention keys and values and the self-attention
    /// caches in 8 bits (set with the q8_0 projections).
    quantized_kv: bool,
    embed_scale: f64,
    dropout: f64,
    mode: Mode,
    cfg: Config,
    device: Device,
    dtype: DType,
}

/// The names under which transformers may have stored the tied token embedding.
pub const SHARED_EMBEDDING_NAMES: [&str; 4] = [
    "model.shared.weight",
    "model.encoder.embed_tokens.weight",
    "model.decoder.embed_tokens.weight",
    "lm_head.weight",
];

impl BlenderbotSmall {
    /// Builds the model from `vb` (weights laid out as transformers names them).
    pub fn load(vb: VarBuilder, cfg: &Config, mode: Mode) -> candle_core::Result<Self> {
        let d = cfg.d_model;
        let std = cfg.init_std;
        let randn = Init::Randn {
            mean: 0.0,
            stdev: std,
        };
        // The embedding is tied: transformers keeps one copy under whichever name
        // survived de-duplication when it saved, so look for each of them.
        let shared_name = SHARED_EMBEDDING_NAMES
            .iter()
            .find(|n| vb.contains_tensor(n))
            .copied()
            .unwrap_or(SHARED_EMBEDDING_NAMES[0]);
        let shared_w = vb.get_with_hints((cfg.vocab_size, d), shared_name, randn)?;
        let shared = Embedding::new(shared_w.clone(), d);
        let enc = vb.pp("model.encoder");
        let dec = vb.pp("model.decoder");
        let encoder_positions = Embedding::new(
            enc.get_with_hints(
                (cfg.max_position_embeddings, d),
                "embed_positions.weight",
                randn,
            )?,
            d,
        );
        let decoder_positions = Embedding::new(
            dec.get_with_hints(
                (cfg.max_position_embeddings, d),
                "embed_positions.weight",
                randn,
            )?,
            d,
        );
        let encoder_layers = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(cfg, enc.pp(format!("layers.{i}")), mode))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let decoder_layers = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(cfg, dec.pp(format!("layers.{i}")), mode))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let bias = vb
            .get_with_hints((1, cfg.vocab_size), "final_logits_bias", Init::Const(0.0))?
            .reshape(cfg.vocab_size)?;
        let lm_weight = if !cfg.tie_word_embeddings && vb.contains_tensor("lm_head.weight") {
            vb.get((cfg.vocab_size, d), "lm_head.weight")?
        } else {
            shared_w
        };
        Ok(Self {
            shared,
            encoder_positions,
            encoder_layernorm_embedding: LayerNorm::load(d, enc.pp("layernorm_embedding"), mode)?,
            encoder_layers,
            decoder_positions,
            decoder_layernorm_embedding: LayerNorm::load(d, dec.pp("layernorm_embedding"), mode)?,
            decoder_layers,
            lm_head: Proj::Dense(Linear::new(lm_weight, Some(bias))),
            quantized_kv: false,
            embed_scale: if cfg.scale_embedding {
                (d as f64).sqrt()
            } else {
                1.0
            },
            dropout: cfg.dropout,
            mode,
            cfg: cfg.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Stacks each attention layer's projections of the same input into one matrix, for
    /// inference: fewer, larger products per layer (see [`InputProjections`]). The
    /// stacked weights are copies, so a model whose variables are still being trained
    /// must not be fused.
    pub fn fuse_projections(&mut self) -> candle_core::Result<()> {
        for l in self.encoder_layers.iter_mut() {
            l.self_attn.fuse(AttentionKind::SelfAttention)?;
        }
        for l in self.decoder_layers.iter_mut() {
            l.self_attn.fuse(AttentionKind::SelfAttention)?;
            l.encoder_attn.fuse(AttentionKind::Cross)?;
        }
        Ok(())
    }

    /// Quantises every projection (and the output layer) to q8_0 for inference, and has
    /// decoding keep the cross-attention keys and values and the self-attention caches in 8
    /// bits. The token embedding itself stays in full precision.
    pub fn quantize_q8(&mut self) -> candle_core::Result<()> {
        self.quantized_kv = self.dtype == DType::F32 && matches!(self.device, Device::Cpu);
        for l in self.encoder_layers.iter_mut() {
            l.self_attn.quantize()?;
            l.ffn.quantize()?;
        }
        for l in self.decoder_layers.iter_mut() {
            l.self_attn.quantize()?;
            l.encoder_attn.quantize()?;
            l.ffn.quantize()?;
        }
        self.lm_head.quantize()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The token embedding matrix `(vocab, d_model)`.
    pub fn embedding_weight(&self) -> &Tensor {
        self.shared.embeddings()
    }

    /// An additive attention mask `(b, 1, 1, t)` from a `(b, t)` mask of 1 (keep) / 0 (pad).
    pub fn padding_mask(&self, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = attention_mask.dims2()?;
        let keep = attention_mask.to_dtype(DType::F32)?;
        // 0 where kept, a large negative number where padded.
        let additive = ((keep - 1.0)? * 1e9)?;
        additive.reshape((b, 1, 1, t))?.to_dtype(self.dtype)
    }

    fn positions(
        &self,
        table: &Embedding,
        start: usize,
        len: usize,
    ) -> candle_core::Result<Tensor> {
        let max = self.cfg.max_position_embeddings;
        if start + len > max {
            candle_core::bail!(
                "sequence of {} positions exceeds max_position_embeddings {max}",
                start + len
            );
        }
        let ids = Tensor::arange(start as u32, (start + len) as u32, &self.device)?;
        table.forward(&ids)?.unsqueeze(0)
    }

    /// Runs the encoder over `input_ids` `(b, s)`; `attention_mask` `(b, s)` marks real tokens.
    pub fn encode(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (_, s) = input_ids.dims2()?;
        let embeds = (self.shared.forward(input_ids)? * self.embed_scale)?;
        let pos = self.positions(&self.encoder_positions, 0, s)?;
        // Encoder: positions are added first, then layernorm_embedding.
        let mut h = self
            .encoder_layernorm_embedding
            .forward(&embeds.broadcast_add(&pos)?)?;
        h = dropout(&h, self.dropout, self.mode)?;
        let mask = attention_mask.map(|m| self.padding_mask(m)).transpose()?;
        for layer in &self.encoder_layers {
            h = layer.forward(&h, mask.as_ref())?;
        }
        Ok(h)
    }

    /// Prepares decoding against `encoder_out`: projects every layer's cross-attention
    /// keys/values once, so each generated token costs only the new position's work.
    pub fn start_decoding(
        &self,
        encoder_out: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> candle_core::Result<DecoderState> {
        let cross_kv = self
            .decoder_layers
            .iter()
            .map(|l| {
                let kv = l.encoder_attn.project_kv(encoder_out)?;
                Ok(if self.quantized_kv {
                    CrossKv::Quantized {
                        k: attention::QuantizedHeads::new(&kv.k, true)?,
                        v: attention::QuantizedHeads::new(&kv.v, false)?,
                    }
                } else {
                    // Contiguous: finished replies' rows are selected out of them.
                    CrossKv::Dense(KeyValue {
                        k: kv.k.contiguous()?,
                        v: kv.v.contiguous()?,
                    })
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(DecoderState {
            cross_kv,
            cross_mask: attention_mask.map(|m| self.padding_mask(m)).transpose()?,
            self_kv: (0..self.decoder_layers.len()).map(|_| None).collect(),
            quantized_self_kv: self.quantized_kv,
            position: 0,
        })
    }

    fn causal_mask(&self, t: usize, past: usize) -> candle_core::Result<Tensor> {
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..past + t).map(move |j| if j > past + i { -1e9 } else { 0.0 }))
            .collect();
        Tensor::from_vec(mask, (1, 1, t, past + t), &self.device)?.to_dtype(self.dtype)
    }

    /// Decodes `decoder_ids` `(b, t)` following the tokens already in `state`;
    /// returns the logits `(b, t, vocab)`.
    pub fn decode(
        &self,
        decoder_ids: &Tensor,
        state: &mut DecoderState,
    ) -> candle_core::Result<Tensor> {
        let (_, t) = decoder_ids.dims2()?;
        let past = state.position;
        // Decoder: layernorm_embedding on the token embeddings, positions added after.
        let embeds = (self.shared.forward(decoder_ids)? * self.embed_scale)?;
        let embeds = self.decoder_layernorm_embedding.forward(&embeds)?;
        let pos = self.positions(&self.decoder_positions, past, t)?;
        let mut h = embeds.broadcast_add(&pos)?;
        h = dropout(&h, self.dropout, self.mode)?;
        let self_mask = if t > 1 {
            Some(self.causal_mask(t, past)?)
        } else {
            None
        };
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            h = layer.forward(
                &h,
                &mut state.self_kv[i],
                state.quantized_self_kv,
                self_mask.as_ref(),
                &state.cross_kv[i],
                state.cross_mask.as_ref(),
            )?;
        }
        state.position += t;
        self.lm_head.forward(&h)
    }

    /// One generation step: `last_ids` `(b,)` → next-token logits `(b, vocab)` in f32.
    pub fn decode_step(
        &self,
        last_ids: &Tensor,
        state: &mut DecoderState,
    ) -> candle_core::Result<Tensor> {
        let ids = last_ids.unsqueeze(1)?;
        self.decode(&ids, state)?.squeeze(1)?.to_dtype(DType::F32)
    }

    /// Teacher-forced logits `(b, t, vocab)` for a whole decoder input.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        decoder_input_ids: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let enc = self.encode(input_ids, attention_mask)?;
        let mut state = self.start_decoding(&enc, attention_mask)?;
        self.decode(decoder_input_ids, &mut state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_abs, max_diff};

    fn tiny(max_positions: usize) -> (Config, candle_nn::VarMap) {
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "model_type": "blenderbot-small", "vocab_size": 60, "d_model": 32, "encoder_layers": 2,
            "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
            "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": max_positions,
            "scale_embedding": true, "init_std": 0.2
        }))
        .unwrap();
        (cfg, candle_nn::VarMap::new())
    }

    /// A projection whose output size is not a multiple of 16 (an output layer) and
    /// larger than one quantisation part (4096 rows) gives the dense result within
    /// q8_0's error, in both quantised forms: padded for candle's tiles and narrowed
    /// back, and packed into [`Q8Matrix`]'s tiles (run where the CPU has AVX-512 VNNI).
    #[test]
    fn a_q8_projection_gives_the_dense_result() {
        let dev = Device::Cpu;
        let (n, k, m) = (4096 + 50, 256, 3);
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
        let dense = Proj::Dense(Linear::new(w, Some(b)));
        let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).unwrap();
        let want = dense.forward(&x).unwrap();
        let scale = max_abs(&want);
        let mut forms = vec![false];
        if Q8Matrix::available() {
            forms.push(true);
        } else {
            eprintln!("this CPU has no AVX-512 VNNI: only candle's q8_0 form is checked");
        }
        for own in forms {
            let mut q8 = dense.clone();
            q8.quantize_with(own).unwrap();
            match (&q8, own) {
                (Proj::Q8(_), true) | (Proj::Q8Candle { .. }, false) => {}
                _ => panic!("unexpected form {q8:?}"),
            }
            let got = q8.forward(&x).unwrap();
            assert_eq!(got.dims(), &[1, m, n]);
            let err = max_diff(&want, &got);
            assert!(
                err > 0.0 && err < 0.02 * scale,
                "own kernel {own}: error {err} at scale {scale}"
            );
        }
    }

    /// Decoding one token at a time — through the in-place cache, its regrowth past
    /// [`CACHE_HEADROOM`], and a row leaving the batch — gives the logits of scoring the
    /// whole sequence at once, with fused and with separate projections, and quantised.
    #[test]
    #[allow(clippy::needless_range_loop)] // `i` is a position in several sequences at once
    fn step_by_step_decoding_matches_teacher_forcing() {
        let steps = 2 * CACHE_HEADROOM + 10;
        let (cfg, varmap) = tiny(steps + 8);
        let dev = Device::Cpu;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let separate = BlenderbotSmall::load(vb, &cfg, Mode::Inference).unwrap();
        let mut fused = separate.clone();
        fused.fuse_projections().unwrap();
        let enc = Tensor::new(&[[5u32, 17, 42, 9, 2, 0], [7, 8, 3, 11, 30, 2]], &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], &dev).unwrap();
        let dec: Vec<Vec<u32>> = (0..2u32)
            .map(|r| {
                (0..steps as u32)
                    .map(|i| (i * 7 + r * 13 + 1) % 60)
                    .collect()
            })
            .collect();
        let dec_t = Tensor::new(dec.clone(), &dev).unwrap();
        let whole = separate.forward(&enc, Some(&mask), &dec_t).unwrap();
        assert!(
            max_diff(&whole, &fused.forward(&enc, Some(&mask), &dec_t).unwrap()) < 1e-4,
            "fused projections change the teacher-forced logits"
        );
        // Quantised: q8_0 projections (VNNI for one row, AMX for many where the CPU has
        // it), 8-bit cross-attention keys and values and an 8-bit self-attention cache
        // (grown past its capacity twice here), which teacher forcing reads
        // dequantised: the same numbers, summed in another order. Usually the logits are
        // then equal to the bit; but where an activation lies on a rounding boundary of
        // the next product's 8-bit quantisation, that order can flip one rounding step,
        // and the positions after it differ by up to a few hundredths (40 random models:
        // 34 equal throughout, the worst 0.054 at logits of ±2). A wrong cache row or
        // key would be off by the logits' own size.
        let mut quantized = fused.clone();
        quantized.quantize_q8().unwrap();
        let whole_q8 = quantized.forward(&enc, Some(&mask), &dec_t).unwrap();
        assert!(
            max_diff(&whole, &whole_q8) > 0.0,
            "quantisation changed nothing"
        );
        let leave_at = CACHE_HEADROOM + 3;
        for (model, whole, exact) in [
            (&separate, &whole, true),
            (&fused, &whole, true),
            (&quantized, &whole_q8, false),
        ] {
            let enc_out = model.encode(&enc, Some(&mask)).unwrap();
            let mut state = model.start_decoding(&enc_out, Some(&mask)).unwrap();
            let mut rows = vec![0usize, 1];
            for i in 0..steps {
                if i == leave_at {
                    // Row 0 finishes; only row 1 goes on.
                    state
                        .select_rows(&Tensor::new(&[1u32], &dev).unwrap())
                        .unwrap();
                    rows = vec![1];
                }
                let last: Vec<u32> = rows.iter().map(|r| dec[*r][i]).collect();
                let step = model
                    .decode_step(&Tensor::new(last, &dev).unwrap(), &mut state)
                    .unwrap();
                for (pos, r) in rows.iter().enumerate() {
                    let want = whole.get(*r).unwrap().get(i).unwrap();
                    let got = step.get(pos).unwrap();
                    let d = max_diff(&want, &got);
                    let tolerance = if exact {
                        1e-4
                    } else {
                        0.1 * (1.0 + max_abs(&want))
                    };
                    assert!(
                        d < tolerance,
                        "step {i}, row {r}: logits differ by {d} (exact: {exact})"
                    );
                }
            }
        }
    }
}
