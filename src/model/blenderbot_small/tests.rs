use super::*;
use crate::model::test_util::{max_abs, max_diff};

fn tiny(max_positions: usize) -> (Config, candle_nn::VarMap) {
    let cfg: Config = serde_json::from_value(serde_json::json!({
        "model_type": "blenderbot-small", "vocab_size": 60, "d_model": 32, "encoder_layers": 2,
        "decoder_layers": 2, "encoder_attention_heads": 4, "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64, "decoder_ffn_dim": 64, "max_position_embeddings": max_positions,
        "scale_embedding": true, "init_std": 0.2
    }))
    .unwrap();
    (cfg, candle_nn::VarMap::new())
}

/// A projection whose output size is not a multiple of 16 (an output layer) and
/// larger than one quantisation part (4096 rows) gives the dense result within
/// q8_0's error, in both quantised forms: padded for candle's tiles and narrowed
/// back, and packed into [`Q8Matrix`]'s tiles (run where the CPU has AVX-512 VNNI).
#[test]
fn a_q8_projection_gives_the_dense_result() {
    let dev = Device::Cpu;
    let (n, k, m) = (4096 + 50, 256, 3);
    let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
    let b = Tensor::randn(0f32, 1.0, n, &dev).unwrap();
    let dense = Proj::Dense(Linear::new(w, Some(b)));
    let x = Tensor::randn(0f32, 1.0, (1, m, k), &dev).unwrap();
    let want = dense.forward(&x).unwrap();
    let scale = max_abs(&want);
    let mut forms = vec![false];
    if Q8Matrix::available() {
        forms.push(true);
    } else {
        eprintln!("this CPU has no AVX-512 VNNI: only candle's q8_0 form is checked");
    }
    for own in forms {
        let mut q8 = dense.clone();
        q8.quantize_with(own).unwrap();
        match (&q8, own) {
            (Proj::Q8(_), true) | (Proj::Q8Candle { .. }, false) => {}
            _ => panic!("unexpected form {q8:?}"),
        }
        let got = q8.forward(&x).unwrap();
        assert_eq!(got.dims(), &[1, m, n]);
        let err = max_diff(&want, &got);
        assert!(
            err > 0.0 && err < 0.02 * scale,
            "own kernel {own}: error {err} at scale {scale}"
        );
    }
}

/// Decoding one token at a time — through the in-place cache, its regrowth past
/// [`CACHE_HEADROOM`], and a row leaving the batch — gives the logits of scoring the
/// whole sequence at once, with fused and with separate projections, and quantised.
#[test]
#[allow(clippy::needless_range_loop)] // `i` is a position in several sequences at once
fn step_by_step_decoding_matches_teacher_forcing() {
    let steps = 2 * CACHE_HEADROOM + 10;
    let (cfg, varmap) = tiny(steps + 8);
    let dev = Device::Cpu;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let separate = BlenderbotSmall::load(vb, &cfg, Mode::Inference).unwrap();
    let mut fused = separate.clone();
    fused.fuse_projections().unwrap();
    let enc = Tensor::new(&[[5u32, 17, 42, 9, 2, 0], [7, 8, 3, 11, 30, 2]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], &dev).unwrap();
    let dec: Vec<Vec<u32>> = (0..2u32)
        .map(|r| {
            (0..steps as u32)
                .map(|i| (i * 7 + r * 13 + 1) % 60)
                .collect()
        })
        .collect();
    let dec_t = Tensor::new(dec.clone(), &dev).unwrap();
    let whole = separate.forward(&enc, Some(&mask), &dec_t).unwrap();
    assert!(
        max_diff(&whole, &fused.forward(&enc, Some(&mask), &dec_t).unwrap()) < 1e-4,
        "fused projections change the teacher-forced logits"
    );
    // Quantised: q8_0 projections (VNNI for one row, AMX for many where the CPU has
    // it), 8-bit cross-attention keys and values and an 8-bit self-attention cache
    // (grown past its capacity twice here), which teacher forcing reads
    // dequantised: the same numbers, summed in another order. Usually the logits are
    // then equal to the bit; but where an activation lies on a rounding boundary of
    // the next product's 8-bit quantisation, that order can flip one rounding step,
    // and the positions after it differ by up to a few hundredths (40 random models:
    // 34 equal throughout, the worst 0.054 at logits of ±2). A wrong cache row or
    // key would be off by the logits' own size.
    let mut quantized = fused.clone();
    quantized.quantize_q8().unwrap();
    let whole_q8 = quantized.forward(&enc, Some(&mask), &dec_t).unwrap();
    assert!(
        max_diff(&whole, &whole_q8) > 0.0,
        "quantisation changed nothing"
    );
    let leave_at = CACHE_HEADROOM + 3;
    for (model, whole, exact) in [
        (&separate, &whole, true),
        (&fused, &whole, true),
        (&quantized, &whole_q8, false),
    ] {
        let enc_out = model.encode(&enc, Some(&mask)).unwrap();
        let mut state = model.start_decoding(&enc_out, Some(&mask)).unwrap();
        let mut rows = vec![0usize, 1];
        for i in 0..steps {
            if i == leave_at {
                // Row 0 finishes; only row 1 goes on.
                state
                    .select_rows(&Tensor::new(&[1u32], &dev).unwrap())
                    .unwrap();
                rows = vec![1];
            }
            let last: Vec<u32> = rows.iter().map(|r| dec[*r][i]).collect();
            let step = model
                .decode_step(&Tensor::new(last, &dev).unwrap(), &mut state)
                .unwrap();
            for (pos, r) in rows.iter().enumerate() {
                let want = whole.get(*r).unwrap().get(i).unwrap();
                let got = step.get(pos).unwrap();
                let d = max_diff(&want, &got);
                let tolerance = if exact {
                    1e-4
                } else {
                    0.1 * (1.0 + max_abs(&want))
                };
                assert!(
                    d < tolerance,
                    "step {i}, row {r}: logits differ by {d} (exact: {exact})"
                );
            }
        }
    }
}
