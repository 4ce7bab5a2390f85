//! `kindred model pull`: a model directory from the Hugging Face hub, for users with
//! internet. `HF_ENDPOINT` (a mirror) and `HF_TOKEN` are honoured.
//!
//! Files are downloaded into a staging folder inside the target (`.kindred-pull/`), each
//! checked against the hub's size and sha256, and moved into place only when all of them
//! are there: an interrupted pull leaves no half model behind, and running the command
//! again resumes where it stopped. Published checkpoints whose repositories are not
//! complete model directories (the paper's) are completed from their backbone
//! ([`published`]).

mod client;
pub mod published;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub use client::{Hub, RemoteFile, PUBLIC_ENDPOINT};

use super::lineage::{Lineage, ModelMeta};

/// Where a pull keeps its files until all of them have arrived.
pub const STAGING: &str = ".kindred-pull";

/// Tokenizer and metadata files a model directory may hold, taken when the repository has them.
const TOKENIZER_FILES: [&str; 7] = [
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "kindred.json",
];

/// What a pull brought.
#[derive(Debug)]
pub struct Pulled {
    pub dir: PathBuf,
    /// (repository, file, bytes) of every file downloaded.
    pub files: Vec<(String, String, u64)>,
    /// What the user should know: files completed or skipped, and why.
    pub notes: Vec<String>,
}

/// A file to fetch: from which repository, and its name in the model directory.
struct Wanted {
    repo: String,
    file: RemoteFile,
}

/// Checks that `repo` looks like a hub model id (`owner/name`).
pub fn check_repo_id(repo: &str) -> Result<()> {
    let ok_part = |p: &str| {
        !p.is_empty()
            && !p.starts_with('.')
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(()),
        _ => bail!(
            "{repo:?} is not a hub model name; it should look like owner/name (e.g. lsy641/ESC_Blender_Strategy)"
        ),
    }
}

/// Downloads `repo` into `dir` (created if needed), completing a published checkpoint
/// from its backbone.
pub fn pull(hub: &Hub, repo: &str, dir: &Path) -> Result<Pulled> {
    check_repo_id(repo)?;
    let staging = dir.join(STAGING);
    if dir.join("config.json").exists() && !staging.exists() {
        bail!(
            "{} already holds a model; pull into another --dir, or remove it first",
            dir.display()
        );
    }
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let mut pulled = Pulled {
        dir: dir.to_path_buf(),
        files: Vec::new(),
        notes: Vec::new(),
    };
    match published::find(repo) {
        Some(p) => pull_published(hub, p, &staging, &mut pulled)?,
        None => pull_model_directory(hub, repo, &staging, &mut pulled)?,
    }
    // Everything is here and checked: move it into place, the metadata last.
    let mut names: Vec<PathBuf> = walk(&staging)?;
    names.sort_by_key(|p| p.ends_with("kindred.json"));
    for rel in names {
        let to = dir.join(&rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(staging.join(&rel), &to)
            .with_context(|| format!("cannot move {} into {}", rel.display(), dir.display()))?;
    }
    std::fs::remove_dir_all(&staging).ok();
    Ok(pulled)
}

fn fetch(hub: &Hub, w: &Wanted, staging: &Path, pulled: &mut Pulled) -> Result<PathBuf> {
    let dest = staging.join(&w.file.name);
    let path = hub.download(&w.repo, &w.file, &dest)?;
    let bytes = path.metadata().map(|m| m.len()).unwrap_or(0);
    pulled
        .files
        .push((w.repo.clone(), w.file.name.clone(), bytes));
    Ok(path)
}

fn wanted(repo: &str, files: &[RemoteFile], name: &str) -> Option<Wanted> {
    files.iter().find(|f| f.name == name).map(|f| Wanted {
        repo: repo.to_string(),
        file: f.clone(),
    })
}

/// An ordinary repository: `config.json` of a supported architecture, its weights
/// (single, sharded or pickled) and its tokenizer.
fn pull_model_directory(hub: &Hub, repo: &str, staging: &Path, pulled: &mut Pulled) -> Result<()> {
    let files = hub.files(repo)?;
    let has = |n: &str| files.iter().any(|f| f.name == n);
    let Some(config) = wanted(repo, &files, "config.json") else {
        let known: Vec<&str> = published::PUBLISHED.iter().map(|p| p.repo).collect();
        bail!(
            "{repo} has no config.json, so it is not a complete model directory. Kindred completes only the published checkpoints it knows ({})",
            known.join(", ")
        );
    };
    // The architecture first, before hundreds of megabytes arrive for nothing.
    fetch(hub, &config, staging, pulled)?;
    super::architecture_of(staging).with_context(|| format!("{repo} cannot be used"))?;

    let mut weights = Vec::new();
    if let Some(w) = wanted(repo, &files, "model.safetensors") {
        weights.push(w);
    } else if let Some(index) = wanted(repo, &files, "model.safetensors.index.json") {
        let path = fetch(hub, &index, staging, pulled)?;
        let text = std::fs::read_to_string(&path)?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{repo}'s model.safetensors.index.json is not valid JSON"))?;
        let shards: BTreeSet<String> = v["weight_map"]
            .as_object()
            .with_context(|| format!("{repo}'s model.safetensors.index.json has no weight_map"))?
            .values()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        for shard in shards {
            weights.push(wanted(repo, &files, &shard).with_context(|| {
                format!("{repo}'s index names {shard}, which the repository does not hold")
            })?);
        }
    } else if let Some(w) = wanted(repo, &files, "pytorch_model.bin") {
        weights.push(w);
    } else {
        bail!("{repo} has no weights Kindred reads (model.safetensors, sharded safetensors or pytorch_model.bin)");
    }
    if !(has("tokenizer.json") || (has("vocab.json") && has("merges.txt"))) {
        bail!("{repo} has no tokenizer (tokenizer.json, or vocab.json and merges.txt)");
    }
    for name in TOKENIZER_FILES {
        if let Some(w) = wanted(repo, &files, name) {
            fetch(hub, &w, staging, pulled)?;
        }
    }
    for w in &weights {
        fetch(hub, w, staging, pulled)?;
    }
    Ok(())
}

/// A published checkpoint: its weights, completed with its backbone's config and
/// tokenizer, the authors' added tokens and their decoding.
fn pull_published(
    hub: &Hub,
    p: &published::Published,
    staging: &Path,
    pulled: &mut Pulled,
) -> Result<()> {
    let files = hub.files(p.repo)?;
    let weights = wanted(p.repo, &files, "model.safetensors")
        .or_else(|| wanted(p.repo, &files, "pytorch_model.bin"))
        .with_context(|| format!("{} no longer holds its weights (pytorch_model.bin)", p.repo))?;
    let backbone_files = hub.files(p.backbone)?;
    let from_backbone: Vec<Wanted> = published::BACKBONE_FILES
        .iter()
        .map(|name| {
            wanted(p.backbone, &backbone_files, name)
                .with_context(|| format!("{} has no {name}, which {} needs", p.backbone, p.repo))
        })
        .collect::<Result<_>>()?;
    for w in &from_backbone {
        fetch(hub, w, staging, pulled)?;
    }
    let weights_path = fetch(hub, &weights, staging, pulled)?;
    pulled.notes.push(format!(
        "{} is {}; its config.json, vocab.json and merges.txt come from {}",
        p.repo, p.description, p.backbone
    ));

    // The fine-tuned vocabulary: the backbone's plus the authors' tokens.
    let config_path = staging.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config_path)?)
            .with_context(|| format!("{}'s config.json is not valid JSON", p.backbone))?;
    config["vocab_size"] = p.vocab_size.into();
    std::fs::write(&config_path, serde_json::to_string_pretty(&config)? + "\n")?;
    let added: serde_json::Map<String, serde_json::Value> = p
        .added_tokens
        .iter()
        .map(|(t, id)| (t.to_string(), (*id).into()))
        .collect();
    std::fs::write(
        staging.join("added_tokens.json"),
        serde_json::to_string_pretty(&added)? + "\n",
    )?;
    pulled.notes.push(format!(
        "added the authors' {} tokens ({}…{}), vocabulary {}",
        p.added_tokens.len(),
        p.added_tokens[0].0,
        p.added_tokens[p.added_tokens.len() - 1].0,
        p.vocab_size
    ));

    let unused = unused_weights(&weights_path, p.unused_weights)?;
    if !unused.is_empty() {
        pulled.notes.push(format!(
            "skipping {} weights the architecture does not use ({}): {}",
            unused.len(),
            p.unused_reason,
            unused.join(", ")
        ));
    }
    let meta = ModelMeta {
        name: Some(p.repo.rsplit('/').next().unwrap_or(p.repo).to_string()),
        source: Some(format!(
            "{} (config and tokenizer from {})",
            p.repo, p.backbone
        )),
        lineage: Some(Lineage::Paper),
        decoding: p
            .decoding
            .iter()
            .map(|(k, v)| {
                let value = if v.fract() == 0.0 {
                    serde_json::Value::from(*v as u64)
                } else {
                    serde_json::Value::from(*v)
                };
                (k.to_string(), value)
            })
            .collect(),
        ..ModelMeta::default()
    };
    meta.write(staging)?;
    pulled.notes.push(format!(
        "decoding as the authors evaluated: {}",
        p.decoding
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

/// Names of tensors in a weight file that end with one of `suffixes`.
fn unused_weights(path: &Path, suffixes: &[&str]) -> Result<Vec<String>> {
    let names: Vec<String> = if path.extension().is_some_and(|e| e == "safetensors") {
        // Only the header is read: 8 bytes of length, then JSON keyed by tensor name.
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)?;
        let mut header = vec![0u8; u64::from_le_bytes(len).min(100 << 20) as usize];
        file.read_exact(&mut header)?;
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
            .with_context(|| format!("{} is not a safetensors file", path.display()))?;
        v.keys().filter(|k| *k != "__metadata__").cloned().collect()
    } else {
        candle_core::pickle::read_pth_tensor_info(path, false, None)
            .with_context(|| format!("{} is not a PyTorch checkpoint", path.display()))?
            .into_iter()
            .map(|t| t.name)
            .collect()
    };
    let mut unused: Vec<String> = names
        .into_iter()
        .filter(|n| suffixes.iter().any(|s| n.ends_with(s)))
        .collect();
    unused.sort();
    Ok(unused)
}

/// Files under `root`, relative to it.
fn walk(root: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
    }
    Ok(out)
}
