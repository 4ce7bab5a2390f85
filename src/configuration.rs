//! Settings: `config/default.toml` (built in), a `--config` file, then `KINDRED__…`
//! environment variables. Values are checked once at start-up and an invalid one stops
//! Kindred with the key's name and what is allowed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    pub database: String,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub dir: String,
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
    pub api_url: String,
    pub token_file: String,
    pub mode: TelegramMode,
    pub poll_timeout_seconds: u32,
    pub webhook_url: String,
    pub webhook_listen: String,
    pub groups_enabled_by_default: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordSettings {
    pub enabled: bool,
    pub api_url: String,
    pub token_file: String,
    pub register_commands: bool,
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
pub fn read_secret(env_var: &str, file: &str, what: &str) -> Result<Secret> {
    if let Ok(v) = std::env::var(env_var) {
        let v = v.trim().to_string();
        if !v.is_empty() {
            return Ok(Secret(v));
        }
    }
    if !file.is_empty() {
        let text = std::fs::read_to_string(file)
            .map_err(|e| anyhow!("cannot read the {what} from {file}: {e}"))?;
        let v = text.lines().next().unwrap_or("").trim().to_string();
        if v.is_empty() {
            bail!("the {what} file {file} is empty");
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
        if !(1..=15).contains(&self.telegram.poll_timeout_seconds) {
            // teloxide gives up on a request after 17 s.
            return fail("telegram.poll_timeout_seconds", "between 1 and 15");
        }
        for (key, u) in [
            ("telegram.api_url", &self.telegram.api_url),
            ("discord.api_url", &self.discord.api_url),
        ] {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return fail(key, "an http:// or https:// URL");
            }
        }
        if self.telegram.enabled && self.telegram.mode == TelegramMode::Webhook {
            if !self.telegram.webhook_url.starts_with("https://")
                && !self.telegram.webhook_url.starts_with("http://")
            {
                return fail(
                    "telegram.webhook_url",
                    "the public https:// URL Telegram should post updates to (webhook mode)",
                );
            }
            if self
                .telegram
                .webhook_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
            {
                return fail(
                    "telegram.webhook_listen",
                    "an address and port to listen on, e.g. 0.0.0.0:8443",
                );
            }
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

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        if self.storage.database.is_empty() {
            self.storage.data_dir.join("kindred.sqlite")
        } else {
            PathBuf::from(&self.storage.database)
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
            None if !self.model.dir.is_empty() => PathBuf::from(&self.model.dir),
            None => crate::model::default_model_dir(),
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
}
