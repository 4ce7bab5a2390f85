//! Attention keys and values kept between decoding steps: the encoder's for
//! cross-attention, and each decoder layer's own, grown one position per step.

use super::*;

/// Keys and values of one attention layer, shaped `(batch, heads, time, head_dim)`.
#[derive(Debug, Clone)]
pub struct KeyValue {
    pub k: Tensor,
    pub v: Tensor,
}

/// A decoder layer's cross-attention keys and values: as tensors, or in 8 bits for
/// quantised models (see [`attention::QuantizedHeads`]).
#[derive(Debug)]
pub(super) enum CrossKv {
    Dense(KeyValue),
    Quantized {
        k: attention::QuantizedHeads,
        v: attention::QuantizedHeads,
    },
}

/// A decoder layer's self-attention keys and values, grown one position per step.
///
/// Appending with `Tensor::cat` would copy the whole history at every step (for eight
/// conversations, megabytes per token); instead the keys and values are allocated with
/// room to spare and each step's are written in place after those already there.
///
/// Quantised models keep them in 8 bits, as they keep the cross-attention keys and
/// values ([`attention::QuantizedHeads`]): a decoding step reads every conversation's
/// cache in every layer, from memory (the step's weights have pushed it out of the
/// caches), and in f32 the self-attention kernel took 0.8 ms of an 8-person step
/// (against 0.1 for one person) waiting for it. Teacher forcing attends to the same
/// 8-bit values, dequantised, so scoring measures what decoding does.
#[derive(Debug)]
pub(super) enum SelfCache {
    Dense(DenseCache),
    Quantized {
        k: attention::QuantizedHeads,
        v: attention::QuantizedHeads,
    },
}

/// Self-attention keys and values as tensors with room to spare: only the first `len`
/// positions are ever read.
#[derive(Debug)]
pub(super) struct DenseCache {
    /// `(batch, heads, capacity, head_dim)`.
    k: Tensor,
    v: Tensor,
    len: usize,
}

/// The self-attention keys and values of every position so far, as attention reads them.
pub(super) enum CacheView<'a> {
    Dense(KeyValue),
    Quantized(&'a attention::QuantizedHeads, &'a attention::QuantizedHeads),
}

impl SelfCache {
    /// The cache's keys and values after appending `new` (`(b, heads, t, head_dim)`),
    /// in 8 bits if `quantize`.
    pub(super) fn append(
        cache: &mut Option<Self>,
        new: KeyValue,
        quantize: bool,
    ) -> candle_core::Result<CacheView<'_>> {
        if !quantize {
            return Ok(CacheView::Dense(DenseCache::append(cache, new)?));
        }
        if let Some(SelfCache::Quantized { k, v }) = cache {
            k.append(&new.k)?;
            v.append(&new.v)?;
        } else {
            *cache = Some(SelfCache::Quantized {
                k: attention::QuantizedHeads::new(&new.k, true)?,
                v: attention::QuantizedHeads::new(&new.v, false)?,
            });
        }
        match cache {
            Some(SelfCache::Quantized { k, v }) => Ok(CacheView::Quantized(k, v)),
            _ => unreachable!("an 8-bit cache was stored above"),
        }
    }

    /// Keeps only the conversations `rows` (`picked`, as indices).
    pub(super) fn select_rows(
        &mut self,
        rows: &Tensor,
        picked: &[usize],
    ) -> candle_core::Result<()> {
        match self {
            SelfCache::Dense(c) => {
                c.k = c.k.index_select(rows, 0)?;
                c.v = c.v.index_select(rows, 0)?;
            }
            SelfCache::Quantized { k, v } => {
                *k = k.select(picked);
                *v = v.select(picked);
            }
        }
        Ok(())
    }
}

impl DenseCache {
    /// The keys and values of `cache` (made dense if it was not) after appending `new`.
    pub(super) fn append(
        cache: &mut Option<SelfCache>,
        new: KeyValue,
    ) -> candle_core::Result<KeyValue> {
        let t = new.k.dim(2)?;
        let Some(SelfCache::Dense(c)) = cache.as_mut() else {
            // The first call (and teacher-forced scoring and training, which make only
            // one): the new keys and values become the cache. At inference they are
            // views of the projection's output; made contiguous, since finished
            // replies' rows are selected out of the cache.
            let kv = KeyValue {
                k: new.k.contiguous()?,
                v: new.v.contiguous()?,
            };
            *cache = Some(SelfCache::Dense(Self {
                k: kv.k.clone(),
                v: kv.v.clone(),
                len: t,
            }));
            return Ok(kv);
        };
        if c.len + t > c.k.dim(2)? {
            let (b, h, _, hd) = c.k.dims4()?;
            let capacity = c.len + t + CACHE_HEADROOM;
            let grow = |old: &Tensor| -> candle_core::Result<Tensor> {
                let fresh = Tensor::zeros((b, h, capacity, hd), old.dtype(), old.device())?;
                fresh.slice_set(&old.narrow(2, 0, c.len)?.contiguous()?, 2, 0)?;
                Ok(fresh)
            };
            c.k = grow(&c.k)?;
            c.v = grow(&c.v)?;
        }
        c.k.slice_set(&new.k.contiguous()?, 2, c.len)?;
        c.v.slice_set(&new.v.contiguous()?, 2, c.len)?;
        c.len += t;
        Ok(KeyValue {
            k: c.k.narrow(2, 0, c.len)?,
            v: c.v.narrow(2, 0, c.len)?,
        })
    }
}
