//! Webhook mode: Telegram POSTs each update to Kindred. The secret token set with
//! `setWebhook` is checked on every request, and the answer is 200 only once the
//! update is stored, so Telegram redelivers anything Kindred did not keep.

use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use teloxide::prelude::*;
use teloxide::types::Update;

use crate::{Outcome, UpdateHandler};

/// The header Telegram sends the secret token in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

#[derive(Clone)]
struct Hook {
    handler: UpdateHandler,
    secret: String,
}

pub(crate) async fn serve(
    bot: &Bot,
    handler: UpdateHandler,
    public_url: url::Url,
    listen: SocketAddr,
    fixed_secret: Option<String>,
    shutdown: &mut tokio::sync::broadcast::Receiver<()>,
) -> Result<()> {
    // Without a fixed secret, a fresh one each start: nothing to configure, nothing to
    // leak from a file (one instance). A fixed one is shared by several instances, and
    // the webhook it was registered with is theirs: none of them registers it again.
    let register = fixed_secret.is_none();
    let secret = match fixed_secret {
        Some(s) => {
            check_secret(&s)?;
            s
        }
        None => random_secret(),
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for Telegram's webhook on {listen}"))?;
    let path = match public_url.path() {
        "" => "/".to_string(),
        p => p.to_string(),
    };
    let app = Router::new().route(&path, post(receive)).with_state(Hook {
        handler: handler.clone(),
        secret: secret.clone(),
    });
    if register {
        crate::send::retrying(|| {
            bot.set_webhook(public_url.clone())
                .secret_token(secret.clone())
                .allowed_updates(crate::allowed_updates())
                .send()
        })
        .await
        .map_err(|e| anyhow::anyhow!("setWebhook failed: {}", handler.redact.clean(&e)))?;
    }
    tracing::info!(
        %listen,
        registered_here = register,
        "receiving Telegram updates by webhook"
    );
    let mut stop = shutdown.resubscribe();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.recv().await;
        })
        .await
        .context("the webhook server failed")?;
    Ok(())
}

async fn receive(
    State(hook): State<Hook>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), hook.secret.as_bytes()) {
        return StatusCode::UNAUTHORIZED;
    }
    let update: Update = match serde_json::from_slice(&body) {
        Ok(u) => u,
        // Not something Telegram would send; retrying would not help.
        Err(_) => return StatusCode::OK,
    };
    match hook.handler.handle(update).await {
        Outcome::Acknowledge => StatusCode::OK,
        // Telegram itself gives up on a webhook update after some attempts.
        Outcome::Retry | Outcome::RetryPlatform | Outcome::Stop => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Telegram's rule for secret tokens: 1-256 characters of A-Z, a-z, 0-9, `_` and `-`.
pub(crate) fn check_secret(secret: &str) -> Result<()> {
    let ok = (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        anyhow::bail!(
            "the Telegram webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and - \
             (e.g. the output of `openssl rand -hex 32`)"
        );
    }
    Ok(())
}

fn random_secret() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    // Telegram allows 1-256 characters from A-Z, a-z, 0-9, _ and -.
    Alphanumeric.sample_string(&mut rand::rng(), 48)
}
