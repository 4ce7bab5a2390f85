//! What each subcommand does. Kept apart from `cli.rs` (the argument definitions) so the
//! commands can be called from tests with a parsed `Cli`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::{
    Cli, Command, DbCommand, EvalMode, ModelCommand, SafetyCommand, TelegramCommand, TrainArgs,
};
use crate::configuration::LogFormat;
use crate::model::{self, LoadOptions};
use crate::startup;
use crate::store::Store;
use crate::train::trainer::{self, TrainSettings};
use std::time::Duration;

/// The log filter when `KINDRED_LOG` does not say otherwise: Kindred's own crates at the
/// configured level, other crates at warnings, and the platform clients and HTTP stacks
/// at errors only: some of them log whole payloads (a person's message) when they warn,
/// and Kindred's logs must never hold what people wrote.
pub fn default_log_filter(level: &str) -> String {
    let own = [
        "kindred",
        "kindred_adapter",
        "kindred_console",
        "kindred_telegram",
        "kindred_discord",
    ];
    let quiet = [
        "serenity",
        "poise",
        "teloxide",
        "teloxide_core",
        "tungstenite",
        "tokio_tungstenite",
        "reqwest",
        "hyper",
        "hyper_util",
        "h2",
        "sqlx",
    ];
    let mut directives = vec!["warn".to_string()];
    directives.extend(own.iter().map(|c| format!("{c}={level}")));
    directives.extend(quiet.iter().map(|c| format!("{c}=error")));
    directives.join(",")
}

/// Installs the log subscriber: human-readable on stderr, or JSON lines.
pub fn init_logging(json: bool, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KINDRED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log_filter(default_level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("kindred-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Runs `f` on a fresh runtime. Shutdown does not wait for blocking reads (the console's
/// stdin) that would otherwise keep the process alive after the work is done.
fn block_on<F: std::future::Future<Output = Result<()>>>(f: F) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(f);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

pub fn dispatch(cli: Cli) -> Result<()> {
    let global = cli.global.clone();
    // Settings are checked for every command, so a broken file is reported at once.
    let settings = startup::settings_for(global.config.as_deref(), global.data_dir.as_deref())?;
    let json = settings.logging.format == LogFormat::Json;
    // The terminal chat keeps the screen for the conversation: warnings only, unless asked.
    let level = if matches!(cli.command, Command::Chat(_)) {
        "warn"
    } else {
        settings.logging.level.as_str()
    };
    init_logging(json, level);

    match cli.command {
        Command::Train(args) => train(*args),
        Command::Model(cmd) => model_command(cmd, &global.model, &settings),
        Command::Chat(args) => block_on(async {
            let model_dir = settings.model_dir(global.model.as_deref());
            let engine = startup::build_engine(settings, &model_dir).await?;
            let store = engine.store.clone();
            let running = startup::AppBuilder::new()
                .with_adapter(kindred_console::ConsoleAdapter::stdio(args.user))
                .start(engine);
            let result = running.wait().await;
            store.close().await;
            result
        }),
        Command::Run => block_on(async {
            let model_dir = settings.model_dir(global.model.as_deref());
            // Secrets and URLs are checked before the model loads: a missing token should
            // not take a model load to find out.
            let adapters = startup::ConfiguredAdapters::from_settings(&settings)?;
            let operations = settings.operations.listen;
            let engine = startup::build_engine(settings, &model_dir).await?;
            let store = engine.store.clone();
            let mut app = adapters.add_to(startup::AppBuilder::new());
            if let Some(listen) = operations {
                app = app.with_operations(listen, &engine).await?;
            }
            tracing::info!("kindred is running");
            let result = app.start(engine).wait().await;
            if let Some(instance) = store.instance() {
                // Stopped cleanly: its leases are free for the others at once.
                if let Err(e) = store.remove_instance(instance).await {
                    tracing::warn!(error = %format!("{e:#}"), "unregistering this instance failed");
                }
            }
            store.close().await;
            result
        }),
        Command::Safety(SafetyCommand::Check { json, stats }) => {
            let screen = settings.safety.screen()?;
            let start = std::time::Instant::now();
            let (n, risk) = safety_check(
                &screen,
                json,
                std::io::stdin().lock(),
                std::io::stdout().lock(),
            )?;
            if stats {
                let us = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
                eprintln!("{n} messages, {risk} risk; {us:.1} µs a message (reading and writing included)");
            }
            Ok(())
        }
        Command::Safety(SafetyCommand::Normalize) => {
            let mut out = std::io::stdout().lock();
            for line in std::io::stdin().lock().lines() {
                writeln!(out, "{}", crate::safety::normalize(&line?).trim())?;
            }
            Ok(())
        }
        Command::Db(DbCommand::Migrate) => block_on(async {
            let location = settings.database_location();
            let store = Store::connect(
                &location,
                Duration::from_millis(settings.storage.busy_timeout_ms),
            )
            .await?;
            let applied = store.migrate().await;
            store.close().await;
            let applied =
                applied.with_context(|| format!("cannot apply migrations to {location}"))?;
            for m in &applied {
                println!("applied {m}");
            }
            println!("database {location} is up to date");
            Ok(())
        }),
        Command::Db(DbCommand::Backup { file }) => block_on(async {
            let store = startup::open_store(&settings).await?;
            let result = store.backup(&file).await;
            store.close().await;
            result?;
            println!(
                "backed up {} to {}",
                settings.database_location(),
                file.display()
            );
            Ok(())
        }),
        Command::Telegram(TelegramCommand::SetWebhook { url }) => {
            let url = url
                .or_else(|| settings.telegram.webhook_url.clone())
                .context("no webhook URL: set telegram.webhook_url (KINDRED__TELEGRAM__WEBHOOK_URL) or pass --url")?;
            let secret = startup::telegram_webhook_secret(&settings)?.context(
                "no fixed webhook secret: set KINDRED_TELEGRAM_WEBHOOK_SECRET or telegram.webhook_secret_file \
                 (the same for every instance), e.g. from `openssl rand -hex 32`",
            )?;
            let mut config = startup::telegram_config(&settings)?;
            config.mode = kindred_telegram::Mode::Polling {
                timeout: Duration::from_secs(1),
            };
            block_on(kindred_telegram::set_webhook(&config, &url, &secret))?;
            println!(
                "Telegram now posts updates to {url} with the shared secret; start the instances with \
                 telegram.mode = \"webhook\" and the same secret"
            );
            Ok(())
        }
        Command::Db(DbCommand::Copy { from, to }) => block_on(async {
            let busy = Duration::from_millis(settings.storage.busy_timeout_ms);
            let from = match from {
                Some(url) => crate::store::Location::parse(&url)
                    .context("--from takes sqlite://PATH or postgres://…")?,
                None => settings.database_location(),
            };
            let to = crate::store::Location::parse(&to)
                .context("--to takes sqlite://PATH or postgres://…")?;
            if from == to {
                anyhow::bail!("--from and --to name the same database ({to})");
            }
            if let crate::store::Location::Sqlite(path) = &from {
                if !path.exists() {
                    anyhow::bail!("there is no database at {from}");
                }
            }
            // Both at the latest schema, so that their tables match.
            let source = Store::open(&from, busy).await?;
            let target = Store::open(&to, busy).await?;
            eprintln!("copying {from} to {to}");
            let result = source
                .copy_into(&target, |table, n| eprintln!("  {table}: {n} rows"))
                .await;
            source.close().await;
            target.close().await;
            let copied = result
                .with_context(|| format!("copying {from} to {to} failed; {to} is unchanged"))?;
            let total: u64 = copied.iter().map(|(_, n)| n).sum();
            println!("copied {total} rows from {from} to {to}; point storage.url at {to} and start kindred run");
            Ok(())
        }),
        Command::Db(DbCommand::Forget { user }) => block_on(async {
            let Some((platform, id)) = user.split_once(':') else {
                anyhow::bail!("--user takes PLATFORM:ID (e.g. telegram:123456789), not {user:?}");
            };
            let store = startup::open_store(&settings).await?;
            let found = store.find_user(platform, id).await?;
            let result = match &found {
                Some(u) => crate::engine::forget_person(&store, u.id, platform, id).await,
                None => Ok(()),
            };
            store.close().await;
            result?;
            match found {
                Some(_) => println!("deleted everything stored about {platform}:{id}"),
                None => println!("nothing is stored about {platform}:{id}"),
            }
            Ok(())
        }),
        Command::Eval(a) => {
            let joint = model::load(
                &settings.model_dir(global.model.as_deref()),
                &settings.load_options(),
            )?;
            let decoding = settings.decoding_for(&joint.defaults)?;
            let report = crate::train::eval::evaluate(
                &joint,
                &a.data,
                &crate::train::eval::EvalOptions {
                    oracle: a.mode == EvalMode::Oracle,
                    limit: a.limit,
                    seed: a.seed,
                    batch: a.batch,
                    decoding,
                    out: a.out.as_deref(),
                },
            )?;
            if a.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(())
        }
        Command::Export(a) => block_on(async {
            let date = |flag: &str, d: &str| -> Result<i64> {
                Ok(chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .with_context(|| format!("--{flag} {d:?} is not a date like 2026-11-24"))?
                    .and_hms_opt(0, 0, 0)
                    .unwrap()
                    .and_utc()
                    .timestamp_millis())
            };
            let opts = crate::export::ExportOptions {
                since_ms: a
                    .since
                    .as_deref()
                    .map(|d| date("since", d))
                    .transpose()?
                    .unwrap_or(0),
                until_ms: a.until.as_deref().map(|d| date("until", d)).transpose()?,
                platform: a.platform.clone(),
                min_rating: a.min_rating,
                max_rating: a.max_rating,
                include_open: a.include_open,
                include_groups: a.include_groups,
                key: Some(crate::export::PseudonymKey::load_or_create(
                    &settings.export_key_path(),
                )?),
                scrub: true,
            };
            if let (Some(lo), Some(hi)) = (opts.min_rating, opts.max_rating) {
                anyhow::ensure!(lo <= hi, "--min-rating {lo} is above --max-rating {hi}");
            }
            let format = if a.jsonl {
                crate::export::Format::EsconvLines
            } else {
                a.format
            };
            let store = startup::open_store(&settings).await?;
            match &a.out {
                Some(path) => {
                    let mut header = None;
                    // Written beside the target, then renamed: a reader never sees half.
                    let tmp = path.with_extension(format!("partial-{}", std::process::id()));
                    let file = crate::export::scrub::private_file(&tmp)?;
                    let mut w = std::io::BufWriter::new(file);
                    let r = crate::export::write(&store, &opts, format, &mut w, &mut |h| {
                        header = Some(h.clone());
                        Ok(())
                    })
                    .await
                    .and_then(|n| {
                        w.flush()?;
                        w.get_ref().sync_all()?;
                        Ok(n)
                    });
                    let n = match r {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = std::fs::remove_file(&tmp);
                            return Err(e);
                        }
                    };
                    std::fs::rename(&tmp, path)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if format == crate::export::Format::Esconv {
                        let side = path.with_extension("header.json");
                        let _ = std::fs::remove_file(&side);
                        let mut f = crate::export::scrub::private_file(&side)?;
                        writeln!(f, "{}", serde_json::to_string_pretty(&header)?)?;
                    }
                    eprintln!("exported {n} conversations to {}", path.display());
                }
                None => {
                    // The header is the first line of every format but the ESConv array,
                    // whose header only a file can have beside it.
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    crate::export::write(&store, &opts, format, &mut w, &mut |_| Ok(())).await?;
                    w.flush()?;
                }
            }
            store.close().await;
            Ok(())
        }),
        Command::Stats(a) => block_on(async {
            let store = startup::open_store(&settings).await?;
            let v = crate::export::stats(&store).await;
            let plots = match (&a.plot, &a.html) {
                (None, None) => None,
                _ => Some(crate::export::plots::PlotData::collect(&store).await),
            };
            store.close().await;
            let v = v?;
            if let Some(data) = plots {
                let data = data?;
                if let Some(dir) = &a.plot {
                    for f in crate::export::plots::write_plots(&data, dir)? {
                        eprintln!("wrote {}", f.display());
                    }
                }
                if let Some(file) = &a.html {
                    let page =
                        crate::export::plots::html_report(&data, &crate::export::stats_table(&v))?;
                    std::fs::write(file, page)
                        .with_context(|| format!("cannot write {}", file.display()))?;
                    eprintln!("wrote {}", file.display());
                }
            }
            if a.json {
                println!("{v}");
            } else {
                print!("{}", crate::export::stats_table(&v));
            }
            Ok(())
        }),
        Command::Bench(a) => {
            let dir = settings.model_dir(global.model.as_deref());
            if let Some(only) = &a.only {
                let o = crate::bench::BenchOptions {
                    replies: a.replies,
                    context_tokens: a.context_tokens,
                    reply_tokens: a.reply_tokens,
                    batch: a.batch,
                    python: a.python.clone(),
                };
                let v = crate::bench::bench_model(&a.label, &dir, &o, only == "q8_0")?;
                println!("{v}");
                return Ok(());
            }
            // Each configuration in its own process, side by side in one run.
            let mut targets = Vec::new();
            let tmp = tempfile_dir()?;
            if a.full_size {
                // BlenderBot-small-90M's configuration and tokenizer ship in the repository.
                let base = std::env::var_os("KINDRED_BLENDERBOT_SMALL_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| {
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("third_party/blenderbot_small-90M")
                    });
                crate::bench::random_90m(&tmp, &base)?;
                targets.push((
                    "BlenderBot-small 90M, random weights".to_string(),
                    tmp.clone(),
                ));
            }
            targets.push(("configured model".to_string(), dir));
            let exe = std::env::current_exe()?;
            for (label, dir) in targets {
                for only in ["f32", "q8_0"] {
                    let mut c = std::process::Command::new(&exe);
                    c.args(["bench", "--only", only, "--label", &label, "--model"])
                        .arg(&dir);
                    c.args([
                        "--replies",
                        &a.replies.to_string(),
                        "--context-tokens",
                        &a.context_tokens.to_string(),
                    ]);
                    c.args([
                        "--reply-tokens",
                        &a.reply_tokens.to_string(),
                        "--batch",
                        &a.batch.to_string(),
                    ]);
                    if let Some(py) = &a.python {
                        c.arg("--python").arg(py);
                    }
                    let status = c.status().context("cannot start a benchmark process")?;
                    anyhow::ensure!(status.success(), "the {label} ({only}) benchmark failed");
                }
            }
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
    }
}

fn train(a: TrainArgs) -> Result<()> {
    let settings = TrainSettings {
        train: a.data,
        valid: a.valid,
        init: a.init,
        d_model: a.d_model,
        layers: a.layers,
        heads: a.heads,
        ffn_dim: a.ffn_dim,
        vocab_size: a.vocab_size,
        max_context_tokens: a.max_context_tokens,
        max_reply_tokens: a.max_reply_tokens,
        min_rating: a.min_rating,
        situation: a.situation,
        epochs: a.epochs,
        batch_size: a.batch_size,
        grad_accum: a.grad_accum,
        lr: a.lr,
        warmup_steps: a.warmup_steps,
        weight_decay: a.weight_decay,
        clip_norm: a.clip_norm,
        dropout: a.dropout,
        seed: a.seed,
        checkpoint_every: a.checkpoint_every,
        valid_every: a.valid_every,
        valid_limit: a.valid_limit,
        max_steps: a.max_steps,
    };
    let report = trainer::train(&a.out, Some(settings), a.resume)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

fn model_command(
    cmd: ModelCommand,
    model: &Option<PathBuf>,
    settings: &crate::configuration::Settings,
) -> Result<()> {
    match cmd {
        ModelCommand::Tokenize => {
            let tk = model::Tokenizer::from_dir(&settings.model_dir(model.as_deref()))?;
            let stdin = std::io::stdin();
            let mut out = std::io::stdout().lock();
            for line in stdin.lock().lines() {
                let ids = tk.encode(&line?)?;
                let s: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                writeln!(out, "{}", s.join(" "))?;
            }
            Ok(())
        }
        ModelCommand::Score { data, json, limit } => {
            let joint = model::load(
                &settings.model_dir(model.as_deref()),
                &settings.load_options(),
            )?;
            let convs = crate::train::data::read_conversations(&data)?;
            let mut ex = crate::train::data::build_examples(&joint, &convs, &Default::default())?;
            if let Some(n) = limit {
                ex.truncate(n);
            }
            let (ppl, tokens) = trainer::perplexity(&joint, &ex, 16)?;
            if json {
                println!("{}", serde_json::json!({"ppl": ppl, "tokens": tokens}));
            } else {
                println!(
                    "perplexity {ppl:.3} over {tokens} tokens ({} replies)",
                    ex.len()
                );
            }
            Ok(())
        }
        ModelCommand::Info { dir } => {
            // One resolver for every command: the argument, else --model, else
            // model.dir, else the shipped model.
            let dir = dir.unwrap_or_else(|| settings.model_dir(model.as_deref()));
            let joint = model::load(&dir, &LoadOptions::default())
                .with_context(|| format!("cannot load {}", dir.display()))?;
            println!("directory     {}", dir.display());
            match &joint.model {
                model::Network::BlenderbotSmall(m) => {
                    let cfg = m.config();
                    println!(
                        "architecture  BlenderbotSmallForConditionalGeneration ({})",
                        cfg.model_type
                    );
                    println!("parameters    {:.2} M", cfg.parameter_count() as f64 / 1e6);
                    println!(
                        "d_model {} · layers {}+{} · heads {} · ffn {} · vocab {} · positions {}",
                        cfg.d_model,
                        cfg.encoder_layers,
                        cfg.decoder_layers,
                        cfg.encoder_attention_heads,
                        cfg.encoder_ffn_dim,
                        cfg.vocab_size,
                        cfg.max_position_embeddings
                    );
                }
                model::Network::Llama(m) => {
                    let cfg = m.config();
                    println!("architecture  LlamaForCausalLM (llama, decoder-only)");
                    println!("parameters    {:.2} M", cfg.parameter_count() as f64 / 1e6);
                    println!(
                        "hidden {} · layers {} · heads {} (key/value {}) · ffn {} · vocab {} · positions {}",
                        cfg.hidden_size,
                        cfg.num_hidden_layers,
                        cfg.num_attention_heads,
                        cfg.kv_heads(),
                        cfg.intermediate_size,
                        cfg.vocab_size,
                        cfg.max_position_embeddings
                    );
                }
            }
            println!("lineage       {}", joint.lineage);
            if let Some(source) = model::ModelMeta::read(&dir)
                .ok()
                .flatten()
                .and_then(|m| m.source)
            {
                println!("source        {source}");
            }
            println!(
                "tokenizer     {}",
                if joint.tokenizer.is_blenderbot_small() {
                    "BlenderBot-small BPE (vocab.json + merges.txt)"
                } else if dir.join("tokenizer.json").exists() {
                    "tokenizer.json"
                } else {
                    "byte-level BPE from the GGUF file"
                }
            );
            println!(
                "context       {}last {} tokens{}",
                match &joint.context.format {
                    model::ContextFormat::ChatMl(_) => "ChatML, ",
                    model::ContextFormat::EosSeparated => "",
                },
                joint.context.max_tokens,
                if joint.context.max_turns > 0 {
                    format!(", at most {} utterances", joint.context.max_turns)
                } else {
                    String::new()
                }
            );
            let d = &joint.defaults;
            println!(
                "decoding      strategy {:?} (temperature {}, top-p {}); reply temperature {}, top-p {}, top-k {}, repetition penalty {}, no-repeat {}-grams, {}–{} tokens",
                d.strategy_selection,
                d.strategy_temperature,
                d.strategy_top_p,
                d.temperature,
                d.top_p,
                d.top_k,
                d.repetition_penalty,
                d.no_repeat_ngram_size,
                d.min_length,
                d.max_length
            );
            println!("strategies:");
            for s in model::Strategy::ALL {
                let id = joint.strategy_ids[s.index()];
                println!(
                    "  {:<30} {} = {}",
                    s.name(),
                    joint.tokenizer.id_to_token(id).unwrap_or_default(),
                    id
                );
            }
            println!("files:");
            let mut entries: Vec<_> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let md = e.metadata()?;
                if md.is_file() {
                    println!(
                        "  {:<28} {:>10.1} KB",
                        e.file_name().to_string_lossy(),
                        md.len() as f64 / 1024.0
                    );
                }
            }
            Ok(())
        }
        ModelCommand::Pull { repo, dir } => {
            model::hub::check_repo_id(&repo)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from("models").join(repo.replace('/', "--")));
            let hub = model::hub::Hub::from_env();
            let pulled = model::hub::pull(&hub, &repo, &dir)?;
            for (from, name, bytes) in &pulled.files {
                println!("  {from}/{name}  {:.1} MB", *bytes as f64 / 1e6);
            }
            for note in &pulled.notes {
                println!("note: {note}");
            }
            // Check that what arrived is a model Kindred can run, or a backbone to train.
            let tokenizer = model::Tokenizer::from_dir(&dir).with_context(|| {
                format!(
                    "downloaded {repo} to {}, but its tokenizer does not load",
                    dir.display()
                )
            })?;
            if model::strategy_token_ids(&tokenizer).is_err() {
                match model::architecture_of(&dir)? {
                    model::Architecture::Llama => model::read_llama_config(&dir).map(|_| ())?,
                    _ => model::read_config(&dir).map(|_| ())?,
                }
                println!(
                    "{repo} is in {}. It has no strategy tokens, so it is a backbone, not a Joint model: fine-tune it with `kindred train --init {}`",
                    dir.display(),
                    dir.display()
                );
                return Ok(());
            }
            model::load(&dir, &LoadOptions::default()).with_context(|| {
                format!(
                    "downloaded {repo} to {}, but it does not load",
                    dir.display()
                )
            })?;
            println!(
                "{repo} is in {}; chat with it: kindred chat --model {}",
                dir.display(),
                dir.display()
            );
            Ok(())
        }
    }
}

/// `kindred safety check`: one result line per input line. The plain form is
/// `risk<TAB>category<TAB>cue` or `none`; `--json` writes
/// `{"risk": bool, "category": "..."|null, "cue": "..."|null}`.
pub fn safety_check(
    screen: &crate::safety::Screen,
    json: bool,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<(usize, usize)> {
    let (mut n, mut risk) = (0, 0);
    for line in input.lines() {
        let line = line.context("reading stdin")?;
        let finding = screen.screen(&line);
        n += 1;
        risk += finding.is_some() as usize;
        if json {
            let v = match &finding {
                Some(f) => {
                    serde_json::json!({"risk": true, "category": f.category.name(), "cue": f.cue})
                }
                None => serde_json::json!({"risk": false, "category": null, "cue": null}),
            };
            writeln!(output, "{v}")?;
        } else {
            match &finding {
                Some(f) => writeln!(output, "risk\t{}\t{}", f.category, f.cue)?,
                None => writeln!(output, "none")?,
            }
        }
    }
    output.flush()?;
    Ok((n, risk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_log_filter_keeps_dependencies_quiet() {
        let f = default_log_filter("debug");
        // It parses, and says what it should.
        tracing_subscriber::EnvFilter::try_new(&f).unwrap();
        assert!(f.starts_with("warn,"));
        assert!(f.contains("kindred=debug") && f.contains("kindred_discord=debug"));
        assert!(f.contains("serenity=error") && f.contains("teloxide=error"));
        assert!(!f.contains("serenity=debug"));
    }
}
