//! q8_0 matrix products for inference on CPUs with AVX-512 VNNI.
//!
//! Weights are stored as signed 8-bit blocks of 32 values with one scale each, and
//! activations are quantised the same way, row by row: the numerics of ggml's q8_0,
//! which candle also offers. What differs is the loop, which decides how fast a batch
//! is. The weights are packed into tiles of 16 output columns, so that one 64-byte
//! load holds 4 input values of 16 columns: one `vpdpbusd` then does 64 multiply-adds,
//! and a tile is applied to 8 input rows while it is in a register. So the encoder
//! (hundreds of rows) runs near the instruction's throughput, and a decoding step for 8
//! people reads the weights once, as a step for one person does. candle's own q8_0
//! tiles (0.11) take 4 rows at a time, spend more of each block on bookkeeping and
//! quantise activations with a libm call per value; with this kernel the encoder for 8
//! contexts of 128 tokens went from 350–375 to 295–310 ms (before the attention and
//! GELU changes; its products now run at 400–470 G int8-ops/s on two cores).
//!
//! `vpdpbusd` multiplies unsigned bytes by signed ones, so the weights are kept with
//! 128 added (1..=255) and each activation block's sum, times 128, is taken off again:
//! it is where the integer sum starts.
//!
//! Only machines with AVX-512 VNNI use this ([`Q8Matrix::available`]); elsewhere the
//! model uses candle's q8_0 product. The portable kernel here computes the same sums in
//! plain Rust and is what the fast one is tested against.
//!
//! The work is shared out on candle's own CPU thread pool (`barrier_pool`), the one its
//! other operations in a decoding step use: a second pool (rayon) would leave its threads
//! spinning for work on the same two cores while candle's run, and candle's while ours do.
//! (Quantising the weights at load time, when nothing else runs, uses rayon.)

use rayon::prelude::*;

/// Values per block (and so the granularity of the scales).
pub const BLOCK: usize = 32;

/// Output columns per tile: one 512-bit register of 32-bit sums.
const TILE: usize = 16;

/// Bytes of one tile's block: 16 columns × 32 values.
const TILE_BLOCK_BYTES: usize = TILE * BLOCK;

/// Input rows a tile is applied to per pass over its weights.
const ROWS: usize = 8;

/// A `(n, k)` weight matrix (PyTorch's `Linear.weight` layout) and its bias, in q8_0
/// blocks packed into tiles of 16 output columns.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    /// Output columns (without the padding to whole tiles).
    n: usize,
    k: usize,
    /// Tile `t`, block `b`, group `g` of 4 values, column `c`, value `j` at
    /// `((t·blocks + b)·8 + g)·64 + c·4 + j`, stored as the weight + 128.
    quants: Vec<u8>,
    /// Tile `t`, block `b`, column `c` at `(t·blocks + b)·16 + c`.
    scales: Vec<f32>,
    /// Padded to whole tiles with zeros; zeros when the projection has none.
    bias: Vec<f32>,
}

/// Quantises one row of `x` into q8_0 blocks: `quants.len() == scales.len() * BLOCK`.
/// As ggml (and candle) do, values are divided by the exact scale, which is then kept
/// in f16 precision. Halves are rounded to even (ggml rounds them away from zero): the
/// instruction for it vectorises, `roundf` does not; no sum changes by more than one
/// rounding step.
#[inline(always)]
fn quantize_row(x: &[f32], quants: &mut [i8], scales: &mut [f32]) {
    for ((block, q), d) in x
        .chunks_exact(BLOCK)
        .zip(quants.chunks_exact_mut(BLOCK))
        .zip(scales.iter_mut())
    {
        let amax = block
            .iter()
            .fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (qi, v) in q.iter_mut().zip(block) {
            *qi = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
        }
        *d = half::f16::from_f32(scale).to_f32();
    }
}

/// Input rows quantised for a product: the values, one scale per block, and per block
/// `-128 ·` the sum of its values (where the unsigned-weight sums start).
struct QuantizedRows {
    k: usize,
    quants: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
}

/// One input row into `quants`, `scales` and `offsets` (see [`QuantizedRows`]).
#[inline(always)]
fn quantize_input_row(x: &[f32], quants: &mut [i8], scales: &mut [f32], offsets: &mut [i32]) {
    quantize_row(x, quants, scales);
    for (o, block) in offsets.iter_mut().zip(quants.chunks_exact(BLOCK)) {
        *o = -128 * block.iter().map(|v| *v as i32).sum::<i32>();
    }
}

impl QuantizedRows {
    fn new(x: &[f32], m: usize, k: usize) -> Self {
        let nb = k / BLOCK;
        let mut rows = Self {
            k,
            quants: vec![0; m * k],
            scales: vec![0.0; m * nb],
            offsets: vec![0; m * nb],
        };
        let (qp, sp, op) = (
            rows.quants.as_mut_ptr() as usize,
            rows.scales.as_mut_ptr() as usize,
            rows.offsets.as_mut_ptr() as usize,
        );
        let one = |r: usize| {
            // SAFETY: each row index is visited once, so the slices made for it do not
            // overlap any other's, and all lie inside the vectors above.
            let (q, s, o) = unsafe {
                (
                    std::slice::from_raw_parts_mut((qp as *mut i8).add(r * k), k),
                    std::slice::from_raw_parts_mut((sp as *mut f32).add(r * nb), nb),
                    std::slice::from_raw_parts_mut((op as *mut i32).add(r * nb), nb),
                )
            };
            let x = &x[r * k..(r + 1) * k];
            // Vector rounding, maxima and sums (the baseline target has no vector
            // rounding: every value would be a call to `rintf`).
            super::Simd::run(
                #[inline(always)]
                || quantize_input_row(x, q, s, o),
            );
        };
        if m * k >= 64 * 1024 {
            candle_core::utils::barrier_pool().execute_chunked(m, |range| range.for_each(one));
        } else {
            (0..m).for_each(one);
        }
        rows
    }
}

/// Which instructions compute the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
}

impl Kernel {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
        {
            return Kernel::Avx512Vnni;
        }
        Kernel::Portable
    }
}

impl Q8Matrix {
    /// Whether this CPU has the instructions the fast kernel needs (AVX-512 VNNI).
    pub fn available() -> bool {
        Kernel::detect() != Kernel::Portable
    }

    /// An empty matrix of `k` columns with room for `n` rows, to be filled with
    /// [`Q8Matrix::push_rows`] (so a large matrix never needs a second f32 copy), then
    /// given its bias with [`Q8Matrix::finish`].
    pub fn with_capacity(n: usize, k: usize) -> Self {
        assert!(
            k > 0 && k.is_multiple_of(BLOCK),
            "q8_0 needs k % 32 == 0, not {k}"
        );
        let padded = n.next_multiple_of(TILE);
        Self {
            n: 0,
            k,
            quants: Vec::with_capacity(padded * k),
            scales: Vec::with_capacity(padded * k / BLOCK),
            bias: Vec::new(),
        }
    }

    /// Appends rows (row-major, `k` values each). Every call but the last must bring a
    /// whole number of tiles (a multiple of 16 rows); the last is padded with zeros.
    pub fn push_rows(&mut self, w: &[f32]) {
        let k = self.k;
        let nb = k / BLOCK;
        assert_eq!(w.len() % k, 0, "rows of {k} values expected");
        assert!(
            self.n.is_multiple_of(TILE),
            "only the last rows pushed may leave a tile unfinished"
        );
        let rows = w.len() / k;
        let tiles = rows.div_ceil(TILE);
        let (q0, s0) = (self.quants.len(), self.scales.len());
        self.quants.resize(q0 + tiles * TILE * k, 0);
        self.scales.resize(s0 + tiles * TILE * nb, 0.0);
        self.quants[q0..]
            .par_chunks_mut(TILE * k)
            .zip(self.scales[s0..].par_chunks_mut(TILE * nb))
            .enumerate()
            .for_each(|(t, (tq, ts))| {
                let mut q = vec![0i8; k];
                let mut s = vec![0f32; nb];
                for c in 0..TILE {
                    let row = t * TILE + c;
                    if row < rows {
                        let w = &w[row * k..(row + 1) * k];
                        super::Simd::run(
                            #[inline(always)]
                            || quantize_row(w, &mut q, &mut s),
                        );
                    } else {
                        q.fill(0);
                        s.fill(0.0);
                    }
                    for b in 0..nb {
                        ts[b * TILE + c] = s[b];
                        for g in 0..BLOCK / 4 {
                            for j in 0..4 {
                                tq[b * TILE_BLOCK_BYTES + g * 4 * TILE + c * 4 + j] =
                                    (q[b * BLOCK + g * 4 + j] as i32 + 128) as u8;
                            }
                        }
                    }
                }
            });
        self.n += rows;
    }

    /// Sets the bias (or none) once all rows are in.
    pub fn finish(mut self, bias: Option<&[f32]>) -> Self {
        let padded = self.n.next_multiple_of(TILE);
        self.bias = vec![0.0; padded];
        if let Some(b) = bias {
            assert_eq!(b.len(), self.n, "one bias per output column");
            self.bias[..self.n].copy_from_slice(b);
        }
        self
    }

    /// Quantises a row-major `(n, k)` matrix and its bias; `k` must be a multiple of
    /// [`BLOCK`].
    pub fn quantize(w: &[f32], n: usize, k: usize, bias: Option<&[f32]>) -> Self {
        assert_eq!(w.len(), n * k, "not an (n, k) matrix");
        let mut q = Self::with_capacity(n, k);
        q.push_rows(w);
        q.finish(bias)
    }

    /// Output columns.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// The weights as f32 again, row-major `(n, k)` (for tests).
    pub fn dequantize(&self) -> Vec<f32> {
        let (k, nb) = (self.k, self.k / BLOCK);
        let mut w = vec![0f32; self.n * k];
        for (row, out) in w.chunks_exact_mut(k).enumerate() {
            let (t, c) = (row / TILE, row % TILE);
            for (i, v) in out.iter_mut().enumerate() {
                let (b, g, j) = (i / BLOCK, (i % BLOCK) / 4, i % 4);
                let q = self.quants[(t * nb + b) * TILE_BLOCK_BYTES + g * 4 * TILE + c * 4 + j]
                    as i32
                    - 128;
                *v = q as f32 * self.scales[(t * nb + b) * TILE + c];
            }
        }
        w
    }

    /// `x · Wᵀ + bias` for `m` rows of `x` (row-major `(m, k)`): a row-major `(m, n)`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(x, m, Kernel::detect())
    }

    fn matmul_with(&self, x: &[f32], m: usize, kernel: Kernel) -> Vec<f32> {
        let n = self.n;
        assert_eq!(x.len(), m * self.k, "input is not (m, k)");
        let rows = QuantizedRows::new(x, m, self.k);
        let mut out = vec![0f32; m * n];
        let (tiles, groups) = (n.div_ceil(TILE), m.div_ceil(ROWS));
        let out_ptr = out.as_mut_ptr() as usize;
        // Units in tile-major order: a thread's consecutive units share a tile, whose
        // weights then stay in the L1 cache while its row groups pass by.
        candle_core::utils::barrier_pool().execute_chunked(tiles * groups, |range| {
            for unit in range {
                let (t, r0) = (unit / groups, (unit % groups) * ROWS);
                let dst = Dst {
                    ptr: out_ptr as *mut f32,
                    n,
                };
                self.tile(kernel, t, &rows, r0, (m - r0).min(ROWS), dst);
            }
        });
        out
    }

    /// Columns `16·t ..` of rows `r0 .. r0 + count`.
    fn tile(&self, kernel: Kernel, t: usize, x: &QuantizedRows, r0: usize, count: usize, dst: Dst) {
        match kernel {
            Kernel::Portable => self.tile_portable(t, x, r0, count, dst),
            // SAFETY: `detect` chose it only where the CPU has the features; the
            // indices are inside the matrix and the rows (checked by `matmul_with`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => unsafe {
                match count {
                    8 => x86::tile::<8>(self, t, x, r0, dst),
                    7 => x86::tile::<7>(self, t, x, r0, dst),
                    6 => x86::tile::<6>(self, t, x, r0, dst),
                    5 => x86::tile::<5>(self, t, x, r0, dst),
                    4 => x86::tile::<4>(self, t, x, r0, dst),
                    3 => x86::tile::<3>(self, t, x, r0, dst),
                    2 => x86::tile::<2>(self, t, x, r0, dst),
                    _ => x86::tile::<1>(self, t, x, r0, dst),
                }
            },
        }
    }

    fn tile_portable(&self, t: usize, x: &QuantizedRows, r0: usize, count: usize, dst: Dst) {
        let (k, nb) = (self.k, self.k / BLOCK);
        for r in r0..r0 + count {
            let mut acc = [0f32; TILE];
            for b in 0..nb {
                let mut sums = [x.offsets[r * nb + b]; TILE];
                let w = &self.quants[(t * nb + b) * TILE_BLOCK_BYTES..][..TILE_BLOCK_BYTES];
                for g in 0..BLOCK / 4 {
                    for (c, sum) in sums.iter_mut().enumerate() {
                        for j in 0..4 {
                            *sum += w[g * 4 * TILE + c * 4 + j] as i32
                                * x.quants[r * k + b * BLOCK + g * 4 + j] as i32;
                        }
                    }
                }
                let ws = &self.scales[(t * nb + b) * TILE..][..TILE];
                for c in 0..TILE {
                    acc[c] += sums[c] as f32 * ws[c] * x.scales[r * nb + b];
                }
            }
            for (c, a) in acc.iter().enumerate() {
                let col = t * TILE + c;
                if col < self.n {
                    // SAFETY: `(r, col)` is inside the `(m, n)` output, and no other
                    // unit writes this tile's columns of these rows.
                    unsafe { *dst.ptr.add(r * dst.n + col) = a + self.bias[col] };
                }
            }
        }
    }
}

/// Where a unit writes: the `(m, n)` output, shared by units that write disjoint parts.
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    n: usize,
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Dst, Q8Matrix, QuantizedRows, BLOCK, TILE, TILE_BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// One tile of 16 columns for `R` rows from `r0`. Two integer sums per row (even
    /// and odd groups of 4 values) so that one row alone is not held up by the
    /// instruction's latency.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile<const R: usize>(
        m: &Q8Matrix,
        t: usize,
        x: &QuantizedRows,
        r0: usize,
        dst: Dst,
    ) {
        let (k, nb) = (x.k, x.k / BLOCK);
        let wq = m.quants.as_ptr().add(t * nb * TILE_BLOCK_BYTES);
        let ws = m.scales.as_ptr().add(t * nb * TILE);
        let xq = x.quants.as_ptr().add(r0 * k);
        let xs = x.scales.as_ptr().add(r0 * nb);
        let xo = x.offsets.as_ptr().add(r0 * nb);
        let mut acc = [_mm512_setzero_ps(); R];
        for b in 0..nb {
            let mut even = [_mm512_setzero_si512(); R];
            let mut odd = [_mm512_setzero_si512(); R];
            for (r, e) in even.iter_mut().enumerate() {
                *e = _mm512_set1_epi32(*xo.add(r * nb + b));
            }
            let wb = wq.add(b * TILE_BLOCK_BYTES);
            let xb = xq.add(b * BLOCK);
            for g in (0..BLOCK / 4).step_by(2) {
                let w0 = _mm512_loadu_si512(wb.add(g * 4 * TILE) as *const _);
                let w1 = _mm512_loadu_si512(wb.add((g + 1) * 4 * TILE) as *const _);
                for r in 0..R {
                    let a0 = (xb.add(r * k + g * 4) as *const i32).read_unaligned();
                    let a1 = (xb.add(r * k + (g + 1) * 4) as *const i32).read_unaligned();
                    even[r] = _mm512_dpbusd_epi32(even[r], w0, _mm512_set1_epi32(a0));
                    odd[r] = _mm512_dpbusd_epi32(odd[r], w1, _mm512_set1_epi32(a1));
                }
            }
            let wscale = _mm512_loadu_ps(ws.add(b * TILE));
            for r in 0..R {
                let sum = _mm512_cvtepi32_ps(_mm512_add_epi32(even[r], odd[r]));
                acc[r] = _mm512_fmadd_ps(
                    _mm512_mul_ps(sum, wscale),
                    _mm512_set1_ps(*xs.add(r * nb + b)),
                    acc[r],
                );
            }
        }
        let col = t * TILE;
        let bias = _mm512_loadu_ps(m.bias.as_ptr().add(col));
        // The last tile may be partly padding: only the real columns are written.
        let mask: __mmask16 = if col + TILE <= m.n {
            0xffff
        } else {
            (1u16 << (m.n - col)) - 1
        };
        for (r, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(
                dst.ptr.add((r0 + r) * dst.n + col),
                mask,
                _mm512_add_ps(*a, bias),
            );
        }
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
        if Kernel::detect() != Kernel::Portable {
            v.push(Kernel::detect());
        } else {
            eprintln!("this CPU has no AVX-512 VNNI: only the portable kernel is checked");
        }
        v
    }

    #[test]
    fn every_kernel_matches_the_dequantised_product() {
        // Columns not a whole number of tiles; rows below, at and above one row group.
        let (n, k) = (37, 96);
        let w = lcg(1, n * k);
        let bias = lcg(2, n);
        let q = Q8Matrix::quantize(&w, n, k, Some(&bias));
        let wd = q.dequantize();
        for m in [1, 3, 8, 11, 17] {
            let x = lcg(3 + m as u64, m * k);
            // The reference: the same quantised activations, summed in f64.
            let xq = QuantizedRows::new(&x, m, k);
            for kernel in kernels() {
                let y = q.matmul_with(&x, m, kernel);
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|i| {
                                wd[j * k + i] as f64
                                    * xq.quants[r * k + i] as f64
                                    * xq.scales[r * k / BLOCK + i / BLOCK] as f64
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
    fn rows_pushed_in_parts_pack_like_rows_pushed_at_once() {
        let (n, k) = (40, 64);
        let w = lcg(5, n * k);
        let whole = Q8Matrix::quantize(&w, n, k, None);
        let mut parts = Q8Matrix::with_capacity(n, k);
        parts.push_rows(&w[..32 * k]);
        parts.push_rows(&w[32 * k..]);
        let parts = parts.finish(None);
        assert_eq!(whole.quants, parts.quants);
        assert_eq!(whole.scales, parts.scales);
        let x = lcg(6, 3 * k);
        assert_eq!(whole.matmul(&x, 3), parts.matmul(&x, 3));
    }

    #[test]
    fn quantisation_stays_close_to_the_dense_product() {
        let (n, k, m) = (64, 128, 2);
        let w = lcg(7, n * k);
        let x = lcg(8, m * k);
        let y = Q8Matrix::quantize(&w, n, k, None).matmul(&x, m);
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
    /// float sums and the rounding of halves. (`n` is not a multiple of 16: for those,
    /// candle on AVX-512 machines uses its plain q8_0 kernel, whose activations are
    /// quantised in blocks of 32 as ours are.)
    #[test]
    fn agrees_with_candles_q8_0() {
        use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
        use candle_core::{Device, Module, Tensor};
        let (n, k, m) = (50, 256, 5);
        let w = lcg(11, n * k);
        let x = lcg(12, m * k);
        let ours = Q8Matrix::quantize(&w, n, k, None).matmul(&x, m);
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
        let q = Q8Matrix::quantize(&[0.0; 64], 2, 32, None);
        let y = q.matmul(&[1.0; 64], 2);
        assert_eq!(y, vec![0.0; 4]);
    }
}
