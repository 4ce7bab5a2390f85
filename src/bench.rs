//! `kindred bench`: reply latency, throughput, load time and memory, with the PyTorch
//! reference measured in the same run on the same weights and inputs when a Python with
//! torch + transformers is given.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde_json::json;

use crate::model::{
    self, BlenderbotSmall, Config, DecodingOptions, LoadOptions, Mode, StrategyChoice,
};

/// Peak resident memory of this process so far (MB).
pub fn peak_rss_mb() -> f64 {
    proc_status_mb("self", "VmHWM")
}

/// A memory figure of process `pid` (a number, or `self`) from `/proc/PID/status`, in
/// MB: `VmHWM` (peak resident) or `VmRSS` (resident now). NaN where there is no such
/// file (not Linux) or field.
pub fn proc_status_mb(pid: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes a random-weight Joint model of BlenderBot-small-90M's configuration to `dir`,
/// from `base`, a directory with that model's `config.json` and tokenizer files.
pub fn random_90m(dir: &Path, base: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut cfg: Config =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json"))?)?;
    cfg.vocab_size += 8;
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    for f in ["vocab.json", "merges.txt", "special_tokens_map.json"] {
        std::fs::copy(base.join(f), dir.join(f))
            .with_context(|| format!("cannot copy {f} from {}", base.display()))?;
    }
    let added: serde_json::Map<String, serde_json::Value> = model::Strategy::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| (s.token(), json!(54944 + i)))
        .collect();
    std::fs::write(
        dir.join("added_tokens.json"),
        serde_json::to_string(&added)?,
    )?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BlenderbotSmall::load(vb, &cfg, Mode::Inference)?;
    varmap.save(dir.join("model.safetensors"))?;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub struct BenchOptions {
    pub replies: usize,
    pub context_tokens: usize,
    pub reply_tokens: usize,
    pub batch: usize,
    pub python: Option<PathBuf>,
}

/// Measures one model directory; returns a JSON summary and prints a table.
pub fn bench_model(
    label: &str,
    dir: &Path,
    o: &BenchOptions,
    q8: bool,
) -> Result<serde_json::Value> {
    let t0 = Instant::now();
    let joint = model::load(
        dir,
        &LoadOptions {
            quantize_q8: q8,
            ..Default::default()
        },
    )?;
    let label = format!("{label}{}", if q8 { ", q8_0" } else { ", f32" });
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let rss_loaded = peak_rss_mb();
    // A real conversation's context, repeated to exactly the asked length.
    let turns = vec![
        model::ContextTurn::seeker("I have been feeling really anxious about my job lately, my manager keeps piling on work and I can't sleep."),
        model::ContextTurn::supporter("That sounds exhausting. How long has this been going on?", Some(model::Strategy::Question)),
        model::ContextTurn::seeker("A few months now. I feel like I am failing at everything and my family does not understand."),
    ];
    let base = joint.context_ids(None, &turns)?;
    let context: Vec<u32> = base
        .iter()
        .cycle()
        .take(o.context_tokens)
        .copied()
        .collect();
    let opts = DecodingOptions {
        min_length: o.reply_tokens,
        max_length: o.reply_tokens,
        seed: Some(1),
        ..DecodingOptions::default()
    };
    // Batched decoding: `batch` people at once, one forward pass per token for all.
    let contexts = vec![context.clone(); o.batch];
    let choices = vec![StrategyChoice::Predict; o.batch];
    joint.reply(&context, StrategyChoice::Predict, &opts)?; // warm-up
    joint.reply_batch(&contexts, &choices, &opts)?;
    // Rounds of `batch` replies one by one, then the same people at once: the machine's
    // speed drifts from one minute to the next (by a fifth on the development machine),
    // and measured one after the other the two halves of the comparison would see
    // different machines.
    let rounds = o.replies.div_ceil(o.batch).max(3);
    let mut times = Vec::new();
    let mut batch_times = Vec::new();
    // Each round's own ratio (its replies one by one against its batch), so that the
    // printed ratio comes with how much it moved from round to round.
    let mut round_ratios = Vec::new();
    for _ in 0..rounds {
        let round_start = times.len();
        for _ in 0..o.batch {
            let t = Instant::now();
            let r = joint.reply(&context, StrategyChoice::Predict, &opts)?;
            anyhow::ensure!(
                r.tokens.len() == o.reply_tokens,
                "reply length {} != {}",
                r.tokens.len(),
                o.reply_tokens
            );
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        joint.reply_batch(&contexts, &choices, &opts)?;
        let batch_ms = t.elapsed().as_secs_f64() * 1e3;
        batch_times.push(batch_ms);
        let one_by_one_ms: f64 = times[round_start..].iter().sum();
        round_ratios.push(one_by_one_ms / batch_ms);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    batch_times.sort_by(|a, b| a.total_cmp(b));
    let p50 = percentile(&times, 0.5);
    let p95 = percentile(&times, 0.95);
    let single_rps = 1e3 / p50;
    let batch_rps = o.batch as f64 * 1e3 / percentile(&batch_times, 0.5);
    let rss_peak = peak_rss_mb();
    println!(
        "{label}: {} ({:.1} M parameters)",
        dir.display(),
        joint.model.parameter_count() as f64 / 1e6
    );
    println!("  load                 {load_ms:>9.0} ms");
    println!("  reply p50 / p95      {p50:>9.0} / {p95:.0} ms   ({} context tokens → {} reply tokens, batch 1)", o.context_tokens, o.reply_tokens);
    println!(
        "  tokens/s (batch 1)   {:>9.1}",
        o.reply_tokens as f64 * 1e3 / p50
    );
    println!("  replies/s batch 1    {single_rps:>9.2}");
    println!(
        "  replies/s batch {:<4} {batch_rps:>9.2}   ({:.2}× one by one; rounds {:.2}–{:.2})",
        o.batch,
        batch_rps / single_rps,
        round_ratios.iter().copied().fold(f64::INFINITY, f64::min),
        round_ratios.iter().copied().fold(0.0, f64::max),
    );
    println!("  peak RSS             {rss_peak:>9.0} MB (after load {rss_loaded:.0} MB)");
    let mut v = json!({
        "label": label.clone(), "p50_ms": p50, "p95_ms": p95, "load_ms": load_ms, "tokens_per_s": o.reply_tokens as f64 * 1e3 / p50,
        "batch": o.batch, "batch_replies_per_s": batch_rps, "single_replies_per_s": single_rps, "peak_rss_mb": rss_peak,
        "batch_ratio_by_round": round_ratios,
    });
    if let (Some(py), false) = (&o.python, q8) {
        match torch_reference(py, dir, joint.model.architecture(), &context, o) {
            Ok(t) => {
                let tp50 = t["p50_ms"].as_f64().unwrap_or(f64::NAN);
                let tb = t["batch_replies_per_s"].as_f64().unwrap_or(f64::NAN);
                println!("  PyTorch p50 / p95    {tp50:>9.0} / {:.0} ms   (transformers, {} threads, same weights and context)", t["p95_ms"].as_f64().unwrap_or(f64::NAN), t["threads"]);
                println!("  PyTorch batch {:<4}   {tb:>9.2} replies/s", o.batch);
                println!(
                    "  Kindred / PyTorch    {:>9.2}× time per reply (lower is better)",
                    p50 / tp50
                );
                v["torch"] = t;
                v["ratio_vs_torch"] = json!(p50 / tp50);
            }
            Err(e) => println!("  PyTorch reference    not run: {e:#}"),
        }
    }
    Ok(v)
}

const TORCH_SCRIPT: &str = r#"
import json, sys, time, torch
torch.set_num_threads(2)
d, ctx, n, reply, batch, arch = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ids = torch.tensor([ctx])
kw = dict(do_sample=True, top_p=0.9, temperature=0.7, min_new_tokens=reply + 1, max_new_tokens=reply + 1)
if arch == "llama":
    from transformers import AutoModelForCausalLM
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    kw["pad_token_id"] = m.config.eos_token_id
else:
    from transformers import BlenderbotSmallForConditionalGeneration
    m = BlenderbotSmallForConditionalGeneration.from_pretrained(d).eval()
    kw["decoder_start_token_id"] = 1
with torch.no_grad():
    m.generate(input_ids=ids, **kw)
    ts = []
    for _ in range(n):
        t = time.time(); m.generate(input_ids=ids, **kw); ts.append((time.time() - t) * 1e3)
    ts.sort()
    rounds = max(n // batch, 2)
    t = time.time()
    for _ in range(rounds):
        m.generate(input_ids=ids.repeat(batch, 1), **kw)
    brps = rounds * batch / (time.time() - t)
print(json.dumps({"p50_ms": ts[len(ts) // 2], "p95_ms": ts[min(len(ts) - 1, round((len(ts) - 1) * 0.95))], "batch_replies_per_s": brps, "threads": torch.get_num_threads()}))
"#;

fn torch_reference(
    python: &Path,
    dir: &Path,
    architecture: &str,
    context: &[u32],
    o: &BenchOptions,
) -> Result<serde_json::Value> {
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(TORCH_SCRIPT)
        .arg(dir)
        .arg(serde_json::to_string(context)?)
        .arg(o.replies.to_string())
        .arg(o.reply_tokens.to_string())
        .arg(o.batch.to_string())
        .arg(architecture)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or("failed")
    );
    let line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    Ok(serde_json::from_str(&line)?)
}

#[cfg(test)]
mod tests {
    /// The figures are read by field name: the peak is at least what is resident now,
    /// and an unknown field is NaN rather than another line's number.
    #[test]
    #[cfg(target_os = "linux")]
    fn memory_figures_are_read_by_field() {
        let now = super::proc_status_mb("self", "VmRSS");
        let peak = super::peak_rss_mb();
        assert!(
            now > 0.0 && peak >= now,
            "resident {now} MB, peak {peak} MB"
        );
        assert!(super::proc_status_mb("self", "VmNoSuchField").is_nan());
    }
}
