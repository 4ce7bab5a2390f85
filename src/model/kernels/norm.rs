//! The residual addition and post-layer-norm that close every attention and
//! feed-forward block, fused into one pass for inference on the CPU.
//!
//! As tensor operations they are an addition (a new tensor) and candle's layer norm
//! (another), each a hand-off to the thread pool; for a decoding step's few rows that
//! hand-off is most of their cost, and a step has three per decoder layer. Here each
//! row is added, normalised and scaled while it is in cache, on the calling thread for
//! small inputs and on the pool for the encoder's hundreds of rows.

use super::simd::lane_sum;
use super::Simd;
use candle_core::{DType, Device, Tensor};

/// Rows × width from which the rows are shared out on the pool.
const PARALLEL_FROM: usize = 64 * 1024;

/// Whether [`add_layer_norm`] takes these tensors (f32 on the CPU).
pub fn applies(x: &Tensor) -> bool {
    x.dtype() == DType::F32 && matches!(x.device(), Device::Cpu)
}

/// `layer_norm(x + residual) · weight + bias` over the last dimension (without the
/// addition when there is no `residual`), with the variance of PyTorch's `LayerNorm`
/// (biased, `eps` added inside the square root).
pub fn add_layer_norm(
    x: &Tensor,
    residual: Option<&Tensor>,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> candle_core::Result<Tensor> {
    if let Some(r) = residual.filter(|r| r.dims() != x.dims()) {
        candle_core::bail!("residual {:?} does not match {:?}", r.dims(), x.dims());
    }
    let d = x.dim(candle_core::D::Minus1)?;
    let rows = x.elem_count() / d.max(1);
    let x = x.contiguous()?;
    let residual = residual.map(|r| r.contiguous()).transpose()?;
    let (weight, bias) = (weight.contiguous()?, bias.contiguous()?);
    let mut out = vec![0f32; rows * d];
    {
        let held = [Some(&x), residual.as_ref(), Some(&weight), Some(&bias)]
            .map(|t| t.map(|t| t.storage_and_layout()));
        let mut data = [None; 4];
        for (slot, guard) in data.iter_mut().zip(&held) {
            if let Some((storage, layout)) = guard {
                *slot = Some(super::cpu_values(
                    storage,
                    layout,
                    "the fused layer norm runs on the CPU",
                )?);
            }
        }
        let [Some(xs), rs, Some(w), Some(b)] = data else {
            unreachable!("x, weight and bias are always held");
        };
        if w.len() < d || b.len() < d {
            candle_core::bail!("layer norm parameters are shorter than the rows ({d})");
        }
        let out_ptr = out.as_mut_ptr() as usize;
        let one = |r: usize| {
            // SAFETY: row `r` of `out` is written by this call alone, inside `out`.
            let o = unsafe { std::slice::from_raw_parts_mut((out_ptr as *mut f32).add(r * d), d) };
            Simd::run(
                #[inline(always)]
                || {
                    normalise_row(
                        &xs[r * d..(r + 1) * d],
                        rs.map(|rs| &rs[r * d..(r + 1) * d]),
                        &w[..d],
                        &b[..d],
                        eps,
                        o,
                    )
                },
            );
        };
        if rows * d >= PARALLEL_FROM {
            candle_core::utils::barrier_pool().execute_chunked(rows, |range| range.for_each(one));
        } else {
            (0..rows).for_each(one);
        }
    }
    Tensor::from_vec(out, x.dims(), x.device())
}

/// One row: the sum (or `x` alone) into `out`, then its mean and variance (two passes,
/// as PyTorch computes them, so that a large mean does not swallow the variance), then
/// the scale and shift.
#[inline(always)]
fn normalise_row(
    x: &[f32],
    residual: Option<&[f32]>,
    w: &[f32],
    b: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    match residual {
        Some(residual) => {
            for ((o, a), c) in out.iter_mut().zip(x).zip(residual) {
                *o = a + c;
            }
        }
        None => out.copy_from_slice(x),
    }
    let n = out.len() as f32;
    let mean = lane_sum(out) / n;
    let mut squares = [0f32; 8];
    let chunks = out.chunks_exact(8);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    for c in chunks {
        for (s, v) in squares.iter_mut().zip(c) {
            *s += (v - mean) * (v - mean);
        }
    }
    let var = (squares.iter().sum::<f32>() + tail) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((o, w), b) in out.iter_mut().zip(w).zip(b) {
        *o = (*o - mean) * inv * w + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::max_diff;

    /// Against candle's addition and layer norm, for a decoding step's few rows and for
    /// enough rows to go to the pool, with rows not a multiple of 8 values wide and a
    /// mean far from zero.
    #[test]
    fn matches_addition_then_layer_norm() {
        let dev = Device::Cpu;
        for (rows, d) in [(3, 37), (8, 512), (300, 260)] {
            let x = (Tensor::randn(0f32, 1.0, (1, rows, d), &dev).unwrap() + 50.0).unwrap();
            let r = Tensor::randn(0f32, 2.0, (1, rows, d), &dev).unwrap();
            let w = Tensor::randn(1f32, 0.1, d, &dev).unwrap();
            let b = Tensor::randn(0f32, 0.1, d, &dev).unwrap();
            let want = candle_nn::ops::layer_norm_slow(&(&x + &r).unwrap(), &w, &b, 1e-5).unwrap();
            let got = add_layer_norm(&x, Some(&r), &w, &b, 1e-5).unwrap();
            assert_eq!(got.dims(), want.dims());
            let err = max_diff(&got, &want);
            assert!(err < 1e-4, "{rows}×{d}: error {err}");
            let plain = add_layer_norm(&x, None, &w, &b, 1e-5).unwrap();
            let want = candle_nn::ops::layer_norm_slow(&x, &w, &b, 1e-5).unwrap();
            let err = max_diff(&plain, &want);
            assert!(err < 1e-4, "{rows}×{d} without a residual: error {err}");
        }
    }

    #[test]
    fn mismatched_shapes_are_an_error() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let r = Tensor::zeros((2, 5), DType::F32, &dev).unwrap();
        let w = Tensor::ones(4, DType::F32, &dev).unwrap();
        assert!(add_layer_norm(&x, Some(&r), &w, &w, 1e-5).is_err());
    }
}
