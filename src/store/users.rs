//! People: their record, their choices, and deleting everything about them.

use super::*;

impl Store {
    pub async fn find_user(&self, platform: &str, platform_user_id: &str) -> Result<Option<User>> {
        Ok(
            sqlx::query_as("SELECT * FROM users WHERE platform = $1 AND platform_user_id = $2")
                .bind(platform)
                .bind(platform_user_id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn get_or_create_user(&self, platform: &str, platform_user_id: &str) -> Result<User> {
        if let Some(u) = self.find_user(platform, platform_user_id).await? {
            return Ok(u);
        }
        sqlx::query("INSERT INTO users (platform, platform_user_id, pseudonym, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (platform, platform_user_id) DO NOTHING")
            .bind(platform)
            .bind(platform_user_id)
            .bind(format!("seeker-{}", random_token(10)))
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        self.find_user(platform, platform_user_id)
            .await?
            .context("user vanished after insert")
    }

    pub async fn user(&self, id: i64) -> Result<Option<User>> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn set_forget_nonce(&self, user_id: i64, nonce: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE users SET forget_nonce = $1 WHERE id = $2")
            .bind(nonce)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the user and, through the foreign keys, every session, turn and rating,
    /// with the events of theirs still waiting in the inbox (`inbox_ids`), in one
    /// transaction. The database overwrites what it deletes (`secure_delete`), and the
    /// write-ahead log is checkpointed and truncated after, so the words are not left in
    /// free pages or in the log either.
    pub async fn delete_user(&self, user_id: i64, inbox_ids: &[i64]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The keys of their messages in their direct chats ("msg:{chat}:{message}") tie
        // their platform id to when they wrote; those go too.
        let direct: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT chat_platform, chat_id FROM sessions WHERE user_id = $1 AND chat_kind = 'direct'",
        )
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        for (platform, chat_id) in direct {
            let prefix = format!("msg:{chat_id}:");
            sqlx::query(
                "DELETE FROM processed_events WHERE platform = $1 AND substr(event_id, 1, length($2)) = $2",
            )
            .bind(platform)
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for id in inbox_ids {
            sqlx::query("DELETE FROM inbox WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.checkpoint().await
    }

    /// Records whether a person lets Kindred keep their words. Choosing not to erases
    /// at once the words of their conversations that have ended (those still open are
    /// erased when they end).
    pub async fn set_keep_words(&self, user_id: i64, keep: bool) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET keep_words = $1 WHERE id = $2")
            .bind(keep as i64)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if !keep {
            let ended: Vec<(i64,)> = sqlx::query_as(
                "SELECT id FROM sessions WHERE user_id = $1 AND (ended_at IS NOT NULL OR stage = 'closed')",
            )
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in ended {
                Self::erase_words_if_not_kept(&mut tx, id).await?;
            }
        }
        tx.commit().await?;
        if !keep {
            // The erased words are overwritten in the file (secure_delete); the log too.
            self.checkpoint().await?;
        }
        Ok(())
    }
}
