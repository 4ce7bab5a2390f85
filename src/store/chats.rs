//! Per-chat settings (on/off, crisis resources, moderator alerts) and the keys of
//! platform messages already handled.

use super::*;

impl Store {
    /// Records a platform event id; false if it was already processed.
    /// Whether a platform event was processed already (read only; see `add_turn_once`).
    pub async fn event_processed(&self, platform: &str, event_id: &str) -> Result<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT event_id FROM processed_events WHERE platform = $1 AND event_id = $2",
        )
        .bind(platform)
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    pub async fn mark_event_processed(&self, platform: &str, event_id: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO processed_events (platform, event_id, processed_at) VALUES ($1, $2, $3)
             ON CONFLICT (platform, event_id) DO NOTHING",
        )
        .bind(platform)
        .bind(event_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A chat's crisis message override, if any.
    pub async fn chat_crisis_message(
        &self,
        platform: &str,
        chat_id: &str,
    ) -> Result<Option<String>> {
        let row: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT crisis_message FROM chat_settings WHERE platform = $1 AND chat_id = $2",
        )
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|r| r.0))
    }

    /// Whether Kindred may answer in a shared chat (`None`: no moderator has decided).
    pub async fn chat_enabled(&self, platform: &str, chat_id: &str) -> Result<Option<bool>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT enabled FROM chat_settings WHERE platform = $1 AND chat_id = $2",
        )
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0 != 0))
    }

    /// Turns Kindred on or off in a shared chat.
    pub async fn set_chat_enabled(
        &self,
        platform: &str,
        chat_id: &str,
        enabled: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled) VALUES ($1, $2, $3)
             ON CONFLICT (platform, chat_id) DO UPDATE SET enabled = excluded.enabled",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Sets (or with `None`, clears) a chat's crisis resources, keeping whether it is on.
    pub async fn set_chat_crisis_message(
        &self,
        platform: &str,
        chat_id: &str,
        message: Option<&str>,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, crisis_message) VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform, chat_id) DO UPDATE SET crisis_message = excluded.crisis_message",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(message)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Where a shared chat's risk alerts go (`None`: alerts are off).
    pub async fn chat_alerts(&self, platform: &str, chat_id: &str) -> Result<Option<AlertRoute>> {
        let row: Option<(Option<String>, i64)> = sqlx::query_as(
            "SELECT alert_chat, alert_text FROM chat_settings WHERE platform = $1 AND chat_id = $2",
        )
        .bind(platform)
        .bind(chat_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(target, text)| {
            target.map(|target| AlertRoute {
                target,
                include_text: text != 0,
            })
        }))
    }

    /// Sends a shared chat's risk alerts to `target` (or, with `None`, stops them).
    pub async fn set_chat_alerts(
        &self,
        platform: &str,
        chat_id: &str,
        target: Option<&str>,
        include_text: bool,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, alert_chat, alert_text) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (platform, chat_id) DO UPDATE SET alert_chat = excluded.alert_chat,
                 alert_text = excluded.alert_text",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(target)
        .bind(include_text as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a one-time code with which another chat becomes this chat's alert chat.
    pub async fn set_alert_link_code(
        &self,
        platform: &str,
        chat_id: &str,
        code: &str,
        enabled_if_new: bool,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_settings (platform, chat_id, enabled, alert_code, alert_code_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (platform, chat_id) DO UPDATE SET alert_code = excluded.alert_code,
                 alert_code_at = excluded.alert_code_at",
        )
        .bind(platform)
        .bind(chat_id)
        .bind(enabled_if_new as i64)
        .bind(code)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Links `target` as the alert chat of the chat that issued `code` (within `max_age_ms`),
    /// using the code up. Returns that chat's id, or `None` for an unknown or stale code.
    pub async fn use_alert_link_code(
        &self,
        platform: &str,
        code: &str,
        target: &str,
        max_age_ms: i64,
    ) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE chat_settings SET alert_chat = $1, alert_code = NULL, alert_code_at = NULL
             WHERE platform = $2 AND alert_code = $3 AND alert_code_at >= $4
             RETURNING chat_id",
        )
        .bind(target)
        .bind(platform)
        .bind(code)
        .bind(now_ms() - max_age_ms)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.0))
    }
}
