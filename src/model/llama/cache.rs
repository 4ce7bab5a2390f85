//! The keys and values of a batch being decoded, written in place, with each row's
//! positions and the keys it may see.

use super::*;
// Room a buffer gets beyond what it must hold when it (re)grows: the same reply's worth
// of tokens as BlenderBot-small's quantised cache.
use crate::model::attention::CACHE_HEADROOM;

/// The attention keys and values of a batch being decoded, and what each row may see.
///
/// Keys and values live in buffers with room to grow, written in place
/// (`slice_set`) as tokens come: appending by concatenation would copy every layer's
/// whole cache at every step, which for 8 people was most of a step's time.
pub struct Cache {
    /// Per layer: keys and values, `(batch, kv_heads, capacity, head_dim)`.
    pub(super) kv: Vec<Option<(Tensor, Tensor)>>,
    /// Positions filled in every row's buffers.
    pub(super) len: usize,
    /// `(batch, len)`: 0 where a row may attend, -inf at its padding.
    pub(super) key_bias: Option<Tensor>,
    /// The next position of each row (its number of real tokens so far).
    pub(super) positions: Vec<u32>,
}

impl Cache {
    pub fn new(layers: usize) -> Self {
        Self {
            kv: vec![None; layers],
            len: 0,
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
        self.len
    }

    /// One batch's cache from several, each row's keys and values moved to the right
    /// (left padding, masked): so that each person's prompt can be read on its own —
    /// only its own tokens, no padding to the longest — and the replies still be
    /// decoded together.
    pub fn merge(parts: Vec<Cache>) -> Result<Self> {
        let Some(first) = parts.first() else {
            anyhow::bail!("no caches to merge");
        };
        let layers = first.kv.len();
        let len = parts.iter().map(|c| c.len).max().unwrap_or(0);
        let mut kv = Vec::with_capacity(layers);
        for i in 0..layers {
            let (mut ks, mut vs) = (
                Vec::with_capacity(parts.len()),
                Vec::with_capacity(parts.len()),
            );
            for c in &parts {
                let (k, v) = c.kv[i]
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("a cache to merge is empty"))?;
                for (src, out) in [(k, &mut ks), (v, &mut vs)] {
                    let (rows, heads, _, d) = src.dims4()?;
                    let filled = src.narrow(2, 0, c.len)?;
                    let pad = Tensor::zeros(
                        (rows, heads, len - c.len + CACHE_HEADROOM, d),
                        src.dtype(),
                        src.device(),
                    )?;
                    // Padding on the left, headroom on the right.
                    let (left, right) = (
                        pad.narrow(2, 0, len - c.len)?,
                        pad.narrow(2, 0, CACHE_HEADROOM)?,
                    );
                    out.push(Tensor::cat(&[&left, &filled, &right], 2)?);
                }
            }
            kv.push(Some((Tensor::cat(&ks, 0)?, Tensor::cat(&vs, 0)?)));
        }
        let mut bias = Vec::new();
        let mut positions = Vec::new();
        for c in &parts {
            let b = c
                .key_bias
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("a cache to merge is empty"))?;
            let rows = b.dim(0)?;
            let pad = Tensor::full(f32::NEG_INFINITY, (rows, len - c.len), b.device())?;
            bias.push(Tensor::cat(&[&pad, b], 1)?);
            positions.extend_from_slice(&c.positions);
        }
        Ok(Self {
            kv,
            len,
            key_bias: Some(Tensor::cat(&bias, 0)?),
            positions,
        })
    }

    /// Writes layer `i`'s new keys and values (`(batch, kv_heads, t, head_dim)`) after
    /// the `self.len` already there; returns views of all of them.
    pub(super) fn append(&mut self, i: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, heads, t, d) = k.dims4()?;
        let need = self.len + t;
        let slot = &mut self.kv[i];
        let grow = match slot {
            Some((old, _)) => old.dim(2)? < need,
            None => true,
        };
        if grow {
            let cap = need + CACHE_HEADROOM;
            let fresh = || Tensor::zeros((b, heads, cap, d), k.dtype(), k.device());
            let (nk, nv) = (fresh()?, fresh()?);
            if let Some((ok, ov)) = slot.as_ref() {
                nk.slice_set(&ok.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
                nv.slice_set(&ov.narrow(2, 0, self.len)?.contiguous()?, 2, 0)?;
            }
            *slot = Some((nk, nv));
        }
        let (ck, cv) = slot.as_ref().expect("allocated above");
        ck.slice_set(&k.contiguous()?, 2, self.len)?;
        cv.slice_set(&v.contiguous()?, 2, self.len)?;
        Ok((ck.narrow(2, 0, need)?, cv.narrow(2, 0, need)?))
    }
}
