//! Attention for one new position per conversation, the shape of every decoding step.
//!
//! Written as tensor operations, a step's attention is a batched matrix product whose
//! batch is every (conversation, head) pair, and candle's CPU backend runs each pair as
//! its own small `gemm` call: for eight conversations and 16 heads, 256 calls per
//! attention layer and thousands per generated token, each with its own set-up and
//! thread hand-off. Here one pass over the pool computes, for each pair, the scores of
//! the query against every key, their softmax and the weighted sum of the values — a
//! few microseconds of arithmetic each — straight from the tensors' memory.

use candle_core::{DType, Device, Layout, Storage, Tensor};

/// A read view of an f32 CPU tensor: its data and how to index it.
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    strides: Vec<usize>,
}

impl View<'_> {
    fn at(&self, index: &[usize]) -> usize {
        self.offset
            + index
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
    let Storage::Cpu(cpu) = storage else {
        candle_core::bail!("decode attention runs on the CPU");
    };
    Ok(View {
        data: cpu.as_slice::<f32>()?,
        offset: layout.start_offset(),
        strides: layout.stride().to_vec(),
    })
}

/// Whether [`attend_one_position`] can take these inputs (f32 on the CPU, one query).
pub fn applies(q: &Tensor) -> bool {
    q.dtype() == DType::F32 && matches!(q.device(), Device::Cpu) && q.dim(2).ok() == Some(1)
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
    // Only the last dimension must be contiguous: a KV cache's narrowed view is fine.
    let unit_last = |x: &Tensor| -> candle_core::Result<Tensor> {
        if x.stride()[x.rank() - 1] == 1 {
            Ok(x.clone())
        } else {
            x.contiguous()
        }
    };
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
    let outputs = super::par_map(b * heads, |pair| {
        let (bi, hi) = (pair / heads, pair % heads);
        let query = qv.row(&[bi, hi, 0, 0], hd);
        let mut scores: Vec<f32> = (0..t)
            .map(|j| dot(query, kv.row(&[bi, hi, j, 0], hd)))
            .collect();
        if let Some(m) = &mv {
            for (s, add) in scores.iter_mut().zip(m.row(&[bi, 0, 0, 0], t)) {
                *s += add;
            }
        }
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let mut out = vec![0f32; hd];
        for (j, p) in scores.iter().enumerate() {
            let p = p / sum;
            for (o, x) in out.iter_mut().zip(vv.row(&[bi, hi, j, 0], hd)) {
                *o += p * x;
            }
        }
        out
    });
    Tensor::from_vec(outputs.concat(), (b, 1, heads * hd), &Device::Cpu)
}

/// A dot product summed in 8 lanes, so that it vectorises.
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
