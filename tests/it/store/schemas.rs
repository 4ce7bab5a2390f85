//! The two schemas against each other: the same tables and columns, and a SQLite
//! installation copied to Postgres row for row (`kindred db copy`).

use super::*;

/// Every table's rows, in key order, as values.
async fn dump(store: &Store) -> Vec<(&'static str, Vec<Vec<kindred::store::Value>>)> {
    let mut all = Vec::new();
    for table in kindred::store::TABLES {
        let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .fetch_all(store.pool())
            .await
            .unwrap();
        all.push((
            *table,
            rows.iter()
                .map(|r| kindred::store::values(r).unwrap())
                .collect(),
        ));
    }
    all
}

/// A SQLite installation with conversations, ratings, a survey, settings and a person
/// who asked not to be kept moves to Postgres with `kindred db copy`, row for row, and
/// Kindred carries on there.
#[tokio::test]
async fn a_sqlite_installation_moves_to_postgres_without_loss() {
    use crate::helpers::*;
    if pg::skipped("a_sqlite_installation_moves_to_postgres_without_loss") || on_postgres() {
        return;
    }
    let app = spawn_app(&[]).await;
    let mut payloads = Vec::new();
    for (i, (who, text)) in [
        ("ana", "I lost my job today"),
        ("ana", "I feel useless"),
        ("ben", "my sister is sick"),
        ("ben", "I am scared"),
    ]
    .into_iter()
    .enumerate()
    {
        let out = app.send(message_with_id(who, &format!("m{i}"), text)).await;
        payloads.extend(rating_prompts(&out));
    }
    let (prompt_id, choices) = payloads[0].clone();
    let prompt_id: i64 = prompt_id.trim_start_matches("rating:").parse().unwrap();
    app.send(press("ana", "ana", &choices[3])).await;
    let prompt = app.rating_prompt(prompt_id).await;
    assert_eq!(prompt.stars, Some(stars(4)));
    app.send(command("ben", "privacy", "off")).await;
    app.send(command("ben", "end", "")).await;
    app.engine
        .store
        .set_chat_enabled("test", "g1", true)
        .await
        .unwrap();
    app.engine
        .store
        .inbox_insert("test", "u:waiting", "{}", Some("p1"))
        .await
        .unwrap();
    let source = dump(&app.engine.store).await;
    for (table, rows) in &source {
        assert!(
            !rows.is_empty(),
            "the installation has {table} rows to move"
        );
    }
    let sqlite = Location::Sqlite(app.dir.path().join("kindred.sqlite"));
    let target = pg::fresh_database();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
        .args([
            "db",
            "copy",
            "--from",
            &sqlite.to_string(),
            "--to",
            target.url(),
        ])
        .env("KINDRED__STORAGE__DATA_DIR", app.dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("copied"), "{stdout}");
    let copy = Store::open(&target, Duration::from_secs(5)).await.unwrap();
    assert_eq!(dump(&copy).await, source, "every row of every table");

    // Copying into a database that holds data is refused, and changes nothing.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_kindred"))
        .args([
            "db",
            "copy",
            "--from",
            &sqlite.to_string(),
            "--to",
            target.url(),
        ])
        .env("KINDRED__STORAGE__DATA_DIR", app.dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds data already"));
    assert_eq!(dump(&copy).await, source);
    copy.close().await;

    // Kindred carries on on Postgres: ana's conversation continues, with new ids.
    let moved = kindred::startup::build_engine(
        test_settings(app.dir.path(), &[("KINDRED__STORAGE__URL", target.url())]),
        &tiny_model(),
    )
    .await
    .unwrap();
    let max_turn = moved
        .store
        .turns(prompt.session_id)
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    moved
        .handle(message("ana", "thank you for listening"), &tx)
        .await
        .unwrap();
    drop(tx);
    let mut said = Vec::new();
    while let Some(o) = rx.recv().await {
        said.push(o);
    }
    assert_eq!(replies(&said).len(), 1, "{said:?}");
    let turns = moved.store.turns(prompt.session_id).await.unwrap();
    assert!(turns.last().unwrap().id > max_turn);
    assert_eq!(
        turns.len(),
        6,
        "ana's four turns, her new message and the reply"
    );
}

/// The column names of `table`, sorted, as the database reports them.
async fn columns(store: &Store, table: &str) -> Vec<String> {
    let sql = match store.backend() {
        kindred::store::Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
        kindred::store::Backend::Postgres => format!(
            "SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_name = '{table}'"
        ),
    };
    let rows: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(store.pool()).await.unwrap();
    let mut names: Vec<String> = rows.into_iter().map(|(n,)| n).collect();
    names.sort();
    names
}

/// The two migration folders describe one schema: every table has the same columns on
/// both (a change made to one folder only fails here).
#[tokio::test]
async fn both_schemas_have_the_same_tables_and_columns() {
    if pg::skipped("both_schemas_have_the_same_tables_and_columns") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_store(&dir).await;
    let postgres = postgres_store().await;
    for table in kindred::store::TABLES
        .iter()
        .chain(&["instances", "leases"])
    {
        let (a, b) = (
            columns(&sqlite, table).await,
            columns(&postgres, table).await,
        );
        assert!(!a.is_empty(), "{table} exists");
        assert_eq!(a, b, "{table}: SQLite and Postgres columns differ");
    }
}
