//! The operator's window on a running daemon, on a local address (`operations.listen`):
//!
//! * `GET /healthz`: the process is alive (200), for a restart-on-failure check;
//! * `GET /readyz`: it can serve (200) or not (503), with what is and is not ready as
//!   JSON: the database answers, the model thread answers (no batch has taken longer than
//!   the reply timeout), each adapter is connected to its platform. A load balancer or
//!   orchestrator sends work only to ready instances;
//! * `GET /metrics`: [`crate::metrics`] in Prometheus's text format.
//!
//! Nothing here names a person or shows a message; the address should still stay local
//! or behind the operator's own network (it is not authenticated).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use kindred_adapter::Connection;
use tokio::sync::broadcast;

use crate::engine::worker::ModelHealth;
use crate::store::Store;

/// What readiness is made of.
#[derive(Clone)]
pub struct Probes {
    pub store: Store,
    pub model: Arc<ModelHealth>,
    /// A batch running longer than this means the model is hung.
    pub model_limit: Duration,
    pub adapters: Vec<(String, Connection)>,
}

impl Probes {
    /// Whether every part is ready, and each part's state.
    pub async fn check(&self) -> (bool, serde_json::Value) {
        let database = match tokio::time::timeout(Duration::from_secs(2), self.store.ping()).await {
            Ok(Ok(())) => "ok".to_string(),
            Ok(Err(e)) => format!("error: {e:#}"),
            Err(_) => "error: no answer within 2 s".to_string(),
        };
        let model = if self.model.answering(self.model_limit) {
            "ok"
        } else {
            "not answering"
        };
        let mut ready = database == "ok" && model == "ok";
        let mut adapters = serde_json::Map::new();
        for (name, c) in &self.adapters {
            ready &= c.is_up();
            adapters.insert(
                name.clone(),
                if c.is_up() {
                    "connected"
                } else {
                    "disconnected"
                }
                .into(),
            );
        }
        (
            ready,
            serde_json::json!({
                "ready": ready,
                "database": database,
                "model": model,
                "adapters": adapters,
            }),
        )
    }
}

/// The routes (so that tests can serve them on a port of their own).
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    let (ready, body) = probes.check().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    let m = crate::metrics::metrics();
    m.set_queue_depth("model", probes.model.queued());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.encode(),
    )
}

/// Serves the routes on `addr` until `shutdown` fires.
pub async fn serve(
    addr: SocketAddr,
    probes: Probes,
    mut shutdown: broadcast::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on operations.listen = {addr}"))?;
    tracing::info!(%addr, "health and metrics at /healthz, /readyz, /metrics");
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the operations endpoints are not on loopback: they are not authenticated, keep them on a private network");
    }
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, router(probes))
            .with_graceful_shutdown(async move {
                let _ = shutdown.recv().await;
            })
            .await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the operations endpoints stopped");
        }
    }))
}
