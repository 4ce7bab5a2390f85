//! The Joint model: BlenderBot-small in candle, its tokenizer and strategy-then-reply decoding.
//!
//! Knows nothing of chats or storage: it maps a conversation to a reply, a strategy and
//! the strategy distribution.

pub mod blenderbot_small;
pub mod context;
pub mod decoding;
pub mod generate;
pub mod hub;
pub mod kernels;
pub mod lineage;
pub mod llama;
pub mod network;
pub(crate) mod sampler;
pub mod strategy;
pub mod tokenizer;
pub mod weights;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

pub use blenderbot_small::{BlenderbotSmall, Config, Mode};
pub use context::{ChatMl, ContextBuilder, ContextFormat, ContextTurn, Speaker};
pub use decoding::{DecodingOptions, StrategySelection};
pub use generate::{JointModel, Reply, StrategyChoice};
pub(crate) use kernels::{activation, attention, cpu_values, norm, par_map, q8, Simd};
pub use lineage::{Lineage, ModelMeta};
pub use network::Network;
pub use strategy::Strategy;
pub use tokenizer::Tokenizer;

/// The shipped default model, relative to the repository / install root.
pub const DEFAULT_MODEL_DIR: &str = "models/kindred-esconv-small";

/// Finds the shipped model: next to the executable's install prefix, in the current
/// directory, or in the source tree this binary was built from.
pub fn default_model_dir() -> PathBuf {
    let candidates = [
        std::env::current_exe().ok().and_then(|p| {
            p.parent()
                .and_then(|p| p.parent())
                .and_then(|p| p.parent())
                .map(|p| p.join(DEFAULT_MODEL_DIR))
        }),
        Some(PathBuf::from(DEFAULT_MODEL_DIR)),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL_DIR)),
    ];
    candidates
        .iter()
        .flatten()
        .find(|p| p.join("config.json").exists())
        .cloned()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL_DIR))
}

/// The weight file of a model directory.
pub fn weights_file(dir: &Path) -> Result<PathBuf> {
    for name in [
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
    ] {
        let p = dir.join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    bail!(
        "{} has no weights: expected model.safetensors (or shards with model.safetensors.index.json) or pytorch_model.bin",
        dir.display()
    )
}

/// Reads and checks `config.json`.
pub fn read_config(dir: &Path) -> Result<Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cfg: Config = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a BlenderBot-small config", path.display()))?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(cfg)
}

/// Finds the 8 strategy tokens of a tokenizer by name (never by position: the two
/// lineages order and spell them differently).
pub fn strategy_token_ids(tokenizer: &Tokenizer) -> Result<[u32; 8]> {
    let mut ids = [None; 8];
    for (name, id) in tokenizer.added_tokens() {
        if let Some(s) = Strategy::from_any_name(name) {
            if name.starts_with('[') {
                ids[s.index()] = Some(*id);
            }
        }
    }
    let missing: Vec<&str> = Strategy::ALL
        .iter()
        .filter(|s| ids[s.index()].is_none())
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        bail!(
            "the tokenizer lacks strategy tokens for: {} (a Joint model's vocabulary is extended with [Question], [Reflection of feelings], …)",
            missing.join(", ")
        );
    }
    Ok(ids.map(|i| i.unwrap()))
}

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub dtype: DType,
    pub device: Device,
    pub mode: Mode,
    /// Quantise the projections to q8_0 (inference only).
    pub quantize_q8: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            dtype: DType::F32,
            device: Device::Cpu,
            mode: Mode::Inference,
            quantize_q8: false,
        }
    }
}

/// Opens the weights of a model directory as a `VarBuilder`.
pub fn open_weights(dir: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    let weights = weights_file(dir)?;
    let name = weights.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let vb = if name.ends_with(".index.json") {
        weights::ShardedSafetensors::open(&weights)
            .map(|st| VarBuilder::from_backend(Box::new(st), dtype, device.clone()))
            .map_err(|e| candle_core::Error::Msg(format!("{e:#}")))
    } else if name.ends_with(".safetensors") {
        weights::StreamingSafetensors::open(&weights)
            .map(|st| VarBuilder::from_backend(Box::new(st), dtype, device.clone()))
            .map_err(|e| candle_core::Error::Msg(format!("{e:#}")))
    } else {
        VarBuilder::from_pth(&weights, dtype, device)
    }
    .with_context(|| format!("cannot read the weights {}", weights.display()))?;
    Ok(vb)
}

/// The architectures a model directory (or file) can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architecture {
    /// BlenderBot-small: `config.json` with `"model_type": "blenderbot-small"` (or none).
    BlenderbotSmall,
    /// A Llama-family decoder: `config.json` with `"model_type": "llama"`.
    Llama,
    /// A Llama-family decoder in a GGUF file (with its tokenizer inside).
    Gguf(PathBuf),
}

/// Which architecture `path` holds: a `.gguf` file, a directory with an HF
/// `config.json`, or a directory holding one `.gguf` file and no `config.json`.
pub fn architecture_of(path: &Path) -> Result<Architecture> {
    if path.is_file() && path.extension().is_some_and(|e| e == "gguf") {
        return Ok(Architecture::Gguf(path.to_path_buf()));
    }
    if !path.is_dir() {
        bail!(
            "model directory {} does not exist. Use the shipped model ({DEFAULT_MODEL_DIR}), train one with `kindred train`, or download one with `kindred model pull lsy641/ESC_Blender_Strategy --dir DIR`",
            path.display()
        );
    }
    let config = path.join("config.json");
    if !config.exists() {
        let ggufs: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect();
        if let [one] = ggufs.as_slice() {
            return Ok(Architecture::Gguf(one.clone()));
        }
        bail!(
            "{} has no config.json{}",
            path.display(),
            if ggufs.len() > 1 {
                " and several .gguf files: name the one to use"
            } else {
                ""
            }
        );
    }
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("cannot read {}", config.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", config.display()))?;
    match v.get("model_type").and_then(|t| t.as_str()) {
        None | Some("blenderbot-small") | Some("blenderbot_small") => Ok(Architecture::BlenderbotSmall),
        Some("llama") => Ok(Architecture::Llama),
        Some(other) => bail!(
            "{}: model_type {other:?} is not an architecture Kindred runs (blenderbot-small, llama)",
            config.display()
        ),
    }
}

/// Reads and checks a Llama `config.json`.
pub fn read_llama_config(dir: &Path) -> Result<llama::Config> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let cfg: llama::Config = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Llama config", path.display()))?;
    cfg.validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(cfg)
}

/// Loads a Joint model: a directory (config, weights, tokenizer, optional
/// `kindred.json`) of either architecture, or a GGUF file.
pub fn load(dir: &Path, opts: &LoadOptions) -> Result<JointModel> {
    match architecture_of(dir)? {
        Architecture::BlenderbotSmall => load_with(dir, |cfg| {
            let vb = open_weights(dir, opts.dtype, &opts.device)?;
            let mut m = BlenderbotSmall::load(vb, cfg, opts.mode).with_context(|| {
                format!(
                    "the weights in {} do not match its config.json",
                    weights_file(dir)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                )
            })?;
            if opts.mode == Mode::Inference {
                m.fuse_projections()
                    .context("stacking the attention projections failed")?;
            }
            if opts.quantize_q8 {
                m.quantize_q8().context("q8_0 quantisation failed")?;
            }
            Ok(m)
        }),
        Architecture::Llama => {
            let cfg = read_llama_config(dir)?;
            let tokenizer = Tokenizer::from_dir(dir)?;
            let strategy_ids = check_tokenizer(dir, &tokenizer, cfg.vocab_size)?;
            let vb = open_weights(dir, DType::F32, &opts.device)?;
            // Quantised tensor by tensor as they are read: the f32 model is never whole.
            let m =
                llama::Llama::load_quantized(vb, &cfg, opts.quantize_q8).with_context(|| {
                    format!(
                        "the weights in {} do not match its config.json",
                        dir.display()
                    )
                })?;
            assemble(dir, Network::Llama(m), tokenizer, strategy_ids)
        }
        Architecture::Gguf(file) => {
            let (mut m, content) = llama::Llama::from_gguf_file(&file, &opts.device)?;
            if opts.quantize_q8 {
                m.quantize_q8().context("q8_0 quantisation failed")?;
            }
            let tokenizer = Tokenizer::from_gguf(&content)
                .with_context(|| format!("cannot use the tokenizer in {}", file.display()))?;
            let meta_dir = if dir.is_dir() {
                dir
            } else {
                file.parent().unwrap_or(Path::new("."))
            };
            let strategy_ids = check_tokenizer(&file, &tokenizer, m.config().vocab_size)?;
            assemble(meta_dir, Network::Llama(m), tokenizer, strategy_ids)
                .with_context(|| format!("cannot use {}", file.display()))
        }
    }
}

/// Loads a BlenderBot-small directory's config, tokenizer and metadata, with the network
/// built by `build` (training builds it over trainable variables instead of a weights file).
pub fn load_with(
    dir: &Path,
    build: impl FnOnce(&Config) -> Result<BlenderbotSmall>,
) -> Result<JointModel> {
    if !dir.is_dir() {
        bail!(
            "model directory {} does not exist. Use the shipped model ({DEFAULT_MODEL_DIR}), train one with `kindred train`, or download one with `kindred model pull lsy641/ESC_Blender_Strategy --dir DIR`",
            dir.display()
        );
    }
    let cfg = read_config(dir)?;
    let tokenizer = Tokenizer::from_dir(dir)?;
    let strategy_ids = check_tokenizer(dir, &tokenizer, cfg.vocab_size)?;
    let model = build(&cfg)?;
    assemble(
        dir,
        Network::BlenderbotSmall(model),
        tokenizer,
        strategy_ids,
    )
}

/// Checks that a tokenizer belongs to a Joint model whose embeddings have `rows` rows,
/// and returns its strategy token ids. Done before the network is built where it can be:
/// a mismatched tokenizer is the likelier mistake, and it is found without reading weights.
fn check_tokenizer(dir: &Path, tokenizer: &Tokenizer, rows: usize) -> Result<[u32; 8]> {
    if tokenizer.vocab_size() > rows {
        bail!(
            "the tokenizer in {} has {} tokens but the model's embeddings have {rows} rows (config.json vocab_size): they do not belong together",
            dir.display(),
            tokenizer.vocab_size(),
        );
    }
    strategy_token_ids(tokenizer).with_context(|| format!("{} is not a Joint model", dir.display()))
}

/// A Joint model from its network, its tokenizer (checked) and strategy ids, with the
/// lineage, context format and decoding defaults that `dir`'s `kindred.json` (or its
/// absence) says.
fn assemble(
    dir: &Path,
    model: Network,
    tokenizer: Tokenizer,
    strategy_ids: [u32; 8],
) -> Result<JointModel> {
    let meta = ModelMeta::read(dir)?.unwrap_or_default();
    let lineage = meta.lineage.unwrap_or_else(|| {
        if tokenizer.token_to_id("[Questions]").is_some() {
            Lineage::Paper
        } else {
            Lineage::Recipe
        }
    });
    let decoder_only = matches!(model, Network::Llama(_));
    let (default_tokens, default_turns, default_decoding) = match (lineage, decoder_only) {
        (Lineage::Recipe, false) => (160, 0, DecodingOptions::default()),
        (Lineage::Recipe, true) => (192, 0, DecodingOptions::default()),
        (Lineage::Paper, _) => (model.max_positions(), 5, DecodingOptions::paper()),
    };
    let defaults = default_decoding
        .overridden(&meta.decoding)
        .map_err(|e| anyhow::anyhow!("{}: decoding: {e}", dir.join("kindred.json").display()))?;
    let format = if decoder_only {
        let system = meta
            .system_prompt
            .clone()
            .unwrap_or_else(|| context::DEFAULT_SYSTEM_PROMPT.to_string());
        let chat = ChatMl::new(&tokenizer, system)?;
        anyhow::ensure!(
            chat.end_id() == model.eos_token_id(),
            "{}: the model's eos token ({}) is not <|im_end|> ({}), which ends its ChatML replies",
            dir.display(),
            model.eos_token_id(),
            chat.end_id()
        );
        ContextFormat::ChatMl(chat)
    } else {
        ContextFormat::EosSeparated
    };
    let context = ContextBuilder {
        format,
        lineage,
        eos_id: model.eos_token_id(),
        strategy_ids,
        max_tokens: meta
            .max_context_tokens
            .unwrap_or(default_tokens)
            .min(model.max_positions()),
        max_turns: meta.max_context_turns.unwrap_or(default_turns),
    };
    Ok(JointModel {
        model,
        tokenizer,
        lineage,
        strategy_ids,
        context,
        defaults,
        situation: meta.situation,
    })
}

/// Helpers for the model's unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use candle_core::Tensor;

    /// The largest absolute value in `t`.
    pub fn max_abs(t: &Tensor) -> f32 {
        t.abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// The largest absolute difference between `a` and `b`.
    pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        max_abs(&(a - b).unwrap())
    }
}
