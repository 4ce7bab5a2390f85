//! The same q8_0 product on Intel AMX: one instruction (`tdpbssd`) multiplies a tile of
//! 16 input rows × 32 values (one block) by a tile of 32 values × 16 output columns
//! (one block of a weight tile, already in the layout AMX reads: 4 consecutive values
//! of each column side by side). The 16 × 16 integer sums are stored and scaled into
//! the f32 sums exactly as the VNNI kernel does it (the same integers, then the same
//! multiply and fused multiply-add per block, in block order). The scaling, not the
//! tile arithmetic, is what bounds this kernel: q8_0's scale per 32 values costs three
//! vector operations per 16 sums of 32 products.
//!
//! Linux gives a process the AMX register state only once it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM)`); each thread then loads a tile configuration
//! before its first tile instruction and releases it after, so that a context switch
//! need not save 8 KB of tiles. Rust has no stable AMX intrinsics: the tile
//! instructions are written as inline assembly.

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
pub unsafe fn tiles(m: &Q8Matrix, t: usize, x: &QuantizedRows, g: usize, rows: usize, dst: Dst) {
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
