//! Attention at inference, computed straight from the tensors' memory.
//!
//! Written as tensor operations, attention is a batched matrix product whose batch is
//! every (conversation, head) pair, then a softmax, then another product; candle's CPU
//! backend runs each pair as its own small `gemm` call, with its own set-up and thread
//! hand-off, and each step between them as a pass over memory. For a decoding step
//! (eight conversations, 16 heads) that is 256 calls per attention layer and thousands
//! per generated token; for the encoder reading 8 contexts of 128 tokens it was a third
//! of the encoder's time. Here one pass over the pool computes, for each pair, the
//! scores, their softmax and the weighted sum of the values, all while they are in
//! cache: [`attend_one_position`] for decoding steps, [`attend_positions`] for the
//! encoder.

use super::simd::{exp_nonpositive, lane_max, lane_sum};
use candle_core::{DType, Device, Layout, Storage, Tensor};

/// A read view of an f32 CPU tensor: its data and how to index it.
struct View<'a> {
    /// From the tensor's first element on.
    data: &'a [f32],
    strides: Vec<usize>,
}

impl View<'_> {
    fn at(&self, index: &[usize]) -> usize {
        index
            .iter()
            .zip(&self.strides)
            .map(|(i, s)| i * s)
            .sum::<usize>()
    }

    /// `len` values starting at `index` along the last (contiguous) dimension.
    fn row(&self, index: &[usize], len: usize) -> &[f32] {
        let start = self.at(index);
        &self.data[start..start + len]
    }
}

fn view<'a>(storage: &'a Storage, layout: &Layout) -> candle_core::Result<View<'a>> {
    Ok(View {
        data: super::cpu_values(storage, layout, "the attention kernels run on the CPU")?,
        strides: layout.stride().to_vec(),
    })
}

/// `x` with a contiguous last dimension, the one the kernels read as slices (a KV
/// cache's narrowed view already is: no copy).
fn unit_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.stride()[x.rank() - 1] == 1 {
        Ok(x.clone())
    } else {
        x.contiguous()
    }
}

/// Whether these kernels can take these queries (f32 on the CPU).
pub fn applies(q: &Tensor) -> bool {
    q.dtype() == DType::F32 && matches!(q.device(), Device::Cpu)
}

/// `softmax(q·kᵀ + mask)·v` for queries `q` `(b, heads, 1, head_dim)`, keys and values
/// `(b, heads, t, head_dim)` and an optional additive `mask` `(b, 1, 1, t)`; returns
/// `(b, 1, heads·head_dim)`, the heads side by side as the output projection reads them.
pub fn attend_one_position(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, heads, _, hd) = q.dims4()?;
    let t = k.dim(2)?;
    let (q, k, v) = (unit_last(q)?, unit_last(k)?, unit_last(v)?);
    let mask = mask.map(|m| m.contiguous()).transpose()?;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (qv, kv, vv) = (view(&qs, ql)?, view(&ks, kl)?, view(&vs, vl)?);
    let mask_guard = mask.as_ref().map(|m| m.storage_and_layout());
    let mv = match &mask_guard {
        Some((s, l)) => Some(view(s, l)?),
        None => None,
    };
    let mut out = vec![0f32; b * heads * hd];
    super::par_parts(&mut out, b * heads, |pair, out| {
        let (bi, hi) = (pair / heads, pair % heads);
        // Each position's row from its offset, not from all four strides.
        let (k0, kstep) = (kv.at(&[bi, hi, 0, 0]), kv.strides[2]);
        let (v0, vstep) = (vv.at(&[bi, hi, 0, 0]), vv.strides[2]);
        super::Simd::run(
            #[inline(always)]
            || {
                let query = qv.row(&[bi, hi, 0, 0], hd);
                // Loops, not iterator chains, here: a `collect` may be compiled out of
                // line, for the baseline target, and would not vectorise.
                let mut scores = vec![0f32; t];
                for (j, s) in scores.iter_mut().enumerate() {
                    let at = k0 + j * kstep;
                    *s = dot(query, &kv.data[at..at + hd]);
                }
                softmax_in_place(&mut scores, mv.as_ref().map(|m| m.row(&[bi, 0, 0, 0], t)));
                for (j, p) in scores.iter().enumerate() {
                    let at = v0 + j * vstep;
                    for (o, x) in out.iter_mut().zip(&vv.data[at..at + hd]) {
                        *o += p * x;
                    }
                }
            },
        )
    });
    drop((qs, ks, vs, mask_guard));
    Tensor::from_vec(out, (b, 1, heads * hd), &Device::Cpu)
}

mod quantized;

pub use quantized::{
    append_and_attend_one_position, attend_one_position_quantized, QuantizedHeads, CACHE_HEADROOM,
};

/// A dot product summed in 8 lanes, so that it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `softmax(q·kᵀ + mask)·v` for queries `q` `(b, heads, tq, head_dim)`, keys and values
/// `(b, heads, tk, head_dim)` and an optional additive `mask` that broadcasts to
/// `(b, 1, tq, tk)`; returns `(b, tq, heads·head_dim)`, the heads side by side as the
/// output projection reads them.
///
/// Each pair's two products are single-threaded `gemm` calls (the crate candle itself
/// uses) on one of the pool's threads, reading the tensors through their strides and
/// writing the pair's columns of the output in place.
pub fn attend_positions(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, heads, tq, hd) = q.dims4()?;
    let tk = k.dim(2)?;
    // Broadcast views of the mask cost nothing: their repeated dimensions have stride 0.
    // (Made contiguous first: its rows are read as slices.)
    let mask = mask
        .map(|m| m.contiguous()?.broadcast_as((b, 1, tq, tk)))
        .transpose()?;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (qv, kv, vv) = (view(&qs, ql)?, view(&ks, kl)?, view(&vs, vl)?);
    let mask_guard = mask.as_ref().map(|m| m.storage_and_layout());
    let mv = match &mask_guard {
        Some((s, l)) => Some(view(s, l)?),
        None => None,
    };
    let width = heads * hd;
    let mut out = vec![0f32; b * tq * width];
    let out_ptr = out.as_mut_ptr() as usize;
    let stride = |v: &View, dim: usize| v.strides[dim] as isize;
    super::par_map(b * heads, |pair| {
        let (bi, hi) = (pair / heads, pair % heads);
        let mut scores = vec![0f32; tq * tk];
        // SAFETY: the pointers and strides are the tensors' own (every index the
        // product visits is inside them), and `scores` is this pair's own.
        unsafe {
            // kᵀ: along its rows (the head dimension) is k's last stride.
            product(
                (tq, tk, hd),
                (scores.as_mut_ptr(), tk),
                (
                    qv.data.as_ptr().add(qv.at(&[bi, hi, 0, 0])),
                    stride(&qv, 2),
                    stride(&qv, 3),
                ),
                (
                    kv.data.as_ptr().add(kv.at(&[bi, hi, 0, 0])),
                    stride(&kv, 3),
                    stride(&kv, 2),
                ),
            );
        }
        super::Simd::run(
            #[inline(always)]
            || {
                for (i, row) in scores.chunks_exact_mut(tk).enumerate() {
                    softmax_in_place(row, mv.as_ref().map(|m| m.row(&[bi, 0, i, 0], tk)));
                }
            },
        );
        // SAFETY: as above for `v`; each pair writes only its own head's columns of
        // `out`, which outlives the pool's work.
        unsafe {
            product(
                (tq, hd, tk),
                ((out_ptr as *mut f32).add(bi * tq * width + hi * hd), width),
                (scores.as_ptr(), tk as isize, 1),
                (
                    vv.data.as_ptr().add(vv.at(&[bi, hi, 0, 0])),
                    stride(&vv, 2),
                    stride(&vv, 3),
                ),
            );
        }
    });
    drop((qs, ks, vs, mask_guard));
    Tensor::from_vec(out, (b, tq, width), &Device::Cpu)
}

/// `dst = lhs · rhs` for `(m, n, k)`, single-threaded: `dst` is given with its row
/// stride (its columns are adjacent), `lhs` and `rhs` with their row and column strides.
///
/// # Safety
/// Every element the strides reach from the pointers must be inside its allocation, and
/// `dst`'s must be writable and not read or written by anyone else meanwhile.
unsafe fn product(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
    (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        false,
        lhs,
        lhs_cs,
        lhs_rs,
        rhs,
        rhs_cs,
        rhs_rs,
        0.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// `row + mask` turned into probabilities, in place.
#[inline(always)]
fn softmax_in_place(row: &mut [f32], mask: Option<&[f32]>) {
    if let Some(m) = mask {
        for (s, add) in row.iter_mut().zip(m) {
            *s += add;
        }
    }
    let max = lane_max(row);
    for s in row.iter_mut() {
        *s = exp_nonpositive(*s - max);
    }
    let inv = 1.0 / lane_sum(row);
    for s in row.iter_mut() {
        *s *= inv;
    }
}

#[cfg(test)]
mod tests;
