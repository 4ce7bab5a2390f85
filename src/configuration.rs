//! Settings: `config/default.toml` (built in), a `--config` file, then `KINDRED__…`
//! environment variables. Values are checked once at start-up and an invalid one stops
//! Kindred with the key's name and what is allowed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use url::Url;

use crate::model::DecodingOptions;

/// The built-in defaults (the same text as `config/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub storage: StorageSettings,
    pub model: ModelSettings,
    pub conversation: ConversationSettings,
    pub safety: SafetySettings,
    pub logging: LoggingSettings,
    pub console: ConsoleSettings,
    pub telegram: TelegramSettings,
    pub discord: DiscordSettings,
    pub operations: OperationsSettings,
}

/// `/healthz`, `/readyz` and `/metrics` (see `crate::operations`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperationsSettings {
    /// Where to serve them; none means not at all.
    #[serde(deserialize_with = "parse::optional_socket_addr")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    /// The database: `sqlite://PATH` or `postgres://…`; none means the SQLite file
    /// `database` names.
    #[serde(deserialize_with = "parse::optional_location")]
    pub url: Option<crate::store::Location>,
    /// The SQLite file; none means `<data_dir>/kindred.sqlite`.
    #[serde(deserialize_with = "parse::optional_path")]
    pub database: Option<PathBuf>,
    /// The key behind export pseudonyms; none means `<data_dir>/export.key`.
    #[serde(deserialize_with = "parse::optional_path")]
    pub export_key_file: Option<PathBuf>,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    /// None means the shipped model (see [`Settings::model_dir`]).
    #[serde(deserialize_with = "parse::optional_path")]
    pub dir: Option<PathBuf>,
    pub threads: usize,
    pub quantize: Quantize,
    pub max_batch: usize,
    pub batch_window_ms: u64,
    pub reply_timeout_seconds: u64,
    pub max_context_turns: usize,
    pub max_context_tokens: usize,
    /// Overrides of the model's decoding defaults (see [`Settings::decoding_for`]).
    #[serde(default)]
    pub decoding: serde_json::Map<String, serde_json::Value>,
}

/// How model weights are held in memory.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Quantize {
    #[serde(rename = "f32")]
    F32,
    #[serde(rename = "q8_0")]
    Q8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationSettings {
    pub idle_timeout_minutes: u64,
    pub rating_every: usize,
    pub max_message_chars: usize,
    pub checkin: bool,
    pub survey: bool,
    pub max_concurrent_users: usize,
    pub shutdown_grace_seconds: u64,
    pub max_messages_per_minute: usize,
    pub max_actions_per_minute: usize,
    pub max_group_events_per_minute: usize,
    pub retention_days: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetySettings {
    /// The crisis lines (a chat's moderators may set their own with /resources).
    pub crisis_message: String,
    /// What each category of risk brings (see `safety::Responses`).
    pub emergency_message: String,
    pub self_harm_message: String,
    pub other_at_risk_message: String,
    pub abuse_message: String,
    pub harm_to_others_message: String,
    /// Phrases that mean risk in this community, by category name.
    #[serde(default)]
    pub extra_phrases: std::collections::BTreeMap<String, Vec<String>>,
    /// Phrases that are never risk in this community.
    #[serde(default)]
    pub allow_phrases: Vec<String>,
}

impl SafetySettings {
    pub fn responses(&self) -> crate::safety::Responses {
        crate::safety::Responses {
            emergency_message: self.emergency_message.clone(),
            self_harm_message: self.self_harm_message.clone(),
            other_at_risk_message: self.other_at_risk_message.clone(),
            abuse_message: self.abuse_message.clone(),
            harm_to_others_message: self.harm_to_others_message.clone(),
        }
    }

    pub fn screen_options(&self) -> crate::safety::ScreenOptions {
        crate::safety::ScreenOptions {
            extra_phrases: self.extra_phrases.clone(),
            allow_phrases: self.allow_phrases.clone(),
        }
    }

    /// The screen with this community's phrases.
    pub fn screen(&self) -> Result<crate::safety::Screen> {
        crate::safety::Screen::new(&self.screen_options())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub enabled: bool,
}

/// How Telegram delivers updates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TelegramMode {
    Polling,
    Webhook,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramSettings {
    pub enabled: bool,
    #[serde(deserialize_with = "parse::http_url")]
    pub api_url: Url,
    #[serde(deserialize_with = "parse::optional_path")]
    pub token_file: Option<PathBuf>,
    pub mode: TelegramMode,
    pub poll_timeout_seconds: u32,
    /// Needed in webhook mode: the public URL Telegram posts updates to.
    #[serde(deserialize_with = "parse::optional_http_url")]
    pub webhook_url: Option<Url>,
    pub webhook_listen: SocketAddr,
    /// A fixed webhook secret (several instances; see `kindred telegram set-webhook`).
    #[serde(deserialize_with = "parse::optional_path")]
    pub webhook_secret_file: Option<PathBuf>,
    pub groups_enabled_by_default: bool,
    /// Messages a second to all chats together: Telegram's published limit is about 30;
    /// a bot granted more (paid broadcasts) may raise it.
    pub messages_per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    pub enabled: bool,
    #[serde(deserialize_with = "parse::http_url")]
    pub api_url: Url,
    #[serde(deserialize_with = "parse::optional_path")]
    pub token_file: Option<PathBuf>,
    pub register_commands: bool,
    /// Which gateway shards this instance runs (`FIRST-LAST/TOTAL`); none: one shard.
    #[serde(deserialize_with = "parse::optional_shards")]
    pub shards: Option<kindred_discord::Shards>,
}

/// Settings that are text in a file or the environment and typed in [`Settings`]:
/// parsed once, when the settings load, so a bad value stops Kindred with its key's name
/// before anything starts. An empty string means "not set".
mod parse {
    use std::path::PathBuf;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer};
    use url::Url;

    pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Url, D::Error> {
        let s = String::deserialize(d)?;
        let url = Url::parse(s.trim())
            .map_err(|e| D::Error::custom(format!("{s:?} is not a URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(D::Error::custom(format!(
                "{s:?} is not an http:// or https:// URL"
            )));
        }
        Ok(url)
    }

    pub fn optional_http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Url>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        http_url(serde::de::value::StrDeserializer::<D::Error>::new(&s)).map(Some)
    }

    pub fn optional_location<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<crate::store::Location>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        crate::store::Location::parse(&s)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("{e:#}")))
    }

    pub fn optional_socket_addr<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<std::net::SocketAddr>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        s.trim().parse().map(Some).map_err(|e| {
            D::Error::custom(format!("{s:?} is not an address like 127.0.0.1:9187 ({e})"))
        })
    }

    pub fn optional_shards<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<kindred_discord::Shards>, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(D::Error::custom)
    }

    pub fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        let s = String::deserialize(d)?;
        Ok((!s.trim().is_empty()).then(|| PathBuf::from(s)))
    }
}

/// A bot token: read from the environment or a secrets file, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Reads a token from `env_var`, else from `file` (its first line). The error says where
/// to put it, never what was found.
pub fn read_secret(env_var: &str, file: Option<&Path>, what: &str) -> Result<Secret> {
    if let Ok(v) = std::env::var(env_var) {
        let v = v.trim().to_string();
        if !v.is_empty() {
            return Ok(Secret(v));
        }
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("cannot read the {what} from {}: {e}", file.display()))?;
        let v = text.lines().next().unwrap_or("").trim().to_string();
        if v.is_empty() {
            bail!("the {what} file {} is empty", file.display());
        }
        return Ok(Secret(v));
    }
    bail!("no {what}: set the environment variable {env_var}, or point token_file at a file that holds it")
}

impl Settings {
    /// Whether Kindred answers in a platform's shared chats before a moderator decides:
    /// Telegram groups add the bot deliberately (on), Discord channels opt in (off).
    pub fn group_default_enabled(&self, platform: &str) -> bool {
        match platform {
            "telegram" => self.telegram.groups_enabled_by_default,
            _ => false,
        }
    }

    /// Loads the layered settings. `file` is `--config`; `env` are the environment
    /// variables to consider (the process environment in production, a fixed list in tests).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if let Some(path) = file {
            if !path.exists() {
                bail!("settings file {} does not exist", path.display());
            }
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let vars: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("KINDRED__"))
            // KINDRED__DATA_DIR is the documented short form of KINDRED__STORAGE__DATA_DIR.
            .map(|(k, v)| {
                if k == "KINDRED__DATA_DIR" {
                    ("KINDRED__STORAGE__DATA_DIR".to_string(), v)
                } else {
                    (k, v)
                }
            })
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("KINDRED")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        );
        let raw = builder
            .build()
            .map_err(|e| anyhow!("invalid settings: {e}"))?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| anyhow!("invalid settings: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads from the process environment.
    pub fn from_env(file: Option<&Path>) -> Result<Self> {
        Self::load(file, std::env::vars())
    }

    fn validate(&self) -> Result<()> {
        let fail =
            |key: &str, allowed: &str| Err(anyhow!("invalid settings: {key} must be {allowed}"));
        if self.storage.url.is_some() && self.storage.database.is_some() {
            return fail(
                "storage.database",
                "empty when storage.url is set (the url names the database)",
            );
        }
        if self.conversation.idle_timeout_minutes == 0 {
            return fail("conversation.idle_timeout_minutes", "at least 1 (minutes)");
        }
        if self.conversation.rating_every == 0 {
            return fail("conversation.rating_every", "at least 1");
        }
        if self.conversation.max_message_chars < 16 {
            return fail("conversation.max_message_chars", "at least 16");
        }
        if self.conversation.max_concurrent_users == 0 {
            return fail("conversation.max_concurrent_users", "at least 1");
        }
        if self.conversation.max_messages_per_minute == 0 {
            return fail("conversation.max_messages_per_minute", "at least 1");
        }
        if self.conversation.max_actions_per_minute == 0 {
            return fail("conversation.max_actions_per_minute", "at least 1");
        }
        if self.conversation.max_group_events_per_minute == 0 {
            return fail("conversation.max_group_events_per_minute", "at least 1");
        }
        if self.model.reply_timeout_seconds == 0 {
            return fail("model.reply_timeout_seconds", "at least 1");
        }
        if !(1..=64).contains(&self.model.max_batch) {
            return fail("model.max_batch", "between 1 and 64");
        }
        if self.safety.crisis_message.trim().is_empty() {
            return fail(
                "safety.crisis_message",
                "a non-empty message with crisis resources",
            );
        }
        self.safety.responses().validate()?;
        self.safety.screen_options().validate()?;
        if !["trace", "debug", "info", "warn", "error"].contains(&self.logging.level.as_str()) {
            return fail("logging.level", "one of trace, debug, info, warn, error");
        }
        if !(1..=1000).contains(&self.telegram.messages_per_second) {
            return fail("telegram.messages_per_second", "between 1 and 1000");
        }
        if !(1..=15).contains(&self.telegram.poll_timeout_seconds) {
            // teloxide gives up on a request after 17 s.
            return fail("telegram.poll_timeout_seconds", "between 1 and 15");
        }
        // URLs and addresses are checked as they are parsed (see `parse`); webhook mode
        // also needs its public URL.
        if self.telegram.enabled
            && self.telegram.mode == TelegramMode::Webhook
            && self.telegram.webhook_url.is_none()
        {
            return fail(
                "telegram.webhook_url",
                "the public https:// URL Telegram should post updates to (webhook mode)",
            );
        }
        self.decoding_for(&DecodingOptions::default())?;
        Ok(())
    }

    /// The model's decoding defaults with the configured overrides applied.
    pub fn decoding_for(&self, model_defaults: &DecodingOptions) -> Result<DecodingOptions> {
        model_defaults
            .overridden(&self.model.decoding)
            .map_err(|e| anyhow!("invalid settings: model.decoding: {e}"))
    }

    /// The file holding the export pseudonym key.
    pub fn export_key_path(&self) -> PathBuf {
        match &self.storage.export_key_file {
            Some(file) => file.clone(),
            None => self.storage.data_dir.join("export.key"),
        }
    }

    /// The database: `storage.url`, else the SQLite file.
    pub fn database_location(&self) -> crate::store::Location {
        match &self.storage.url {
            Some(location) => location.clone(),
            None => crate::store::Location::Sqlite(self.database_path()),
        }
    }

    /// The SQLite file (when `storage.url` names none).
    pub fn database_path(&self) -> PathBuf {
        match &self.storage.database {
            Some(file) => file.clone(),
            None => self.storage.data_dir.join("kindred.sqlite"),
        }
    }

    /// How to load the model.
    pub fn load_options(&self) -> crate::model::LoadOptions {
        crate::model::LoadOptions {
            quantize_q8: self.model.quantize == Quantize::Q8,
            ..Default::default()
        }
    }

    /// The model directory: `--model`, else `model.dir`, else the shipped model.
    pub fn model_dir(&self, cli: Option<&Path>) -> PathBuf {
        match cli {
            Some(p) => p.to_path_buf(),
            None => match &self.model.dir {
                Some(dir) => dir.clone(),
                None => crate::model::default_model_dir(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_and_layers_override_in_order() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.conversation.rating_every, 2);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(
            &f,
            "[conversation]\nidle_timeout_minutes = 5\nrating_every = 3\n",
        )
        .unwrap();
        let s = Settings::load(
            Some(&f),
            env(&[
                ("KINDRED__CONVERSATION__RATING_EVERY", "4"),
                ("KINDRED__DATA_DIR", "/x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.conversation.idle_timeout_minutes, 5);
        assert_eq!(s.conversation.rating_every, 4);
        assert_eq!(s.storage.data_dir, PathBuf::from("/x"));
        assert_eq!(s.database_path(), PathBuf::from("/x/kindred.sqlite"));
    }

    #[test]
    fn invalid_values_name_the_key_and_what_is_allowed() {
        let err = Settings::load(None, env(&[("KINDRED__CONVERSATION__RATING_EVERY", "0")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("conversation.rating_every") && err.contains("at least 1"),
            "{err}"
        );
        let err = Settings::load(
            None,
            env(&[("KINDRED__CONVERSATION__IDLE_TIMEOUT_MINUTES", "soon")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("idle_timeout_minutes"), "{err}");
        let err = Settings::load(None, env(&[("KINDRED__MODEL__DECODING__TOP_P", "1.5")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.decoding") && err.contains("top_p"),
            "{err}"
        );
        let err = Settings::load(None, env(&[("KINDRED__MODEL__DECODING__TOP_Q", "1")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("top_q"), "{err}");
        let s =
            Settings::load(None, env(&[("KINDRED__MODEL__DECODING__TEMPERATURE", "0")])).unwrap();
        let d = s.decoding_for(&DecodingOptions::paper()).unwrap();
        assert_eq!(
            (d.temperature, d.top_k),
            (0.0, 30),
            "override applied, the model's other defaults kept"
        );
        let err = Settings::load(None, env(&[("KINDRED__LOGGING__FORMAT", "xml")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("format") && err.contains("xml"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.toml");
        std::fs::write(&f, "[conversation\nrating_every = 3\n").unwrap();
        assert!(Settings::load(Some(&f), env(&[]))
            .unwrap_err()
            .to_string()
            .contains("invalid settings"));
        std::fs::write(&f, "[conversation]\nratings_every = 3\n").unwrap();
        let err = Settings::load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(err.contains("ratings_every"), "{err}");
    }

    #[test]
    fn urls_addresses_and_paths_are_parsed_once_into_their_types() {
        let s = Settings::load(
            None,
            env(&[
                ("KINDRED__TELEGRAM__API_URL", "http://127.0.0.1:8081"),
                ("KINDRED__TELEGRAM__WEBHOOK_LISTEN", "[::1]:9000"),
                ("KINDRED__TELEGRAM__TOKEN_FILE", "/run/secrets/telegram"),
                ("KINDRED__MODEL__DIR", "models/mine"),
            ]),
        )
        .unwrap();
        assert_eq!(s.telegram.api_url.host_str(), Some("127.0.0.1"));
        assert_eq!(s.telegram.webhook_listen, "[::1]:9000".parse().unwrap());
        assert_eq!(
            s.telegram.token_file.as_deref(),
            Some(Path::new("/run/secrets/telegram"))
        );
        assert_eq!(s.model_dir(None), PathBuf::from("models/mine"));
        // Empty means not set.
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(
            (s.telegram.token_file, s.telegram.webhook_url, s.model.dir),
            (None, None, None)
        );

        for (key, value, named) in [
            (
                "KINDRED__DISCORD__API_URL",
                "ftp://discord.example",
                "discord.api_url",
            ),
            (
                "KINDRED__TELEGRAM__API_URL",
                "not a url",
                "telegram.api_url",
            ),
            (
                "KINDRED__TELEGRAM__WEBHOOK_LISTEN",
                "everywhere",
                "telegram.webhook_listen",
            ),
        ] {
            let err = Settings::load(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
        let err = Settings::load(
            None,
            env(&[
                ("KINDRED__TELEGRAM__ENABLED", "true"),
                ("KINDRED__TELEGRAM__MODE", "webhook"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("telegram.webhook_url"), "{err}");
    }
}
