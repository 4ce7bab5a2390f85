//! The model worker: one thread that owns the model and answers reply requests in
//! batches. When several people write at once their replies are decoded together (one
//! forward pass per token serves them all), which is far cheaper than one by one; when
//! one person writes, the batch is just that request and waits at most `window`.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use tokio::sync::oneshot;

use crate::model::{ContextTurn, DecodingOptions, JointModel, Reply, StrategyChoice};

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
        std::thread::Builder::new()
            .name("kindred-model".into())
            .spawn(move || {
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
                            run_batch(&model, &opts, jobs);
                        }
                    }));
                    match served {
                        // Every handle is gone: the daemon is stopping.
                        Ok(()) => return,
                        Err(_) => tracing::error!("the model thread panicked; it carries on"),
                    }
                }
            })
            .expect("spawn the model thread");
        Self {
            tx,
            timeout: DEFAULT_TIMEOUT,
        }
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
        self.tx
            .send(Job {
                situation,
                turns,
                choice,
                respond,
            })
            .map_err(|_| anyhow!("the model thread has stopped"))?;
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(answer) => answer.map_err(|_| anyhow!("the model thread dropped the request"))?,
            Err(_) => Err(anyhow::Error::new(TimedOut(self.timeout))),
        }
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
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        model.reply_batch(&contexts, &choices, opts)
    }));
    match result {
        Ok(Ok(replies)) => {
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
