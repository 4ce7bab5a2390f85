//! The AVX-512 VNNI q8_0 tiles: 16 output columns at a time, one `vpdpbusd` per 4
//! input values of 16 columns, 8 input rows per pass over a tile (see the module docs).

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
unsafe fn prefetch_block<const HINT: i32>(wq: *const i8, ws: *const f32, wo: *const i32, b: usize) {
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
pub unsafe fn tile<const R: usize>(m: &Q8Matrix, t: usize, x: &QuantizedRows, r0: usize, dst: Dst) {
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
                let a = _mm512_set1_epi32((xb.add(r * k + g * 4) as *const i32).read_unaligned());
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
