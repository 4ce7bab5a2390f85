//! q8_0 matrix products for decoding on the CPU.
//!
//! Weights are stored once as signed 8-bit blocks of 32 values with one scale each, and
//! activations are quantised the same way, row by row: the numerics of ggml's q8_0,
//! which candle also offers. What differs is the loop. candle's q8_0 product walks the
//! whole weight matrix again for every row of the input, so decoding for 8 people reads
//! the weights 8 times; here each weight block is loaded once and applied to up to 8
//! rows while it is in registers, so a batch costs little more memory traffic than one
//! reply. On x86_64 with AVX-512 VNNI one instruction does a block's 32 multiply-adds;
//! AVX2 and plain Rust paths give the same sums on other machines.
//!
//! The work is shared out on candle's own CPU thread pool (`barrier_pool`, via `par_map`), the one its
//! other operations in a decoding step use: a second pool (rayon) would leave its threads
//! spinning for work on the same two cores while candle's run, and candle's while ours do.
//! (Quantising at load time, when nothing else runs, uses rayon.)

use rayon::prelude::*;

/// Values per block (and so the granularity of the scales).
pub const BLOCK: usize = 32;

/// Rows of the input handled together per pass over the weights.
const ROWS: usize = 8;

/// Output columns per parallel task, at least: a task must outlast its scheduling.
const MIN_COLS_PER_TASK: usize = 64;

/// Parallel tasks per thread: a few, so that threads slowed by other work even out.
const TASKS_PER_THREAD: usize = 4;

/// A `(n, k)` weight matrix (PyTorch's `Linear.weight` layout) in q8_0 blocks.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    n: usize,
    k: usize,
    quants: Vec<i8>,
    /// One per block, row-major: `n * k / BLOCK`.
    scales: Vec<f32>,
}

/// One row quantised: `quants.len() == scales.len() * BLOCK`.
fn quantize_row(x: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for ((block, q), d) in x
        .chunks_exact(BLOCK)
        .zip(quants.chunks_exact_mut(BLOCK))
        .zip(scales.iter_mut())
    {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        // As ggml (and candle) do, to give the same numbers: values are divided by the
        // exact scale, which is then kept in f16.
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (qi, v) in q.iter_mut().zip(block) {
            *qi = (v * inv).round().clamp(-127.0, 127.0) as i8;
        }
        *d = half::f16::from_f32(scale).to_f32();
    }
}

impl Q8Matrix {
    /// Quantises a row-major `(n, k)` matrix; `k` must be a multiple of [`BLOCK`].
    pub fn quantize(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "not an (n, k) matrix");
        let mut q = Self::with_capacity(n, k);
        q.push_rows(w);
        q
    }

    /// An empty matrix of `k` columns with room for `n` rows, to be filled with
    /// [`Q8Matrix::push_rows`] (so a large matrix never needs a second f32 copy).
    pub fn with_capacity(n: usize, k: usize) -> Self {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK),
            "q8_0 needs k % 32 == 0, not {k}"
        );
        Self {
            n: 0,
            k,
            quants: Vec::with_capacity(n * k),
            scales: Vec::with_capacity(n * k / BLOCK),
        }
    }

    /// Appends rows (row-major, `k` values each).
    pub fn push_rows(&mut self, w: &[f32]) {
        let k = self.k;
        assert_eq!(w.len() % k, 0, "rows of {k} values expected");
        let rows = w.len() / k;
        let (q0, s0) = (self.quants.len(), self.scales.len());
        self.quants.resize(q0 + rows * k, 0);
        self.scales.resize(s0 + rows * k / BLOCK, 0.0);
        self.quants[q0..]
            .par_chunks_mut(k)
            .zip(self.scales[s0..].par_chunks_mut(k / BLOCK))
            .zip(w.par_chunks(k))
            .for_each(|((q, s), row)| quantize_row(row, q, s));
        self.n += rows;
    }

    pub fn rows(&self) -> usize {
        self.n
    }

    /// The matrix as f32 again (for tests and for comparing with the dense original).
    pub fn dequantize(&self) -> Vec<f32> {
        self.quants
            .chunks_exact(BLOCK)
            .zip(&self.scales)
            .flat_map(|(q, d)| q.iter().map(move |v| *v as f32 * d))
            .collect()
    }

    /// `x · Wᵀ (+ bias)` for `m` rows of `x` (row-major `(m, k)`): a row-major `(m, n)`.
    pub fn matmul(&self, x: &[f32], m: usize, bias: Option<&[f32]>) -> Vec<f32> {
        self.matmul_with(x, m, bias, Kernel::detect())
    }

    fn matmul_with(&self, x: &[f32], m: usize, bias: Option<&[f32]>, kernel: Kernel) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len(), m * k, "input is not (m, k)");
        let nb = k / BLOCK;
        let mut xq = vec![0i8; m * k];
        let mut xs = vec![0f32; m * nb];
        for ((row, q), s) in x
            .chunks_exact(k)
            .zip(xq.chunks_exact_mut(k))
            .zip(xs.chunks_exact_mut(nb))
        {
            quantize_row(row, q, s);
        }
        // Each task computes a range of output columns for every row, into its own
        // buffer; they are put in place afterwards.
        let per_task = n
            .div_ceil(candle_core::utils::get_num_threads() * TASKS_PER_THREAD)
            .max(MIN_COLS_PER_TASK);
        let parts = super::par_map(n.div_ceil(per_task), |task| {
            let cols = task * per_task..((task + 1) * per_task).min(n);
            let width = cols.len();
            let mut part = vec![0f32; m * width];
            // Each tile of input rows stays in cache while the task's weight rows
            // pass by (for one person, the weights are read once in all).
            for r0 in (0..m).step_by(ROWS) {
                let rows = ROWS.min(m - r0);
                let xq = &xq[r0 * k..(r0 + rows) * k];
                let xs = &xs[r0 * nb..(r0 + rows) * nb];
                for (c, j) in cols.clone().enumerate() {
                    let w = &self.quants[j * k..(j + 1) * k];
                    let ws = &self.scales[j * nb..(j + 1) * nb];
                    let mut dst = [0f32; ROWS];
                    kernel.dot(w, ws, xq, xs, &mut dst[..rows]);
                    let b = bias.map_or(0.0, |b| b[j]);
                    for (i, v) in dst[..rows].iter().enumerate() {
                        part[(r0 + i) * width + c] = v + b;
                    }
                }
            }
            (cols.start, part)
        });
        let mut out = vec![0f32; m * n];
        for (start, part) in parts {
            let width = part.len() / m;
            for (r, row) in part.chunks_exact(width).enumerate() {
                out[r * n + start..r * n + start + width].copy_from_slice(row);
            }
        }
        out
    }
}

/// Which instructions compute the block dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
            {
                return Kernel::Vnni;
            }
            if avx2 {
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// `out[r] = Σ_b ws[b]·xs[r][b]·(w_b · xq[r]_b)` for the `out.len()` rows of `xq`.
    fn dot(self, w: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], out: &mut [f32]) {
        match self {
            Kernel::Portable => dot_portable(w, ws, xq, xs, out),
            // SAFETY: `detect` chose these only where the CPU has the features.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => unsafe { x86::dot::<false>(w, ws, xq, xs, out) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Vnni => unsafe { x86::dot_vnni(w, ws, xq, xs, out) },
        }
    }
}

fn dot_portable(w: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], out: &mut [f32]) {
    let (k, nb) = (w.len(), ws.len());
    for (r, o) in out.iter_mut().enumerate() {
        let x = &xq[r * k..(r + 1) * k];
        let s = &xs[r * nb..(r + 1) * nb];
        let mut acc = 0f32;
        for b in 0..nb {
            let block: i32 = w[b * BLOCK..(b + 1) * BLOCK]
                .iter()
                .zip(&x[b * BLOCK..(b + 1) * BLOCK])
                .map(|(a, c)| *a as i32 * *c as i32)
                .sum();
            acc += ws[b] * s[b] * block as f32;
        }
        *o = acc;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{BLOCK, ROWS};
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// The 32 products of one block summed into 8 lanes: |x| (unsigned) times w with
    /// x's sign, as ggml does, since the instructions multiply unsigned by signed bytes.
    #[inline(always)]
    unsafe fn block_dot<const VNNI: bool>(w: __m256i, x: __m256i) -> __m256i {
        let ax = _mm256_sign_epi8(x, x);
        let sw = _mm256_sign_epi8(w, x);
        if VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sw)
        } else {
            let pairs = _mm256_maddubs_epi16(ax, sw);
            _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot<const VNNI: bool>(
        w: &[i8],
        ws: &[f32],
        xq: &[i8],
        xs: &[f32],
        out: &mut [f32],
    ) {
        let (k, nb, rows) = (w.len(), ws.len(), out.len());
        debug_assert!(rows <= ROWS && xq.len() == rows * k && xs.len() == rows * nb);
        let mut acc = [_mm256_setzero_ps(); ROWS];
        let wp = w.as_ptr();
        let xp = xq.as_ptr();
        for b in 0..nb {
            let wv = _mm256_loadu_si256(wp.add(b * BLOCK) as *const __m256i);
            let wscale = *ws.get_unchecked(b);
            for (r, a) in acc.iter_mut().enumerate().take(rows) {
                let xv = _mm256_loadu_si256(xp.add(r * k + b * BLOCK) as *const __m256i);
                let d = _mm256_cvtepi32_ps(block_dot::<VNNI>(wv, xv));
                let scale = _mm256_set1_ps(wscale * *xs.get_unchecked(r * nb + b));
                *a = _mm256_fmadd_ps(scale, d, *a);
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = hsum(a);
        }
    }

    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    pub unsafe fn dot_vnni(w: &[i8], ws: &[f32], xq: &[i8], xs: &[f32], out: &mut [f32]) {
        dot::<true>(w, ws, xq, xs, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn kernels() -> Vec<Kernel> {
        let mut v = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                v.push(Kernel::Avx2);
            }
            if Kernel::detect() == Kernel::Vnni {
                v.push(Kernel::Vnni);
            }
        }
        v
    }

    #[test]
    fn every_kernel_matches_the_dequantised_product() {
        let (n, k) = (131, 96);
        let w = lcg(1, n * k);
        let q = Q8Matrix::quantize(&w, n, k);
        let bias = lcg(2, n);
        // Row counts below, at and above one register tile.
        for m in [1, 3, 8, 11] {
            let x = lcg(3 + m as u64, m * k);
            // The reference: the same quantised activations, summed in f64.
            let mut xq = vec![0i8; m * k];
            let mut xs = vec![0f32; m * k / BLOCK];
            for r in 0..m {
                quantize_row(
                    &x[r * k..(r + 1) * k],
                    &mut xq[r * k..(r + 1) * k],
                    &mut xs[r * k / BLOCK..(r + 1) * k / BLOCK],
                );
            }
            let wd = q.dequantize();
            for kernel in kernels() {
                let y = q.matmul_with(&x, m, Some(&bias), kernel);
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|i| {
                                wd[j * k + i] as f64
                                    * xq[r * k + i] as f64
                                    * xs[r * k / BLOCK + i / BLOCK] as f64
                            })
                            .sum::<f64>()
                            + bias[j] as f64;
                        let got = y[r * n + j] as f64;
                        assert!(
                            (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{kernel:?} m={m} ({r},{j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn quantisation_stays_close_to_the_dense_product() {
        let (n, k, m) = (64, 128, 2);
        let w = lcg(7, n * k);
        let x = lcg(8, m * k);
        let y = Q8Matrix::quantize(&w, n, k).matmul(&x, m, None);
        for r in 0..m {
            for j in 0..n {
                let dense: f32 = (0..k).map(|i| w[j * k + i] * x[r * k + i]).sum();
                // Two 8-bit roundings of values in [-1, 1] over 128 terms: an error of
                // about 0.02 (one standard deviation); a wrong sum is off by ~1.
                assert!(
                    (y[r * n + j] - dense).abs() < 0.1,
                    "{} vs {dense}",
                    y[r * n + j]
                );
            }
        }
    }

    /// The same numbers as candle's q8_0 product (ggml's kernels), up to the order of the
    /// float sums. (`n` is not a multiple of 16: for those, candle on AVX-512 machines
    /// switches to tiles whose activations are quantised in blocks of 256 instead.)
    #[test]
    fn agrees_with_candles_q8_0() {
        use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
        use candle_core::{Device, Module, Tensor};
        let (n, k, m) = (50, 256, 5);
        let w = lcg(11, n * k);
        let x = lcg(12, m * k);
        let ours = Q8Matrix::quantize(&w, n, k).matmul(&x, m, None);
        let wt = Tensor::from_vec(w, (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&wt, GgmlDType::Q8_0).unwrap();
        let xt = Tensor::from_vec(x, (m, k), &Device::Cpu).unwrap();
        let theirs = QMatMul::from_qtensor(q)
            .unwrap()
            .forward(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn zero_blocks_do_not_divide_by_zero() {
        let q = Q8Matrix::quantize(&[0.0; 64], 2, 32);
        let y = q.matmul(&[1.0; 64], 2, None);
        assert_eq!(y, vec![0.0; 4]);
    }
}
