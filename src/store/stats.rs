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

/// The rows `kindred stats --plot` draws from (no words, no people).
#[derive(Debug, Default)]
pub struct PlotRows {
    /// Each model reply with a strategy: (its index, its conversation's turn count, strategy).
    pub strategies: Vec<(i64, i64, String)>,
    /// Each rating: (stars, when, index of the second rated reply, turn count).
    pub ratings: Vec<(i64, i64, i64, i64)>,
    /// Each check-in and survey: (intensity before, intensity after).
    pub intensities: Vec<(Option<i64>, Option<i64>)>,
}

impl Store {
    pub async fn plot_rows(&self) -> Result<PlotRows> {
        const COUNTS: &str = "(SELECT session_id, COUNT(*) AS n FROM turns GROUP BY session_id)";
        let strategies = sqlx::query_as(&format!(
            "SELECT t.idx, c.n, t.strategy FROM turns t JOIN {COUNTS} c ON c.session_id = t.session_id
             WHERE t.source = 'model' AND t.strategy IS NOT NULL ORDER BY t.id"
        ))
        .fetch_all(&self.pool)
        .await?;
        let ratings = sqlx::query_as(&format!(
            "SELECT p.stars, p.rated_at, t.idx, c.n FROM rating_prompts p
             JOIN turns t ON t.id = p.second_turn_id JOIN {COUNTS} c ON c.session_id = p.session_id
             WHERE p.stars IS NOT NULL AND p.rated_at IS NOT NULL ORDER BY p.rated_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        let intensities = sqlx::query_as(
            "SELECT intensity_before, intensity_after FROM sessions
             WHERE intensity_before IS NOT NULL OR intensity_after IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(PlotRows {
            strategies,
            ratings,
            intensities,
        })
    }
}
