use super::*;
use crate::model::test_util::max_diff;

/// The tensor-operation formula the kernels replace.
fn reference(q: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Tensor {
    let (b, h, t, d) = q.dims4().unwrap();
    let mut scores = q.matmul(&k.t().unwrap()).unwrap();
    if let Some(m) = mask {
        scores = scores.broadcast_add(m).unwrap();
    }
    candle_nn::ops::softmax_last_dim(&scores)
        .unwrap()
        .matmul(&v.contiguous().unwrap())
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, t, h * d))
        .unwrap()
}

/// Many queries with a padding mask `(b, 1, 1, tk)` and with a causal one
/// `(1, 1, tq, tk)`, keys and values read through a narrowed view (as a cache is),
/// and one query per conversation: both kernels give the formula's result, for a
/// few sizes (one conversation and several, head sizes of 16 to 48).
#[test]
fn the_kernels_compute_masked_attention() {
    for size in [
        (3, 4, 7, 9, 16),
        (2, 3, 19, 45, 32),
        (1, 2, 9, 33, 48),
        (2, 2, 5, 7, 20),
    ] {
        masked_attention_is_the_formula(size);
    }
}

fn masked_attention_is_the_formula((b, h, tq, tk, d): (usize, usize, usize, usize, usize)) {
    let dev = Device::Cpu;
    let q = Tensor::randn(0f32, 1.0, (b, h, tq, d), &dev).unwrap();
    let kv_store = Tensor::randn(0f32, 1.0, (b, h, tk + 5, 2 * d), &dev).unwrap();
    let k = kv_store.narrow(2, 0, tk).unwrap().narrow(3, 0, d).unwrap();
    let v = kv_store.narrow(2, 0, tk).unwrap().narrow(3, d, d).unwrap();
    let mut pad = vec![0f32; b * tk];
    pad[tk - 1] = f32::NEG_INFINITY; // the first conversation's last key is padding
    if b > 1 {
        pad[tk + tk - 2] = -1e9;
    }
    let padding = Tensor::from_vec(pad, (b, 1, 1, tk), &dev).unwrap();
    let causal: Vec<f32> = (0..tq)
        .flat_map(|i| (0..tk).map(move |j| if j > i + 2 { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    let causal = Tensor::from_vec(causal, (1, 1, tq, tk), &dev).unwrap();
    for mask in [None, Some(&padding), Some(&causal)] {
        let got = attend_positions(&q, &k, &v, mask).unwrap();
        let err = max_diff(&got, &reference(&q, &k, &v, mask));
        assert!(
            err < 1e-5,
            "many queries {:?}: error {err}",
            (b, h, tq, tk, d)
        );
    }
    let q1 = q.narrow(2, 0, 1).unwrap().contiguous().unwrap();
    for mask in [None, Some(&padding)] {
        let got = attend_one_position(&q1, &k, &v, mask).unwrap();
        let err = max_diff(&got, &reference(&q1, &k, &v, mask));
        assert!(err < 1e-5, "one query: error {err}");
    }
}

/// 8-bit keys and values: the kernel computes the formula on their dequantised
/// values, and those are within a rounding step of the originals; a selection of
/// conversations keeps theirs.
#[test]
fn the_quantised_kernel_computes_attention_on_its_values() {
    let dev = Device::Cpu;
    let (b, h, tk, d) = (3, 4, 21, 16);
    let q = Tensor::randn(0f32, 1.0, (b, h, 1, d), &dev).unwrap();
    let k = Tensor::randn(0f32, 1.0, (b, h, tk, d), &dev).unwrap();
    let v = Tensor::randn(0f32, 1.0, (b, h, tk, d), &dev).unwrap();
    let (kq, vq) = (
        QuantizedHeads::new(&k, true).unwrap(),
        QuantizedHeads::new(&v, false).unwrap(),
    );
    let (kd, vd) = (kq.dequantize().unwrap(), vq.dequantize().unwrap());
    // Half a rounding step is a row's largest magnitude / 254: for these normal
    // values (|x| < 7.6 with certainty) below 0.03; 30 runs gave at most 0.015.
    assert!(max_diff(&k, &kd) < 0.03 && max_diff(&v, &vd) < 0.03);
    let mut pad = vec![0f32; b * tk];
    pad[tk - 1] = f32::NEG_INFINITY;
    let padding = Tensor::from_vec(pad, (b, 1, 1, tk), &dev).unwrap();
    for mask in [None, Some(&padding)] {
        let got = attend_one_position_quantized(&q, &kq, &vq, mask).unwrap();
        let err = max_diff(&got, &reference(&q, &kd, &vd, mask));
        assert!(err < 1e-5, "error {err}");
        // Close to full precision too (the model-level check is perplexity): 30
        // runs gave at most 0.051; a wrong kernel is off by the values' own size.
        assert!(max_diff(&got, &reference(&q, &k, &v, mask)) < 0.15);
    }
    // A cache grown one position at a time (past its first capacity of one
    // position) holds what quantising the whole tensor at once gives, and the
    // kernel reads it alike; so does a selection of its conversations.
    let mut grown_k = QuantizedHeads::new(&k.narrow(2, 0, 1).unwrap(), true).unwrap();
    let mut grown_v = QuantizedHeads::new(&v.narrow(2, 0, 1).unwrap(), false).unwrap();
    for j in 1..tk {
        grown_k.append(&k.narrow(2, j, 1).unwrap()).unwrap();
        grown_v.append(&v.narrow(2, j, 1).unwrap()).unwrap();
    }
    assert!(grown_k.capacity > tk, "the cache grew with room to spare");
    assert_eq!(max_diff(&grown_k.dequantize().unwrap(), &kd), 0.0);
    assert_eq!(max_diff(&grown_v.dequantize().unwrap(), &vd), 0.0);
    for mask in [None, Some(&padding)] {
        let want = attend_one_position_quantized(&q, &kq, &vq, mask).unwrap();
        let got = attend_one_position_quantized(&q, &grown_k, &grown_v, mask).unwrap();
        assert_eq!(max_diff(&got, &want), 0.0);
    }
    let (sk, sv) = (grown_k.select(&[2, 0]), grown_v.select(&[2, 0]));
    let q20 = q
        .index_select(&Tensor::new(&[2u32, 0], &dev).unwrap(), 0)
        .unwrap();
    let want = attend_one_position_quantized(&q20, &kq.select(&[2, 0]), &vq.select(&[2, 0]), None);
    assert_eq!(
        max_diff(
            &attend_one_position_quantized(&q20, &sk, &sv, None).unwrap(),
            &want.unwrap()
        ),
        0.0
    );
    let picked = kq.select(&[2, 0]);
    let want = Tensor::cat(
        &[
            kd.get(2).unwrap().unsqueeze(0).unwrap(),
            kd.get(0).unwrap().unsqueeze(0).unwrap(),
        ],
        0,
    )
    .unwrap();
    assert_eq!(max_diff(&picked.dequantize().unwrap(), &want), 0.0);
}

#[test]
fn appending_while_attending_gives_what_appending_then_attending_gives() {
    let dev = Device::Cpu;
    let (b, h, d) = (3, 4, 32);
    // The keys and values of each step as views of one projection's output, as a
    // decoding step gives them (strided, not contiguous).
    let steps = CACHE_HEADROOM + 5; // past the first capacity: the cache grows
    let qkv = Tensor::randn(0f32, 1.0, (b, steps, 3, h, d), &dev).unwrap();
    let part = |s: usize, which: usize| {
        qkv.narrow(1, s, 1)
            .unwrap()
            .narrow(2, which, 1)
            .unwrap()
            .squeeze(2)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
    };
    let mut apart = (
        QuantizedHeads::new(&part(0, 1), true).unwrap(),
        QuantizedHeads::new(&part(0, 2), false).unwrap(),
    );
    let mut fused = apart.clone();
    for s in 1..steps {
        let (q, k, v) = (part(s, 0), part(s, 1), part(s, 2));
        assert!(!k.is_contiguous(), "the test feeds views");
        apart.0.append(&k).unwrap();
        apart.1.append(&v).unwrap();
        let want = attend_one_position_quantized(&q, &apart.0, &apart.1, None).unwrap();
        let got = append_and_attend_one_position(&q, &k, &v, &mut fused.0, &mut fused.1).unwrap();
        assert_eq!(max_diff(&got, &want), 0.0, "step {s}");
        assert_eq!(fused.0.dims(), apart.0.dims());
    }
    assert!(fused.0.capacity > CACHE_HEADROOM + 1, "the cache grew");
    for (f, a) in [(&fused.0, &apart.0), (&fused.1, &apart.1)] {
        let (fd, ad) = (f.dequantize().unwrap(), a.dequantize().unwrap());
        assert_eq!(max_diff(&fd, &ad), 0.0);
    }
    // Shapes that do not fit are refused, not written.
    let wrong = Tensor::zeros((b, h, 1, d / 2), DType::F32, &dev).unwrap();
    let q = part(1, 0);
    assert!(
        append_and_attend_one_position(&q, &wrong, &wrong, &mut fused.0, &mut fused.1).is_err()
    );
    assert_eq!(fused.0.dims().2, steps);
}
