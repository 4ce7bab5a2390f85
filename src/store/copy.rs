//! `kindred db copy`: every row of one database into another (SQLite to Postgres when an
//! installation grows past one machine, or back).
//!
//! Both sides are brought to the latest schema first, so their tables and columns are the
//! same. Rows are streamed table by table, parents before children (the foreign keys
//! hold at every step), inside one transaction on the destination: a copy that fails
//! leaves the destination as empty as it was. Ids are kept, so rating prompts still
//! point at their turns; on Postgres each id sequence is then moved past the largest
//! copied id, so new rows do not collide.

use anyhow::{bail, Context, Result};
use futures_util::TryStreamExt;
use sqlx::{Column, Row};

use super::{Backend, Store};

/// Kindred's tables, parents before children.
pub const TABLES: &[&str] = &[
    "users",
    "sessions",
    "turns",
    "rating_prompts",
    "chat_settings",
    "processed_events",
    "inbox",
];

/// Tables whose `id` comes from a sequence on Postgres.
const WITH_ID: &[&str] = &["users", "sessions", "turns", "rating_prompts", "inbox"];

/// One stored value; every column of Kindred's schema is one of these.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

/// A row's values in column order, read by each column's declared type (so that a NULL
/// keeps its type: Postgres refuses an integer NULL for a text column).
pub fn values(row: &sqlx::any::AnyRow) -> Result<Vec<Value>> {
    use sqlx::any::AnyTypeInfoKind as Kind;
    use sqlx::TypeInfo;
    (0..row.columns().len())
        .map(|i| {
            let column = &row.columns()[i];
            let read = match column.type_info().kind() {
                Kind::Text => row.try_get::<Option<String>, _>(i).map(Value::Text),
                Kind::Bool | Kind::SmallInt | Kind::Integer | Kind::BigInt => {
                    row.try_get::<Option<i64>, _>(i).map(Value::Int)
                }
                Kind::Real | Kind::Double => row.try_get::<Option<f64>, _>(i).map(Value::Real),
                Kind::Null | Kind::Blob => {
                    bail!(
                        "column {} has a type ({}) Kindred's schema never uses",
                        column.name(),
                        column.type_info().name()
                    )
                }
            };
            read.with_context(|| format!("reading column {}", column.name()))
        })
        .collect()
}

impl Store {
    /// Whether any of Kindred's tables holds a row.
    pub async fn holds_data(&self) -> Result<bool> {
        for table in TABLES {
            let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await?;
            if n > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Copies every row of `self` into `to`, which must hold none; `progress` hears of
    /// each table when it is done. Returns the rows copied per table.
    pub async fn copy_into(
        &self,
        to: &Store,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<Vec<(&'static str, u64)>> {
        if to.holds_data().await? {
            bail!("the destination database holds data already; db copy only fills a new one");
        }
        let mut tx = to.pool.begin().await?;
        let mut copied = Vec::new();
        for table in TABLES {
            let select = format!("SELECT * FROM {table} ORDER BY 1, 2");
            let mut rows = sqlx::query(&select).fetch(&self.pool);
            let mut insert: Option<String> = None;
            let mut n = 0u64;
            while let Some(row) = rows.try_next().await? {
                let sql = insert.get_or_insert_with(|| {
                    let names: Vec<&str> = row.columns().iter().map(|c| c.name()).collect();
                    let params: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
                    format!(
                        "INSERT INTO {table} ({}) VALUES ({})",
                        names.join(", "),
                        params.join(", ")
                    )
                });
                let mut q = sqlx::query(sql.as_str());
                for v in values(&row).with_context(|| format!("reading {table}"))? {
                    q = match v {
                        Value::Int(v) => q.bind(v),
                        Value::Real(v) => q.bind(v),
                        Value::Text(v) => q.bind(v),
                    };
                }
                q.execute(&mut *tx)
                    .await
                    .with_context(|| format!("writing {table}"))?;
                n += 1;
            }
            progress(table, n);
            copied.push((*table, n));
        }
        if to.backend == Backend::Postgres {
            for table in WITH_ID {
                sqlx::query(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                ))
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        to.checkpoint().await?;
        Ok(copied)
    }
}
