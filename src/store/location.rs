//! Where the database is: `storage.url`, parsed once.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// A database Kindred can use: a SQLite file (one machine) or a Postgres server (one
/// machine or several instances sharing the work).
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// The `postgres://` URL as given (it may hold a password: see [`Location`]'s
    /// `Display`, which hides it).
    Postgres(String),
}

impl Location {
    /// Parses `sqlite://PATH` (or `sqlite:PATH`) and `postgres://…` (or `postgresql://…`).
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                bail!("storage.url {url:?} names no file: write sqlite://PATH, e.g. sqlite://data/kindred.sqlite");
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let parsed = url::Url::parse(url).map_err(|e| {
                anyhow::anyhow!("storage.url is not a valid Postgres URL ({e}): write postgres://USER:PASSWORD@HOST:PORT/DATABASE")
            })?;
            if parsed.host_str().is_none_or(str::is_empty)
                && !parsed.query_pairs().any(|(k, _)| k == "host")
            {
                bail!("storage.url names no Postgres host: write postgres://USER:PASSWORD@HOST:PORT/DATABASE");
            }
            return Ok(Location::Postgres(url.to_string()));
        }
        bail!(
            "storage.url must start with sqlite:// (one machine) or postgres:// (a shared server), not {:?}",
            url.split("://").next().unwrap_or(url)
        )
    }

    /// The URL sqlx connects with.
    pub fn url(&self) -> &str {
        match self {
            Location::Sqlite(path) => path.to_str().unwrap_or_default(),
            Location::Postgres(url) => url,
        }
    }

    /// The SQLite file, if this is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

/// Shows where the database is without its password, so that it can go into logs and
/// error messages.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Location::Postgres(raw) => match url::Url::parse(raw) {
                Ok(mut url) => {
                    if url.password().is_some() {
                        let _ = url.set_password(Some("***"));
                    }
                    // Query parameters may carry a password too.
                    if url.query().is_some() {
                        let pairs: Vec<(String, String)> = url
                            .query_pairs()
                            .map(|(k, v)| {
                                let v = if k == "password" {
                                    "***".into()
                                } else {
                                    v.into_owned()
                                };
                                (k.into_owned(), v)
                            })
                            .collect();
                        url.query_pairs_mut().clear().extend_pairs(pairs);
                    }
                    write!(f, "{url}")
                }
                Err(_) => f.write_str("postgres://(unreadable URL)"),
            },
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_hides_passwords() {
        assert_eq!(
            Location::parse("sqlite://data/k.sqlite").unwrap(),
            Location::Sqlite("data/k.sqlite".into())
        );
        assert_eq!(
            Location::parse("sqlite:/var/lib/kindred/k.sqlite").unwrap(),
            Location::Sqlite("/var/lib/kindred/k.sqlite".into())
        );
        let pg = Location::parse("postgres://kindred:s3cret@db.internal:5432/kindred").unwrap();
        assert_eq!(
            pg.url(),
            "postgres://kindred:s3cret@db.internal:5432/kindred"
        );
        let shown = pg.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal:5432/kindred"), "{shown}");
        let q = Location::parse("postgresql://kindred@localhost/k?password=hunter2").unwrap();
        assert!(!format!("{q} {q:?}").contains("hunter2"));
        for bad in ["mysql://x/y", "data/k.sqlite", "sqlite://", "postgres://"] {
            let err = Location::parse(bad).unwrap_err().to_string();
            assert!(err.contains("storage.url"), "{bad}: {err}");
        }
    }
}
