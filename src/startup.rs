//! Building and running the application, so that `kindred run`, `kindred chat` and the
//! tests all start Kindred the same way.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kindred_adapter::{Adapter, AdapterIo, Inbox};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::configuration::Settings;
use crate::engine::{runtime, Engine, ModelWorker};
use crate::model;
use crate::store::Store;

/// Opens the database (applying migrations).
pub async fn open_store(settings: &Settings) -> Result<Store> {
    Store::open(
        &settings.database_location(),
        Duration::from_millis(settings.storage.busy_timeout_ms),
    )
    .await
}

/// Loads the model and starts its worker thread.
pub fn start_model(settings: &Settings, model_dir: &Path) -> Result<ModelWorker> {
    if settings.model.threads > 0 && std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // candle reads this when it first sizes its thread pool.
        std::env::set_var("CANDLE_NUM_THREADS", settings.model.threads.to_string());
    }
    // candle's f32 matrix products (gemm) and quantising at load time run on rayon's
    // global pool: the same limit (0 lets rayon choose, RAYON_NUM_THREADS too).
    let threads = std::env::var("CANDLE_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    if rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .is_err()
    {
        tracing::debug!("rayon's thread pool was already set up");
    }
    let started = std::time::Instant::now();
    let mut joint = model::load(model_dir, &settings.load_options())?;
    if settings.model.max_context_turns > 0 {
        joint.context.max_turns = settings.model.max_context_turns;
    }
    if settings.model.max_context_tokens > 0 {
        joint.context.max_tokens = settings
            .model
            .max_context_tokens
            .min(joint.model.max_positions());
    }
    let opts = settings.decoding_for(&joint.defaults)?;
    tracing::info!(
        model = %model_dir.display(),
        lineage = %joint.lineage,
        params_m = joint.model.parameter_count() as f64 / 1e6,
        load_ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    Ok(ModelWorker::spawn(
        joint,
        opts,
        settings.model.max_batch,
        Duration::from_millis(settings.model.batch_window_ms),
    )
    .with_timeout(Duration::from_secs(settings.model.reply_timeout_seconds)))
}

/// Builds the engine: store, model, settings.
pub async fn build_engine(settings: Settings, model_dir: &Path) -> Result<Engine> {
    let store = open_store(&settings).await?;
    let worker = start_model(&settings, model_dir)?;
    Ok(Engine::new(store, worker, Arc::new(settings)))
}

/// The adapters `kindred run` serves, checked and configured from the settings.
pub struct ConfiguredAdapters {
    console: bool,
    telegram: Option<kindred_telegram::TelegramConfig>,
    discord: Option<kindred_discord::DiscordConfig>,
}

impl ConfiguredAdapters {
    pub fn from_settings(settings: &Settings) -> Result<Self> {
        let telegram = if settings.telegram.enabled {
            Some(telegram_config(settings)?)
        } else {
            None
        };
        let discord = if settings.discord.enabled {
            Some(discord_config(settings)?)
        } else {
            None
        };
        let this = Self {
            console: settings.console.enabled,
            telegram,
            discord,
        };
        if !this.console && this.telegram.is_none() && this.discord.is_none() {
            anyhow::bail!(
                "no adapter is enabled: set telegram.enabled = true (KINDRED__TELEGRAM__ENABLED=true) with \
                 KINDRED_TELEGRAM_TOKEN, discord.enabled = true with KINDRED_DISCORD_TOKEN, or \
                 console.enabled = true to talk in this terminal"
            );
        }
        Ok(this)
    }

    pub fn add_to(self, mut app: AppBuilder) -> AppBuilder {
        if self.console {
            app = app.with_adapter(kindred_console::ConsoleAdapter::stdio("console"));
        }
        if let Some(t) = self.telegram {
            app = app.with_adapter(kindred_telegram::TelegramAdapter::new(t));
        }
        if let Some(d) = self.discord {
            app = app.with_adapter(kindred_discord::DiscordAdapter::new(d));
        }
        app
    }
}

/// The Telegram adapter's configuration: the token from `KINDRED_TELEGRAM_TOKEN` or
/// `telegram.token_file`, the API URL, polling or webhook.
pub fn telegram_config(settings: &Settings) -> Result<kindred_telegram::TelegramConfig> {
    use crate::configuration::{read_secret, TelegramMode};
    let t = &settings.telegram;
    let token = read_secret(
        "KINDRED_TELEGRAM_TOKEN",
        t.token_file.as_deref(),
        "Telegram bot token",
    )?;
    let mode = match t.mode {
        TelegramMode::Polling => kindred_telegram::Mode::Polling {
            timeout: Duration::from_secs(t.poll_timeout_seconds as u64),
        },
        TelegramMode::Webhook => kindred_telegram::Mode::Webhook {
            public_url: t
                .webhook_url
                .clone()
                .context("telegram.mode is \"webhook\" but telegram.webhook_url is not set")?,
            listen: t.webhook_listen,
            secret: telegram_webhook_secret(settings)?,
        },
    };
    Ok(kindred_telegram::TelegramConfig {
        token: token.expose().to_string(),
        api_url: t.api_url.clone(),
        mode,
        messages_per_second: t.messages_per_second,
    })
}

/// The fixed Telegram webhook secret, if one is configured: `KINDRED_TELEGRAM_WEBHOOK_SECRET`
/// or `telegram.webhook_secret_file`.
pub fn telegram_webhook_secret(settings: &Settings) -> Result<Option<String>> {
    let configured = std::env::var("KINDRED_TELEGRAM_WEBHOOK_SECRET")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .is_some()
        || settings.telegram.webhook_secret_file.is_some();
    if !configured {
        return Ok(None);
    }
    let secret = crate::configuration::read_secret(
        "KINDRED_TELEGRAM_WEBHOOK_SECRET",
        settings.telegram.webhook_secret_file.as_deref(),
        "Telegram webhook secret",
    )?;
    Ok(Some(secret.expose().to_string()))
}

/// The Discord adapter's configuration: the token from `KINDRED_DISCORD_TOKEN` or
/// `discord.token_file`, the API base.
pub fn discord_config(settings: &Settings) -> Result<kindred_discord::DiscordConfig> {
    let d = &settings.discord;
    let token = crate::configuration::read_secret(
        "KINDRED_DISCORD_TOKEN",
        d.token_file.as_deref(),
        "Discord bot token",
    )?;
    Ok(kindred_discord::DiscordConfig {
        token: token.expose().to_string(),
        api_url: d.api_url.as_str().trim_end_matches('/').to_string(),
        register_commands: d.register_commands,
        shards: d.shards,
    })
}

/// A running application: the engine serving its adapters.
pub struct Running {
    pub shutdown: broadcast::Sender<()>,
    pub adapters: Vec<(String, JoinHandle<Result<()>>)>,
    pub engine: JoinHandle<Result<()>>,
}

/// Collects adapters before the engine starts.
pub struct AppBuilder {
    inbound_tx: Inbox,
    inbound_rx: kindred_adapter::Intake,
    shutdown: broadcast::Sender<()>,
    routes: HashMap<String, mpsc::Sender<kindred_adapter::Outbound>>,
    adapters: Vec<(String, JoinHandle<Result<()>>)>,
    connections: Vec<(String, kindred_adapter::Connection)>,
}

impl Default for AppBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl AppBuilder {
    pub fn new() -> Self {
        let (inbound_tx, inbound_rx) = Inbox::channel(1024);
        let (shutdown, _) = broadcast::channel(4);
        Self {
            inbound_tx,
            inbound_rx,
            shutdown,
            routes: HashMap::new(),
            adapters: Vec::new(),
            connections: Vec::new(),
        }
    }

    /// Starts an adapter task wired to the engine's channels.
    pub fn with_adapter<A: Adapter>(mut self, adapter: A) -> Self {
        let platform = adapter.platform().to_string();
        let (out_tx, out_rx) = mpsc::channel(1024);
        let connection = kindred_adapter::Connection::default();
        self.connections
            .push((platform.clone(), connection.clone()));
        let io = AdapterIo {
            connection,
            inbound: self.inbound_tx.clone(),
            outbound: out_rx,
            shutdown: self.shutdown.subscribe(),
        };
        let handle = tokio::spawn(adapter.run(io));
        self.routes.insert(platform.clone(), out_tx);
        self.adapters.push((platform, handle));
        self
    }

    /// The probes of `/readyz` for `engine` and the adapters added so far.
    pub fn probes(&self, engine: &Engine) -> crate::operations::Probes {
        crate::operations::Probes {
            store: engine.store.clone(),
            model: engine.model_health(),
            model_limit: engine.reply_timeout(),
            adapters: self.connections.clone(),
        }
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` on `listen` until shutdown.
    pub async fn with_operations(
        self,
        listen: std::net::SocketAddr,
        engine: &Engine,
    ) -> Result<Self> {
        let probes = self.probes(engine);
        crate::operations::serve(listen, probes, self.shutdown.subscribe()).await?;
        Ok(self)
    }

    /// Starts the engine over the adapters added so far.
    pub fn start(self, engine: Engine) -> Running {
        let routes = Arc::new(self.routes);
        drop(self.inbound_tx);
        let engine = tokio::spawn(runtime::serve(
            engine,
            self.inbound_rx,
            routes,
            self.shutdown.subscribe(),
        ));
        Running {
            shutdown: self.shutdown,
            adapters: self.adapters,
            engine,
        }
    }
}

impl Running {
    /// Waits until an adapter stops (or ctrl-c), then shuts everything down.
    pub async fn wait(mut self) -> Result<()> {
        let mut first_error = None;
        let mut finished = None;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("shutting down (interrupt)"),
            _ = terminate() => tracing::info!("shutting down (terminate)"),
            (res, i, _) = futures_select_all(&mut self.adapters) => {
                let name = self.adapters[i].0.clone();
                finished = Some(i);
                match res {
                    Ok(Ok(())) => tracing::info!(adapter = %name, "adapter finished"),
                    Ok(Err(e)) => { tracing::error!(adapter = %name, error = %format!("{e:#}"), "adapter failed"); first_error = Some(e.context(format!("the {name} adapter failed"))); }
                    Err(e) => { first_error = Some(anyhow::anyhow!("the {name} adapter crashed: {e}")); }
                }
            }
        }
        let _ = self.shutdown.send(());
        if let Some(i) = finished {
            // A finished handle must not be polled again.
            self.adapters.remove(i);
        }
        // Intake stops at once; the engine finishes people's replies within its grace
        // period, then the adapters send what is queued, then the store is closed. A
        // second signal ends the wait (and the process) at once: nothing is lost that the
        // next start would not pick up.
        let everything = async {
            for (_, h) in self.adapters {
                let _ = h.await;
            }
            let _ = self.engine.await;
        };
        tokio::select! {
            _ = everything => {}
            _ = tokio::signal::ctrl_c() => {
                tracing::warn!("second interrupt: stopping now");
                std::process::exit(130);
            }
            _ = terminate() => {
                tracing::warn!("second terminate: stopping now");
                std::process::exit(143);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Resolves on SIGTERM (what service managers send), never elsewhere.
async fn terminate() {
    #[cfg(unix)]
    {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

/// Waits for the first of several join handles (without pulling in the futures crate).
async fn futures_select_all(
    handles: &mut [(String, JoinHandle<Result<()>>)],
) -> (Result<Result<()>, tokio::task::JoinError>, usize, ()) {
    if handles.is_empty() {
        std::future::pending::<()>().await;
    }
    std::future::poll_fn(|cx| {
        for (i, (_, h)) in handles.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = std::pin::Pin::new(h).poll(cx) {
                return std::task::Poll::Ready((r, i, ()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

use std::future::Future;

/// Resolves the data directory override of `--data-dir` into the settings.
pub fn apply_cli(settings: &mut Settings, data_dir: Option<&Path>) {
    if let Some(d) = data_dir {
        settings.storage.data_dir = d.to_path_buf();
    }
}

/// Loads settings for a command: `--config`, environment, `--data-dir`.
pub fn settings_for(config: Option<&Path>, data_dir: Option<&Path>) -> Result<Settings> {
    let mut s = Settings::from_env(config).context("cannot load settings")?;
    apply_cli(&mut s, data_dir);
    Ok(s)
}
