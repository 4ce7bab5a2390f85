//! Llama-family decoder-only models (SmolLM2 and kin) in candle.
//!
//! The second architecture of Kindred's Joint model: a pretrained backbone that already
//! knows language, fine-tuned to write `[Strategy] reply` after a ChatML conversation.
//!
//! Built from candle's parts rather than on `candle_transformers::models::quantized_llama`
//! as a whole: that model keeps one KV cache at one shared position and masks nothing
//! but the future, so it cannot decode several people's conversations of different lengths
//! in one batch. Here every row of a batch has its own positions and a mask of the keys it
//! may see (the left padding that lines the prompts up is never seen), and the cache can
//! drop rows whose reply is finished. The layers are candle's: `QMatMul` (f32, q8_0 and
//! the GGUF quantisations with candle's CPU kernels), `rms_norm`, the rotary embedding
//! kernels, and `candle_transformers::utils::repeat_kv` for grouped-query attention.
//!
//! Two weight layouts load: an HF directory (`config.json`, safetensors, possibly
//! sharded) and a GGUF file (llama.cpp's names; its query and key projections are stored
//! permuted for interleaved rotary embeddings, which [`Rope::Interleaved`] undoes in
//! effect by rotating the same pairs llama.cpp rotates).

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::q8::{Q8Linear, Q8Matrix};

mod cache;
mod config;

pub use cache::Cache;
pub use config::{Config, TokenIds};

/// Which pairs of a head's dimensions the rotary embedding rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rope {
    /// `(i, i + d/2)`: the HF layout.
    Halves,
    /// `(2i, 2i + 1)`: llama.cpp's, for GGUF's permuted query and key weights.
    Interleaved,
}

/// A projection: candle's product (dense, or a GGUF quantisation with candle's
/// kernels), or Kindred's q8_0 ([`Q8Linear`]) where the CPU has AVX-512 VNNI.
#[derive(Debug, Clone)]
enum Projection {
    Candle(QMatMul),
    Q8(Q8Linear),
}

impl Projection {
    fn dense(w: Tensor) -> Self {
        Projection::Candle(QMatMul::Tensor(w))
    }

    /// q8_0 with the fastest kernel this CPU has; a dense weight whose input size is not
    /// a multiple of 32 stays dense.
    fn q8(w: &Tensor) -> Result<Self> {
        if !w.dim(1)?.is_multiple_of(GgmlDType::Q8_0.block_size()) {
            return Ok(Self::dense(w.clone()));
        }
        Ok(if Q8Matrix::available() {
            Projection::Q8(Q8Linear::quantize(w, None)?)
        } else {
            Projection::Candle(QMatMul::from_qtensor(QTensor::quantize(
                &w.to_dtype(DType::F32)?,
                GgmlDType::Q8_0,
            )?)?)
        })
    }

    /// This projection as q8_0 (a GGUF quantisation is dequantised first).
    fn to_q8(&self) -> Result<Self> {
        match self {
            Projection::Candle(QMatMul::Tensor(w)) => Self::q8(w),
            Projection::Candle(QMatMul::QTensor(q)) => Self::q8(&q.dequantize(&q.device())?),
            other => Ok(other.clone()),
        }
    }

    /// Dense f32 weights again (what transformers computes with for a GGUF file).
    fn to_dense(&self) -> Result<Self> {
        Ok(match self {
            Projection::Candle(QMatMul::QTensor(q)) => Self::dense(q.dequantize(&q.device())?),
            Projection::Q8(q) => Self::dense(q.dequantize()?),
            other => other.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Projection::Candle(m) => m.forward(x),
            Projection::Q8(m) => m.forward(x),
        }
    }
}

/// Projections of the same input: one product over their stacked weights where they
/// can be stacked (dense weights, quantised after stacking), else one product each (a
/// GGUF file's quantised tensors). One product reads the input and quantises it once
/// and costs one round of the thread pool instead of three.
#[derive(Debug, Clone)]
enum Stack {
    One(Projection, Vec<usize>),
    Each(Vec<Projection>),
}

impl Stack {
    /// Stacks dense `(n_i, k)` weights, quantised to q8_0 after stacking when `q8`.
    fn dense(weights: &[Tensor], q8: bool) -> Result<Self> {
        let sizes = weights
            .iter()
            .map(|w| w.dim(0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let w = Tensor::cat(weights, 0)?;
        let p = if q8 {
            Projection::q8(&w)?
        } else {
            Projection::dense(w)
        };
        Ok(Stack::One(p, sizes))
    }

    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Stack::One(p, sizes) => {
                let y = p.forward(x)?;
                let mut start = 0;
                let mut out = Vec::with_capacity(sizes.len());
                for n in sizes {
                    out.push(y.narrow(D::Minus1, start, *n)?.contiguous()?);
                    start += n;
                }
                Ok(out)
            }
            Stack::Each(ps) => Ok(ps
                .iter()
                .map(|p| p.forward(x))
                .collect::<candle_core::Result<_>>()?),
        }
    }

    fn projections(&mut self) -> Vec<&mut Projection> {
        match self {
            Stack::One(p, _) => vec![p],
            Stack::Each(ps) => ps.iter_mut().collect(),
        }
    }
}

struct Layer {
    attn_norm: Tensor,
    /// Query, key and value.
    qkv: Stack,
    o: Projection,
    mlp_norm: Tensor,
    /// Gate and up.
    gate_up: Stack,
    down: Projection,
}

impl Layer {
    fn projections(&mut self) -> Vec<&mut Projection> {
        let mut all = self.qkv.projections();
        all.extend(self.gate_up.projections());
        all.push(&mut self.o);
        all.push(&mut self.down);
        all
    }
}

/// A Llama model's weights.
pub struct Llama {
    cfg: Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: Projection,
    rope: Rope,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

impl Llama {
    /// From HF weights (`model.layers.N.self_attn.q_proj.weight`, …) in `vb`.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        Self::load_quantized(vb, cfg, false)
    }

    /// As [`Llama::load`], with every projection quantised to q8_0 as soon as it is read
    /// (`q8`), so that the f32 weights of the whole model are never all in memory.
    pub fn load_quantized(vb: VarBuilder, cfg: &Config, q8: bool) -> Result<Self> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let matmul_of = |w: Tensor| -> Result<Projection> {
            if q8 {
                Projection::q8(&w)
            } else {
                Ok(Projection::dense(w))
            }
        };
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (q_out, kv_out) = (cfg.num_attention_heads * hd, cfg.kv_heads() * hd);
        let m = vb.pp("model");
        let embed = m.get((cfg.vocab_size, h), "embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let f = l.pp("mlp");
            let inter = cfg.intermediate_size;
            layers.push(Layer {
                attn_norm: l.get(h, "input_layernorm.weight")?,
                qkv: Stack::dense(
                    &[
                        a.get((q_out, h), "q_proj.weight")?,
                        a.get((kv_out, h), "k_proj.weight")?,
                        a.get((kv_out, h), "v_proj.weight")?,
                    ],
                    q8,
                )?,
                o: matmul_of(a.get((h, q_out), "o_proj.weight")?)?,
                mlp_norm: l.get(h, "post_attention_layernorm.weight")?,
                gate_up: Stack::dense(
                    &[
                        f.get((inter, h), "gate_proj.weight")?,
                        f.get((inter, h), "up_proj.weight")?,
                    ],
                    q8,
                )?,
                down: matmul_of(f.get((h, inter), "down_proj.weight")?)?,
            });
        }
        let norm = m.get(h, "norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            matmul_of(embed.clone())?
        } else {
            matmul_of(vb.get((cfg.vocab_size, h), "lm_head.weight")?)?
        };
        Self::assemble(
            cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
            Rope::Halves,
            vb.device(),
        )
    }

    /// From a GGUF file (llama.cpp's tensor names), keeping its quantisation.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let cfg = Config::from_gguf(content)?;
        cfg.validate().map_err(anyhow::Error::msg)?;
        let mut get = |name: &str| -> Result<QTensor> {
            content
                .tensor(reader, name, device)
                .with_context(|| format!("cannot read the tensor {name}"))
        };
        let embed_q = get("token_embd.weight")?;
        let embed = embed_q.dequantize(device)?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("blk.{i}");
            let mut mm = |n: &str| -> Result<Projection> {
                Ok(Projection::Candle(QMatMul::from_qtensor(get(&format!(
                    "{p}.{n}.weight"
                ))?)?))
            };
            let (q, k, v, o) = (
                mm("attn_q")?,
                mm("attn_k")?,
                mm("attn_v")?,
                mm("attn_output")?,
            );
            let (gate, up, down) = (mm("ffn_gate")?, mm("ffn_up")?, mm("ffn_down")?);
            layers.push(Layer {
                attn_norm: get(&format!("{p}.attn_norm.weight"))?.dequantize(device)?,
                qkv: Stack::Each(vec![q, k, v]),
                o,
                mlp_norm: get(&format!("{p}.ffn_norm.weight"))?.dequantize(device)?,
                gate_up: Stack::Each(vec![gate, up]),
                down,
            });
        }
        let norm = get("output_norm.weight")?.dequantize(device)?;
        let lm_head = Projection::Candle(if cfg.tie_word_embeddings {
            QMatMul::from_qtensor(embed_q)?
        } else {
            QMatMul::from_qtensor(get("output.weight")?)?
        });
        Self::assemble(cfg, embed, layers, norm, lm_head, Rope::Interleaved, device)
    }

    /// Reads a GGUF file; errors name the file.
    pub fn from_gguf_file(path: &Path, device: &Device) -> Result<(Self, gguf_file::Content)> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|e| anyhow::anyhow!("{} is not a readable GGUF file: {e}", path.display()))?;
        let model = Self::from_gguf(&content, &mut file, device)
            .with_context(|| format!("cannot load the model in {}", path.display()))?;
        Ok((model, content))
    }

    fn assemble(
        cfg: Config,
        embed: Tensor,
        layers: Vec<Layer>,
        norm: Tensor,
        lm_head: Projection,
        rope: Rope,
        device: &Device,
    ) -> Result<Self> {
        let hd = cfg.head_dim();
        let inv: Vec<f32> = (0..hd)
            .step_by(2)
            .map(|i| 1.0 / (cfg.theta() as f32).powf(i as f32 / hd as f32))
            .collect();
        let n = cfg.max_position_embeddings.max(1);
        let inv = Tensor::from_vec(inv, (1, hd / 2), device)?;
        let pos = Tensor::arange(0u32, n as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let angles = pos.broadcast_mul(&inv)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
            embed: embed.to_dtype(DType::F32)?,
            norm: norm.to_dtype(DType::F32)?,
            layers: layers
                .into_iter()
                .map(|l| -> Result<Layer> {
                    Ok(Layer {
                        attn_norm: l.attn_norm.to_dtype(DType::F32)?,
                        mlp_norm: l.mlp_norm.to_dtype(DType::F32)?,
                        ..l
                    })
                })
                .collect::<Result<_>>()?,
            lm_head,
            rope,
            cfg,
            device: device.clone(),
        })
    }

    /// Quantises the projections and the output layer to q8_0 (inference only); a
    /// GGUF file's other quantisations are converted.
    pub fn quantize_q8(&mut self) -> Result<()> {
        for l in &mut self.layers {
            for m in l.projections() {
                *m = m.to_q8()?;
            }
        }
        self.lm_head = self.lm_head.to_q8()?;
        Ok(())
    }

    /// Replaces quantised weights by their f32 values (what transformers computes with
    /// when it opens a GGUF file): for exact comparisons.
    pub fn dequantize(&mut self) -> Result<()> {
        for l in &mut self.layers {
            for m in l.projections() {
                *m = m.to_dense()?;
            }
        }
        self.lm_head = self.lm_head.to_dense()?;
        Ok(())
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn rope(&self) -> Rope {
        self.rope
    }

    pub fn new_cache(&self) -> Cache {
        Cache::new(self.cfg.num_hidden_layers)
    }

    /// Feeds `ids` (`(batch, t)`) after what `cache` holds. `real` (`(batch, t)`, 1/0)
    /// marks which positions are tokens and which padding; padding is never attended to
    /// and takes no position. Returns the final hidden states `(batch, t, hidden)`.
    pub fn forward_hidden(&self, ids: &Tensor, real: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let real: Vec<Vec<u32>> = real.to_dtype(DType::U32)?.to_vec2()?;
        if cache.positions.is_empty() {
            cache.positions = vec![0; b];
        }
        anyhow::ensure!(
            cache.positions.len() == b,
            "the cache holds {} rows, the input {b}",
            cache.positions.len()
        );
        // Each row's positions: real tokens count up from where the row stands; padding
        // repeats the current position (it is masked, so its value does not matter).
        let max_pos = self.cfg.max_position_embeddings as u32;
        let mut pos = Vec::with_capacity(b * t);
        for (row, r) in real.iter().enumerate() {
            for &is_real in r {
                let p = cache.positions[row];
                anyhow::ensure!(
                    p < max_pos,
                    "the conversation is longer than the model's {max_pos} positions"
                );
                pos.push(p);
                if is_real != 0 {
                    cache.positions[row] += 1;
                }
            }
        }
        let pos = Tensor::from_vec(pos, b * t, &self.device)?;
        let cos = self.cos.index_select(&pos, 0)?.reshape((b, t, ()))?;
        let sin = self.sin.index_select(&pos, 0)?.reshape((b, t, ()))?;

        // The attention bias: the keys already seen plus the new ones, and causality
        // within the new ones. A padded query sees every earlier key, so that its row of
        // scores is never all -inf (its output is unused).
        let past = cache.seen();
        let new_bias: Vec<f32> = real
            .iter()
            .flat_map(|r| {
                r.iter()
                    .map(|&x| if x != 0 { 0.0 } else { f32::NEG_INFINITY })
            })
            .collect();
        let new_bias = Tensor::from_vec(new_bias, (b, t), &self.device)?;
        let key_bias = match &cache.key_bias {
            Some(old) => Tensor::cat(&[old, &new_bias], 1)?,
            None => new_bias,
        };
        let kv_len = past + t;
        let mask = if t == 1 {
            key_bias.reshape((b, 1, 1, kv_len))?
        } else {
            let mut m = vec![0f32; b * t * kv_len];
            let kb: Vec<Vec<f32>> = key_bias.to_vec2()?;
            for row in 0..b {
                for q in 0..t {
                    let pad_query = real[row][q] == 0;
                    for k in 0..kv_len {
                        let future = k > past + q;
                        let v = if future {
                            f32::NEG_INFINITY
                        } else if pad_query {
                            0.0
                        } else {
                            kb[row][k]
                        };
                        m[(row * t + q) * kv_len + k] = v;
                    }
                }
            }
            Tensor::from_vec(m, (b, 1, t, kv_len), &self.device)?
        };
        cache.key_bias = Some(key_bias);

        let mut x = self
            .embed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, ()))?;
        let (heads, kv_heads, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.kv_heads(),
            self.cfg.head_dim(),
        );
        let eps = self.cfg.rms_norm_eps as f32;
        let scale = 1.0 / (hd as f64).sqrt();
        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.attn_norm, eps)?;
            let qkv = layer.qkv.forward(&h)?;
            let heads_of = |x: &Tensor, n: usize| -> Result<Tensor> {
                Ok(x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous()?)
            };
            let (q, k, v) = (
                heads_of(&qkv[0], heads)?,
                heads_of(&qkv[1], kv_heads)?,
                heads_of(&qkv[2], kv_heads)?,
            );
            let (q, k) = match self.rope {
                Rope::Halves => (
                    candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
                ),
                Rope::Interleaved => (
                    candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?,
                    candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?,
                ),
            };
            let (k, v) = cache.append(i, &k, &v)?;
            // Grouped-query attention without copying the keys and values for each
            // query head: the query heads that share a key/value head (consecutive, as
            // in transformers' repeat_kv) become more rows of one product.
            let rep = heads / kv_heads;
            let q = q.reshape((b, kv_heads, rep * t, hd))?;
            let scores = (q.matmul(&k.t()?)? * scale)?
                .reshape((b, kv_heads, rep, t, kv_len))?
                .broadcast_add(&mask.unsqueeze(2)?)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?.reshape((
                b,
                kv_heads,
                rep * t,
                kv_len,
            ))?;
            let attn = probs
                .matmul(&v)?
                .reshape((b, heads, t, hd))?
                .transpose(1, 2)?
                .reshape((b, t, heads * hd))?;
            x = (x + layer.o.forward(&attn)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.mlp_norm, eps)?;
            let gate_up = layer.gate_up.forward(&h)?;
            let gated = (candle_nn::ops::silu(&gate_up[0])? * &gate_up[1])?;
            x = (x + layer.down.forward(&gated)?)?;
        }
        cache.len = kv_len;
        Ok(candle_nn::ops::rms_norm(&x, &self.norm, eps)?)
    }

    /// Logits at every new position, `(batch, t, vocab)`.
    pub fn forward(&self, ids: &Tensor, real: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let h = self.forward_hidden(ids, real, cache)?;
        Ok(self.lm_head.forward(&h)?)
    }

    /// Logits at the last new position only, `(batch, vocab)`: what decoding needs, without
    /// the output layer's cost at every prompt position.
    pub fn forward_last(&self, ids: &Tensor, real: &Tensor, cache: &mut Cache) -> Result<Tensor> {
        let h = self.forward_hidden(ids, real, cache)?;
        let t = h.dim(1)?;
        let last = h.narrow(1, t - 1, 1)?.contiguous()?;
        Ok(self.lm_head.forward(&last)?.squeeze(1)?)
    }

    /// Logits `(len, vocab)` at positions `start..start + len` of one unpadded sequence,
    /// with no cache kept: the output layer (a sixth of the model for SmolLM2) is applied
    /// only where the logits are wanted.
    pub fn logits_at(&self, ids: &[u32], start: usize, len: usize) -> Result<Tensor> {
        let x = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let real = Tensor::ones((1, ids.len()), DType::U32, &self.device)?;
        let mut cache = self.new_cache();
        let h = self.forward_hidden(&x, &real, &mut cache)?;
        let wanted = h.squeeze(0)?.narrow(0, start, len)?.contiguous()?;
        Ok(self.lm_head.forward(&wanted)?)
    }

    /// Logits `(vocab,)` after `ids`, with no cache kept: for simple scoring.
    pub fn next_logits(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let x = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let real = Tensor::ones((1, ids.len()), DType::U32, &self.device)?;
        let mut cache = self.new_cache();
        Ok(self
            .forward_last(&x, &real, &mut cache)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .to_vec1()?)
    }

    /// Log-probabilities `(t, vocab)` at each position of one unpadded sequence.
    pub fn log_probs(&self, ids: &[u32]) -> Result<Tensor> {
        let x = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let real = Tensor::ones((1, ids.len()), DType::U32, &self.device)?;
        let mut cache = self.new_cache();
        let logits = self.forward(&x, &real, &mut cache)?.squeeze(0)?;
        Ok(candle_nn::ops::log_softmax(&logits, D::Minus1)?)
    }
}
