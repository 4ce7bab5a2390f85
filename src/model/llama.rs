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

/// Which pairs of a head's dimensions the rotary embedding rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rope {
    /// `(i, i + d/2)`: the HF layout.
    Halves,
    /// `(2i, 2i + 1)`: llama.cpp's, for GGUF's permuted query and key weights.
    Interleaved,
}

struct Layer {
    attn_norm: Tensor,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    mlp_norm: Tensor,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
}

/// A Llama model's weights.
pub struct Llama {
    cfg: Config,
    embed: Tensor,
    layers: Vec<Layer>,
    norm: Tensor,
    lm_head: QMatMul,
    rope: Rope,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

/// The attention keys and values of a batch being decoded, and what each row may see.
pub struct Cache {
    /// Per layer: keys and values, `(batch, kv_heads, seen, head_dim)`.
    kv: Vec<Option<(Tensor, Tensor)>>,
    /// `(batch, seen)`: 0 where a row may attend, -inf at its padding.
    key_bias: Option<Tensor>,
    /// The next position of each row (its number of real tokens so far).
    positions: Vec<u32>,
}

impl Cache {
    pub fn new(layers: usize) -> Self {
        Self {
            kv: vec![None; layers],
            key_bias: None,
            positions: Vec::new(),
        }
    }

    /// Keeps only these rows (in this order): finished replies leave the batch.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        let keep: Vec<u32> = rows.to_vec1()?;
        for (k, v) in self.kv.iter_mut().flatten() {
            *k = k.index_select(rows, 0)?;
            *v = v.index_select(rows, 0)?;
        }
        if let Some(b) = &mut self.key_bias {
            *b = b.index_select(rows, 0)?;
        }
        self.positions = keep.iter().map(|r| self.positions[*r as usize]).collect();
        Ok(())
    }

    /// How many positions each row has been fed (padding included).
    pub fn seen(&self) -> usize {
        self.key_bias.as_ref().map(|b| b.dims()[1]).unwrap_or(0)
    }
}

fn matmul_of(w: Tensor) -> QMatMul {
    QMatMul::Tensor(w)
}

fn quantized(m: &QMatMul, dtype: GgmlDType) -> Result<QMatMul> {
    Ok(match m {
        QMatMul::Tensor(w) if w.dim(1)? % dtype.block_size() == 0 => {
            QMatMul::from_qtensor(QTensor::quantize(w, dtype)?)?
        }
        other => other.clone(),
    })
}

impl Llama {
    /// From HF weights (`model.layers.N.self_attn.q_proj.weight`, …) in `vb`.
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        let (q_out, kv_out) = (cfg.num_attention_heads * hd, cfg.kv_heads() * hd);
        let m = vb.pp("model");
        let embed = m.get((cfg.vocab_size, h), "embed_tokens.weight")?;
        let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let f = l.pp("mlp");
            layers.push(Layer {
                attn_norm: l.get(h, "input_layernorm.weight")?,
                q: matmul_of(a.get((q_out, h), "q_proj.weight")?),
                k: matmul_of(a.get((kv_out, h), "k_proj.weight")?),
                v: matmul_of(a.get((kv_out, h), "v_proj.weight")?),
                o: matmul_of(a.get((h, q_out), "o_proj.weight")?),
                mlp_norm: l.get(h, "post_attention_layernorm.weight")?,
                gate: matmul_of(f.get((cfg.intermediate_size, h), "gate_proj.weight")?),
                up: matmul_of(f.get((cfg.intermediate_size, h), "up_proj.weight")?),
                down: matmul_of(f.get((h, cfg.intermediate_size), "down_proj.weight")?),
            });
        }
        let norm = m.get(h, "norm.weight")?;
        let lm_head = if cfg.tie_word_embeddings && !vb.contains_tensor("lm_head.weight") {
            matmul_of(embed.clone())
        } else {
            matmul_of(vb.get((cfg.vocab_size, h), "lm_head.weight")?)
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
            let mut mm = |n: &str| -> Result<QMatMul> {
                Ok(QMatMul::from_qtensor(get(&format!("{p}.{n}.weight"))?)?)
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
                q,
                k,
                v,
                o,
                mlp_norm: get(&format!("{p}.ffn_norm.weight"))?.dequantize(device)?,
                gate,
                up,
                down,
            });
        }
        let norm = get("output_norm.weight")?.dequantize(device)?;
        let lm_head = if cfg.tie_word_embeddings {
            QMatMul::from_qtensor(embed_q)?
        } else {
            QMatMul::from_qtensor(get("output.weight")?)?
        };
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
        lm_head: QMatMul,
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

    /// Quantises the dense projections and the output layer to q8_0 (inference only).
    pub fn quantize_q8(&mut self) -> Result<()> {
        for l in &mut self.layers {
            for m in [
                &mut l.q,
                &mut l.k,
                &mut l.v,
                &mut l.o,
                &mut l.gate,
                &mut l.up,
                &mut l.down,
            ] {
                *m = quantized(m, GgmlDType::Q8_0)?;
            }
        }
        self.lm_head = quantized(&self.lm_head, GgmlDType::Q8_0)?;
        Ok(())
    }

    /// Replaces quantised weights by their f32 values (what transformers computes with
    /// when it opens a GGUF file): for exact comparisons.
    pub fn dequantize(&mut self) -> Result<()> {
        let dense = |m: &QMatMul| -> Result<QMatMul> {
            Ok(match m {
                QMatMul::QTensor(q) => QMatMul::Tensor(q.dequantize(&q.device())?),
                other => other.clone(),
            })
        };
        for l in &mut self.layers {
            for m in [
                &mut l.q,
                &mut l.k,
                &mut l.v,
                &mut l.o,
                &mut l.gate,
                &mut l.up,
                &mut l.down,
            ] {
                *m = dense(m)?;
            }
        }
        self.lm_head = dense(&self.lm_head)?;
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
            let q = layer
                .q
                .forward(&h)?
                .reshape((b, t, heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let k = layer
                .k
                .forward(&h)?
                .reshape((b, t, kv_heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let v = layer
                .v
                .forward(&h)?
                .reshape((b, t, kv_heads, hd))?
                .transpose(1, 2)?
                .contiguous()?;
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
            let (k, v) = match &cache.kv[i] {
                Some((pk, pv)) => (Tensor::cat(&[pk, &k], 2)?, Tensor::cat(&[pv, &v], 2)?),
                None => (k, v),
            };
            cache.kv[i] = Some((k.clone(), v.clone()));
            let k = candle_transformers::utils::repeat_kv(k, heads / kv_heads)?;
            let v = candle_transformers::utils::repeat_kv(v, heads / kv_heads)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&mask)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let attn =
                probs
                    .matmul(&v.contiguous()?)?
                    .transpose(1, 2)?
                    .reshape((b, t, heads * hd))?;
            x = (x + layer.o.forward(&attn)?)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.mlp_norm, eps)?;
            let gated =
                (candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?;
            x = (x + layer.down.forward(&gated)?)?;
        }
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
