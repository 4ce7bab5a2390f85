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

use super::attention::CACHE_HEADROOM;
use super::q8::{self, Q8Matrix};
use super::{activation, attention, norm};

mod attention_layer;
mod cache;
mod config;
mod proj;

use attention_layer::*;
use cache::*;
pub use config::Config;
use proj::*;

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
mod tests;
