//! Running the engine with adapters: one task per person serialises that person's
//! events, a semaphore bounds how many people are handled at once, a sweeper ends idle
//! sessions, and a broadcast shutdown signal stops everything cleanly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use kindred_adapter::{Inbound, Outbound};
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::Engine;

/// The outbound channel of each platform.
pub type Routes = Arc<HashMap<String, mpsc::Sender<Outbound>>>;

/// Feeds inbound events to the engine until `inbound` closes or shutdown fires.
pub async fn serve(
    engine: Engine,
    mut inbound: mpsc::Receiver<Inbound>,
    routes: Routes,
    mut shutdown: broadcast::Receiver<()>,
) -> Result<()> {
    let permits = Arc::new(Semaphore::new(
        engine.settings().conversation.max_concurrent_users,
    ));
    let mut people: HashMap<String, mpsc::Sender<Inbound>> = HashMap::new();
    let route = {
        let routes = routes.clone();
        move |p: &str| routes.get(p).cloned()
    };
    match engine.recover(&route).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(resumed = n, "resumed unfinished replies"),
        Err(e) => tracing::error!(error = %format!("{e:#}"), "recovery after restart failed"),
    }
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            _ = sweep.tick() => {
                if let Err(e) = engine.end_idle_sessions().await {
                    tracing::warn!(error = %format!("{e:#}"), "ending idle sessions failed");
                }
            }
            ev = inbound.recv() => {
                let Some(ev) = ev else { break };
                let key = match ev.origin() {
                    Some((chat, user)) => format!("{}\u{1f}{}\u{1f}{}", chat.platform, chat.id, user.id),
                    None => {
                        // Delivery reports touch one row; no need to queue them behind a person.
                        if let Err(e) = engine.handle(ev, &mpsc::channel(1).0).await {
                            tracing::warn!(error = %format!("{e:#}"), "recording a delivery failed");
                        }
                        continue;
                    }
                };
                let platform = ev.origin().map(|(c, _)| c.platform.clone()).unwrap_or_default();
                let Some(out) = routes.get(&platform).cloned() else {
                    tracing::warn!(%platform, "event from a platform without an adapter");
                    continue;
                };
                let mut ev = Some(ev);
                if let Some(tx) = people.get(&key) {
                    match tx.send(ev.take().unwrap()).await {
                        Ok(()) => continue,
                        Err(mpsc::error::SendError(back)) => ev = Some(back),
                    }
                }
                let (tx, rx) = mpsc::channel(64);
                tx.send(ev.take().unwrap()).await.ok();
                people.insert(key, tx);
                tokio::spawn(person_task(engine.clone(), rx, out, permits.clone()));
            }
        }
    }
    Ok(())
}

/// Handles one person's events in order; exits after a quiet spell.
async fn person_task(
    engine: Engine,
    mut rx: mpsc::Receiver<Inbound>,
    out: mpsc::Sender<Outbound>,
    permits: Arc<Semaphore>,
) {
    loop {
        let ev = match tokio::time::timeout(Duration::from_secs(600), rx.recv()).await {
            Ok(Some(ev)) => ev,
            _ => return,
        };
        let Ok(_permit) = permits.acquire().await else {
            return;
        };
        let _ = engine.handle(ev, &out).await;
    }
}
