//! A real Postgres server for the tests, one per test process.
//!
//! `KINDRED_TEST_POSTGRES_URL` names a server to use (a URL whose user may create
//! databases, e.g. `postgres://kindred@127.0.0.1:5432/postgres`). Without it, the
//! server binaries of the machine (Debian's `postgresql` package: `initdb` and
//! `postgres` under `/usr/lib/postgresql/*/bin`, or on the `PATH`) start a private
//! server on loopback, in a folder under the system's temporary folder, that stops when the test
//! process ends. Each test gets a database of its own.
//!
//! With neither, Postgres tests fail and say how to get a server, unless
//! `KINDRED_SKIP_POSTGRES=1` says to skip them (they then print that they were skipped).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kindred::store::Location;

/// The admin URL of the server the tests use, without a database name.
struct Server {
    /// `postgres://USER@HOST:PORT`
    base: String,
    /// The database the admin connection opens.
    admin_db: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Whether Postgres tests are to be skipped (said so explicitly by the person running them).
pub fn skipped(test: &str) -> bool {
    if std::env::var_os("KINDRED_TEST_POSTGRES_URL").is_none()
        && std::env::var("KINDRED_SKIP_POSTGRES").is_ok_and(|v| v == "1")
    {
        eprintln!("SKIPPED {test}: KINDRED_SKIP_POSTGRES=1 (no Postgres server)");
        return true;
    }
    false
}

/// The database that belongs to the test folder `dir`: made empty the first time a
/// folder asks, the same one afterwards (a test that restarts Kindred on its data finds
/// its data again, as it would in its SQLite file there).
pub fn database_for(dir: &Path) -> Location {
    static BY_DIR: OnceLock<std::sync::Mutex<std::collections::HashMap<PathBuf, Location>>> =
        OnceLock::new();
    let mut map = BY_DIR.get_or_init(Default::default).lock().unwrap();
    map.entry(dir.to_path_buf())
        .or_insert_with(fresh_database)
        .clone()
}

/// A new, empty database on the test server.
pub fn fresh_database() -> Location {
    let server = SERVER
        .get_or_init(start)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let name = format!(
        "kindred_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let admin = format!("{}/{}", server.base, server.admin_db);
    let create = format!("CREATE DATABASE {name}");
    // Its own thread and runtime: callers may be inside a runtime already.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::Executor::execute(&mut c, create.as_str())
                    .await
                    .unwrap();
                c.close().await.unwrap();
            })
    })
    .join()
    .unwrap();
    let url = format!("{}/{name}", server.base);
    assert_loopback(&url);
    Location::parse(&url).unwrap()
}

/// Tests talk to loopback only.
fn assert_loopback(url: &str) {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        matches!(host.as_str(), "127.0.0.1" | "::1" | "[::1]" | "localhost"),
        "the test Postgres server must be on loopback, not {host:?}"
    );
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("KINDRED_TEST_POSTGRES_URL") {
        let mut u = url::Url::parse(&url).map_err(|e| format!("KINDRED_TEST_POSTGRES_URL: {e}"))?;
        let admin_db = u.path().trim_start_matches('/').to_string();
        u.set_path("");
        let base = u.as_str().trim_end_matches('/').to_string();
        assert_loopback(&base);
        return Ok(Server {
            base,
            admin_db: if admin_db.is_empty() {
                "postgres".into()
            } else {
                admin_db
            },
        });
    }
    let bin = server_binaries().ok_or_else(|| {
        "no Postgres server for the tests: install Debian's `postgresql` package (initdb and \
         postgres under /usr/lib/postgresql/*/bin), or set KINDRED_TEST_POSTGRES_URL to a \
         server on loopback, or set KINDRED_SKIP_POSTGRES=1 to skip the Postgres tests"
            .to_string()
    })?;
    // The system's temporary folder, not the target directory: the `postgres` user must
    // be able to reach it, and a checkout under a private home may not be.
    let tmp = std::env::temp_dir();
    let tmp = tmp.as_path();
    // Folders of earlier runs whose process is gone.
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("kindred-test-postgres-"))
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let root = tmp.join(format!("kindred-test-postgres-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
    // Postgres refuses to run as root: as root, the server runs as the `postgres` user
    // (made by the Debian package) and owns its folder.
    let as_user: Option<&str> = if is_root() { Some("postgres") } else { None };
    if let Some(user) = as_user {
        run(Command::new("chown").args([user, root.to_str().unwrap()]))?;
    }
    let data = root.join("data");
    let wrap = |program: PathBuf| -> Command {
        match as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        }
    };
    run(wrap(bin.join("initdb"))
        .args([
            "-A",
            "trust",
            "-U",
            "kindred",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data))?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    // The server stops when this process ends: the shell waits on its standard input
    // (a pipe this process holds open) and stops the server when it closes.
    let script = format!(
        "'{postgres}' -D '{data}' -h 127.0.0.1 -p {port} -k '{root}' -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
         >'{root}/server.log' 2>&1 & pid=$!; read _; kill -INT $pid; wait $pid; rm -rf '{root}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        root = root.display(),
    );
    let mut sh = wrap(PathBuf::from("sh"));
    let child = sh
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    // Kept (never dropped) so that the pipe stays open while the tests run.
    std::mem::forget(child);
    let base = format!("postgres://kindred@127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Accepting connections is not yet accepting logins; the first CREATE
            // DATABASE retries below cover the rest.
            break;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(root.join("server.log")).unwrap_or_default();
            return Err(format!("the test Postgres server did not start:\n{log}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for_logins(&base)?;
    Ok(Server {
        base,
        admin_db: "postgres".into(),
    })
}

fn wait_for_logins(base: &str) -> Result<(), String> {
    let admin = format!("{base}/postgres");
    on_own_runtime(async move {
        use sqlx::Connection;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match sqlx::PgConnection::connect(&admin).await {
                Ok(c) => {
                    let _ = c.close().await;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("the test Postgres server takes no logins: {e}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
}

/// Runs `work` to the end on a runtime of its own, in a thread of its own: callers may
/// be inside a runtime already.
fn on_own_runtime<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work)
    })
    .join()
    .unwrap()
}

fn run(c: &mut Command) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{c:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// The folder holding `initdb` and `postgres`: the newest under /usr/lib/postgresql,
/// else the one on the PATH.
fn server_binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("postgres").exists())
    })
}
