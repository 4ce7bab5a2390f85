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
