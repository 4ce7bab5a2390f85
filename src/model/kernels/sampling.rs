//! The sampler's two loops that write past what safe Rust can prove initialised: the
//! weights `exp((logit − max) / T)` of a whole vocabulary, and the gather of one bucket's
//! weights (see `model::sampler` for how top-p uses buckets).

use super::simd::exp_nonpositive;
use super::Simd;
use crate::model::sampler::BUCKET_SHIFT;

/// `out` becomes `exp((logits[i] − max) · inv_t)` for every logit. Every value is written
/// once, with no zeroing pass first (the vocabulary is 55k values per step and person).
#[inline(always)]
pub(crate) fn exp_scaled_into(logits: &[f32], max: f32, inv_t: f32, out: &mut Vec<f32>) {
    let n = logits.len();
    out.clear();
    out.reserve(n);
    for (w, l) in out.spare_capacity_mut().iter_mut().zip(logits) {
        w.write(exp_nonpositive((l - max) * inv_t));
    }
    // SAFETY: the first `n` values were written just above (`reserve` made room for them).
    unsafe { out.set_len(n) };
}

/// The weights of `weights` in bucket `bucket` (bits `>> BUCKET_SHIFT`), in order, into
/// `out` (its contents replaced).
pub(crate) fn gather_bucket(weights: &[f32], bucket: u32, out: &mut Vec<f32>) {
    #[cfg(target_arch = "x86_64")]
    if Simd::detect() == Simd::Avx512 {
        out.clear();
        out.reserve(weights.len() + 16);
        // SAFETY: the CPU has AVX-512 F; `out` has room for every weight and a vector.
        unsafe {
            let len = gather_bucket_avx512(weights, bucket, out.as_mut_ptr());
            out.set_len(len);
        }
        return;
    }
    gather_bucket_portable(weights, bucket, out);
}

/// [`gather_bucket`] in plain Rust, without branches: each weight is written at the end
/// of those gathered so far, which then grow by one only if it is in the bucket. With a
/// flat distribution whether a weight is in is a coin toss for the branch predictor; a
/// `filter` made the sampler twice as slow.
pub(crate) fn gather_bucket_portable(weights: &[f32], bucket: u32, out: &mut Vec<f32>) {
    out.clear();
    out.reserve(weights.len());
    let slots = out.as_mut_ptr();
    let mut len = 0;
    for w in weights {
        // SAFETY: `len` ≤ the weights before this one < `weights.len()` ≤ the capacity.
        unsafe { slots.add(len).write(*w) };
        len += (w.to_bits() >> BUCKET_SHIFT == bucket) as usize;
    }
    // SAFETY: the first `len` slots were written above.
    unsafe { out.set_len(len) };
}

/// [`gather_bucket`] 16 weights at a time: the ones in the bucket are compressed to the
/// front of a vector, which is stored whole at the end of those gathered so far.
/// Returns how many were gathered.
///
/// # Safety
/// The CPU has AVX-512 F; `out` has room for `weights.len() + 16` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn gather_bucket_avx512(weights: &[f32], bucket: u32, out: *mut f32) -> usize {
    use std::arch::x86_64::*;
    let want = _mm512_set1_epi32(bucket as i32);
    let chunks = weights.chunks_exact(16);
    let rest = chunks.remainder();
    let mut len = 0;
    for c in chunks {
        let v = _mm512_loadu_ps(c.as_ptr());
        let bits = _mm512_srli_epi32::<BUCKET_SHIFT>(_mm512_castps_si512(v));
        let keep = _mm512_cmpeq_epi32_mask(bits, want);
        _mm512_storeu_ps(out.add(len), _mm512_maskz_compress_ps(keep, v));
        len += keep.count_ones() as usize;
    }
    for w in rest {
        if w.to_bits() >> BUCKET_SHIFT == bucket {
            *out.add(len) = *w;
            len += 1;
        }
    }
    len
}
