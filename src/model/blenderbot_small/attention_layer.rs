//! One attention layer: self-attention (with its KV cache) or cross-attention, with its
//! input projections stacked for inference and its keys and values quantised when the
//! model is.

use super::*;

/// How an attention layer projects its inputs to queries, keys and values.
///
/// For inference the projections that read the same input are stacked into one matrix:
/// one product (and, quantised, one quantisation of the input) instead of two or three,
/// which matters when a decoding step is a long row of small products.
#[derive(Debug, Clone)]
pub(super) enum InputProjections {
    /// As stored in the checkpoint (training, and dense inference).
    Separate { q: Proj, k: Proj, v: Proj },
    /// Self-attention: `[q | k | v]` from one product.
    FusedQkv(Proj),
    /// Cross-attention: `q` from the decoder, `[k | v]` from the encoder in one product.
    FusedKv { q: Proj, kv: Proj },
}

#[derive(Debug, Clone)]
pub(super) struct Attention {
    inputs: InputProjections,
    pub(super) out_proj: Proj,
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
pub(super) enum AttentionKind {
    SelfAttention,
    Cross,
}

impl Attention {
    pub(super) fn load(
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
    pub(super) fn fuse(&mut self, kind: AttentionKind) -> candle_core::Result<()> {
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
    pub(super) fn scaled(&self, q: Tensor) -> candle_core::Result<Tensor> {
        if self.scale_queries {
            q * self.scaling
        } else {
            Ok(q)
        }
    }

    pub(super) fn quantize(&mut self) -> candle_core::Result<()> {
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
    pub(super) fn split_heads(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(self.split_stacked(x, 1)?.pop().expect("one part"))
    }

    /// `(b, t, n·d)` → the `n` slices of width `d`, each split into heads `(b, heads, t,
    /// head_dim)`. At inference these are views of `y` (the attention kernels and the
    /// 8-bit keys and values read through strides): copying them out was an 8-person
    /// encoder's largest single-threaded step. Elsewhere they are contiguous copies.
    pub(super) fn split_stacked(&self, y: &Tensor, n: usize) -> candle_core::Result<Vec<Tensor>> {
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
    pub(super) fn project_q(&self, x: &Tensor) -> candle_core::Result<Tensor> {
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
    pub(super) fn project_kv(&self, source: &Tensor) -> candle_core::Result<KeyValue> {
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
    pub(super) fn project_self(&self, x: &Tensor) -> candle_core::Result<(Tensor, KeyValue)> {
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
    pub(super) fn attend(
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
    pub(super) fn attend_cross(
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
    pub(super) fn attend_quantized(
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
