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
mod x86 {
    use super::{Dst, Q8Matrix, QuantizedRows, BLOCK, TILE, TILE_BLOCK_BYTES};
    use std::arch::x86_64::*;

    /// How many blocks (of 512 bytes) ahead the weights are prefetched into L1. A
    /// decoding step's weights (56 MB for the 90M model) do not fit in cache, and at 8
    /// rows the hardware prefetcher alone left the kernel waiting: an 8-person step's
    /// products took 2.9 ms with none, 2.1 with 4 blocks, 1.45 with 8 or 16 (one
    /// person's: 1.05 either way).
    const PREFETCH_BLOCKS: usize = 8;

    /// How many blocks ahead the weights are also asked into L2 (16 kB). One core
    /// keeps only so many lines in flight to L1, not enough to cover the memory's
    /// latency at its bandwidth; L2 takes more. With it, 8 people's decoding steps
    /// (the 90M model, q8_0, everything but sampling) took 4.34–4.62 instead of
    /// 4.64–5.00 ms (medians of 25 rounds, alternated in one process); one person's
    /// 2.53 instead of 2.67. 24 and 64 blocks did as well; 32 ahead into L1, or
    /// non-temporal, did worse (5.3 ms).
    const PREFETCH_L2_BLOCKS: usize = 32;

    /// Asks for block `b + PREFETCH_BLOCKS` of a tile's weights, scales and offsets
    /// into L1, and block `b + PREFETCH_L2_BLOCKS` into L2 (into the next tile past
    /// this one's end: a thread's units are consecutive tiles), so that they are read
    /// from memory while block `b` is computed. Prefetches never fault, so addresses
    /// past the end of the matrix (wrapping pointer arithmetic) are harmless.
    #[inline(always)]
    fn prefetch_ahead(wq: *const i8, ws: *const f32, wo: *const i32, b: usize) {
        // SAFETY: a prefetch reads nothing and cannot fault, whatever the address.
        unsafe {
            prefetch_block::<_MM_HINT_T0>(wq, ws, wo, b + PREFETCH_BLOCKS);
            prefetch_block::<_MM_HINT_T1>(wq, ws, wo, b + PREFETCH_L2_BLOCKS);
        }
    }

    /// Prefetches block `b` of a tile's weights (8 lines), scales and offsets.
    ///
    /// # Safety
    /// None needed (a prefetch cannot fault); `unsafe` only for the intrinsic.
    #[inline(always)]
    unsafe fn prefetch_block<const HINT: i32>(
        wq: *const i8,
        ws: *const f32,
        wo: *const i32,
        b: usize,
    ) {
        let ahead = wq.wrapping_add(b * TILE_BLOCK_BYTES);
        let at = b * TILE;
        for line in 0..TILE_BLOCK_BYTES / 64 {
            _mm_prefetch::<HINT>(ahead.wrapping_add(line * 64));
        }
        _mm_prefetch::<HINT>(ws.wrapping_add(at) as *const i8);
        _mm_prefetch::<HINT>(wo.wrapping_add(at) as *const i8);
    }

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
        let wo = m.offsets.as_ptr().add(t * nb * TILE);
        let xq = x.quants.as_ptr().add(r0 * k);
        let xs = x.scales.as_ptr().add(r0 * nb);
        // The first row group to pass over a tile brings its weights from memory; the
        // others find them in cache (units are tile-major).
        let first_pass = r0 == 0;
        let mut acc = [_mm512_setzero_ps(); R];
        for b in 0..nb {
            if first_pass {
                prefetch_ahead(wq, ws, wo, b);
            }
            let start = _mm512_loadu_si512(wo.add(b * TILE) as *const _);
            let mut even = [start; R];
            let mut odd = [_mm512_setzero_si512(); R];
            let wb = wq.add(b * TILE_BLOCK_BYTES);
            let xb = xq.add(b * BLOCK);
            for g in (0..BLOCK / 4).step_by(2) {
                let w0 = _mm512_loadu_si512(wb.add(g * 4 * TILE) as *const _);
                let w1 = _mm512_loadu_si512(wb.add((g + 1) * 4 * TILE) as *const _);
                for r in 0..R {
                    let a0 = (xb.add(r * k + g * 4) as *const i32).read_unaligned();
                    let a1 = (xb.add(r * k + (g + 1) * 4) as *const i32).read_unaligned();
                    even[r] = _mm512_dpbusd_epi32(even[r], _mm512_set1_epi32(a0), w0);
                    odd[r] = _mm512_dpbusd_epi32(odd[r], _mm512_set1_epi32(a1), w1);
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
        super::store_rows(m, &acc, r0, t * TILE, dst);
    }

    /// Tiles `t` and `t + 1` (32 columns) for `R` rows from `r0`: each activation
    /// broadcast feeds both tiles. One integer sum per row and tile: the two tiles'
    /// sums are independent chains already.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn tile_pair<const R: usize>(
        m: &Q8Matrix,
        t: usize,
        x: &QuantizedRows,
        r0: usize,
        dst: Dst,
    ) {
        let (k, nb) = (x.k, x.k / BLOCK);
        let wq0 = m.quants.as_ptr().add(t * nb * TILE_BLOCK_BYTES);
        let wq1 = wq0.add(nb * TILE_BLOCK_BYTES);
        let ws0 = m.scales.as_ptr().add(t * nb * TILE);
        let ws1 = ws0.add(nb * TILE);
        let wo0 = m.offsets.as_ptr().add(t * nb * TILE);
        let wo1 = wo0.add(nb * TILE);
        let xq = x.quants.as_ptr().add(r0 * k);
        let xs = x.scales.as_ptr().add(r0 * nb);
        let first_pass = r0 == 0;
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        for b in 0..nb {
            if first_pass {
                // Tile `t + 1`'s stream, which runs on into the next pair.
                prefetch_ahead(wq1, ws1, wo1, b);
            }
            let mut sums0 = [_mm512_loadu_si512(wo0.add(b * TILE) as *const _); R];
            let mut sums1 = [_mm512_loadu_si512(wo1.add(b * TILE) as *const _); R];
            let (wb0, wb1) = (wq0.add(b * TILE_BLOCK_BYTES), wq1.add(b * TILE_BLOCK_BYTES));
            let xb = xq.add(b * BLOCK);
            for g in 0..BLOCK / 4 {
                let w0 = _mm512_loadu_si512(wb0.add(g * 4 * TILE) as *const _);
                let w1 = _mm512_loadu_si512(wb1.add(g * 4 * TILE) as *const _);
                for r in 0..R {
                    let a =
                        _mm512_set1_epi32((xb.add(r * k + g * 4) as *const i32).read_unaligned());
                    sums0[r] = _mm512_dpbusd_epi32(sums0[r], a, w0);
                    sums1[r] = _mm512_dpbusd_epi32(sums1[r], a, w1);
                }
            }
            let (scale0, scale1) = (
                _mm512_loadu_ps(ws0.add(b * TILE)),
                _mm512_loadu_ps(ws1.add(b * TILE)),
            );
            for r in 0..R {
                let xscale = _mm512_set1_ps(*xs.add(r * nb + b));
                acc0[r] = _mm512_fmadd_ps(
                    _mm512_mul_ps(_mm512_cvtepi32_ps(sums0[r]), scale0),
                    xscale,
                    acc0[r],
                );
                acc1[r] = _mm512_fmadd_ps(
                    _mm512_mul_ps(_mm512_cvtepi32_ps(sums1[r]), scale1),
                    xscale,
                    acc1[r],
                );
            }
        }
        super::store_rows(m, &acc0, r0, t * TILE, dst);
        super::store_rows(m, &acc1, r0, (t + 1) * TILE, dst);
    }
}

/// The same q8_0 product on Intel AMX: one instruction (`tdpbssd`) multiplies a tile of
/// 16 input rows × 32 values (one block) by a tile of 32 values × 16 output columns
/// (one block of a weight tile, already in the layout AMX reads: 4 consecutive values
/// of each column side by side). The 16 × 16 integer sums are stored and scaled into
/// the f32 sums exactly as the VNNI kernel does it (the same integers, then the same
/// multiply and fused multiply-add per block, in block order). The scaling, not the
/// tile arithmetic, is what bounds this kernel: q8_0's scale per 32 values costs three
/// vector operations per 16 sums of 32 products.
///
/// Linux gives a process the AMX register state only once it asks
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); each thread then loads a tile configuration
/// before its first tile instruction and releases it after, so that a context switch
/// need not save 8 KB of tiles. Rust has no stable AMX intrinsics: the tile
/// instructions are written as inline assembly.
#[cfg(target_arch = "x86_64")]
mod amx {
    use super::{Dst, Q8Matrix, QuantizedRows, AMX_ROWS, AMX_TILES, BLOCK, TILE, TILE_BLOCK_BYTES};
    use std::arch::asm;
    use std::arch::x86_64::*;

    /// Whether the CPU has AMX-INT8 and the kernel lets this process use it (asking
    /// for it once).
    pub fn enable() -> bool {
        // CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8. (Leaf 7 exists on every
        // CPU with AVX-512, checked first.)
        let leaf7 = __cpuid_count(7, 0);
        if leaf7.edx & (1 << 24) == 0 || leaf7.edx & (1 << 25) == 0 {
            return false;
        }
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        const SYS_ARCH_PRCTL: i64 = 158;
        let ret: i64;
        // SAFETY: arch_prctl(ARCH_REQ_XCOMP_PERM) only changes which register state
        // the kernel lets this process use; it reads and writes no memory of ours.
        unsafe {
            asm!(
                "syscall",
                inlateout("rax") SYS_ARCH_PRCTL => ret,
                in("rdi") ARCH_REQ_XCOMP_PERM,
                in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        if ret != 0 {
            tracing::debug!(errno = -ret, "the kernel refused AMX: using AVX-512 VNNI");
        }
        ret == 0
    }

    /// The tile shapes (palette 1): tmm0–tmm3 hold up to 16 rows × 16 columns of i32
    /// sums, tmm4 up to 16 input rows × 32 values, tmm5–tmm7 one weight block (8 rows
    /// of 4 values × 16 columns).
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    /// The configuration for products of `rows` rows (at most 16): fewer rows in the
    /// tiles, fewer to multiply and store.
    const fn config(rows: usize) -> TileConfig {
        let mut c = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        // Sums (tmm0–3) and the input tile (tmm4) have the product's rows; the weight
        // tiles (tmm5–7) a block's 8 groups of 4 values.
        let mut i = 0;
        while i < 8 {
            let (bytes, tile_rows) = match i {
                0..=3 => (TILE * 4, rows),
                4 => (BLOCK, rows),
                _ => (TILE * 4, BLOCK / 4),
            };
            c.colsb[i] = bytes as u16;
            c.rows[i] = tile_rows as u8;
            i += 1;
        }
        c
    }

    /// One configuration per row count, made at compile time.
    const CONFIGS: [TileConfig; AMX_ROWS + 1] = {
        let mut all = [const { config(0) }; AMX_ROWS + 1];
        let mut r = 1;
        while r <= AMX_ROWS {
            all[r] = config(r);
            r += 1;
        }
        all
    };

    /// Loads the tile configuration for products of `rows` rows (at most 16) on this
    /// thread.
    ///
    /// # Safety
    /// The CPU must have AMX and [`enable`] must have returned true.
    pub unsafe fn configure(rows: usize) {
        let config = &CONFIGS[rows.clamp(1, AMX_ROWS)];
        asm!("ldtilecfg [{}]", in(reg) config, options(nostack, readonly));
    }

    /// Returns this thread's tiles to their initial state.
    ///
    /// # Safety
    /// As [`configure`].
    pub unsafe fn release() {
        asm!("tilerelease", options(nostack, nomem));
    }

    /// 16 × 16 i32, as a tile is stored.
    #[repr(C, align(64))]
    #[derive(Clone, Copy)]
    struct Sums([[i32; TILE]; AMX_ROWS]);

    /// The tiles of sums of one block: 16 rows × columns 0–15, 16–31, 32–47, 48–63. A
    /// pass's four tiles of sums, one input tile and three weight tiles (the fourth
    /// reuses the first's register) are all eight registers.
    type Block = [Sums; AMX_TILES];

    /// Multiplies block `b` of one row group (at `xa`) by block `b` of four weight
    /// tiles (at `w[0..4]`), into the tiles of `out`.
    ///
    /// # Safety
    /// [`configure`] was called on this thread; the pointers are at one block of a
    /// tile each.
    #[inline(always)]
    unsafe fn multiply(xa: *const u8, w: [*const i8; AMX_TILES], out: &mut Block) {
        asm!(
            "tileloadd tmm4, [{xa} + {xstride}]",
            "tileloadd tmm5, [{w0} + {wstride}]",
            "tilezero tmm0",
            "tdpbssd tmm0, tmm4, tmm5",
            "tileloadd tmm6, [{w1} + {wstride}]",
            "tilezero tmm1",
            "tdpbssd tmm1, tmm4, tmm6",
            "tileloadd tmm7, [{w2} + {wstride}]",
            "tilezero tmm2",
            "tdpbssd tmm2, tmm4, tmm7",
            "tileloadd tmm5, [{w3} + {wstride}]",
            "tilezero tmm3",
            "tdpbssd tmm3, tmm4, tmm5",
            "tilestored [{s0} + {sstride}], tmm0",
            "tilestored [{s1} + {sstride}], tmm1",
            "tilestored [{s2} + {sstride}], tmm2",
            "tilestored [{s3} + {sstride}], tmm3",
            xa = in(reg) xa,
            xstride = in(reg) BLOCK,
            w0 = in(reg) w[0],
            w1 = in(reg) w[1],
            w2 = in(reg) w[2],
            w3 = in(reg) w[3],
            wstride = in(reg) TILE * 4,
            s0 = in(reg) out[0].0.as_mut_ptr(),
            s1 = in(reg) out[1].0.as_mut_ptr(),
            s2 = in(reg) out[2].0.as_mut_ptr(),
            s3 = in(reg) out[3].0.as_mut_ptr(),
            sstride = in(reg) TILE * 4,
            options(nostack),
        );
    }

    /// Adds one tile of one block's sums into the f32 sums of its first `rows` rows:
    /// the integer sums times the weights' scales, times each row's scale (`xs`, rows
    /// `nb` apart).
    #[target_feature(enable = "avx512f,avx512bw")]
    #[inline]
    unsafe fn scale(
        acc: &mut [__m512; AMX_ROWS],
        sums: &Sums,
        wscale: *const f32,
        xs: *const f32,
        nb: usize,
        rows: usize,
    ) {
        let wscale = _mm512_loadu_ps(wscale);
        for (r, a) in acc.iter_mut().enumerate().take(rows) {
            let s = _mm512_load_si512(sums.0[r].as_ptr() as *const _);
            *a = _mm512_fmadd_ps(
                _mm512_mul_ps(_mm512_cvtepi32_ps(s), wscale),
                _mm512_set1_ps(*xs.add(r * nb)),
                *a,
            );
        }
    }

    /// Columns `16·t .. 16·(t + 4)` of the first `rows` rows of group `g`.
    ///
    /// The tile instructions for block `b + 1` are issued before block `b` is scaled,
    /// into a second set of buffers: the tile unit then multiplies while the vector
    /// units scale.
    ///
    /// # Safety
    /// [`configure`] was called on this thread with at least `rows` rows; the CPU has
    /// AVX-512; `t` is a multiple of 4 and `t`, `g` are inside the (padded) product;
    /// `x` is in the tiles layout.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn tiles(
        m: &Q8Matrix,
        t: usize,
        x: &QuantizedRows,
        g: usize,
        rows: usize,
        dst: Dst,
    ) {
        let nb = x.k / BLOCK;
        let r0 = g * AMX_ROWS;
        let wq = m.quants.as_ptr().add(t * nb * TILE_BLOCK_BYTES);
        let ws = m.scales.as_ptr().add(t * nb * TILE);
        let xq = x.quants.as_ptr().add(g * nb * AMX_ROWS * BLOCK);
        let xs = x.scales.as_ptr().add(r0 * nb);
        let mut acc = [[_mm512_setzero_ps(); AMX_ROWS]; AMX_TILES];
        let mut sums = [[Sums([[0; TILE]; AMX_ROWS]); AMX_TILES]; 2];
        let block = |b: usize, out: &mut Block| {
            let w = std::array::from_fn(|i| wq.add((i * nb + b) * TILE_BLOCK_BYTES));
            multiply(xq.add(b * AMX_ROWS * BLOCK), w, out);
        };
        block(0, &mut sums[0]);
        for b in 0..nb {
            let [even, odd] = &mut sums;
            let (now, next) = if b % 2 == 0 { (even, odd) } else { (odd, even) };
            if b + 1 < nb {
                block(b + 1, next);
            }
            for (i, a) in acc.iter_mut().enumerate() {
                let wscale = ws.add((i * nb + b) * TILE);
                scale(a, &now[i], wscale, xs.add(b), nb, rows);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            let col = (t + i) * TILE;
            if col >= m.n {
                break;
            }
            super::store_rows(m, &a[..rows], r0, col, dst);
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

    /// The portable kernel and every fast kernel this machine has.
    fn kernels() -> Vec<Kernel> {
        let mut v = vec![Kernel::Portable];
        match Kernel::detect() {
            Kernel::Portable => {
                eprintln!("this CPU has no AVX-512 VNNI: only the portable kernel is checked")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                eprintln!("this CPU (or its OS) offers no AMX: the AMX kernel is not checked");
                v.push(Kernel::Avx512Vnni);
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => v.extend([Kernel::Avx512Vnni, Kernel::Amx]),
        }
        v
    }

    #[test]
    fn every_kernel_matches_the_dequantised_product() {
        // Columns not a whole number of tiles (nor of the AMX kernel's four), an odd
        // number of blocks; rows below, at and above one row group of each kernel.
        let (n, k) = (37, 96);
        let w = lcg(1, n * k);
        let bias = lcg(2, n);
        let q = Q8Matrix::quantize(&w, n, k, Some(&bias));
        let wd = q.dequantize();
        for m in [1, 2, 3, 8, 11, 16, 17, 33, 40] {
            let x = lcg(3 + m as u64, m * k);
            for kernel in kernels() {
                // The reference: the same quantised activations, summed in f64.
                let xq = QuantizedRows::new(&x, m, k, kernel.layout(m));
                let y = q.matmul_with(&x, m, kernel, None);
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|i| {
                                wd[j * k + i] as f64
                                    * xq.value(r, i) as f64
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

    /// A row's result does not depend on the rows computed with it: the kernels for
    /// many rows (two tiles per pass on VNNI, AMX) give the bits one row alone gets, so
    /// a person's reply does not change with who else is in the batch.
    #[test]
    fn a_row_gets_the_same_bits_alone_and_in_a_batch() {
        for (n, k) in [(37, 96), (64, 512), (50, 2048)] {
            let q = Q8Matrix::quantize(&lcg(31, n * k), n, k, Some(&lcg(32, n)));
            for m in [2, 7, 9, 13, 40] {
                let x = lcg(33 + m as u64, m * k);
                for kernel in kernels() {
                    let together = q.matmul_with(&x, m, kernel, None);
                    for r in 0..m {
                        let alone = q.matmul_with(&x[r * k..(r + 1) * k], 1, kernel, None);
                        assert!(
                            together[r * n..(r + 1) * n]
                                .iter()
                                .zip(&alone)
                                .all(|(a, b)| a.to_bits() == b.to_bits()),
                            "{kernel:?} ({n}, {k}), m={m}: row {r} differs"
                        );
                    }
                }
            }
        }
    }

    /// AMX and VNNI compute the same integer sums and scale them in the same order, so
    /// their products are the same bits: a seed gives the same reply on either CPU.
    #[test]
    fn amx_and_vnni_give_the_same_bits() {
        let kernels = kernels();
        #[cfg(target_arch = "x86_64")]
        if kernels.contains(&Kernel::Amx) {
            for (n, k) in [(40, 96), (64, 512), (50, 2048), (1000, 512)] {
                let w = lcg(21, n * k);
                let q = Q8Matrix::quantize(&w, n, k, Some(&lcg(22, n)));
                for m in [2, 5, 8, 16, 17, 31, 48, 130] {
                    let x = lcg(23 + m as u64, m * k);
                    let amx = q.matmul_with(&x, m, Kernel::Amx, None);
                    let vnni = q.matmul_with(&x, m, Kernel::Avx512Vnni, None);
                    assert!(
                        amx.iter()
                            .zip(&vnni)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "n={n} k={k} m={m}: AMX and VNNI differ"
                    );
                }
            }
            return;
        }
        let _ = kernels;
        eprintln!("no AMX on this machine: nothing to compare");
    }

    /// The AVX-512 quantiser writes the same bytes and scales as the plain one, in both
    /// layouts, including all-zero blocks and exact halves (rounded to even).
    #[test]
    fn quantisers_agree() {
        let k = 128;
        let mut x = lcg(31, 3 * k);
        x[..BLOCK].fill(0.0);
        for (i, v) in x[BLOCK..2 * BLOCK].iter_mut().enumerate() {
            // 127 · (i / 31) lands on halves for some i once scaled.
            *v = i as f32 / 2.0 - 8.0;
        }
        x[2 * BLOCK] = 127.0;
        let nb = k / BLOCK;
        for (stride, flip) in [(BLOCK, 0x80u8), (AMX_ROWS * BLOCK, 0)] {
            for row in x.chunks_exact(k) {
                let len = (nb - 1) * stride + BLOCK;
                let (mut fast, mut plain) = (vec![0u8; len], vec![0u8; len]);
                let (mut fs, mut ps) = (vec![0f32; nb], vec![0f32; nb]);
                quantize_row(row, &mut fast, stride, flip, &mut fs);
                // SAFETY: `plain` holds the blocks at `stride`.
                unsafe { quantize_row_portable(row, plain.as_mut_ptr(), stride, flip, &mut ps) };
                assert_eq!(fast, plain);
                assert_eq!(fs, ps);
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

    /// An epilogue sees every output value once, after it is computed, with every
    /// kernel and row count.
    #[test]
    fn the_epilogue_applies_to_every_output_once() {
        let (n, k) = (70, 64);
        let q = Q8Matrix::quantize(&lcg(41, n * k), n, k, Some(&lcg(42, n)));
        let twice_plus_one = |part: &mut [f32]| part.iter_mut().for_each(|v| *v = 2.0 * *v + 1.0);
        for m in [1, 3, 9, 16, 40] {
            let x = lcg(43, m * k);
            for kernel in kernels() {
                let plain = q.matmul_with(&x, m, kernel, None);
                let then = q.matmul_with(&x, m, kernel, Some(&twice_plus_one));
                for (a, b) in plain.iter().zip(&then) {
                    assert_eq!(2.0 * a + 1.0, *b, "{kernel:?} m={m}");
                }
            }
        }
    }

    #[test]
    fn zero_blocks_do_not_divide_by_zero() {
        let q = Q8Matrix::quantize(&[0.0; 64], 2, 32, None);
        let y = q.matmul(&[1.0; 64], 2);
        assert_eq!(y, vec![0.0; 4]);
    }
}

/// A q8_0 linear layer (`x · Wᵀ + b`) on [`Q8Matrix`], as a candle [`Module`]: what a
/// model uses in place of a dense layer once quantised. Inputs of any leading shape.
///
/// [`Module`]: candle_core::Module
#[derive(Debug, Clone)]
pub struct Q8Linear {
    weight: std::sync::Arc<Q8Matrix>,
}

impl Q8Linear {
    /// Quantises an `(n, k)` f32 weight (and bias), a few thousand rows at a time so a
    /// large matrix (an output layer) never needs a second f32 copy.
    pub fn quantize(
        weight: &candle_core::Tensor,
        bias: Option<&candle_core::Tensor>,
    ) -> candle_core::Result<Self> {
        let (n, k) = weight.dims2()?;
        if !k.is_multiple_of(BLOCK) {
            candle_core::bail!("q8_0 needs an input size that is a multiple of 32, not {k}");
        }
        let w = weight.to_dtype(candle_core::DType::F32)?;
        let mut q = Q8Matrix::with_capacity(n, k);
        for start in (0..n).step_by(4096) {
            let rows = w
                .narrow(0, start, 4096.min(n - start))?
                .flatten_all()?
                .to_vec1::<f32>()?;
            q.push_rows(&rows);
        }
        let bias = match bias {
            Some(b) => Some(b.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?),
            None => None,
        };
        Ok(Self {
            weight: std::sync::Arc::new(q.finish(bias.as_deref())),
        })
    }

    /// The weight as a dense f32 `(n, k)` tensor again.
    pub fn dequantize(&self) -> candle_core::Result<candle_core::Tensor> {
        candle_core::Tensor::from_vec(
            self.weight.dequantize(),
            (self.weight.rows(), self.weight.k),
            &candle_core::Device::Cpu,
        )
    }

    /// The product with `epilogue` applied to the output's parts as they are computed.
    pub fn forward_then(
        &self,
        x: &candle_core::Tensor,
        epilogue: Option<Epilogue>,
    ) -> candle_core::Result<candle_core::Tensor> {
        matmul_tensor(&self.weight, x, epilogue)
    }
}

/// `x · Wᵀ + b` for a tensor `x` of any leading shape, with `epilogue` applied to the
/// output's parts as they are computed.
pub(crate) fn matmul_tensor(
    weight: &Q8Matrix,
    x: &candle_core::Tensor,
    epilogue: Option<Epilogue>,
) -> candle_core::Result<candle_core::Tensor> {
    let x = x.to_dtype(candle_core::DType::F32)?.contiguous()?;
    let mut dims = x.dims().to_vec();
    let k = *dims.last().expect("a projection's input has dimensions");
    let m = x.elem_count() / k;
    let y = {
        let (storage, layout) = x.storage_and_layout();
        let (start, end) = layout.contiguous_offsets().expect("made contiguous above");
        let x =
            &super::cpu_values(&storage, layout, "q8_0 projections run on the CPU")?[..end - start];
        match epilogue {
            Some(f) => weight.matmul_then(x, m, f),
            None => weight.matmul(x, m),
        }
    };
    *dims.last_mut().expect("checked above") = weight.rows();
    candle_core::Tensor::from_vec(y, dims, x.device())
}

impl candle_core::Module for Q8Linear {
    fn forward(&self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        self.forward_then(x, None)
    }
}
