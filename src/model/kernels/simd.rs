//! Vector arithmetic for the CPU kernels: which instructions the CPU has, running a
//! kernel compiled for them, and the reductions and `exp` the kernels share (the
//! sampler, attention and GELU).
//!
//! Everything here is plain arithmetic in a fixed order, and fused multiply-adds only
//! where written (`mul_add`: one rounding on every machine, an instruction where the CPU
//! has FMA, libm's exact `fmaf` on the rare one without): every vector width computes
//! the same bits, so a seed gives the same replies everywhere.

/// The widest vector instructions this CPU has, for kernels compiled once per width
/// (the crate itself is built for the baseline x86-64, which has neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Baseline,
}

impl Simd {
    pub fn detect() -> Self {
        static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
                if avx2
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                {
                    return Simd::Avx512;
                }
                if avx2 {
                    return Simd::Avx2;
                }
            }
            Simd::Baseline
        })
    }

    /// Runs `f` compiled for the widest vector instructions this CPU has: `f` is
    /// inlined into a function built with those features, so its loops vectorise at
    /// that width. (The compiler never fuses a multiply and an add on its own, and the
    /// explicit `mul_add`s round once at every width, so every width computes the same
    /// bits.)
    #[inline(always)]
    pub fn run<R>(f: impl FnOnce() -> R) -> R {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match Self::detect() {
            // SAFETY: `detect` found these features on this CPU.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx512 => unsafe { avx512(f) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Simd::Avx2 => unsafe { avx2(f) },
            Simd::Baseline => f(),
        }
    }
}

/// The sum of `xs`, added in 8 lanes: a plain `sum()` is one long chain of dependent
/// additions (the compiler may not reorder them), this vectorises. The order is fixed,
/// so the result is the same on every machine.
#[inline(always)]
pub fn lane_sum(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// The largest of `xs` (NaN ignored, -∞ for none), in 8 lanes like [`lane_sum`].
#[inline(always)]
pub fn lane_max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l = l.max(*x);
        }
    }
    lanes.iter().copied().fold(tail, f32::max)
}

/// The largest `|x|` of `xs` (0 for none), in 8 lanes.
#[inline(always)]
pub fn lane_max_abs(xs: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder().iter().fold(0f32, |m, x| m.max(x.abs()));
    for c in chunks {
        for (l, x) in lanes.iter_mut().zip(c) {
            *l = l.max(x.abs());
        }
    }
    lanes.iter().copied().fold(tail, f32::max)
}

/// `x` rounded to the nearest integer (halves to even) and clamped to `[-127, 127]`, as
/// an `i8`; NaN gives 0.
///
/// Rust's float-to-integer casts saturate and map NaN to 0, which the compiler writes
/// as a scalar conversion and compare per value. Here the rounding is done by the
/// addition of 1.5·2²³, after which the integer is in the low bits of the sum (exact
/// for `|x| < 2²²`, which the clamp ensures): plain arithmetic, which vectorises.
#[inline(always)]
pub fn round_to_i8(x: f32) -> i8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
    let clamped = x.clamp(-127.0, 127.0);
    let rounded = ((clamped + MAGIC).to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    // NaN survives the clamp; its sum's bits are no integer in range.
    if (-127..=127).contains(&rounded) {
        rounded as i8
    } else {
        0
    }
}

/// `exp(x)` for `x ≤ 0`, and 0 below -87 (where f32 would go subnormal) and for -∞ (a
/// banned token).
///
/// libm's `expf` is a function call per token that the compiler cannot vectorise, and
/// 55k of them per generated token were a tenth of a batched decoding step. This is
/// Cephes' `expf` (range reduction to `2^n · e^r`, `|r| ≤ ln 2 / 2`, and a degree-6
/// polynomial; within 2 ulp of the exact value) written so that the loop over the
/// vocabulary vectorises. The polynomial and the range reduction are fused
/// multiply-adds (the same bits on every machine, see the module): 0.53 → 0.37 ns per
/// value, and a softmax over rows of 128 (the encoder's attention) 0.85 → 0.65 ns per
/// value, than with separate multiplies and adds.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let xc = if x > -87.0 { x } else { -87.0 };
    let shifted = xc.mul_add(LOG2E, ROUND);
    let n = shifted - ROUND;
    let r = (-n).mul_add(LN2_LO, (-n).mul_add(LN2_HI, xc));
    let p = 1.987_569_1e-4f32
        .mul_add(r, 1.398_199_9e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let e = (p * r).mul_add(r, r) + 1.0;
    // n is in [-126, 0]: 2^n is a normal float built from its exponent bits. They are
    // taken from `shifted`, whose low mantissa bits hold 2^22 + n (the bits above are
    // shifted out): no float-to-integer conversion, which would not vectorise well.
    let scale = f32::from_bits(shifted.to_bits().wrapping_add(127) << 23);
    if x < -87.0 {
        0.0
    } else {
        e * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_to_i8_rounds_halves_to_even_and_clamps() {
        for (x, want) in [
            (0.0, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.5, -2),
            (126.6, 127),
            (127.5, 127),
            (1e9, 127),
            (-1e9, -127),
            (f32::INFINITY, 127),
            (f32::NEG_INFINITY, -127),
            (f32::NAN, 0),
            (3.49, 3),
            (-3.51, -4),
        ] {
            assert_eq!(round_to_i8(x), want, "{x}");
        }
        // Every step of 1/64 over the range, against the standard library.
        for i in -130 * 64..=130 * 64 {
            let x = i as f32 / 64.0;
            assert_eq!(
                round_to_i8(x),
                x.round_ties_even().clamp(-127.0, 127.0) as i8,
                "{x}"
            );
        }
    }
    use rand::{Rng, SeedableRng};

    #[test]
    fn lane_reductions_agree_with_plain_ones() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for n in [0, 1, 7, 8, 9, 100, 1001] {
            let xs: Vec<f32> = (0..n).map(|_| rng.random_range(-5.0f32..5.0)).collect();
            let plain_max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(lane_max(&xs), plain_max);
            let exact: f64 = xs.iter().map(|x| *x as f64).sum();
            assert!((lane_sum(&xs) as f64 - exact).abs() < 1e-3, "n={n}");
        }
        assert_eq!(lane_max(&[f32::NAN, 1.0, f32::NEG_INFINITY]), 1.0);
    }

    #[test]
    fn the_vectorisable_exp_is_within_two_ulp_of_libm() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-87.5), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }
}
