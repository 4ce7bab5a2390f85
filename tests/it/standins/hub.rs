//! A loopback stand-in of the Hugging Face hub, laid out as the hub is: the file list at
//! `/api/models/{owner}/{name}?blobs=true` (sizes, and sha256 for LFS files), files at
//! `/{owner}/{name}/resolve/main/{file}`, LFS files redirected to a CDN path (on the same
//! loopback host) that honours `Range`, as the hub's CDN does.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

/// One request the stand-in answered.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub host: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Inner {
    repos: HashMap<String, PathBuf>,
    /// "repo/file": the next download sends half the bytes, then drops the connection.
    cut_once: HashSet<String>,
    /// "repo/file": downloads send all but this many bytes, as a complete response.
    short: HashMap<String, usize>,
    seen: Vec<Seen>,
}

#[derive(Clone)]
pub struct HubStandIn {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn is_lfs(name: &str) -> bool {
    [".bin", ".safetensors", ".h5", ".msgpack", ".gguf"]
        .iter()
        .any(|e| name.ends_with(e))
}

impl HubStandIn {
    /// Starts on 127.0.0.1 with a random port, in the current tokio runtime.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let this = Self {
            url: format!("http://{addr}"),
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        let app = Router::new()
            .route("/api/models/{owner}/{name}", get(listing))
            .route("/{owner}/{name}/resolve/main/{*file}", get(resolve))
            .route("/cdn/{owner}/{name}/{*file}", get(cdn))
            .with_state(this.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        this
    }

    /// Serves the files of `dir` as repository `repo`.
    pub fn add_repo(&self, repo: &str, dir: &Path) {
        self.inner
            .lock()
            .unwrap()
            .repos
            .insert(repo.to_string(), dir.to_path_buf());
    }

    /// The next download of `file` from `repo` breaks off halfway.
    pub fn cut_next_download(&self, repo: &str, file: &str) {
        self.inner
            .lock()
            .unwrap()
            .cut_once
            .insert(format!("{repo}/{file}"));
    }

    /// Downloads of `file` from `repo` lack their last `missing` bytes.
    pub fn serve_short(&self, repo: &str, file: &str, missing: usize) {
        self.inner
            .lock()
            .unwrap()
            .short
            .insert(format!("{repo}/{file}"), missing);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    fn record(&self, path: String, headers: &HeaderMap) {
        let h = |n: header::HeaderName| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        self.inner.lock().unwrap().seen.push(Seen {
            path,
            host: h(header::HOST).unwrap_or_default(),
            range: h(header::RANGE),
            authorization: h(header::AUTHORIZATION),
        });
    }

    fn repo_dir(&self, repo: &str) -> Option<PathBuf> {
        self.inner.lock().unwrap().repos.get(repo).cloned()
    }
}

fn files_of(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

async fn listing(
    State(hub): State<HubStandIn>,
    UrlPath((owner, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{name}");
    hub.record(format!("/api/models/{repo}"), &headers);
    let Some(dir) = hub.repo_dir(&repo) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "Repository not found"})),
        )
            .into_response();
    };
    let siblings: Vec<_> = files_of(&dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            let mut s = json!({"rfilename": f, "size": bytes.len()});
            if is_lfs(&f) {
                let sha: String = Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                s["lfs"] = json!({"sha256": sha, "size": bytes.len(), "pointerSize": 134});
            }
            s
        })
        .collect();
    Json(json!({"id": repo, "modelId": repo, "siblings": siblings})).into_response()
}

async fn resolve(
    State(hub): State<HubStandIn>,
    UrlPath((owner, name, file)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{name}");
    hub.record(format!("/{repo}/resolve/main/{file}"), &headers);
    if is_lfs(&file) {
        return (
            StatusCode::FOUND,
            [(header::LOCATION, format!("/cdn/{repo}/{file}"))],
        )
            .into_response();
    }
    serve(&hub, &repo, &file, &headers)
}

async fn cdn(
    State(hub): State<HubStandIn>,
    UrlPath((owner, name, file)): UrlPath<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let repo = format!("{owner}/{name}");
    hub.record(format!("/cdn/{repo}/{file}"), &headers);
    serve(&hub, &repo, &file, &headers)
}

fn serve(hub: &HubStandIn, repo: &str, file: &str, headers: &HeaderMap) -> Response {
    let Some(path) = hub
        .repo_dir(repo)
        .map(|d| d.join(file))
        .filter(|p| p.is_file())
    else {
        return (StatusCode::NOT_FOUND, "Entry not found").into_response();
    };
    let mut bytes = std::fs::read(path).unwrap();
    let key = format!("{repo}/{file}");
    let (cut, short) = {
        let mut s = hub.inner.lock().unwrap();
        (s.cut_once.remove(&key), s.short.get(&key).copied())
    };
    if let Some(missing) = short {
        bytes.truncate(bytes.len().saturating_sub(missing));
    }
    let total = bytes.len();
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, body) = match start {
        Some(s) if s >= total => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{total}"))],
            )
                .into_response()
        }
        Some(s) => (StatusCode::PARTIAL_CONTENT, bytes[s..].to_vec()),
        None => (StatusCode::OK, bytes),
    };
    let len = body.len();
    let mut resp = if cut {
        // The promised length, half the bytes, then the connection breaks.
        let half = body[..len / 2].to_vec();
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(half),
            Err(std::io::Error::other("connection reset by the stand-in")),
        ];
        Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
    } else {
        Response::new(Body::from(body))
    };
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, len.into());
    if status == StatusCode::PARTIAL_CONTENT {
        let s = start.unwrap();
        resp.headers_mut().insert(
            header::CONTENT_RANGE,
            format!("bytes {s}-{}/{total}", total - 1).parse().unwrap(),
        );
    }
    resp
}
