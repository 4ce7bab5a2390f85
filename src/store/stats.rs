//! Summary statistics for `kindred stats`.

use super::*;

impl Store {
    /// Summary statistics for `kindred stats`: counts, means, ratings by stars and bot
    /// replies by strategy (the names given).
    pub async fn stats(&self, strategies: &[&str]) -> Result<serde_json::Value> {
        let pool = &self.pool;
        let one = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await?;
            anyhow::Ok(n)
        };
        let avg = |sql: &'static str| async move {
            let (v,): (Option<f64>,) = sqlx::query_as(sql).fetch_one(pool).await?;
            anyhow::Ok(v)
        };
        let mut by_strategy = serde_json::Map::new();
        for name in strategies {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM turns WHERE source = 'model' AND strategy = $1",
            )
            .bind(name)
            .fetch_one(pool)
            .await?;
            by_strategy.insert(name.to_string(), n.into());
        }
        let mut stars = serde_json::Map::new();
        for k in 1..=5 {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM rating_prompts WHERE stars = $1")
                    .bind(k)
                    .fetch_one(pool)
                    .await?;
            stars.insert(k.to_string(), n.into());
        }
        Ok(serde_json::json!({
            "users": one("SELECT COUNT(*) FROM users").await?,
            "sessions": one("SELECT COUNT(*) FROM sessions").await?,
            "sessions_open": one("SELECT COUNT(*) FROM sessions WHERE stage != 'closed'").await?,
            "seeker_messages": one("SELECT COUNT(*) FROM turns WHERE source = 'user'").await?,
            "bot_replies": one("SELECT COUNT(*) FROM turns WHERE source = 'model'").await?,
            "undelivered_replies": one("SELECT COUNT(*) FROM turns WHERE source = 'model' AND delivery != 'delivered'").await?,
            "rating_prompts": one("SELECT COUNT(*) FROM rating_prompts").await?,
            "ratings": one("SELECT COUNT(*) FROM rating_prompts WHERE stars IS NOT NULL").await?,
            "mean_rating": avg("SELECT CAST(AVG(stars) AS DOUBLE PRECISION) FROM rating_prompts WHERE stars IS NOT NULL").await?,
            "ratings_by_stars": stars,
            "strategies": by_strategy,
            "checkins": one("SELECT COUNT(*) FROM sessions WHERE intensity_before IS NOT NULL").await?,
            "surveys": one("SELECT COUNT(*) FROM sessions WHERE intensity_after IS NOT NULL OR empathy IS NOT NULL OR relevance IS NOT NULL").await?,
            "mean_intensity_before": avg("SELECT CAST(AVG(intensity_before) AS DOUBLE PRECISION) FROM sessions").await?,
            "mean_intensity_after": avg("SELECT CAST(AVG(intensity_after) AS DOUBLE PRECISION) FROM sessions").await?,
            "mean_empathy": avg("SELECT CAST(AVG(empathy) AS DOUBLE PRECISION) FROM sessions").await?,
            "mean_relevance": avg("SELECT CAST(AVG(relevance) AS DOUBLE PRECISION) FROM sessions").await?,
        }))
    }
}
