//! `kindred model pull`: downloading a model directory from the Hugging Face hub, for
//! users with internet. `HF_ENDPOINT` (a mirror) and `HF_TOKEN` are honoured.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Files a Kindred model directory may hold, besides the weights.
const OPTIONAL_FILES: [&str; 7] = [
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "kindred.json",
];

/// The hub endpoint in use (`HF_ENDPOINT`, default the public hub).
pub fn endpoint() -> String {
    std::env::var("HF_ENDPOINT").unwrap_or_else(|_| "https://huggingface.co".to_string())
}

/// Downloads `repo` (e.g. `lsy641/ESC_Blender_Strategy`) into `dir`.
pub fn pull(repo: &str, dir: &Path) -> Result<PathBuf> {
    let endpoint = endpoint();
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_endpoint(endpoint.clone())
        .with_token(std::env::var("HF_TOKEN").ok())
        .with_progress(true)
        .with_cache_dir(dir.join(".hf-cache"))
        .build()
        .context("cannot set up the Hugging Face hub client")?;
    let remote = api.model(repo.to_string());
    let info = remote.info().map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the Hugging Face hub at {endpoint} to look up {repo}: {e}. Check your internet connection (or HF_ENDPOINT), or copy a model directory by hand and pass --model DIR"
        )
    })?;
    let files: Vec<String> = info.siblings.iter().map(|s| s.rfilename.clone()).collect();
    let weights = ["model.safetensors", "pytorch_model.bin"]
        .into_iter()
        .find(|w| files.iter().any(|f| f == w))
        .with_context(|| format!("{repo} has neither model.safetensors nor pytorch_model.bin"))?;
    if !files.iter().any(|f| f == "config.json") {
        bail!("{repo} has no config.json; it is not a model directory");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let wanted = ["config.json", weights].into_iter().chain(
        OPTIONAL_FILES
            .into_iter()
            .filter(|f| files.iter().any(|x| x == f)),
    );
    for name in wanted {
        let cached = remote
            .get(name)
            .map_err(|e| anyhow::anyhow!("downloading {name} from {repo} failed: {e}"))?;
        std::fs::copy(&cached, dir.join(name))
            .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
    }
    let _ = std::fs::remove_dir_all(dir.join(".hf-cache"));
    Ok(dir.to_path_buf())
}
