//! The `kindred` binary as users run it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-recipe")
}

fn kindred(data_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindred"));
    c.env("KINDRED__DATA_DIR", data_dir)
        .env("KINDRED__MODEL__DECODING__MAX_LENGTH", "6")
        .env("KINDRED__MODEL__DECODING__MIN_LENGTH", "1")
        .env_remove("KINDRED_LOG");
    c
}

/// Fails the test with the command's own error output unless it succeeded.
fn assert_succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn run_with_stdin(mut c: Command, input: &str) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn scripted_chat_reads_lines_and_prints_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kindred(dir.path());
    c.args(["chat", "--model"]).arg(tiny());
    let out = run_with_stdin(c, "hello\nI feel anxious about work\n4\n/end\n9\n");
    assert_succeeded(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("I'm an AI supporter"), "{stdout}");
    assert!(
        stdout.contains("How helpful were my last two replies?\n  [1] 1 ★"),
        "{stdout}"
    );
    assert!(
        stdout.contains("You rated 4 ★"),
        "the bare number answered the rating: {stdout}"
    );
    assert!(
        stdout.contains("How intense are your feelings now"),
        "{stdout}"
    );
    // "9" is not one of the survey's 6 choices: it is sent as a message, closing the survey.
    assert!(stdout.contains("[6] Skip"));
    // The data is really in the SQLite file.
    assert!(dir.path().join("kindred.sqlite").exists());
    let mut s = kindred(dir.path());
    let stats = s.args(["stats", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(v["ratings"], 1);
    assert_eq!(v["bot_replies"], 3);

    // In the terminal, /mydata prints the person's record.
    let mut c = kindred(dir.path());
    c.args(["chat", "--model"]).arg(tiny());
    let out = run_with_stdin(c, "/mydata\n");
    assert_succeeded(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let record = stdout
        .split("--- kindred-my-data.json ---\n")
        .nth(1)
        .and_then(|rest| rest.split("\n--- end of kindred-my-data.json ---").next())
        .unwrap_or_else(|| panic!("{stdout}"));
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    assert!(record.to_string().contains("I feel anxious about work"));
}

#[test]
fn model_tokenize_and_score_and_info_work_on_a_model_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kindred(dir.path());
    c.args(["model", "tokenize", "--model"]).arg(tiny());
    let out = run_with_stdin(c, "Hi, what I can help you with today?\nHi\n");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "792 6 44 14 62 230 15 28 472 20\n792\n"
    );

    let data = dir.path().join("one.jsonl");
    let first = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/esconv/valid.jsonl"),
    )
    .unwrap();
    std::fs::write(&data, first.lines().next().unwrap()).unwrap();
    let out = kindred(dir.path())
        .args(["model", "score", "--json", "--data"])
        .arg(&data)
        .arg("--model")
        .arg(tiny())
        .output()
        .unwrap();
    assert_succeeded(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["ppl"].as_f64().unwrap() > 1.0 && v["tokens"].as_u64().unwrap() > 50);

    let out = kindred(dir.path())
        .args(["model", "info"])
        .arg(tiny())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("BlenderbotSmallForConditionalGeneration")
            && text.contains("[Question] = 54944"),
        "{text}"
    );
}

#[test]
fn model_pull_fails_with_the_network_error_named() {
    let dir = tempfile::tempdir().unwrap();
    // Only loopback: nothing listens on port 9.
    let endpoint = "http://127.0.0.1:9";
    assert!(endpoint.starts_with("http://127.0.0.1:"));
    let out = kindred(dir.path())
        .env("HF_ENDPOINT", endpoint)
        .args(["model", "pull", "lsy641/ESC_Blender_Strategy", "--dir"])
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot reach the Hugging Face hub") && err.contains("Connection refused"),
        "{err}"
    );
}

#[test]
fn bad_settings_and_missing_models_stop_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = kindred(dir.path())
        .env("KINDRED__CONVERSATION__RATING_EVERY", "0")
        .args(["stats"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("conversation.rating_every must be at least 1"));
    let out = kindred(dir.path())
        .env("KINDRED__TELEGRAM__MESSAGES_PER_SECOND", "0")
        .args(["stats"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("telegram.messages_per_second must be between 1 and 1000"));

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[conversation]\nidle_timeout_minutes = \"soon\"\n").unwrap();
    let out = kindred(dir.path())
        .arg("--config")
        .arg(&cfg)
        .args(["stats"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("idle_timeout_minutes"));

    let mut c = kindred(dir.path());
    c.args(["chat", "--model", "/no/such/model"]);
    let out = run_with_stdin(c, "hi\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/model") && err.contains("kindred train"),
        "{err}"
    );

    // A model directory holding another architecture names the problem.
    let other = dir.path().join("bert");
    std::fs::create_dir_all(&other).unwrap();
    for f in std::fs::read_dir(tiny()).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), other.join(f.file_name())).unwrap();
    }
    let cfg = std::fs::read_to_string(other.join("config.json"))
        .unwrap()
        .replace("blenderbot-small", "bert");
    std::fs::write(other.join("config.json"), cfg).unwrap();
    let out = kindred(dir.path())
        .args(["model", "info"])
        .arg(&other)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "model_type \"bert\" is not an architecture Kindred runs (blenderbot-small, llama)"
        ),
        "{err}"
    );
}

#[test]
fn db_migrate_creates_the_database_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let out = kindred(&nested).args(["db", "migrate"]).output().unwrap();
    assert_succeeded(&out);
    assert!(nested.join("kindred.sqlite").exists());
}

#[test]
fn run_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = kindred(dir.path())
        .env("KINDRED__CONSOLE__ENABLED", "true")
        .env("NO_COLOR", "1")
        .args(["run", "--model"])
        .arg(tiny())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _stdin = child.stdin.take();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    // Wait until it is up, then ask it to stop as a service manager would.
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        let up = line.contains("kindred is running");
        log.push(line);
        if up {
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    log.extend(rx.iter());
    let log = log.join("\n");
    assert!(status.success(), "{log}");
    assert!(log.contains("shutting down (terminate)"), "{log}");
}

#[test]
fn logs_are_json_on_request_and_never_hold_message_text_at_info() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kindred(dir.path());
    c.env("KINDRED_LOG", "info")
        .env("KINDRED__LOGGING__FORMAT", "json");
    c.args(["chat", "--model"]).arg(tiny());
    let out = run_with_stdin(c, "my very private sentence about my sister\n");
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.iter().any(|l| l.contains("message received")),
        "{err}"
    );
    for l in &lines {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
    }
    assert!(
        !err.contains("private sentence"),
        "message text leaked into info logs: {err}"
    );
}

#[test]
fn chat_works_out_of_the_box_on_the_shipped_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_kindred"));
    c.env("KINDRED__DATA_DIR", dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("chat");
    let out = run_with_stdin(
        c,
        "I have been feeling lonely since I moved to a new city\n",
    );
    assert_succeeded(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let reply = stdout.lines().last().unwrap();
    assert!(!reply.contains("couldn't put a reply together"), "{stdout}");
    assert!(reply.split_whitespace().count() >= 3, "{stdout}");
    assert!(dir.path().join("kindred.sqlite").exists());
}

#[test]
fn bench_prints_the_batching_ratio_with_its_spread_over_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let out = kindred(dir.path())
        .args(["bench", "--only", "q8_0", "--model"])
        .arg(tiny())
        .args(["--replies", "4", "--batch", "2"])
        .args(["--context-tokens", "16", "--reply-tokens", "4"])
        .output()
        .unwrap();
    assert_succeeded(&out);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let table = stdout
        .lines()
        .find(|l| l.contains("replies/s batch 2"))
        .unwrap_or_else(|| panic!("no batch line: {stdout}"));
    assert!(table.contains("× one by one; rounds "), "{table}");
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // At least 3 rounds (4 replies in rounds of 2 would be 2), each with its own ratio.
    let rounds = summary["batch_ratio_by_round"].as_array().unwrap();
    assert_eq!(rounds.len(), 3, "{summary}");
    let ratios: Vec<f64> = rounds.iter().map(|r| r.as_f64().unwrap()).collect();
    assert!(
        ratios.iter().all(|r| r.is_finite() && *r > 0.0),
        "{ratios:?}"
    );
    let (lo, hi) = (
        ratios.iter().copied().fold(f64::INFINITY, f64::min),
        ratios.iter().copied().fold(0.0, f64::max),
    );
    assert!(
        table.contains(&format!("rounds {lo:.2}–{hi:.2}")),
        "{table} vs {ratios:?}"
    );
}

/// `kindred safety check`: one line out per line in; `--json` gives risk, category and cue.
#[test]
fn safety_check_prints_one_result_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kindred(dir.path());
    c.args(["safety", "check", "--json"]);
    let out = run_with_stdin(
        c,
        "I took a bunch of pills an hour ago\nthis exam is killing me\nmy dad beats me\n",
    );
    assert_succeeded(&out);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["risk"], true);
    assert_eq!(lines[0]["category"], "imminent");
    assert!(lines[0]["cue"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        lines[1],
        serde_json::json!({"risk": false, "category": null, "cue": null})
    );
    assert_eq!(lines[2]["category"], "abuse");
    // The plain form.
    let mut c = kindred(dir.path());
    c.args(["safety", "check"]);
    let out = run_with_stdin(c, "hello\nI want to die\n");
    assert_succeeded(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "none");
    assert!(lines[1].starts_with("risk\tself_harm\t"), "{text}");
}

/// `model tokenize`, `model score` and `model info` read the model from `model.dir` like
/// `run`, `chat` and `eval` do (they used to ignore it and take the shipped model).
#[test]
fn model_subcommands_honour_the_model_dir_setting() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model");
    for args in [
        vec!["model", "tokenize"],
        vec!["model", "info"],
        vec![
            "model",
            "score",
            "--data",
            "third_party/esconv/valid.jsonl",
            "--limit",
            "1",
        ],
    ] {
        let mut c = kindred(dir.path());
        c.env("KINDRED__MODEL__DIR", &missing)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args);
        // No input: each fails on the missing model before reading any (writing to its
        // stdin could race with its exit).
        let out = c.stdin(Stdio::null()).output().unwrap();
        assert!(!out.status.success(), "{args:?} took another model");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no-such-model"), "{args:?}: {err}");
    }
}

#[test]
fn db_backup_and_forget_work_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = kindred(dir.path());
    c.args(["chat", "--user", "mia", "--model"]).arg(tiny());
    assert_succeeded(&run_with_stdin(c, "my week was hard\n"));

    let copy = dir.path().join("copy.sqlite3");
    let out = kindred(dir.path())
        .args(["db", "backup"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_succeeded(&out);
    assert!(std::fs::metadata(&copy).unwrap().len() > 0);

    let out = kindred(dir.path())
        .args(["db", "forget", "--user", "console:mia"])
        .output()
        .unwrap();
    assert_succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("deleted everything stored about console:mia"));
    let out = kindred(dir.path())
        .args(["db", "forget", "--user", "console:mia"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing is stored about console:mia"));
    let out = kindred(dir.path())
        .args(["db", "forget", "--user", "mia"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PLATFORM:ID"));
    // The backup still has her (it was taken before).
    let out = kindred(dir.path())
        .args(["db", "backup"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
}

/// Two people talk in the terminal: one shares personal details and rates 2 ★, the other
/// rates 5 ★; a third conversation is left open.
fn conversations_full_of_personal_data(dir: &Path) {
    let talk = |user: &str, script: &str| {
        let mut c = kindred(dir);
        c.args(["chat", "--user", user, "--model"]).arg(tiny());
        let out = run_with_stdin(c, script);
        assert_succeeded(&out);
    };
    talk(
        "mia",
        "9\nmy email is mia.rossi@example.com and my number is +39 347 123 4567\nsee https://mia-blog.net/diary and ask @marco_b\n2\n/end\n6\n",
    );
    talk(
        "leo",
        "9\nwork has been rough this week\nmy boss shouts a lot\n5\n/end\n6\n",
    );
    talk("zoe", "9\nstill talking, not finished\n");
}

#[test]
fn exports_are_scrubbed_filtered_keyed_and_read_back_by_train_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    conversations_full_of_personal_data(dir.path());
    let export = |args: &[&str], key: &str| {
        let mut c = kindred(dir.path());
        c.env("KINDRED_EXPORT_KEY", key).arg("export").args(args);
        let out = c.output().unwrap();
        assert_succeeded(&out);
        String::from_utf8(out.stdout).unwrap()
    };
    let key = "a-key-of-at-least-sixteen-bytes";
    for format in ["esconv", "esconv-lines", "jsonl", "csv"] {
        let text = export(&["--format", format], key);
        for personal in [
            "mia.rossi",
            "example.com",
            // The phone number's parts, as they stood in the message (bare digit runs
            // also occur in the strategy probabilities, e.g. 0.0347…).
            "+39",
            "347 123",
            "123 4567",
            "mia-blog",
            "marco_b",
            "console:",
            "\"mia\"",
            "\"leo\"",
        ] {
            assert!(
                !text.contains(personal),
                "{format}: {personal} survived:\n{text}"
            );
        }
        assert!(
            !text.contains("still talking"),
            "{format}: an open conversation was exported"
        );
    }
    // ESConv: both completed conversations, placeholders, times cut to the day.
    let all: serde_json::Value = serde_json::from_str(&export(&[], key)).unwrap();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2);
    let text = serde_json::to_string(all).unwrap();
    for placeholder in ["[email]", "[phone]", "[url]", "[mention]"] {
        assert!(text.contains(placeholder), "{placeholder}: {text}");
    }
    assert_eq!(all[0]["kindred"]["started_at"].as_str().unwrap().len(), 10);
    // Keyed pseudonyms: stable with the key, different with another.
    let seekers = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["kindred"]["seeker"].as_str().unwrap().to_string())
            .collect()
    };
    let again: serde_json::Value = serde_json::from_str(&export(&[], key)).unwrap();
    let other: serde_json::Value =
        serde_json::from_str(&export(&[], "another-key-of-sixteen-bytes")).unwrap();
    assert_eq!(
        seekers(&again),
        seekers(&serde_json::Value::Array(all.clone()))
    );
    assert_ne!(seekers(&other), seekers(&again));
    // Filters: ratings exact, the open one on request.
    let rated = |args: &[&str]| -> usize {
        let v: serde_json::Value = serde_json::from_str(&export(args, key)).unwrap();
        v.as_array().unwrap().len()
    };
    assert_eq!(rated(&["--min-rating", "5"]), 1);
    assert_eq!(rated(&["--max-rating", "2"]), 1);
    assert_eq!(rated(&["--min-rating", "3", "--max-rating", "4"]), 0);
    assert_eq!(rated(&["--include-open"]), 3);
    assert_eq!(rated(&["--platform", "telegram"]), 0);
    // One rating a line: the rated replies, their context and the stars.
    let lines = export(&["--format", "jsonl"], key);
    let mut lines = lines.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(header["kindred_export"]["filters"]["completed_only"], true);
    let rows: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["replies"].as_array().unwrap().len(), 2);
    assert!(rows[0]["replies"][0]["strategy"].is_string());
    assert!(!rows[0]["context"].as_array().unwrap().is_empty());
    let csv = export(&["--format", "csv"], key);
    assert!(csv
        .lines()
        .any(|l| l.starts_with("session,seeker,platform,stars")));

    // Written whole, owner-only, with its header beside it; then trained and evaluated on.
    let file = dir.path().join("rated.json");
    let mut c = kindred(dir.path());
    c.env("KINDRED_EXPORT_KEY", key)
        .args(["export", "--min-rating", "4", "--out"])
        .arg(&file);
    assert_succeeded(&c.output().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let header: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("rated.header.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kindred_export"]["conversations"], 1);
    assert_eq!(header["kindred_export"]["filters"]["min_rating"], 4);
    let train = |data: &Path, out: &str, extra: &[&str]| {
        kindred(dir.path())
            .args(crate::training::tiny_args(data, &dir.path().join(out), 2))
            .args(extra)
            .output()
            .unwrap()
    };
    assert_succeeded(&train(&file, "ft", &[]));
    // Fine-tuning on the replies people found helpful: only those rated 4 or 5 stars.
    assert_succeeded(&train(&file, "helpful", &["--min-rating", "4"]));
    // Data without ratings (ESConv's own) has no reply rated 4 or more: said plainly.
    let esconv = Path::new(env!("CARGO_MANIFEST_DIR")).join("third_party/esconv/valid.jsonl");
    let unrated = train(&esconv, "unrated", &["--min-rating", "4"]);
    assert!(!unrated.status.success());
    let err = String::from_utf8_lossy(&unrated.stderr);
    assert!(err.contains("rated 4 stars or more"), "{err}");
    let out = kindred(dir.path())
        .args(["eval", "--model"])
        .arg(tiny())
        .arg("--data")
        .arg(&file)
        .arg("--json")
        .output()
        .unwrap();
    assert_succeeded(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["examples"].as_u64().unwrap() >= 1, "{report}");
}
