//! GELU (the exact, erf-based form BlenderBot-small uses) for inference on the CPU.
//!
//! candle computes it with libm's `erff`, a function call per value that the compiler
//! cannot vectorise: for the encoder reading 8 contexts it took as long as one of the
//! two feed-forward products around it. Here `erf` is Abramowitz & Stegun's 7.1.26
//! (absolute error ≤ 1.5·10⁻⁷, so GELU's error is below 10⁻⁷·|x|) written with plain
//! arithmetic, fused multiply-adds (the same bits on every machine: see `simd`) and the
//! vectorisable `exp` of the sampler, and compiled once per vector width.

use super::simd::exp_nonpositive;
use super::Simd;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};

/// `x · Φ(x) = x/2 · (1 + erf(x/√2))`, as a candle operation without gradients.
pub struct GeluErf;

/// `erf(x)` within 1.5·10⁻⁷.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152,
        1.061_405_4,
    ];
    let ax = x.abs();
    let t = 1.0 / P.mul_add(ax, 1.0);
    let poly = A[4]
        .mul_add(t, A[3])
        .mul_add(t, A[2])
        .mul_add(t, A[1])
        .mul_add(t, A[0])
        * t;
    let y = (-poly).mul_add(exp_nonpositive(-ax * ax), 1.0);
    if x < 0.0 {
        -y
    } else {
        y
    }
}

#[inline(always)]
fn gelu_into(x: &[f32], out: &mut [f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// GELU of `xs`, in place, with the widest instructions this CPU has (the epilogue of
/// a feed-forward block's first product).
pub fn gelu_in_place(xs: &mut [f32]) {
    Simd::run(
        #[inline(always)]
        || {
            for v in xs.iter_mut() {
                *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
            }
        },
    )
}

/// GELU of `x` into `out`, with the widest instructions this CPU has.
pub fn gelu(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len());
    Simd::run(
        #[inline(always)]
        || gelu_into(x, out),
    )
}

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "gelu-erf-vectorised"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{} needs a contiguous input", self.name());
        };
        let x = &storage.as_slice::<f32>()?[start..end];
        let mut out = vec![0f32; x.len()];
        // Large inputs (the encoder's) are shared out on the pool in long runs.
        const RUN: usize = 16 * 1024;
        if x.len() >= 2 * RUN {
            let out_ptr = out.as_mut_ptr() as usize;
            candle_core::utils::barrier_pool().execute_chunked(x.len().div_ceil(RUN), |range| {
                for run in range {
                    let (a, b) = (run * RUN, ((run + 1) * RUN).min(x.len()));
                    // SAFETY: each run writes its own part of `out`.
                    let o = unsafe {
                        std::slice::from_raw_parts_mut((out_ptr as *mut f32).add(a), b - a)
                    };
                    gelu(&x[a..b], o);
                }
            });
        } else {
            gelu(x, &mut out);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against candle's GELU computed in f64, from -10 to 10.
    #[test]
    fn gelu_matches_the_exact_formula() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 / 200.0).collect();
        let mut out = vec![0f32; xs.len()];
        gelu(&xs, &mut out);
        let x64: Vec<f64> = xs.iter().map(|x| *x as f64).collect();
        let want = candle_core::Tensor::new(x64, &candle_core::Device::Cpu)
            .and_then(|t| t.gelu_erf())
            .and_then(|t| t.to_vec1::<f64>())
            .unwrap();
        let mut in_place = xs.clone();
        gelu_in_place(&mut in_place);
        assert_eq!(in_place, out, "in place and into another buffer differ");
        for ((x, y), want) in xs.iter().zip(&out).zip(want) {
            let x64 = *x as f64;
            assert!(
                (*y as f64 - want).abs() <= 2e-7 * (1.0 + x64.abs()),
                "gelu({x}) = {y}, want {want}"
            );
        }
    }
}
