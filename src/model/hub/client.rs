//! A small client for the two parts of the Hugging Face hub's HTTP interface that a pull
//! needs: a repository's file list (`/api/models/{repo}?blobs=true`, which gives sizes and
//! the sha256 of large files) and one file (`/{repo}/resolve/main/{file}`).
//!
//! Why not the `hf-hub` crate: it downloads into its own cache, cannot resume a cut
//! download, and does not check sizes or hashes; a 351 MB checkpoint over a poor line
//! needs all three.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// The public hub, used unless `HF_ENDPOINT` names a mirror.
pub const PUBLIC_ENDPOINT: &str = "https://huggingface.co";

/// One file of a hub repository, as its listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub name: String,
    /// Bytes, when the hub says.
    pub size: Option<u64>,
    /// Hex sha256 of the content; the hub gives it for files stored with Git LFS.
    pub sha256: Option<String>,
}

#[derive(serde::Deserialize)]
struct Listing {
    #[serde(default)]
    siblings: Vec<Sibling>,
}

#[derive(serde::Deserialize)]
struct Sibling {
    rfilename: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(serde::Deserialize)]
struct Lfs {
    sha256: String,
    size: u64,
}

pub struct Hub {
    endpoint: String,
    token: Option<String>,
    agent: ureq::Agent,
    progress: bool,
}

impl Hub {
    /// The hub that `HF_ENDPOINT` and `HF_TOKEN` describe.
    pub fn from_env() -> Self {
        let endpoint = std::env::var("HF_ENDPOINT")
            .ok()
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| PUBLIC_ENDPOINT.to_string());
        let token = std::env::var("HF_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        Self::new(endpoint, token)
    }

    pub fn new(endpoint: String, token: Option<String>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(20))
            // Between two reads, not for the whole file.
            .timeout_read(Duration::from_secs(60))
            .user_agent(concat!("kindred/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token,
            agent,
            progress: true,
        }
    }

    /// Progress bars on standard error (on by default; they hide themselves when it
    /// is not a terminal).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn get(&self, url: &str) -> ureq::Request {
        let req = self.agent.get(url);
        match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// The files of `repo` on its main branch.
    pub fn files(&self, repo: &str) -> Result<Vec<RemoteFile>> {
        let url = format!("{}/api/models/{repo}?blobs=true", self.endpoint);
        let resp = self.get(&url).call().map_err(|e| match e {
            ureq::Error::Status(401 | 403, _) => anyhow!(
                "the hub at {} refused to list {repo}: it is private or gated; set HF_TOKEN to a token that may read it",
                self.endpoint
            ),
            ureq::Error::Status(404, _) => anyhow!(
                "{repo} is not on the hub at {} (check the name; a private repository also needs HF_TOKEN)",
                self.endpoint
            ),
            ureq::Error::Status(code, _) => anyhow!(
                "the hub at {} answered HTTP {code} when asked for {repo}'s files; try again later",
                self.endpoint
            ),
            ureq::Error::Transport(t) => anyhow!(
                "cannot reach the Hugging Face hub at {} to look up {repo}: {t}. Check your internet connection (or HF_ENDPOINT), or copy a model directory by hand and pass --model DIR",
                self.endpoint
            ),
        })?;
        let listing: Listing = resp.into_json().with_context(|| {
            format!("the hub's file list for {repo} is not the JSON it should be")
        })?;
        Ok(listing
            .siblings
            .into_iter()
            .map(|s| RemoteFile {
                size: s.lfs.as_ref().map(|l| l.size).or(s.size),
                sha256: s.lfs.map(|l| l.sha256.to_ascii_lowercase()),
                name: s.rfilename,
            })
            .collect())
    }

    /// Downloads `file` of `repo` to `dest`, resuming from `dest`'s bytes if a previous
    /// attempt was cut, and checks its size and (when the hub gives it) its sha256. A file
    /// that fails a check is removed, so the next attempt starts afresh; a cut download
    /// is kept, so the next attempt resumes.
    pub fn download(&self, repo: &str, file: &RemoteFile, dest: &Path) -> Result<PathBuf> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut have = dest.metadata().map(|m| m.len()).unwrap_or(0);
        if file.size.is_some_and(|size| have > size) {
            std::fs::remove_file(dest).ok();
            have = 0;
        }
        if file.size != Some(have) || have == 0 {
            self.fetch(repo, file, dest, have)?;
        }
        verify(repo, file, dest)?;
        Ok(dest.to_path_buf())
    }

    fn fetch(&self, repo: &str, file: &RemoteFile, dest: &Path, have: u64) -> Result<()> {
        let name = &file.name;
        let url = format!("{}/{repo}/resolve/main/{name}", self.endpoint);
        let mut req = self.get(&url);
        if have > 0 {
            req = req.set("Range", &format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(416, _)) if have > 0 => {
                // The server has nothing past what we hold: start again rather than guess.
                std::fs::remove_file(dest).ok();
                return self.fetch(repo, file, dest, 0);
            }
            Err(ureq::Error::Status(code, _)) => bail!(
                "downloading {name} from {repo} failed: the hub at {} answered HTTP {code}{}",
                self.endpoint,
                if matches!(code, 401 | 403) {
                    " (set HF_TOKEN to a token that may read it)"
                } else {
                    ""
                }
            ),
            Err(ureq::Error::Transport(t)) => bail!(
                "downloading {name} from {repo} failed: {t}. Run the same command again to resume"
            ),
        };
        let resumed = have > 0 && resp.status() == 206;
        let mut out = if resumed {
            OpenOptions::new().append(true).open(dest)
        } else {
            File::create(dest)
        }
        .with_context(|| format!("cannot write {}", dest.display()))?;
        let start = if resumed { have } else { 0 };
        let total = file.size.or_else(|| {
            resp.header("Content-Length")
                .and_then(|l| l.parse::<u64>().ok())
                .map(|l| l + start)
        });
        let bar = if self.progress {
            let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("a valid template"),
            );
            bar.set_message(name.clone());
            bar.set_position(start);
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        let mut reader = resp.into_reader();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.flush().ok();
                    bar.abandon();
                    bail!(
                        "downloading {name} from {repo} was cut off after {} bytes: {e}. Run the same command again to resume",
                        bar.position()
                    );
                }
            };
            out.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", dest.display()))?;
            bar.inc(n as u64);
        }
        out.sync_all()
            .with_context(|| format!("cannot write {}", dest.display()))?;
        bar.finish_and_clear();
        Ok(())
    }
}

/// Checks a downloaded file against the hub's size and hash; removes it if either is wrong.
fn verify(repo: &str, file: &RemoteFile, path: &Path) -> Result<()> {
    let name = &file.name;
    let len = path.metadata().map(|m| m.len()).unwrap_or(0);
    if let Some(size) = file.size {
        if len != size {
            std::fs::remove_file(path).ok();
            bail!(
                "{name} from {repo} arrived truncated or padded: {len} bytes where the hub lists {size}. It was not kept; run the command again"
            );
        }
    }
    if let Some(expected) = &file.sha256 {
        let mut hasher = Sha256::new();
        let mut f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        std::io::copy(&mut f, &mut hasher)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let got = hex(&hasher.finalize());
        if &got != expected {
            std::fs::remove_file(path).ok();
            bail!(
                "{name} from {repo} is damaged: its sha256 is {got}, the hub's is {expected}. It was not kept; run the command again"
            );
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
