//! The model worker: one thread that owns the model and answers reply requests in
//! batches. When several people write at once their replies are decoded together (one
//! forward pass per token serves them all), which is far cheaper than one by one; when
//! one person writes, the batch is just that request and waits at most `window`.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use tokio::sync::oneshot;

use crate::model::{ContextTurn, DecodingOptions, JointModel, Reply, StrategyChoice};

/// What `/readyz` and `/metrics` know of the model thread.
#[derive(Debug, Default)]
pub struct ModelHealth {
    /// When the batch being decoded began (ms since the epoch), 0 when idle.
    busy_since_ms: AtomicI64,
    /// Replies asked for and not yet taken into a batch.
    queued: AtomicUsize,
    /// False once the thread has ended.
    stopped: AtomicBool,
}

impl ModelHealth {
    /// Whether the model answers: its thread runs and no batch has taken longer than
    /// `limit` (a hung model).
    pub fn answering(&self, limit: Duration) -> bool {
        if self.stopped.load(Ordering::Relaxed) {
            return false;
        }
        let since = self.busy_since_ms.load(Ordering::Relaxed);
        since == 0 || crate::store::now_ms() - since < limit.as_millis() as i64
    }

    /// Replies waiting for the model.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

struct Job {
    situation: Option<String>,
    turns: Vec<ContextTurn>,
    choice: StrategyChoice,
    respond: oneshot::Sender<Result<Reply>>,
}

/// A cloneable handle to the model thread.
#[derive(Clone)]
pub struct ModelWorker {
    tx: std_mpsc::Sender<Job>,
    health: Arc<ModelHealth>,
    /// How long a reply may take before it is given up.
    timeout: Duration,
}

/// A reply given up after the worker's timeout.
#[derive(Debug, Clone, Copy)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no reply after {:.1} s: given up", self.0.as_secs_f64())
    }
}

impl std::error::Error for TimedOut {}

/// The default reply timeout (`model.reply_timeout_seconds`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl ModelWorker {
    pub fn spawn(
        model: JointModel,
        opts: DecodingOptions,
        max_batch: usize,
        window: Duration,
    ) -> Self {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let health = Arc::new(ModelHealth::default());
        let thread_health = health.clone();
        std::thread::Builder::new()
            .name("kindred-model".into())
            .spawn(move || {
                let health = thread_health;
                // Everything a batch does is guarded (see `run_batch`); should anything
                // still unwind out of the loop, the loop starts again with the same model
                // rather than leaving the daemon without one. The jobs of that batch
                // were dropped on the way out, so their callers get an error, not silence.
                loop {
                    let served = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        while let Ok(first) = rx.recv() {
                            let mut jobs = vec![first];
                            let deadline = Instant::now() + window;
                            while jobs.len() < max_batch.max(1) {
                                let left = deadline.saturating_duration_since(Instant::now());
                                match rx.recv_timeout(left) {
                                    Ok(j) => jobs.push(j),
                                    Err(_) => break,
                                }
                            }
                            health.queued.fetch_sub(jobs.len(), Ordering::Relaxed);
                            health
                                .busy_since_ms
                                .store(crate::store::now_ms(), Ordering::Relaxed);
                            run_batch(&model, &opts, jobs);
                            health.busy_since_ms.store(0, Ordering::Relaxed);
                        }
                    }));
                    health.busy_since_ms.store(0, Ordering::Relaxed);
                    match served {
                        // Every handle is gone: the daemon is stopping.
                        Ok(()) => {
                            health.stopped.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(_) => tracing::error!("the model thread panicked; it carries on"),
                    }
                }
            })
            .expect("spawn the model thread");
        Self {
            tx,
            health,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// What `/readyz` and `/metrics` know of the model thread.
    pub fn health(&self) -> Arc<ModelHealth> {
        self.health.clone()
    }

    /// How long a reply may take before it is given up.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same worker with another reply timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A worker whose model takes requests and never answers: a hung model, for tests
    /// and drills that show nothing urgent waits for the model.
    pub fn unresponsive() -> Self {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let health = Arc::new(ModelHealth::default());
        health
            .busy_since_ms
            .store(crate::store::now_ms(), Ordering::Relaxed);
        std::thread::Builder::new()
            .name("kindred-model-hung".into())
            .spawn(move || {
                let mut held = Vec::new();
                while let Ok(job) = rx.recv() {
                    held.push(job);
                }
            })
            .expect("spawn the model thread");
        Self {
            tx,
            health,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A reply to the conversation `turns` (oldest first).
    pub async fn reply(
        &self,
        situation: Option<String>,
        turns: Vec<ContextTurn>,
        choice: StrategyChoice,
    ) -> Result<Reply> {
        let (respond, rx) = oneshot::channel();
        self.health.queued.fetch_add(1, Ordering::Relaxed);
        if self
            .tx
            .send(Job {
                situation,
                turns,
                choice,
                respond,
            })
            .is_err()
        {
            self.health.queued.fetch_sub(1, Ordering::Relaxed);
            crate::metrics::metrics().model_failures.inc();
            return Err(anyhow!("the model thread has stopped"));
        }
        let answer = match tokio::time::timeout(self.timeout, rx).await {
            Ok(answer) => answer.map_err(|_| anyhow!("the model thread dropped the request"))?,
            Err(_) => Err(anyhow::Error::new(TimedOut(self.timeout))),
        };
        if answer.is_err() {
            crate::metrics::metrics().model_failures.inc();
        }
        answer
    }
}

fn run_batch(model: &JointModel, opts: &DecodingOptions, jobs: Vec<Job>) {
    let mut ready = Vec::new();
    for job in jobs {
        // Tokenising is guarded too: a panic on one person's text fails their reply only.
        let ids = std::panic::catch_unwind(AssertUnwindSafe(|| {
            model.context_ids(job.situation.as_deref(), &job.turns)
        }));
        match ids {
            Ok(Ok(ids)) => ready.push((ids, job)),
            Ok(Err(e)) => {
                let _ = job.respond.send(Err(e));
            }
            Err(_) => {
                let _ = job
                    .respond
                    .send(Err(anyhow!("tokenising the conversation panicked")));
            }
        }
    }
    if ready.is_empty() {
        return;
    }
    let contexts: Vec<Vec<u32>> = ready.iter().map(|(c, _)| c.clone()).collect();
    let choices: Vec<StrategyChoice> = ready.iter().map(|(_, j)| j.choice).collect();
    // A panic inside the numeric code must not take the daemon's only model thread down.
    let started = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        model.reply_batch(&contexts, &choices, opts)
    }));
    let m = crate::metrics::metrics();
    m.model_batch_size.observe(contexts.len() as f64);
    m.model_seconds.inc_by(started.elapsed().as_secs_f64());
    match result {
        Ok(Ok(replies)) => {
            let tokens: usize = replies.iter().map(|r| r.tokens.len()).sum();
            m.model_tokens.inc_by(tokens as u64);
            for ((_, job), reply) in ready.into_iter().zip(replies) {
                let _ = job.respond.send(Ok(reply));
            }
        }
        Ok(Err(e)) => {
            let msg = format!("{e:#}");
            for (_, job) in ready {
                let _ = job.respond.send(Err(anyhow!("generation failed: {msg}")));
            }
        }
        Err(_) => {
            for (_, job) in ready {
                let _ = job.respond.send(Err(anyhow!("generation panicked")));
            }
        }
    }
}
