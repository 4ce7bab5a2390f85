//! The `kindred` command line: one binary, a subcommand for each job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kindred",
    version,
    about = "An emotional-support conversation daemon (ESConv Joint model) for Discord, Telegram and the terminal"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// A settings file layered over config/default.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the database and other state live.
    #[arg(long, global = true, value_name = "DIR", env = "KINDRED__DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The model directory (default: the shipped model).
    #[arg(long, global = true, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon with the adapters enabled in the settings.
    Run,
    /// Chat with Kindred in this terminal (scriptable: one message per line on stdin).
    Chat(ChatArgs),
    /// Train a Joint model (from scratch or from a pretrained directory); resumable.
    Train(Box<TrainArgs>),
    /// Evaluate a model on an ESConv file: perplexity, BLEU-2, ROUGE-L, Distinct, strategy accuracy.
    Eval(EvalArgs),
    /// Export stored conversations and ratings (ESConv JSON schema).
    Export(ExportArgs),
    /// Summary statistics of stored conversations, ratings and surveys.
    Stats(StatsArgs),
    /// Measure reply latency, throughput, load time and memory.
    Bench(BenchArgs),
    /// Inspect, tokenise with, score with or download models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Database maintenance.
    #[command(subcommand)]
    Db(DbCommand),
    /// The crisis screen: check messages, measure it.
    #[command(subcommand)]
    Safety(SafetyCommand),
    /// Telegram set-up that is done once per deployment.
    #[command(subcommand)]
    Telegram(TelegramCommand),
}

#[derive(Debug, Subcommand)]
pub enum TelegramCommand {
    /// Register the webhook (telegram.webhook_url) with the fixed secret that every
    /// instance shares (KINDRED_TELEGRAM_WEBHOOK_SECRET or telegram.webhook_secret_file).
    /// Run it once at deploy time; instances with a fixed secret never register it.
    SetWebhook {
        /// The public URL Telegram posts to (default: telegram.webhook_url).
        #[arg(long)]
        url: Option<url::Url>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SafetyCommand {
    /// Screen each stdin line as a message; one result line per message.
    Check {
        /// One JSON object a line: {"risk": …, "category": …, "cue": …}.
        #[arg(long)]
        json: bool,
        /// Also print to stderr how many messages were risk and the mean time a message.
        #[arg(long)]
        stats: bool,
    },
    /// Print each stdin line as the screen reads it (normalised), e.g. to train the
    /// learned part of the screen on exactly what it will see.
    Normalize,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Your user name in this terminal (sessions are per user).
    #[arg(long, default_value = "you")]
    pub user: String,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data (ESConv JSON lines, ESConv.json, or a Kindred export); repeatable.
    #[arg(long = "data", value_name = "FILE")]
    pub data: Vec<PathBuf>,
    /// Validation data; the best checkpoint by its perplexity becomes the model.
    #[arg(long, value_name = "FILE")]
    pub valid: Option<PathBuf>,
    /// The output model directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Fine-tune this pretrained model directory (e.g. blenderbot_small-90M) instead of training from scratch.
    #[arg(long, value_name = "DIR")]
    pub init: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint (same settings, same data order).
    #[arg(long)]
    pub resume: bool,
    #[arg(long, default_value_t = 256)]
    pub d_model: usize,
    /// Encoder and decoder layers each.
    #[arg(long, default_value_t = 3)]
    pub layers: usize,
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    #[arg(long, default_value_t = 1024)]
    pub ffn_dim: usize,
    /// BPE vocabulary size of a tokenizer trained from scratch.
    #[arg(long, default_value_t = 8000)]
    pub vocab_size: usize,
    #[arg(long, default_value_t = 160)]
    pub max_context_tokens: usize,
    #[arg(long, default_value_t = 40)]
    pub max_reply_tokens: usize,
    /// Train only on replies people rated at least this many stars (ratings come with
    /// `kindred export`): fine-tuning on what people found helpful.
    #[arg(long)]
    pub min_rating: Option<crate::domain::Stars>,
    /// Prepend the seeker's situation to the context.
    #[arg(long)]
    pub situation: bool,
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 1)]
    pub grad_accum: usize,
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 100)]
    pub warmup_steps: usize,
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 1.0)]
    pub clip_norm: f64,
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Save a checkpoint every N optimizer steps (and at every epoch end).
    #[arg(long, default_value_t = 200)]
    pub checkpoint_every: usize,
    /// Also validate every N steps (0 = only at epoch ends).
    #[arg(long, default_value_t = 0)]
    pub valid_every: usize,
    /// Validate on at most N examples (0 = all).
    #[arg(long, default_value_t = 0)]
    pub valid_limit: usize,
    /// Stop after N optimizer steps in total (0 = all epochs).
    #[arg(long, default_value_t = 0)]
    pub max_steps: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum EvalMode {
    /// The model predicts the strategy.
    Joint,
    /// The gold strategy is given.
    Oracle,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long, value_name = "FILE.jsonl")]
    pub data: PathBuf,
    #[arg(long, value_enum, default_value = "joint")]
    pub mode: EvalMode,
    /// Write every prediction here (JSON lines).
    #[arg(long, value_name = "PREDS.jsonl")]
    pub out: Option<PathBuf>,
    /// Evaluate at most N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Replies generated at once.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output file, written whole or not at all, readable by its owner only (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// esconv: an ESConv.json array (read back by train and eval); esconv-lines: one
    /// conversation a line; jsonl: one rating a line; csv: one rating a row.
    #[arg(long, value_enum, default_value = "esconv")]
    pub format: crate::export::Format,
    /// Only conversations started on or after this date (YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Only conversations started before this date (YYYY-MM-DD).
    #[arg(long)]
    pub until: Option<String>,
    /// Only conversations on this platform (telegram, discord, console).
    #[arg(long)]
    pub platform: Option<String>,
    /// Only conversations with a rating of at least this many stars.
    #[arg(long)]
    pub min_rating: Option<crate::domain::Stars>,
    /// Only conversations with a rating of at most this many stars.
    #[arg(long)]
    pub max_rating: Option<crate::domain::Stars>,
    /// Also conversations that are still open.
    #[arg(long)]
    pub include_open: bool,
    /// Also conversations in shared chats (groups, server channels).
    #[arg(long)]
    pub include_groups: bool,
    /// Same as --format esconv-lines (kept for earlier scripts).
    #[arg(long, hide = true)]
    pub jsonl: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[arg(long)]
    pub json: bool,
    /// Draw the charts (strategies across conversation progress, rating by phase,
    /// ratings over time, intensity before/after) into DIR as SVG and PNG.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Write one HTML page with every chart and the summary.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Replies measured one by one per configuration, in rounds of `--batch` (at least
    /// 3), each round followed by one batched round of the same people.
    #[arg(long, default_value_t = 24)]
    pub replies: usize,
    #[arg(long, default_value_t = 128)]
    pub context_tokens: usize,
    #[arg(long, default_value_t = 40)]
    pub reply_tokens: usize,
    /// Concurrent users for the batched-decoding comparison.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Also build and measure a random-weight model of the full 90M config.
    #[arg(long)]
    pub full_size: bool,
    /// Also run the PyTorch reference on the same weights with this Python (needs torch + transformers).
    #[arg(long, value_name = "PYTHON")]
    pub python: Option<PathBuf>,
    /// Measure one configuration in this process (used internally: each configuration
    /// runs in its own process so that its peak memory is its own).
    #[arg(long, value_name = "f32|q8_0", hide = true)]
    pub only: Option<String>,
    #[arg(long, hide = true, default_value = "configured model")]
    pub label: String,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Architecture, sizes, lineage, strategy tokens and files of a model directory.
    Info { dir: Option<PathBuf> },
    /// Token ids of each stdin line, space-separated, one line each.
    Tokenize,
    /// Token-averaged perplexity of the supporter replies of a data file.
    Score {
        #[arg(long, value_name = "FILE.jsonl")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Download a model directory from the Hugging Face hub.
    Pull {
        repo: String,
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Apply pending migrations.
    Migrate,
    /// A consistent copy of the database, taken while the daemon runs (mode 0600).
    Backup {
        /// Where the copy goes; must not exist.
        file: PathBuf,
    },
    /// Copy every row of one database into another, new one: e.g. a SQLite installation
    /// onto the Postgres server several instances will share. Stop the daemon first.
    Copy {
        /// The database to read (default: the configured one), sqlite://PATH or postgres://…
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The database to fill; it must hold no data yet. Migrations are applied to it.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Delete everything stored about one person (a request that came outside the chat).
    Forget {
        /// The person as PLATFORM:ID, e.g. telegram:123456789.
        #[arg(long, value_name = "PLATFORM:ID")]
        user: String,
    },
}
