//! The 8-bit key/value cache ([`QuantizedHeads`]) and attention over it.

use super::*;
use crate::model::kernels::{par_parts, simd, Simd};

/// Cross-attention keys or values `(b, heads, t, head_dim)` in 8 bits, for quantised
/// models: each row of `head_dim` values with one scale (its largest magnitude / 127).
///
/// A decoding step reads every conversation's cross-attention keys and values in every
/// layer: for 8 people with 128-token contexts that is 33 MB of f32 per token, more than
/// the weights, and it comes from L3 each time. In 8 bits it is a quarter of that. Keys
/// are kept transposed per (conversation, head), `[head_dim][t]`, so that one vector of
/// a key dimension holds 16 positions and the scores are computed 16 at a time without
/// horizontal sums; values stay as rows, which the weighted sum reads whole.
#[derive(Debug, Clone)]
pub struct QuantizedHeads {
    /// `(b, heads, t, head_dim)`: `t` positions filled.
    dims: (usize, usize, usize, usize),
    /// Positions each (conversation, head) has room for (at least `t`): a decoder's
    /// self-attention cache grows into it one position per step.
    pub(super) capacity: usize,
    transposed: bool,
    /// Pair `(b, h)`'s block of `capacity · head_dim` values starts at
    /// `(b·heads + h)·capacity·head_dim`: `[head_dim][capacity]` for keys,
    /// `[capacity][head_dim]` for values.
    quants: Vec<i8>,
    /// Row `(b, h, j)` at `(b·heads + h)·capacity + j`.
    scales: Vec<f32>,
}

/// Positions of room added when a decoder's self-attention cache (dense, or a growing
/// [`QuantizedHeads`]) is (re)allocated, beyond what is needed now.
pub const CACHE_HEADROOM: usize = 64;

impl QuantizedHeads {
    /// Quantises `x` `(b, heads, t, head_dim)`; keys `transposed` (see the type).
    pub fn new(x: &Tensor, transposed: bool) -> candle_core::Result<Self> {
        let (b, heads, t, hd) = x.dims4()?;
        let mut heads_q = Self {
            dims: (b, heads, 0, hd),
            capacity: t,
            transposed,
            quants: vec![0i8; b * heads * t * hd],
            scales: vec![0f32; b * heads * t],
        };
        heads_q.append(x)?;
        Ok(heads_q)
    }

    /// Quantises `x` `(b, heads, n, head_dim)` into the positions after the `t` already
    /// here (a self-attention cache's next step), making room first if there is none.
    pub fn append(&mut self, x: &Tensor) -> candle_core::Result<()> {
        let (b, heads, n, hd) = x.dims4()?;
        self.check_takes(x)?;
        self.reserve(n);
        let writer = self.writer();
        // Read through its strides (the projection's output split into heads is a view).
        let x = unit_last(&x.to_dtype(DType::F32)?)?;
        let (storage, layout) = x.storage_and_layout();
        let xv = view(&storage, layout)?;
        let quantize_pair = |pair: usize| {
            let (bi, hi) = (pair / heads, pair % heads);
            let (row0, step) = (xv.at(&[bi, hi, 0, 0]), xv.strides[2]);
            let rows = (0..n).map(|j| &xv.data[row0 + j * step..][..hd]);
            Simd::run(
                #[inline(always)]
                || {
                    // SAFETY: each pair is written by exactly one of these calls, and
                    // `self` is borrowed mutably until they are done.
                    unsafe { writer.write(pair, rows) }
                },
            );
        };
        // One (conversation, head) at a time, on the pool when there is enough work
        // (the encoder's keys and values; a decoding step's one position is not).
        if b * heads * n * hd >= 64 * 1024 {
            candle_core::utils::barrier_pool()
                .execute_chunked(b * heads, |pairs| pairs.for_each(quantize_pair));
        } else {
            (0..b * heads).for_each(quantize_pair);
        }
        drop(storage);
        self.dims.2 += n;
        Ok(())
    }

    /// An error unless `x` `(b, heads, n, head_dim)` has this cache's conversations,
    /// heads and head size.
    fn check_takes(&self, x: &Tensor) -> candle_core::Result<()> {
        let (b, heads, _, hd) = x.dims4()?;
        let (b0, heads0, _, hd0) = self.dims;
        if (b, heads, hd) != (b0, heads0, hd0) {
            candle_core::bail!(
                "8-bit keys or values {:?} cannot take positions of shape {:?}",
                self.dims,
                x.dims()
            );
        }
        Ok(())
    }

    /// Makes room for `n` more positions.
    fn reserve(&mut self, n: usize) {
        if self.dims.2 + n > self.capacity {
            self.grow(self.dims.2 + n + CACHE_HEADROOM);
        }
    }

    /// Writes the positions after those filled, pair by pair (see [`PairWriter`]).
    fn writer(&mut self) -> PairWriter {
        PairWriter {
            quants: self.quants.as_mut_ptr() as usize,
            scales: self.scales.as_mut_ptr() as usize,
            capacity: self.capacity,
            head_dim: self.dims.3,
            transposed: self.transposed,
            filled: self.dims.2,
        }
    }

    /// Moves every pair's positions into blocks of `capacity` positions.
    fn grow(&mut self, capacity: usize) {
        let (b, heads, t, hd) = self.dims;
        let old = self.capacity;
        let mut quants = vec![0i8; b * heads * capacity * hd];
        let mut scales = vec![0f32; b * heads * capacity];
        for pair in 0..b * heads {
            let (src, dst) = (
                &self.quants[pair * old * hd..(pair + 1) * old * hd],
                &mut quants[pair * capacity * hd..(pair + 1) * capacity * hd],
            );
            if self.transposed {
                for (from, to) in src.chunks_exact(old).zip(dst.chunks_exact_mut(capacity)) {
                    to[..t].copy_from_slice(&from[..t]);
                }
            } else {
                dst[..t * hd].copy_from_slice(&src[..t * hd]);
            }
            scales[pair * capacity..pair * capacity + t]
                .copy_from_slice(&self.scales[pair * old..pair * old + t]);
        }
        self.quants = quants;
        self.scales = scales;
        self.capacity = capacity;
    }

    /// `(b, heads, t, head_dim)`.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        self.dims
    }

    /// Only the conversations `rows`, in that order (finished replies leave a batch).
    pub fn select(&self, rows: &[usize]) -> Self {
        let (_, heads, t, hd) = self.dims;
        let (per_q, per_s) = (heads * self.capacity * hd, heads * self.capacity);
        Self {
            dims: (rows.len(), heads, t, hd),
            capacity: self.capacity,
            transposed: self.transposed,
            quants: rows
                .iter()
                .flat_map(|r| &self.quants[r * per_q..(r + 1) * per_q])
                .copied()
                .collect(),
            scales: rows
                .iter()
                .flat_map(|r| &self.scales[r * per_s..(r + 1) * per_s])
                .copied()
                .collect(),
        }
    }

    /// The values as f32 again, `(b, heads, t, head_dim)` (for the rare attention over
    /// many queries, which the tensor kernels compute).
    pub fn dequantize(&self) -> candle_core::Result<Tensor> {
        let (b, heads, t, hd) = self.dims;
        let cap = self.capacity;
        let mut out = vec![0f32; b * heads * t * hd];
        for (row, values) in out.chunks_exact_mut(hd).enumerate() {
            let (pair, j) = (row / t, row % t);
            for (d, v) in values.iter_mut().enumerate() {
                let at = if self.transposed {
                    (pair * hd + d) * cap + j
                } else {
                    (pair * cap + j) * hd + d
                };
                *v = self.quants[at] as f32 * self.scales[pair * cap + j];
            }
        }
        Tensor::from_vec(out, self.dims, &Device::Cpu)
    }
}

/// Where a [`QuantizedHeads`] takes new positions, one (conversation, head) pair at a
/// time: raw pointers into its blocks (as addresses, so that the pool's threads can
/// share it), each pair's block written by one thread only.
#[derive(Clone, Copy)]
struct PairWriter {
    quants: usize,
    scales: usize,
    capacity: usize,
    head_dim: usize,
    transposed: bool,
    /// Positions already filled: new ones go after them.
    filled: usize,
}

impl PairWriter {
    /// Quantises `rows` (each `head_dim` values) into pair `pair`'s positions from
    /// `filled` on.
    ///
    /// # Safety
    /// The heads this writer came from have room for the rows and are not otherwise
    /// read or written meanwhile, and no other call writes pair `pair` at the same time.
    #[inline(always)]
    unsafe fn write<'a>(&self, pair: usize, rows: impl ExactSizeIterator<Item = &'a [f32]>) {
        let (cap, hd, t, n) = (self.capacity, self.head_dim, self.filled, rows.len());
        // SAFETY: this function's own contract is `pair_mut`'s.
        let (q, sc) = unsafe { self.pair_mut(pair) };
        // Values are quantised in place. Keys are quantised row by row into a copy (this
        // vectorises), then transposed from it while it is in L1; a decoding step's one
        // row needs no allocation for it.
        let mut on_stack = [0i8; 256];
        let mut on_heap = Vec::new();
        let by_row: &mut [i8] = if !self.transposed {
            &mut []
        } else if n * hd <= on_stack.len() {
            &mut on_stack[..n * hd]
        } else {
            on_heap.resize(n * hd, 0);
            &mut on_heap
        };
        let target: &mut [i8] = if self.transposed {
            &mut *by_row
        } else {
            &mut q[t * hd..(t + n) * hd]
        };
        for ((values, scale), dst) in rows
            .zip(sc[t..t + n].iter_mut())
            .zip(target.chunks_exact_mut(hd))
        {
            let amax = simd::lane_max_abs(values);
            *scale = amax / 127.0;
            let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
            for (d, v) in dst.iter_mut().zip(values) {
                *d = simd::round_to_i8(v * inv);
            }
        }
        if self.transposed {
            for (d, key_dim) in q.chunks_exact_mut(cap).enumerate() {
                for (j, k) in key_dim[t..t + n].iter_mut().enumerate() {
                    *k = by_row[j * hd + d];
                }
            }
        }
    }

    /// Pair `pair`'s whole block: `capacity · head_dim` values and `capacity` scales.
    ///
    /// # Safety
    /// As for [`PairWriter::write`]: nothing else reads or writes the pair meanwhile.
    #[inline(always)]
    unsafe fn pair_mut<'a>(self, pair: usize) -> (&'a mut [i8], &'a mut [f32]) {
        let (cap, hd) = (self.capacity, self.head_dim);
        // SAFETY: the heads hold `pairs · capacity · head_dim` values and `pairs ·
        // capacity` scales from these addresses, so pair `pair`'s block is inside them,
        // and the caller promises that nothing else touches it meanwhile.
        unsafe {
            (
                std::slice::from_raw_parts_mut(
                    (self.quants as *mut i8).add(pair * cap * hd),
                    cap * hd,
                ),
                std::slice::from_raw_parts_mut((self.scales as *mut f32).add(pair * cap), cap),
            )
        }
    }
}

/// An error unless 8-bit keys `k` (transposed) and values `v` fit queries
/// `(b, _, _, hd)`.
fn check_fits(
    q: &Tensor,
    k: &QuantizedHeads,
    v: &QuantizedHeads,
    (b, hd): (usize, usize),
) -> candle_core::Result<()> {
    if !k.transposed
        || v.transposed
        || k.dims != v.dims
        || v.capacity != k.capacity
        || k.dims.0 != b
        || k.dims.3 != hd
    {
        candle_core::bail!(
            "8-bit attention: keys {:?} and values {:?} do not fit queries {:?}",
            k.dims,
            v.dims,
            q.dims()
        );
    }
    Ok(())
}

/// [`attend_one_position`] with 8-bit keys (transposed) and values: queries `q`
/// `(b, heads, 1, head_dim)`, an optional additive `mask` `(b, 1, 1, t)`; returns
/// `(b, 1, heads·head_dim)`.
pub fn attend_one_position_quantized(
    q: &Tensor,
    k: &QuantizedHeads,
    v: &QuantizedHeads,
    mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, heads, _, hd) = q.dims4()?;
    check_fits(q, k, v, (b, hd))?;
    let (_, _, t, _) = k.dims;
    let cap = k.capacity;
    let q = unit_last(q)?;
    let mask = mask.map(|m| m.contiguous()).transpose()?;
    let (qs, ql) = q.storage_and_layout();
    let qv = view(&qs, ql)?;
    let mask_guard = mask.as_ref().map(|m| m.storage_and_layout());
    let mv = match &mask_guard {
        Some((s, l)) => Some(view(s, l)?),
        None => None,
    };
    let mut out = vec![0f32; b * heads * hd];
    par_parts(&mut out, b * heads, |pair, out| {
        let bi = pair / heads;
        let query = qv.row(&[bi, pair % heads, 0, 0], hd);
        let keys = &k.quants[pair * hd * cap..(pair + 1) * hd * cap];
        let values = &v.quants[pair * cap * hd..][..t * hd];
        let (kscale, vscale) = (&k.scales[pair * cap..][..t], &v.scales[pair * cap..][..t]);
        let mask = mv.as_ref().map(|m| m.row(&[bi, 0, 0, 0], t));
        Simd::run(
            #[inline(always)]
            || attend_quantized_pair(query, (keys, kscale), (values, vscale), cap, mask, out),
        )
    });
    drop((qs, mask_guard));
    Tensor::from_vec(out, (b, 1, heads * hd), &Device::Cpu)
}

/// A decoding step's self-attention over an 8-bit cache: appends the step's keys and
/// values `new_k`, `new_v` `(b, heads, 1, head_dim)` to `k` and `v` (as
/// [`QuantizedHeads::append`] does), then attends with `q` as
/// [`attend_one_position_quantized`] does, without a mask; the same numbers.
///
/// In one pass, each (conversation, head) written by the thread that then reads it:
/// appended on its own, on one thread, the new position touched a cache line of every
/// key dimension of every pair (the keys are transposed), each one just pushed out of
/// the caches by the step's weights, and the pool waited meanwhile.
pub fn append_and_attend_one_position(
    q: &Tensor,
    new_k: &Tensor,
    new_v: &Tensor,
    k: &mut QuantizedHeads,
    v: &mut QuantizedHeads,
) -> candle_core::Result<Tensor> {
    let (b, heads, _, hd) = q.dims4()?;
    check_fits(q, k, v, (b, hd))?;
    k.check_takes(new_k)?;
    v.check_takes(new_v)?;
    if q.dim(2)? != 1 || new_k.dim(2)? != 1 || new_v.dim(2)? != 1 {
        candle_core::bail!("a decoding step appends and attends one position");
    }
    k.reserve(1);
    v.reserve(1);
    let (kw, vw) = (k.writer(), v.writer());
    let (t, cap) = (k.dims.2 + 1, k.capacity);
    let (q, new_k, new_v) = (unit_last(q)?, unit_last(new_k)?, unit_last(new_v)?);
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = new_k.storage_and_layout();
    let (vs, vl) = new_v.storage_and_layout();
    let (qv, kv, vv) = (view(&qs, ql)?, view(&ks, kl)?, view(&vs, vl)?);
    let mut out = vec![0f32; b * heads * hd];
    par_parts(&mut out, b * heads, |pair, out| {
        let at = [pair / heads, pair % heads, 0, 0];
        let (query, key, value) = (qv.row(&at, hd), kv.row(&at, hd), vv.row(&at, hd));
        Simd::run(
            #[inline(always)]
            || {
                // SAFETY: `k` and `v` are borrowed mutably for this call, have room for
                // the position (reserved above), and pair `pair` is this task's alone.
                let ((keys, kscale), (values, vscale)) = unsafe {
                    kw.write(pair, std::iter::once(key));
                    vw.write(pair, std::iter::once(value));
                    (kw.pair_mut(pair), vw.pair_mut(pair))
                };
                attend_quantized_pair(
                    query,
                    (keys, &kscale[..t]),
                    (&values[..t * hd], &vscale[..t]),
                    cap,
                    None,
                    out,
                )
            },
        )
    });
    drop((qs, ks, vs));
    k.dims.2 = t;
    v.dims.2 = t;
    Tensor::from_vec(out, (b, 1, heads * hd), &Device::Cpu)
}

/// One (conversation, head)'s attention with one query over `t` 8-bit positions (the
/// scales' length): keys transposed with row stride `cap`, values as rows; adds to
/// `out`, given as zeros.
#[inline(always)]
fn attend_quantized_pair(
    query: &[f32],
    (keys, kscale): (&[i8], &[f32]),
    (values, vscale): (&[i8], &[f32]),
    cap: usize,
    mask: Option<&[f32]>,
    out: &mut [f32],
) {
    let t = kscale.len();
    let hd = query.len();
    let mut scores = vec![0f32; t];
    quantized_scores(query, keys, cap, &mut scores);
    for (s, scale) in scores.iter_mut().zip(kscale) {
        *s *= scale;
    }
    softmax_in_place(&mut scores, mask);
    match hd {
        32 => quantized_weighted_sum::<32>(&scores, vscale, values, out),
        64 => quantized_weighted_sum::<64>(&scores, vscale, values, out),
        _ => {
            for ((p, scale), row) in scores.iter().zip(vscale).zip(values.chunks_exact(hd)) {
                let w = p * scale;
                for (o, x) in out.iter_mut().zip(row) {
                    *o += w * *x as f32;
                }
            }
        }
    }
}

/// Positions whose scores [`quantized_scores`] keeps in registers while it reads the
/// keys: 4 vectors of 16.
const SCORE_CHUNK: usize = 64;

/// `scores[j] = Σ_d query[d] · keys[d][j]` for `j < scores.len()`, keys transposed
/// (`[head_dim][stride]`, positions past the scores' unused), summed over `d` in order,
/// into `scores` given as zeros. A chunk of positions is summed in registers over every
/// key dimension, instead of the whole row of scores being read and written again for
/// each dimension; the last positions short of a chunk are summed in place.
#[inline(always)]
fn quantized_scores(query: &[f32], keys: &[i8], stride: usize, scores: &mut [f32]) {
    let t = scores.len();
    let mut j0 = 0;
    while j0 + SCORE_CHUNK <= t {
        let mut acc = [0f32; SCORE_CHUNK];
        for (qd, key_dim) in query.iter().zip(keys.chunks_exact(stride)) {
            let key_dim: &[i8; SCORE_CHUNK] = key_dim[j0..j0 + SCORE_CHUNK]
                .try_into()
                .expect("a whole chunk");
            for (s, kv) in acc.iter_mut().zip(key_dim) {
                *s += qd * *kv as f32;
            }
        }
        scores[j0..j0 + SCORE_CHUNK].copy_from_slice(&acc);
        j0 += SCORE_CHUNK;
    }
    let rest = &mut scores[j0..];
    for (qd, key_dim) in query.iter().zip(keys.chunks_exact(stride)) {
        for (s, kv) in rest.iter_mut().zip(&key_dim[j0..t]) {
            *s += qd * *kv as f32;
        }
    }
}

/// `out[d] += Σ_j probs[j] · scale[j] · values[j][d]`, over `j` in order, for a head
/// size known at compile time: the sums stay in registers for the whole pass.
#[inline(always)]
fn quantized_weighted_sum<const HD: usize>(
    probs: &[f32],
    scales: &[f32],
    values: &[i8],
    out: &mut [f32],
) {
    let mut acc = [0f32; HD];
    for ((p, scale), row) in probs.iter().zip(scales).zip(values.chunks_exact(HD)) {
        let w = p * scale;
        let row: &[i8; HD] = row.try_into().expect("a whole row");
        for (o, x) in acc.iter_mut().zip(row) {
            *o += w * *x as f32;
        }
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o += a;
    }
}
