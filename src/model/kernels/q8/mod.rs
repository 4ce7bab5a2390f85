//! q8_0 matrix products for inference on CPUs with AVX-512 VNNI, and with AMX where the
//! CPU has it.
//!
//! Weights are stored as signed 8-bit blocks of 32 values with one scale each, and
//! activations are quantised the same way, row by row: the numerics of ggml's q8_0,
//! which candle also offers. What differs is the loop, which decides how fast a batch
//! is. The weights are packed into tiles of 16 output columns, so that one 64-byte
//! load holds 4 input values of 16 columns:
//!
//! * **AVX-512 VNNI** (`x86::tile`): one `vpdpbusd` does 64 multiply-adds, and a tile is
//!   applied to 8 input rows while it is in a register, so a decoding step for 8 people
//!   reads the weights once, as a step for one person does. The weights are prefetched
//!   some blocks ahead: a decoding step's do not fit in cache. Products of more rows
//!   (the encoder) take two tiles per pass (`x86::tile_pair`), so that each activation
//!   broadcast feeds two multiply-adds.
//! * **AMX** (`amx::tiles`, Sapphire Rapids and later): the same tile layout is what an
//!   AMX weight tile is, and one `tdpbssd` multiplies up to 16 input rows by one block of
//!   a weight tile (8192 multiply-adds for 16 rows). Products of two rows or more (the
//!   encoder, the cross-attention keys and values, a batch's decoding steps) use it; one
//!   person's decoding step keeps VNNI, since for one row reading the weights is all the
//!   time a product takes.
//!
//! Both compute the same exact integer sums per block and scale them in the same order,
//! so they give the same bits: a seed gives the same reply on either kind of CPU.
//! candle's own q8_0 tiles (0.11) take 4 rows at a time, spend more of each block on
//! bookkeeping and quantise activations with a libm call per value.
//!
//! `vpdpbusd` multiplies unsigned bytes by signed ones, so the VNNI kernel reads the
//! activations with 128 added (0..=254) and starts each block's sum from −128 × the sum
//! of the weights of its column (kept beside the weights): the exact sum of the signed
//! products. AMX multiplies signed by signed and needs no correction.
//!
//! Only machines with AVX-512 VNNI use this ([`Q8Matrix::available`]); elsewhere the
//! model uses candle's q8_0 product. The portable kernel here computes the same sums in
//! plain Rust and is what the fast ones are tested against.
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

/// Input rows a tile is applied to per pass over its weights (VNNI).
const ROWS: usize = 8;

/// Input rows per pass of the VNNI kernel that computes two tiles at once, used for
/// products of more than [`ROWS`] rows (the encoder, the cross-attention keys and
/// values): each broadcast activation then feeds two multiply-adds instead of one, and
/// the loads were what bounded the one-tile kernel. 6 rows × 2 tiles of sums and
/// results fill 24 of the 32 vector registers.
const PAIR_ROWS: usize = 6;

/// What a product may do to each part of its output once computed, in place (an
/// activation fused into the product): see [`Q8Matrix::matmul_then`].
pub type Epilogue<'a> = &'a (dyn Fn(&mut [f32]) + Sync);

/// Rows of one AMX tile.
const AMX_ROWS: usize = 16;

/// The fewest rows for which a product uses AMX. One row (one person's decoding step)
/// is all weight reading, which VNNI does as fast without the tile set-up; from two
/// rows on the tiles (configured with just the rows there are) win: 8 people's
/// decoding steps took 549 ms per 40 tokens with AMX, 583 ms with VNNI (90M, q8_0).
const AMX_MIN_ROWS: usize = 2;

/// Weight tiles one pass of the AMX kernel computes (and the weights are padded to).
const AMX_TILES: usize = 4;

/// A `(n, k)` weight matrix (PyTorch's `Linear.weight` layout) and its bias, in q8_0
/// blocks packed into tiles of 16 output columns.
#[derive(Debug, Clone)]
pub struct Q8Matrix {
    /// Output columns (without the padding to whole tiles).
    n: usize,
    k: usize,
    /// Tile `t`, block `b`, group `g` of 4 values, column `c`, value `j` at
    /// `((t·blocks + b)·8 + g)·64 + c·4 + j`.
    quants: Vec<i8>,
    /// Tile `t`, block `b`, column `c` at `(t·blocks + b)·16 + c`.
    scales: Vec<f32>,
    /// −128 × the sum of each block's values, indexed as `scales`: where the VNNI
    /// kernel's sums start (see the module's documentation).
    offsets: Vec<i32>,
    /// Padded to whole tiles with zeros; zeros when the projection has none.
    bias: Vec<f32>,
}

/// Quantises one row of `x` into q8_0 blocks. Block `b`'s 32 values go to
/// `dst[b·stride ..]`, XOR-ed with `flip` (0x80 stores them + 128, as unsigned bytes),
/// and its scale to `scales[b]`. As ggml (and candle) do, values are divided by the
/// exact scale, which is then kept in f16 precision. Halves are rounded to even (ggml
/// rounds them away from zero): the instruction for it vectorises, `roundf` does not;
/// no sum changes by more than one rounding step.
fn quantize_row(x: &[f32], dst: &mut [u8], stride: usize, flip: u8, scales: &mut [f32]) {
    let nb = x.len() / BLOCK;
    assert!(nb == 0 || dst.len() >= (nb - 1) * stride + BLOCK);
    // SAFETY: the blocks lie inside `dst` (checked above).
    unsafe { quantize_row_raw(x, dst.as_mut_ptr(), stride, flip, scales) }
}

/// [`quantize_row`] into blocks at `dst`, `stride` bytes apart: the bytes between them
/// (another row's, in the AMX layout) are not touched.
///
/// # Safety
/// `dst` is valid for writes of `(blocks − 1)·stride + 32` bytes, and no one else
/// reads or writes the blocks meanwhile.
unsafe fn quantize_row_raw(x: &[f32], dst: *mut u8, stride: usize, flip: u8, scales: &mut [f32]) {
    assert!(scales.len() >= x.len() / BLOCK);
    #[cfg(target_arch = "x86_64")]
    if super::Simd::detect() == super::Simd::Avx512 {
        // SAFETY: the CPU has AVX-512 (F and BW); the caller vouches for `dst`.
        quantize_row_avx512(x, dst, stride, flip, scales);
        return;
    }
    quantize_row_portable(x, dst, stride, flip, scales);
}

/// [`quantize_row_raw`] in plain Rust: what the AVX-512 version is tested against.
///
/// # Safety
/// As [`quantize_row_raw`].
unsafe fn quantize_row_portable(
    x: &[f32],
    dst: *mut u8,
    stride: usize,
    flip: u8,
    scales: &mut [f32],
) {
    for (b, (block, d)) in x.chunks_exact(BLOCK).zip(scales.iter_mut()).enumerate() {
        let amax = block
            .iter()
            .fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m });
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        for (j, v) in block.iter().enumerate() {
            let q = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8 as u8;
            *dst.add(b * stride + j) = q ^ flip;
        }
        *d = half::f16::from_f32(scale).to_f32();
    }
}

/// [`quantize_row`] with AVX-512: two registers per block, the rounding by the
/// conversion instruction (round to nearest even, the default mode).
///
/// # Safety
/// The CPU has AVX-512 F and BW; `dst` holds `(blocks − 1)·stride + 32` bytes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_row_avx512(
    x: &[f32],
    dst: *mut u8,
    stride: usize,
    flip: u8,
    scales: &mut [f32],
) {
    use std::arch::x86_64::*;
    let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
    let flip = _mm_set1_epi8(flip as i8);
    for (b, (block, d)) in x.chunks_exact(BLOCK).zip(scales.iter_mut()).enumerate() {
        let v0 = _mm512_loadu_ps(block.as_ptr());
        let v1 = _mm512_loadu_ps(block.as_ptr().add(16));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        let scale = amax / 127.0;
        let inv = _mm512_set1_ps(if scale != 0.0 { 1.0 / scale } else { 0.0 });
        let out = dst.add(b * stride);
        for (i, v) in [v0, v1].into_iter().enumerate() {
            let q = _mm512_cvtps_epi32(_mm512_mul_ps(v, inv));
            let q = _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(q, hi), lo));
            _mm_storeu_si128(out.add(16 * i) as *mut __m128i, _mm_xor_si128(q, flip));
        }
        *d = half::f16::from_f32(scale).to_f32();
    }
}

/// How quantised input rows are laid out, for the kernel that reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RowLayout {
    /// Row-major, each value + 128 as an unsigned byte (VNNI and the portable kernel).
    Unsigned,
    /// Signed, in AMX tiles: group `g` of 16 rows, block `b`, row `r`, value `j` at
    /// `((g·blocks + b)·16 + r)·32 + j`, so one tile is 512 contiguous bytes. Padded
    /// with zero rows (scales zero too) to a whole group.
    Tiles,
}

/// Input rows quantised for a product: the values and one scale per block (row `r`,
/// block `b` at `r·blocks + b`).
struct QuantizedRows {
    k: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    layout: RowLayout,
    quants: Vec<u8>,
    scales: Vec<f32>,
}

impl QuantizedRows {
    fn new(x: &[f32], m: usize, k: usize, layout: RowLayout) -> Self {
        let nb = k / BLOCK;
        let padded = match layout {
            RowLayout::Unsigned => m,
            RowLayout::Tiles => m.next_multiple_of(AMX_ROWS),
        };
        let mut rows = Self {
            k,
            layout,
            quants: vec![0; padded * k],
            scales: vec![0.0; padded * nb],
        };
        let (qp, sp) = (
            rows.quants.as_mut_ptr() as usize,
            rows.scales.as_mut_ptr() as usize,
        );
        let len = rows.quants.len();
        let one = |r: usize| {
            // Where row `r`'s first block goes, and how far apart its blocks are.
            let (start, stride, flip) = match layout {
                RowLayout::Unsigned => (r * k, BLOCK, 0x80),
                RowLayout::Tiles => {
                    let (g, row) = (r / AMX_ROWS, r % AMX_ROWS);
                    (g * nb * AMX_ROWS * BLOCK + row * BLOCK, AMX_ROWS * BLOCK, 0)
                }
            };
            // SAFETY: row `r`'s blocks and scales are written by this call alone (the
            // bytes between its blocks belong to other rows, which are not touched),
            // and they lie inside the vectors above.
            unsafe {
                debug_assert!(start + (nb - 1) * stride + BLOCK <= len);
                let scales = std::slice::from_raw_parts_mut((sp as *mut f32).add(r * nb), nb);
                let dst = (qp as *mut u8).add(start);
                quantize_row_raw(&x[r * k..(r + 1) * k], dst, stride, flip, scales);
            }
        };
        if m * k >= 64 * 1024 {
            candle_core::utils::barrier_pool().execute_chunked(m, |range| range.for_each(one));
        } else {
            (0..m).for_each(one);
        }
        rows
    }

    /// Value `i` of row `r`, signed, whatever the layout (for the tests).
    #[cfg(test)]
    fn value(&self, r: usize, i: usize) -> i32 {
        match self.layout {
            RowLayout::Unsigned => self.quants[r * self.k + i] as i32 - 128,
            RowLayout::Tiles => {
                let nb = self.k / BLOCK;
                let (g, row, b, j) = (r / AMX_ROWS, r % AMX_ROWS, i / BLOCK, i % BLOCK);
                self.quants[((g * nb + b) * AMX_ROWS + row) * BLOCK + j] as i8 as i32
            }
        }
    }
}

/// Which instructions compute the tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    /// AVX-512 VNNI for one row, AMX tiles for products of two rows or more.
    #[cfg(target_arch = "x86_64")]
    Amx,
}

impl Kernel {
    /// The fastest kernel this CPU and OS allow. `KINDRED_NO_AMX=1` keeps a CPU with
    /// AMX on VNNI (to compare the two, or where a hypervisor mishandles AMX state).
    fn detect() -> Self {
        static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *KERNEL.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
            {
                if std::env::var_os("KINDRED_NO_AMX").is_none() && amx::enable() {
                    return Kernel::Amx;
                }
                return Kernel::Avx512Vnni;
            }
            Kernel::Portable
        })
    }

    /// How this kernel reads `m` input rows.
    fn layout(self, m: usize) -> RowLayout {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx if m >= AMX_MIN_ROWS => RowLayout::Tiles,
            _ => RowLayout::Unsigned,
        }
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
            offsets: Vec::with_capacity(padded * k / BLOCK),
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
        self.offsets.resize(s0 + tiles * TILE * nb, 0);
        self.quants[q0..]
            .par_chunks_mut(TILE * k)
            .zip(self.scales[s0..].par_chunks_mut(TILE * nb))
            .zip(self.offsets[s0..].par_chunks_mut(TILE * nb))
            .enumerate()
            .for_each(|(t, ((tq, ts), to))| {
                let mut q = vec![0u8; k];
                let mut s = vec![0f32; nb];
                for c in 0..TILE {
                    let row = t * TILE + c;
                    if row < rows {
                        quantize_row(&w[row * k..(row + 1) * k], &mut q, BLOCK, 0, &mut s);
                    } else {
                        q.fill(0);
                        s.fill(0.0);
                    }
                    for b in 0..nb {
                        let block = &q[b * BLOCK..(b + 1) * BLOCK];
                        ts[b * TILE + c] = s[b];
                        to[b * TILE + c] =
                            -128 * block.iter().map(|v| *v as i8 as i32).sum::<i32>();
                        for g in 0..BLOCK / 4 {
                            for j in 0..4 {
                                tq[b * TILE_BLOCK_BYTES + g * 4 * TILE + c * 4 + j] =
                                    block[g * 4 + j] as i8;
                            }
                        }
                    }
                }
            });
        self.n += rows;
    }

    /// Sets the bias (or none) once all rows are in.
    pub fn finish(mut self, bias: Option<&[f32]>) -> Self {
        // Padded to whole passes of the AMX kernel (four tiles).
        let padded = self.n.next_multiple_of(AMX_TILES * TILE);
        let nb = self.k / BLOCK;
        self.quants.resize(padded * self.k, 0);
        self.scales.resize(padded * nb, 0.0);
        self.offsets.resize(padded * nb, 0);
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
                let q = self.quants[(t * nb + b) * TILE_BLOCK_BYTES + g * 4 * TILE + c * 4 + j];
                *v = q as f32 * self.scales[(t * nb + b) * TILE + c];
            }
        }
        w
    }

    /// `x · Wᵀ + bias` for `m` rows of `x` (row-major `(m, k)`): a row-major `(m, n)`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(x, m, Kernel::detect(), None)
    }

    /// [`Q8Matrix::matmul`], then `epilogue` on each part of the output as soon as it
    /// is computed (while it is in the L1 cache), in place: an activation fused into the
    /// product instead of another pass over memory.
    pub fn matmul_then(&self, x: &[f32], m: usize, epilogue: Epilogue) -> Vec<f32> {
        self.matmul_with(x, m, Kernel::detect(), Some(epilogue))
    }

    fn matmul_with(
        &self,
        x: &[f32],
        m: usize,
        kernel: Kernel,
        epilogue: Option<Epilogue>,
    ) -> Vec<f32> {
        let n = self.n;
        assert_eq!(x.len(), m * self.k, "input is not (m, k)");
        let layout = kernel.layout(m);
        let rows = QuantizedRows::new(x, m, self.k, layout);
        // Not zeroed first: every value is written once by the unit that computes it
        // (zeroing 8 MB for the encoder's first feed-forward product, 1.7 MB for an
        // 8-person step's output layer, was a pass over memory for nothing).
        let mut out: Vec<f32> = Vec::with_capacity(m * n);
        let out_ptr = out.as_mut_ptr() as usize;
        // The epilogue on rows `rows` × columns `cols` of the output, once a unit that
        // wrote them is done.
        let apply_epilogue = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            if let Some(f) = epilogue {
                let cols = cols.start..cols.end.min(n);
                for r in rows {
                    // SAFETY: the unit that wrote this part is the only one to touch it,
                    // and it is inside the `(m, n)` output.
                    let part = unsafe {
                        std::slice::from_raw_parts_mut(
                            (out_ptr as *mut f32).add(r * n + cols.start),
                            cols.len(),
                        )
                    };
                    f(part);
                }
            }
        };
        #[cfg(target_arch = "x86_64")]
        if layout == RowLayout::Tiles {
            let (tiles, groups) = (n.div_ceil(AMX_TILES * TILE), m.div_ceil(AMX_ROWS));
            // Units of 16 rows × 64 columns, in row-major order: a thread's consecutive
            // units share their input rows (a few KB, kept in L1) while the weights (at
            // most a few MB) stream from L2.
            candle_core::utils::barrier_pool().execute_chunked(tiles * groups, |range| {
                let dst = Dst {
                    ptr: out_ptr as *mut f32,
                    n,
                };
                // SAFETY: the tiles layout is chosen only with `Kernel::Amx`, which
                // `detect` picks only where the CPU has AVX-512 and AMX and the OS lets
                // this process use AMX; every unit is inside the product.
                unsafe {
                    amx::configure(m);
                    for unit in range {
                        let (g, t) = (unit / tiles, unit % tiles);
                        let (r0, c0) = (g * AMX_ROWS, t * AMX_TILES * TILE);
                        let count = (m - r0).min(AMX_ROWS);
                        amx::tiles(self, AMX_TILES * t, &rows, g, count, dst);
                        apply_epilogue(r0..r0 + count, c0..c0 + AMX_TILES * TILE);
                    }
                    amx::release();
                }
            });
            // SAFETY: the units cover every (row, column) of the output once.
            unsafe { out.set_len(m * n) };
            return out;
        }
        #[cfg(target_arch = "x86_64")]
        if m > ROWS && kernel != Kernel::Portable {
            let (pairs, groups) = (n.div_ceil(2 * TILE), m.div_ceil(PAIR_ROWS));
            let tiles = n.div_ceil(TILE);
            // Pair-major, as the one-tile units below are tile-major.
            candle_core::utils::barrier_pool().execute_chunked(pairs * groups, |range| {
                for unit in range {
                    let (t, r0) = (2 * (unit / groups), (unit % groups) * PAIR_ROWS);
                    let dst = Dst {
                        ptr: out_ptr as *mut f32,
                        n,
                    };
                    let count = (m - r0).min(PAIR_ROWS);
                    if t + 1 < tiles {
                        self.tile_pair(t, &rows, r0, count, dst);
                    } else {
                        self.tile(kernel, t, &rows, r0, count, dst);
                    }
                    apply_epilogue(r0..r0 + count, t * TILE..(t + 2) * TILE);
                }
            });
            // SAFETY: the units cover every (row, column) of the output once.
            unsafe { out.set_len(m * n) };
            return out;
        }
        let (tiles, groups) = (n.div_ceil(TILE), m.div_ceil(ROWS));
        // Units in tile-major order: a thread's consecutive units share a tile, whose
        // weights then stay in the L1 cache while its row groups pass by.
        candle_core::utils::barrier_pool().execute_chunked(tiles * groups, |range| {
            for unit in range {
                let (t, r0) = (unit / groups, (unit % groups) * ROWS);
                let dst = Dst {
                    ptr: out_ptr as *mut f32,
                    n,
                };
                let count = (m - r0).min(ROWS);
                self.tile(kernel, t, &rows, r0, count, dst);
                apply_epilogue(r0..r0 + count, t * TILE..(t + 1) * TILE);
            }
        });
        // SAFETY: the units cover every (row, column) of the output once.
        unsafe { out.set_len(m * n) };
        out
    }

    /// Columns `16·t ..` of rows `r0 .. r0 + count`, from rows in the unsigned layout.
    fn tile(&self, kernel: Kernel, t: usize, x: &QuantizedRows, r0: usize, count: usize, dst: Dst) {
        match kernel {
            Kernel::Portable => self.tile_portable(t, x, r0, count, dst),
            // SAFETY: `detect` chose it only where the CPU has the features; the
            // indices are inside the matrix and the rows (checked by `matmul_with`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni | Kernel::Amx => unsafe {
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

    /// Columns `16·t .. 16·(t + 2)` of rows `r0 .. r0 + count` (`count ≤ PAIR_ROWS`), by
    /// the two-tile VNNI kernel: the same sums, scaled in the same order, as two calls
    /// of [`Q8Matrix::tile`] (so the same bits).
    #[cfg(target_arch = "x86_64")]
    fn tile_pair(&self, t: usize, x: &QuantizedRows, r0: usize, count: usize, dst: Dst) {
        // SAFETY: only called with a VNNI-capable kernel chosen by `detect`, for tiles
        // `t` and `t + 1` inside the matrix and rows inside the input.
        unsafe {
            match count {
                6 => x86::tile_pair::<6>(self, t, x, r0, dst),
                5 => x86::tile_pair::<5>(self, t, x, r0, dst),
                4 => x86::tile_pair::<4>(self, t, x, r0, dst),
                3 => x86::tile_pair::<3>(self, t, x, r0, dst),
                2 => x86::tile_pair::<2>(self, t, x, r0, dst),
                _ => x86::tile_pair::<1>(self, t, x, r0, dst),
            }
        }
    }

    /// The VNNI kernel's sums in plain Rust: unsigned activations times signed
    /// weights, from the weights' offsets.
    fn tile_portable(&self, t: usize, x: &QuantizedRows, r0: usize, count: usize, dst: Dst) {
        let (k, nb) = (self.k, self.k / BLOCK);
        for r in r0..r0 + count {
            let mut acc = [0f32; TILE];
            for b in 0..nb {
                let at = (t * nb + b) * TILE;
                let mut sums: [i32; TILE] = self.offsets[at..at + TILE].try_into().unwrap();
                let w = &self.quants[(t * nb + b) * TILE_BLOCK_BYTES..][..TILE_BLOCK_BYTES];
                for g in 0..BLOCK / 4 {
                    for (c, sum) in sums.iter_mut().enumerate() {
                        for j in 0..4 {
                            *sum += w[g * 4 * TILE + c * 4 + j] as i32
                                * x.quants[r * k + b * BLOCK + g * 4 + j] as i32;
                        }
                    }
                }
                let ws = &self.scales[at..at + TILE];
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

/// Writes a tile's finished sums (`acc[r]` for row `r0 + r`, columns `col ..`) plus the
/// bias, only the real columns: the last tile may be partly padding. Both fast kernels
/// end with this.
///
/// # Safety
/// The CPU has AVX-512 F; the rows and `col` are inside the `(m, n)` output, which no
/// other unit writes there.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_rows(
    m: &Q8Matrix,
    acc: &[std::arch::x86_64::__m512],
    r0: usize,
    col: usize,
    dst: Dst,
) {
    use std::arch::x86_64::*;
    let bias = _mm512_loadu_ps(m.bias.as_ptr().add(col));
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

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(target_arch = "x86_64")]
mod amx;

mod linear;

pub(crate) use linear::matmul_tensor;
pub use linear::Q8Linear;

#[cfg(test)]
mod tests;
