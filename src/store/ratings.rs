//! Rating prompts and the stars given to the two replies each one asks about.

use super::*;

impl Store {
    pub async fn create_rating_prompt(
        &self,
        session_id: i64,
        first: i64,
        second: i64,
    ) -> Result<RatingPrompt> {
        // Claimed by this instance, when there are several (see `instances`).
        let prompt = sqlx::query_as("INSERT INTO rating_prompts (session_id, first_turn_id, second_turn_id, created_at, claimed_by) VALUES ($1, $2, $3, $4, $5) RETURNING *")
            .bind(session_id)
            .bind(first)
            .bind(second)
            .bind(now_ms())
            .bind(self.instance.as_deref())
            .fetch_one(&self.pool)
            .await?;
        Ok(prompt)
    }

    pub async fn rating_prompt(&self, id: i64) -> Result<Option<RatingPrompt>> {
        Ok(sqlx::query_as("SELECT * FROM rating_prompts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn latest_rating_prompt(&self, session_id: i64) -> Result<Option<RatingPrompt>> {
        Ok(sqlx::query_as(
            "SELECT * FROM rating_prompts WHERE session_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(session_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Rating prompts of open conversations that were never reported sent and never
    /// answered: after a restart of the only instance, the ones a crash caught between
    /// recording and sending.
    pub async fn unsent_rating_prompts(&self) -> Result<Vec<RatingPrompt>> {
        Ok(sqlx::query_as(
            "SELECT p.* FROM rating_prompts p JOIN sessions s ON s.id = p.session_id
             WHERE p.platform_message_id IS NULL AND p.stars IS NULL AND s.ended_at IS NULL
             ORDER BY p.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn rating_prompts(&self, session_id: i64) -> Result<Vec<RatingPrompt>> {
        Ok(
            sqlx::query_as("SELECT * FROM rating_prompts WHERE session_id = $1 ORDER BY id")
                .bind(session_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn set_rating(&self, prompt_id: i64, stars: Stars) -> Result<()> {
        sqlx::query("UPDATE rating_prompts SET stars = $1, rated_at = $2 WHERE id = $3")
            .bind(stars)
            .bind(now_ms())
            .bind(prompt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_prompt_message_id(
        &self,
        prompt_id: i64,
        platform_message_id: &str,
    ) -> Result<()> {
        sqlx::query("UPDATE rating_prompts SET platform_message_id = $1 WHERE id = $2")
            .bind(platform_message_id)
            .bind(prompt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
