//! Training: the loss goes down, every parameter learns, a killed run resumes exactly,
//! and every data format parses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use kindred::model::{self, BlenderbotSmall, Mode};
use kindred::train::data::{build_examples, read_conversations};
use kindred::train::trainer;

fn esc(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("third_party/esconv")
        .join(file)
}

/// The first `n` conversations of train.jsonl, as a small training file.
pub(crate) fn small_data(dir: &Path, n: usize) -> PathBuf {
    let text = std::fs::read_to_string(esc("train.jsonl")).unwrap();
    let p = dir.join("small.jsonl");
    std::fs::write(&p, text.lines().take(n).collect::<Vec<_>>().join("\n")).unwrap();
    p
}

pub(crate) fn tiny_args(data: &Path, out: &Path, steps: usize) -> Vec<String> {
    [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--d-model",
        "16",
        "--layers",
        "1",
        "--heads",
        "2",
        "--ffn-dim",
        "32",
        "--vocab-size",
        "300",
        "--batch-size",
        "4",
        "--lr",
        "0.003",
        "--warmup-steps",
        "5",
        "--dropout",
        "0",
        "--max-steps",
        &steps.to_string(),
        "--checkpoint-every",
        "5",
        "--epochs",
        "50",
        "--max-context-tokens",
        "64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn kindred() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindred"));
    c.env("KINDRED_LOG", "warn").env("CANDLE_NUM_THREADS", "1");
    c
}

fn losses(out: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(out.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["step"].as_u64()?, v["loss"].as_f64()?)))
        .collect()
}

#[test]
fn a_few_steps_of_training_lower_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(dir.path(), 12);
    let out = dir.path().join("model");
    let status = kindred().args(tiny_args(&data, &out, 60)).status().unwrap();
    assert!(status.success());
    let l = losses(&out);
    assert_eq!(l.len(), 60);
    let first: f64 = l[..5].iter().map(|x| x.1).sum::<f64>() / 5.0;
    let last: f64 = l[l.len() - 5..].iter().map(|x| x.1).sum::<f64>() / 5.0;
    assert!(last < first - 0.5, "loss went from {first:.3} to {last:.3}");
    // The output directory is a loadable model directory.
    let joint = model::load(&out, &Default::default()).unwrap();
    assert!(!joint.tokenizer.is_blenderbot_small());
}

#[test]
fn every_parameter_receives_a_gradient() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-recipe");
    let joint = model::load_with(&fixture, |cfg| {
        Ok(BlenderbotSmall::load(vb.clone(), cfg, Mode::Train)?)
    })
    .unwrap();
    let convs = read_conversations(&esc("valid.jsonl")).unwrap();
    let examples = build_examples(&joint, &convs[..1], &Default::default()).unwrap();
    let batch: Vec<_> = examples.iter().take(3).collect();
    let (loss, _) = trainer::batch_loss(joint.model.as_blenderbot().unwrap(), &batch).unwrap();
    let grads = loss.backward().unwrap();
    let vars = varmap.data().lock().unwrap();
    assert!(vars.len() > 30);
    for (name, var) in vars.iter() {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} got no gradient"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // Positions beyond the longest sequence and unused vocabulary rows are zero, but
        // every tensor as a whole must be reached.
        assert!(norm > 0.0, "{name} has an all-zero gradient");
    }
}

#[test]
fn a_killed_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let data = small_data(dir.path(), 12);
    let steps = 120;

    let straight = dir.path().join("straight");
    assert!(kindred()
        .args(tiny_args(&data, &straight, steps))
        .status()
        .unwrap()
        .success());

    let crashed = dir.path().join("crashed");
    let mut child = kindred()
        .args(tiny_args(&data, &crashed, steps))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let latest = crashed.join("checkpoints/latest");
    while !latest.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    let done_before = losses(&crashed).len();
    assert!(
        done_before < steps,
        "the run finished before it could be killed; make it longer"
    );

    let status = kindred()
        .args(["train", "--resume", "--out", crashed.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    // Same number of optimizer steps, same data order: the same weights.
    let a = candle_core::safetensors::load(
        straight
            .join("checkpoints")
            .join(format!("step-{steps:07}"))
            .join("model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let b = candle_core::safetensors::load(
        crashed
            .join("checkpoints")
            .join(format!("step-{steps:07}"))
            .join("model.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(a.len(), b.len());
    for (name, ta) in &a {
        let diff = (ta - &b[name])
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-4, "{name} differs by {diff} after resuming");
    }
    // The resumed log continues from the checkpoint's step.
    let l = losses(&crashed);
    assert_eq!(l.last().unwrap().0, steps as u64);
}

#[test]
fn every_input_format_parses() {
    let jsonl = read_conversations(&esc("train.jsonl")).unwrap();
    assert_eq!(jsonl.len(), 910);
    let canonical = read_conversations(&esc("failed_esconv.json")).unwrap();
    assert_eq!(canonical.len(), 196);
    assert!(canonical.iter().all(|c| !c.turns.is_empty()));
    assert!(canonical[0].turns.iter().any(|t| t.strategy.is_some()));
}

#[test]
fn fine_tuning_extends_a_pretrained_vocabulary_with_the_strategy_tokens() {
    // A "pretrained BlenderBot-small" without strategy tokens: the tiny fixture's weights
    // cut back to the base vocabulary of 54,944 tokens.
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-recipe");
    let base = dir.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    for f in ["vocab.json", "merges.txt", "special_tokens_map.json"] {
        std::fs::copy(fixture.join(f), base.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap())
            .unwrap();
    cfg["vocab_size"] = 54944.into();
    std::fs::write(base.join("config.json"), cfg.to_string()).unwrap();
    let mut tensors =
        candle_core::safetensors::load(fixture.join("model.safetensors"), &Device::Cpu).unwrap();
    let shared = tensors["model.shared.weight"].narrow(0, 0, 54944).unwrap();
    tensors.insert("model.shared.weight".into(), shared.clone());
    let bias = tensors["final_logits_bias"].narrow(1, 0, 54944).unwrap();
    tensors.insert("final_logits_bias".into(), bias);
    candle_core::safetensors::save(&tensors, base.join("model.safetensors")).unwrap();

    let data = small_data(dir.path(), 3);
    let out = dir.path().join("ft");
    let status = kindred()
        .args(["train", "--init"])
        .arg(&base)
        .args(["--data"])
        .arg(&data)
        .args(["--out"])
        .arg(&out)
        .args([
            "--lr",
            "0",
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--dropout",
            "0",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let joint = model::load(&out, &Default::default()).unwrap();
    assert_eq!(joint.model.vocab_size(), 54952);
    assert!(
        joint.tokenizer.is_blenderbot_small(),
        "the pretrained tokenizer is kept"
    );
    let q = joint.tokenizer.token_to_id("[Question]").unwrap();
    assert!(q >= 54944);
    // With a learning rate of 0 the pretrained rows are exactly the base model's; the new
    // rows start at the mean embedding.
    let emb = joint.model.as_blenderbot().unwrap().embedding_weight();
    let kept = emb.narrow(0, 0, 54944).unwrap();
    let diff = (&kept - &shared)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
    let mean = shared.mean_keepdim(0).unwrap();
    let new_row = emb.narrow(0, q as usize, 1).unwrap();
    let d = (&new_row - &mean)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d < 1e-6);
}

#[test]
fn eval_reports_a_word_level_perplexity_for_both_architectures() {
    use kindred::model::DecodingOptions;
    use kindred::train::eval::{evaluate, EvalOptions};
    use kindred::train::metrics::tokenize;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("valid3.jsonl");
    let text = std::fs::read_to_string(esc("valid.jsonl")).unwrap();
    std::fs::write(&data, text.lines().take(2).collect::<Vec<_>>().join("\n")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for fixture in [root.join("tiny-recipe"), root.join("tiny-llama/hf")] {
        let joint = model::load(&fixture, &Default::default()).unwrap();
        let opts = EvalOptions {
            oracle: false,
            limit: Some(12),
            seed: 0,
            batch: 4,
            decoding: DecodingOptions::greedy(8),
            out: None,
        };
        let report = evaluate(&joint, &data, &opts).unwrap();
        assert_eq!(report.examples, 12);
        // By hand: the whole replies' negative log-likelihood (strategy token left out)
        // over their words.
        let convs = read_conversations(&data).unwrap();
        let whole = build_examples(
            &joint,
            &convs,
            &kindred::train::data::ExampleOptions {
                max_reply_tokens: 10_000,
                ..Default::default()
            },
        )
        .unwrap();
        let (mut nll, mut words) = (0.0, 0);
        for ex in whole.iter().take(12) {
            let (ll, _) = joint
                .log_likelihood(&ex.context, &ex.labels, &joint.strategy_ids)
                .unwrap();
            nll -= ll;
            words += tokenize(&ex.reply).len();
        }
        let want = (nll / words as f64).exp();
        assert!(
            (report.ppl_word - want).abs() / want < 1e-3,
            "{}: {} vs {want}",
            fixture.display(),
            report.ppl_word
        );
        assert!(report.ppl.is_finite() && report.ppl > 1.0);
    }
}
