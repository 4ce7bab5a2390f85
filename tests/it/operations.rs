//! `/healthz`, `/readyz` and `/metrics`: a daemon serving Telegram (the loopback
//! stand-in) reports whether it is ready and what it did, in Prometheus's format; a
//! database that goes down makes it not ready, and ready again when it comes back.

use std::time::{Duration, Instant};

use crate::helpers::{self, free_port, postgres as pg, wait_for};
use crate::standins::telegram::TelegramStandIn;

const TOKEN: &str = "123456:OPS-token";

/// GET `url` (loopback only): status and body; `None` while nothing listens.
fn get(url: &str) -> Option<(u16, String)> {
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    match agent.get(url).call() {
        Ok(r) => Some((r.status(), r.into_string().unwrap())),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_string().unwrap())),
        Err(_) => None,
    }
}

/// A sample's value, whatever type the parser gave it.
fn value(s: &prometheus_parse::Sample) -> f64 {
    match &s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{} is not a single value: {other:?}", s.metric),
    }
}

fn sample<'a>(
    scrape: &'a prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> Option<&'a prometheus_parse::Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

#[test]
fn a_daemon_reports_health_readiness_and_metrics() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tg = rt.block_on(TelegramStandIn::start(TOKEN));
    // Telegram does not answer yet: the daemon is alive but not ready.
    tg.hold("getMe");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let daemon = helpers::DaemonProcess::start(
        dir.path(),
        &[
            ("KINDRED__TELEGRAM__ENABLED", "true".to_string()),
            ("KINDRED__TELEGRAM__API_URL", tg.url.clone()),
            ("KINDRED_TELEGRAM_TOKEN", TOKEN.to_string()),
            ("KINDRED__TELEGRAM__POLL_TIMEOUT_SECONDS", "1".to_string()),
            ("KINDRED__OPERATIONS__LISTEN", format!("127.0.0.1:{port}")),
        ],
        &["TELOXIDE_TOKEN"],
    );
    wait_for("/healthz", Duration::from_secs(60), || {
        get(&format!("{base}/healthz")).is_some_and(|(s, _)| s == 200)
    });
    let (status, body) = get(&format!("{base}/readyz")).unwrap();
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["adapters"]["telegram"], "disconnected", "{body}");
    assert_eq!(json["database"], "ok", "{body}");
    assert_eq!(json["model"], "ok", "{body}");

    tg.release("getMe");
    wait_for("/readyz to turn ready", Duration::from_secs(30), || {
        get(&format!("{base}/readyz")).is_some_and(|(s, _)| s == 200)
    });
    rt.block_on(async {
        tg.dm(1001, "hello, is anyone there?");
        tg.dm(1002, "I took a bunch of pills an hour ago");
        tg.wait_until("both replies", Duration::from_secs(60), |_| {
            tg.texts_to(1001).len() >= 2 && tg.texts_to(1002).len() >= 2
        })
        .await;
    });

    let (status, text) = get(&format!("{base}/metrics")).unwrap();
    assert_eq!(status, 200);
    assert!(
        !text.contains("pills") && !text.contains("1001"),
        "no words, no people:\n{text}"
    );
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let received = sample(
        &scrape,
        "kindred_events_received_total",
        &[("platform", "telegram"), ("kind", "message")],
    )
    .unwrap_or_else(|| panic!("{text}"));
    assert!(value(received) >= 2.0, "{text}");
    let replies = sample(
        &scrape,
        "kindred_messages_sent_total",
        &[("platform", "telegram"), ("kind", "reply")],
    )
    .unwrap_or_else(|| panic!("{text}"));
    assert!(value(replies) >= 1.0, "{text}");
    // Crisis resources are counted as their own kind.
    let care = sample(
        &scrape,
        "kindred_messages_sent_total",
        &[("platform", "telegram"), ("kind", "care")],
    )
    .unwrap_or_else(|| panic!("{text}"));
    assert!(value(care) >= 1.0, "{text}");
    let crisis = sample(
        &scrape,
        "kindred_crisis_detections_total",
        &[("category", "imminent")],
    )
    .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(value(crisis), 1.0);
    let tokens = sample(&scrape, "kindred_model_tokens_generated_total", &[]).unwrap();
    assert!(value(tokens) > 0.0);
    let latency = scrape
        .samples
        .iter()
        .find(|s| s.metric == "kindred_reply_latency_seconds")
        .unwrap_or_else(|| panic!("{text}"));
    match &latency.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let total = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
            assert!(total >= 2.0, "{buckets:?}");
        }
        other => panic!("the reply latency is a histogram, not {other:?}"),
    }
    assert!(
        scrape
            .samples
            .iter()
            .any(|s| s.metric == "kindred_model_batch_size"),
        "{text}"
    );
    let (status, log) = daemon.stop();
    assert!(status.success(), "{log}");
}

/// Takes a Postgres database away from its clients and gives it back.
async fn database_reachable(location: &kindred::store::Location, reachable: bool) {
    use sqlx::Connection;
    let mut admin_url = url::Url::parse(location.url()).unwrap();
    let name = admin_url.path().trim_start_matches('/').to_string();
    admin_url.set_path("/postgres");
    let mut admin = sqlx::PgConnection::connect(admin_url.as_str())
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} ALLOW_CONNECTIONS {reachable}"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    if !reachable {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
            .bind(&name)
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

#[tokio::test]
async fn readyz_fails_while_the_database_is_down() {
    if pg::skipped("readyz_fails_while_the_database_is_down") {
        return;
    }
    let location = pg::fresh_database();
    let store = kindred::store::Store::open(&location, Duration::from_secs(1))
        .await
        .unwrap();
    let probes = kindred::operations::Probes {
        store: store.clone(),
        model: Default::default(),
        model_limit: Duration::from_secs(60),
        adapters: vec![("telegram".into(), {
            let c = kindred_adapter::Connection::default();
            c.up();
            c
        })],
    };
    let port = free_port();
    let (shutdown, _) = tokio::sync::broadcast::channel(1);
    kindred::operations::serve(
        format!("127.0.0.1:{port}").parse().unwrap(),
        probes,
        shutdown.subscribe(),
    )
    .await
    .unwrap();
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let status = |url: String| async move {
        tokio::task::spawn_blocking(move || get(&url).unwrap())
            .await
            .unwrap()
    };
    assert_eq!(status(readyz.clone()).await.0, 200);
    database_reachable(&location, false).await;
    let (code, body) = status(readyz.clone()).await;
    assert_eq!(code, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        json["database"].as_str().unwrap().starts_with("error"),
        "{body}"
    );
    assert!(!body.contains("postgres://"), "no URL in the probe: {body}");
    // Alive all the same.
    let healthz = format!("http://127.0.0.1:{port}/healthz");
    assert_eq!(status(healthz).await.0, 200);
    database_reachable(&location, true).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if status(readyz.clone()).await.0 == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready again after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = shutdown.send(());
    store.close().await;
}
