//! `kindred train`: trains a Joint model with candle, checkpointing so that a killed run
//! resumes where it stopped, with the same data order.
//!
//! The output directory is itself a model directory: `config.json`, the tokenizer,
//! `kindred.json`, and `model.safetensors` holding the best weights by validation
//! perplexity. Checkpoints live in `checkpoints/`, the learning curve in `train_log.jsonl`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::data::{build_examples, read_conversations, Example, ExampleOptions};
use super::optim::{AdamW, AdamWConfig};
use crate::model::{self, BlenderbotSmall, Config, JointModel, Lineage, Mode, ModelMeta, Strategy};

/// Everything that defines a run; saved with each checkpoint so `--resume` repeats it exactly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainSettings {
    pub train: Vec<PathBuf>,
    pub valid: Option<PathBuf>,
    pub init: Option<PathBuf>,
    /// Architecture when training from scratch.
    pub d_model: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn_dim: usize,
    pub vocab_size: usize,
    pub max_context_tokens: usize,
    pub max_reply_tokens: usize,
    /// Train only on replies people rated at least this many stars.
    #[serde(default)]
    pub min_rating: Option<crate::domain::Stars>,
    pub situation: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub weight_decay: f64,
    pub clip_norm: f64,
    pub dropout: f64,
    pub seed: u64,
    pub checkpoint_every: usize,
    pub valid_every: usize,
    pub valid_limit: usize,
    /// Stop after this many optimizer steps in total (0 = run all epochs).
    pub max_steps: usize,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            train: vec![],
            valid: None,
            init: None,
            d_model: 256,
            layers: 3,
            heads: 4,
            ffn_dim: 1024,
            vocab_size: 8000,
            max_context_tokens: 160,
            max_reply_tokens: 40,
            min_rating: None,
            situation: false,
            epochs: 3,
            batch_size: 16,
            grad_accum: 1,
            lr: 5e-4,
            warmup_steps: 100,
            weight_decay: 0.01,
            clip_norm: 1.0,
            dropout: 0.1,
            seed: 42,
            checkpoint_every: 200,
            valid_every: 0,
            valid_limit: 0,
            max_steps: 0,
        }
    }
}

/// Where a run stands; written with every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    settings: TrainSettings,
    epoch: usize,
    /// The next micro-batch of `epoch` to run.
    next_batch: usize,
    global_step: usize,
    best_valid_ppl: Option<f64>,
    elapsed_secs: f64,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub steps: usize,
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub best_valid_ppl: Option<f64>,
    pub elapsed_secs: f64,
}

fn texts_for_tokenizer(paths: &[PathBuf]) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    for p in paths {
        for c in read_conversations(p)? {
            texts.extend(
                c.turns
                    .into_iter()
                    .map(|t| model::context::normalize_text(&t.text)),
            );
            if let Some(s) = c.situation {
                texts.push(s);
            }
        }
    }
    Ok(texts)
}

/// Creates the output model directory for a new run: tokenizer, config, kindred.json.
fn prepare_model_dir(out: &Path, s: &TrainSettings) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let meta = ModelMeta {
        system_prompt: None,
        source: None,
        name: out.file_name().map(|n| n.to_string_lossy().into_owned()),
        lineage: Some(Lineage::Recipe),
        max_context_tokens: Some(s.max_context_tokens),
        max_context_turns: None,
        situation: s.situation,
        decoding: Default::default(),
    };
    if let Some(init) = &s.init {
        // Fine-tuning: take the pretrained tokenizer and config, extend the vocabulary
        // with any strategy tokens it lacks.
        let mut cfg = model::read_config(init)?;
        for f in [
            "vocab.json",
            "merges.txt",
            "tokenizer.json",
            "special_tokens_map.json",
            "tokenizer_config.json",
        ] {
            if init.join(f).exists() {
                std::fs::copy(init.join(f), out.join(f))?;
            }
        }
        let tk = model::Tokenizer::from_dir(init)?;
        let mut added: HashMap<String, u32> = tk.added_tokens().iter().cloned().collect();
        let mut next = tk.vocab_size().max(cfg.vocab_size) as u32;
        for st in Strategy::ALL {
            let present = added
                .keys()
                .any(|k| Strategy::from_any_name(k) == Some(st) && k.starts_with('['));
            if !present {
                added.insert(st.token(), next);
                next += 1;
            }
        }
        cfg.vocab_size = next as usize;
        cfg.dropout = s.dropout;
        std::fs::write(
            out.join("added_tokens.json"),
            serde_json::to_string_pretty(&added)?,
        )?;
        std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&cfg)?)?;
    } else {
        tracing::info!(
            vocab = s.vocab_size,
            "training a byte-level BPE tokenizer on the training data"
        );
        let texts = texts_for_tokenizer(&s.train)?;
        let tk = super::bpe::train_tokenizer(texts.iter().map(|t| t.as_str()), s.vocab_size)?;
        tk.save(out.join("tokenizer.json"), false)
            .map_err(|e| anyhow::anyhow!("cannot save tokenizer.json: {e}"))?;
        let cfg = Config {
            model_type: "blenderbot-small".into(),
            architectures: vec!["BlenderbotSmallForConditionalGeneration".into()],
            vocab_size: tk.get_vocab_size(true),
            d_model: s.d_model,
            encoder_layers: s.layers,
            decoder_layers: s.layers,
            encoder_attention_heads: s.heads,
            decoder_attention_heads: s.heads,
            encoder_ffn_dim: s.ffn_dim,
            decoder_ffn_dim: s.ffn_dim,
            max_position_embeddings: (s.max_context_tokens + 32).max(s.max_reply_tokens + 8),
            activation_function: "gelu".into(),
            scale_embedding: true,
            pad_token_id: 0,
            bos_token_id: 1,
            eos_token_id: 2,
            decoder_start_token_id: 1,
            dropout: s.dropout,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: 0.02,
            tie_word_embeddings: true,
            is_encoder_decoder: true,
        };
        cfg.validate().map_err(anyhow::Error::msg)?;
        std::fs::write(
            out.join("config.json"),
            serde_json::to_string_pretty(&cfg)? + "\n",
        )?;
    }
    meta.write(out)?;
    Ok(())
}

/// Copies pretrained weights into the trainable variables; rows of a vocabulary that
/// grew (the strategy tokens) start from the mean embedding.
fn init_from_pretrained(varmap: &VarMap, init: &Path) -> Result<()> {
    let vb = model::open_weights(init, DType::F32, &Device::Cpu)?;
    let data = varmap.data().lock().unwrap();
    for (name, var) in data.iter() {
        let lookup: Vec<&str> = if name == "model.shared.weight" {
            model::blenderbot_small::SHARED_EMBEDDING_NAMES.to_vec()
        } else {
            vec![name.as_str()]
        };
        let Some(found) = lookup.iter().find(|n| vb.contains_tensor(n)) else {
            bail!("the pretrained weights in {} lack {name}", init.display());
        };
        let shape = var.shape().clone();
        let src = vb.get_unchecked(found)?;
        if src.shape() == &shape {
            var.set(&src)?;
        } else if src.rank() == shape.rank()
            && src.dims()[1..] == shape.dims()[1..]
            && src.dims()[0] < shape.dims()[0]
            || (src.rank() == 2
                && shape.rank() == 2
                && src.dims()[0] == 1
                && src.dims()[1] < shape.dims()[1])
        {
            // Vocabulary grew: keep the pretrained rows, fill the new ones.
            let t = if src.dims()[0] == 1 && shape.dims()[0] == 1 {
                let extra = shape.dims()[1] - src.dims()[1];
                Tensor::cat(
                    &[&src, &Tensor::zeros((1, extra), DType::F32, &Device::Cpu)?],
                    1,
                )?
            } else {
                let extra = shape.dims()[0] - src.dims()[0];
                let mean = src.mean_keepdim(0)?;
                Tensor::cat(&[&src, &mean.repeat((extra, 1))?], 0)?
            };
            var.set(&t)?;
        } else {
            bail!(
                "{name}: pretrained shape {:?} does not fit {:?}",
                src.dims(),
                shape.dims()
            );
        }
    }
    Ok(())
}

/// Initialises every variable from `seed` (candle's CPU random generator cannot be seeded):
/// weights ~ N(0, std), biases 0, layer norms 1/0, as transformers initialises BlenderBot.
fn seeded_init(varmap: &VarMap, seed: u64, std: f64) -> Result<()> {
    use rand::Rng;
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with(".bias") || name == "final_logits_bias" {
            vec![0.0; n]
        } else if name.contains("layer_norm") || name.contains("layernorm") {
            vec![1.0; n]
        } else {
            // Box–Muller.
            (0..n)
                .map(|_| {
                    let u1: f64 = rng.random::<f64>().max(1e-12);
                    let u2: f64 = rng.random();
                    (std * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
                })
                .collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// Pads a micro-batch: encoder ids and mask, decoder inputs, labels and label mask.
pub fn collate(batch: &[&Example], pad: u32, bos: u32, dev: &Device) -> Result<[Tensor; 5]> {
    let b = batch.len();
    let s = batch
        .iter()
        .map(|e| e.context.len().max(1))
        .max()
        .unwrap_or(1);
    let t = batch.iter().map(|e| e.labels.len()).max().unwrap_or(1);
    let (mut ids, mut mask, mut dec, mut lab, mut lmask) = (vec![], vec![], vec![], vec![], vec![]);
    for e in batch {
        for i in 0..s {
            ids.push(*e.context.get(i).unwrap_or(&pad));
            mask.push(u32::from(
                i < e.context.len() || (i == 0 && e.context.is_empty()),
            ));
        }
        for i in 0..t {
            dec.push(if i == 0 {
                bos
            } else {
                *e.labels.get(i - 1).unwrap_or(&pad)
            });
            lab.push(*e.labels.get(i).unwrap_or(&pad));
            lmask.push(if i < e.labels.len() { 1f32 } else { 0f32 });
        }
    }
    Ok([
        Tensor::from_vec(ids, (b, s), dev)?,
        Tensor::from_vec(mask, (b, s), dev)?,
        Tensor::from_vec(dec, (b, t), dev)?,
        Tensor::from_vec(lab, (b, t), dev)?,
        Tensor::from_vec(lmask, (b, t), dev)?,
    ])
}

/// Teacher-forced log-probabilities of a micro-batch's labels, flattened to `(b·t,)`,
/// with the labels and their mask (1 for real tokens, 0 for padding).
fn label_log_probs(
    model: &BlenderbotSmall,
    batch: &[&Example],
) -> Result<(Tensor, Tensor, Tensor)> {
    let cfg = model.config();
    let [ids, mask, dec, lab, lmask] = collate(
        batch,
        cfg.pad_token_id,
        cfg.decoder_start_token_id,
        model.device(),
    )?;
    let logits = model
        .forward(&ids, Some(&mask), &dec)?
        .to_dtype(DType::F32)?;
    let (b, t, v) = logits.dims3()?;
    let logp = candle_nn::ops::log_softmax(&logits.reshape((b * t, v))?, D::Minus1)?;
    let picked = logp.gather(&lab.reshape((b * t, 1))?, 1)?.squeeze(1)?;
    Ok((picked, lab.flatten_all()?, lmask.flatten_all()?))
}

/// Mean token cross-entropy of a micro-batch (the training loss, strategy token included).
pub fn batch_loss(model: &BlenderbotSmall, batch: &[&Example]) -> Result<(Tensor, f64)> {
    let (picked, _, lmask) = label_log_probs(model, batch)?;
    let n = lmask.sum_all()?.to_scalar::<f32>()? as f64;
    let loss = ((picked * &lmask)?.sum_all()? / -n)?;
    Ok((loss, n))
}

/// Each example's label log-probabilities given its context (teacher-forced), in label
/// order: what both perplexities are computed from.
pub fn label_scores(
    joint: &JointModel,
    examples: &[Example],
    batch_size: usize,
) -> Result<Vec<Vec<f32>>> {
    let Some(model) = joint.model.as_blenderbot() else {
        // The decoder-only model scores one example at a time (its prompts would need
        // left padding, which the batched path here does not do).
        return examples
            .iter()
            .map(|ex| -> Result<Vec<f32>> {
                let logp = joint
                    .model
                    .label_log_probs(&ex.context, &ex.labels)?
                    .to_vec2::<f32>()?;
                Ok(ex
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| logp[i][*l as usize])
                    .collect())
            })
            .collect();
    };
    let mut out = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(batch_size.max(1)) {
        let refs: Vec<&Example> = chunk.iter().collect();
        let (picked, _, _) = label_log_probs(model, &refs)?;
        let picked = picked.to_vec1::<f32>()?;
        let t = picked.len() / chunk.len();
        for (row, ex) in chunk.iter().enumerate() {
            out.push(picked[row * t..row * t + ex.labels.len()].to_vec());
        }
    }
    Ok(out)
}

/// The negative log-likelihood and token count of `labels` from their scores, the
/// strategy tokens excluded as the reference did.
pub fn reply_nll(labels: &[u32], scores: &[f32], strategy_ids: &[u32; 8]) -> (f64, usize) {
    let mut nll = 0f64;
    let mut n = 0;
    for (l, s) in labels.iter().zip(scores) {
        if !strategy_ids.contains(l) {
            nll -= *s as f64;
            n += 1;
        }
    }
    (nll, n)
}

/// Token-averaged perplexity of the replies given their contexts, the strategy token
/// excluded as the reference did.
pub fn perplexity(
    joint: &JointModel,
    examples: &[Example],
    batch_size: usize,
) -> Result<(f64, usize)> {
    let scores = label_scores(joint, examples, batch_size)?;
    let (mut nll, mut count) = (0f64, 0usize);
    for (ex, s) in examples.iter().zip(&scores) {
        let (l, n) = reply_nll(&ex.labels, s, &joint.strategy_ids);
        nll += l;
        count += n;
    }
    Ok(((nll / count.max(1) as f64).exp(), count))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng =
        rand::rngs::StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    order.shuffle(&mut rng);
    order
}

/// Runs (or resumes) training into `out`.
pub fn train(out: &Path, settings: Option<TrainSettings>, resume: bool) -> Result<TrainReport> {
    let ckpt_dir = out.join("checkpoints");
    let latest = ckpt_dir.join("latest");
    let progress: Option<Progress> = if resume && latest.exists() {
        let name = std::fs::read_to_string(&latest)?;
        let p: Progress = serde_json::from_str(&std::fs::read_to_string(
            ckpt_dir.join(name.trim()).join("state.json"),
        )?)?;
        Some(p)
    } else {
        None
    };
    let s = match (&progress, settings) {
        (Some(p), _) => p.settings.clone(),
        (None, Some(s)) => s,
        (None, None) => bail!(
            "nothing to resume in {} and no training settings given",
            out.display()
        ),
    };
    if s.train.is_empty() {
        bail!("no training data given (--data FILE)");
    }
    if progress.is_none() {
        if out.join("checkpoints").exists() && !resume {
            bail!(
                "{} already holds a training run; pass --resume to continue it or choose another --out",
                out.display()
            );
        }
        prepare_model_dir(out, &s)?;
    }

    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let mut train_model = None;
    let joint_train = model::load_with(out, |cfg| {
        let m = BlenderbotSmall::load(vb.clone(), cfg, Mode::Train)?;
        train_model = Some(m.clone());
        Ok(m)
    })?;
    let train_model = train_model.unwrap();
    // The same variables, seen through an inference-mode network (no dropout) for validation.
    let eval_joint = model::load_with(out, |cfg| {
        Ok(BlenderbotSmall::load(vb.clone(), cfg, Mode::Inference)?)
    })?;

    let ex_opts = ExampleOptions {
        max_reply_tokens: s.max_reply_tokens,
        min_rating: s.min_rating,
    };
    let mut convs = Vec::new();
    for p in &s.train {
        convs.extend(read_conversations(p)?);
    }
    let examples = build_examples(&joint_train, &convs, &ex_opts)?;
    if examples.is_empty() {
        anyhow::bail!(
            "the training data gives no examples{}",
            match s.min_rating {
                Some(n) => format!(": no reply in it was rated {n} stars or more (ratings come with Kindred exports)"),
                None => String::new(),
            }
        );
    }
    // Validation measures the model on every reply, rated or not.
    let valid_opts = ExampleOptions {
        min_rating: None,
        ..ex_opts.clone()
    };
    let mut valid = match &s.valid {
        Some(p) => build_examples(&joint_train, &read_conversations(p)?, &valid_opts)?,
        None => Vec::new(),
    };
    if s.valid_limit > 0 {
        valid.truncate(s.valid_limit);
    }
    let micro_per_epoch = examples.len().div_ceil(s.batch_size);
    let steps_per_epoch = micro_per_epoch.div_ceil(s.grad_accum.max(1));
    let total_steps = if s.max_steps > 0 {
        s.max_steps.min(steps_per_epoch * s.epochs)
    } else {
        steps_per_epoch * s.epochs
    };
    tracing::info!(
        examples = examples.len(),
        valid = valid.len(),
        params = blenderbot(&joint_train).config().parameter_count(),
        steps = total_steps,
        "training"
    );

    let mut vars: Vec<(String, candle_core::Var)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut opt = AdamW::new(
        vars.clone(),
        AdamWConfig {
            lr: s.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: s.weight_decay,
            warmup_steps: s.warmup_steps,
            total_steps,
        },
    )?;
    let (mut epoch, mut next_batch, mut best, mut elapsed_before) = (0, 0, None, 0.0);
    if let Some(p) = &progress {
        let name = std::fs::read_to_string(&latest)?;
        let dir = ckpt_dir.join(name.trim());
        let mut vm = varmap.clone();
        vm.load(dir.join("model.safetensors"))?;
        opt.load(&dir.join("optimizer.safetensors"))?;
        epoch = p.epoch;
        next_batch = p.next_batch;
        best = p.best_valid_ppl;
        elapsed_before = p.elapsed_secs;
        tracing::info!(checkpoint = %dir.display(), step = opt.step, epoch, "resuming");
    } else if let Some(init) = &s.init {
        init_from_pretrained(&varmap, init)?;
    } else {
        seeded_init(&varmap, s.seed, blenderbot(&joint_train).config().init_std)?;
    }

    let log_path = out.join("train_log.jsonl");
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let bar = indicatif::ProgressBar::new(total_steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps · {msg} · ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(opt.step as u64);
    let start = Instant::now();
    let started_at_step = opt.step;
    let mut report = TrainReport {
        steps: opt.step,
        first_loss: None,
        last_loss: None,
        best_valid_ppl: best,
        elapsed_secs: 0.0,
    };

    let save_checkpoint = |opt: &AdamW,
                           epoch: usize,
                           next_batch: usize,
                           best: Option<f64>,
                           elapsed: f64|
     -> Result<()> {
        let name = format!("step-{:07}", opt.step);
        let tmp = ckpt_dir.join(format!("{name}.partial"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        varmap.save(tmp.join("model.safetensors"))?;
        opt.save(&tmp.join("optimizer.safetensors"))?;
        let p = Progress {
            settings: s.clone(),
            epoch,
            next_batch,
            global_step: opt.step,
            best_valid_ppl: best,
            elapsed_secs: elapsed,
        };
        std::fs::write(tmp.join("state.json"), serde_json::to_string_pretty(&p)?)?;
        let fin = ckpt_dir.join(&name);
        let _ = std::fs::remove_dir_all(&fin);
        std::fs::rename(&tmp, &fin)?;
        write_atomically(&latest, name.as_bytes())?;
        // Keep the two newest checkpoints.
        let mut all: Vec<_> = std::fs::read_dir(&ckpt_dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("step-") && !n.ends_with(".partial"))
            .collect();
        all.sort();
        for old in all.iter().rev().skip(2) {
            let _ = std::fs::remove_dir_all(ckpt_dir.join(old));
        }
        Ok(())
    };

    let validate = |best: &mut Option<f64>, step: usize| -> Result<Option<f64>> {
        if valid.is_empty() {
            // Without validation data the latest weights are the model.
            varmap.save(out.join("model.safetensors"))?;
            return Ok(None);
        }
        let (ppl, _) = perplexity(&eval_joint, &valid, 32)?;
        if best.is_none_or(|b| ppl < b) {
            *best = Some(ppl);
            let tmp = out.join("model.safetensors.tmp");
            varmap.save(&tmp)?;
            std::fs::rename(&tmp, out.join("model.safetensors"))?;
            std::fs::write(
                out.join("best.json"),
                serde_json::to_string_pretty(&serde_json::json!({"step": step, "valid_ppl": ppl}))?,
            )?;
        }
        Ok(Some(ppl))
    };

    std::fs::create_dir_all(&ckpt_dir)?;
    let mut window: Vec<f64> = Vec::new();
    'epochs: while epoch < s.epochs {
        let order = epoch_order(examples.len(), s.seed, epoch);
        let batches: Vec<Vec<usize>> = order.chunks(s.batch_size).map(|c| c.to_vec()).collect();
        while next_batch < batches.len() {
            if s.max_steps > 0 && opt.step >= s.max_steps {
                break 'epochs;
            }
            let mut grads: HashMap<String, Tensor> = HashMap::new();
            let mut loss_sum = 0.0;
            let accum_end = (next_batch + s.grad_accum.max(1)).min(batches.len());
            let parts = accum_end - next_batch;
            for ids in &batches[next_batch..accum_end] {
                let batch: Vec<&Example> = ids.iter().map(|i| &examples[*i]).collect();
                let (loss, _) = batch_loss(&train_model, &batch)?;
                let loss = (loss / parts as f64)?;
                loss_sum += loss.to_scalar::<f32>()? as f64;
                let g = loss.backward()?;
                for (name, var) in &vars {
                    if let Some(t) = g.get(var.as_tensor()) {
                        let acc = match grads.remove(name) {
                            Some(prev) => (prev + t)?,
                            None => t.clone(),
                        };
                        grads.insert(name.clone(), acc);
                    }
                }
            }
            next_batch = accum_end;
            let gnorm = opt.step(&grads, s.clip_norm)?;
            report.first_loss.get_or_insert(loss_sum);
            report.last_loss = Some(loss_sum);
            window.push(loss_sum);
            if window.len() > 50 {
                window.remove(0);
            }
            let avg = window.iter().sum::<f64>() / window.len() as f64;
            let secs = start.elapsed().as_secs_f64();
            let rate = (opt.step - started_at_step) as f64 / secs.max(1e-9);
            bar.set_position(opt.step as u64);
            bar.set_message(format!(
                "epoch {} · loss {avg:.3} · {rate:.2} steps/s",
                epoch + 1
            ));
            let mut entry = serde_json::json!({
                "step": opt.step, "epoch": epoch + 1, "loss": loss_sum, "lr": opt.current_lr(),
                "grad_norm": gnorm, "steps_per_sec": rate, "elapsed_secs": elapsed_before + secs,
            });
            if s.valid_every > 0 && opt.step % s.valid_every == 0 {
                if let Some(ppl) = validate(&mut best, opt.step)? {
                    entry["valid_ppl"] = ppl.into();
                }
            }
            use std::io::Write;
            writeln!(log, "{entry}")?;
            // Without a terminal the bar is hidden: log progress instead.
            if opt.step % 25 == 0 && bar.is_hidden() {
                tracing::info!(
                    step = opt.step,
                    epoch = epoch + 1,
                    loss = avg,
                    steps_per_sec = rate,
                    "progress"
                );
            }
            if s.checkpoint_every > 0 && opt.step % s.checkpoint_every == 0 {
                save_checkpoint(&opt, epoch, next_batch, best, elapsed_before + secs)?;
            }
        }
        epoch += 1;
        next_batch = 0;
        let ppl = validate(&mut best, opt.step)?;
        let secs = start.elapsed().as_secs_f64();
        tracing::info!(epoch, step = opt.step, valid_ppl = ?ppl, best = ?best, "epoch finished");
        use std::io::Write;
        writeln!(
            log,
            "{}",
            serde_json::json!({"step": opt.step, "epoch_end": epoch, "valid_ppl": ppl, "elapsed_secs": elapsed_before + secs})
        )?;
        save_checkpoint(&opt, epoch, next_batch, best, elapsed_before + secs)?;
    }
    if s.max_steps > 0 && opt.step >= s.max_steps {
        let secs = start.elapsed().as_secs_f64();
        validate(&mut best, opt.step)?;
        save_checkpoint(&opt, epoch, next_batch, best, elapsed_before + secs)?;
    }
    bar.finish_and_clear();
    report.steps = opt.step;
    report.best_valid_ppl = best;
    report.elapsed_secs = elapsed_before + start.elapsed().as_secs_f64();
    Ok(report)
}

/// The network the candle trainer builds (it trains BlenderBot-small only).
fn blenderbot(joint: &JointModel) -> &BlenderbotSmall {
    joint
        .model
        .as_blenderbot()
        .expect("the candle trainer builds BlenderBot-small networks")
}
