//! `kindred model pull` against a loopback stand-in of the Hugging Face hub, with
//! repositories laid out as the real ones are.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::run_with_stdin;
use crate::standins::hub::HubStandIn;

const PAPER: &str = "lsy641/ESC_Blender_Strategy";
const BACKBONE: &str = "facebook/blenderbot_small-90M";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A hub stand-in serving the paper's repository (only `.gitattributes` and a pickled
/// `pytorch_model.bin`, as on the hub) and its backbone's (config, tokenizer, weights in
/// three frameworks, generation defaults).
struct Hub {
    _rt: tokio::runtime::Runtime,
    hub: HubStandIn,
    root: tempfile::TempDir,
}

impl Hub {
    fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let hub = rt.block_on(HubStandIn::start());
        assert!(hub.url.starts_with("http://127.0.0.1:"));
        let root = tempfile::tempdir().unwrap();
        let tiny = fixtures().join("tiny-paper");

        let paper = root.path().join("paper");
        std::fs::create_dir_all(&paper).unwrap();
        std::fs::write(
            paper.join(".gitattributes"),
            "*.bin filter=lfs diff=lfs merge=lfs -text\n",
        )
        .unwrap();
        std::fs::copy(
            fixtures().join("hub/ESC_Blender_Strategy.pytorch_model.bin"),
            paper.join("pytorch_model.bin"),
        )
        .unwrap();
        hub.add_repo(PAPER, &paper);

        let backbone = root.path().join("backbone");
        std::fs::create_dir_all(&backbone).unwrap();
        let mut cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tiny.join("config.json")).unwrap())
                .unwrap();
        cfg["vocab_size"] = 54944.into();
        cfg["architectures"] = serde_json::json!(["BlenderbotSmallForConditionalGeneration"]);
        std::fs::write(backbone.join("config.json"), cfg.to_string()).unwrap();
        for f in ["vocab.json", "merges.txt", "special_tokens_map.json"] {
            std::fs::copy(tiny.join(f), backbone.join(f)).unwrap();
        }
        std::fs::copy(
            fixtures().join("hub/blenderbot_small-90M.pytorch_model.bin"),
            backbone.join("pytorch_model.bin"),
        )
        .unwrap();
        std::fs::write(
            backbone.join("generation_config.json"),
            r#"{"num_beams": 10}"#,
        )
        .unwrap();
        std::fs::write(backbone.join("tokenizer_config.json"), "{}").unwrap();
        std::fs::write(backbone.join("README.md"), "# blenderbot_small-90M\n").unwrap();
        std::fs::write(backbone.join("tf_model.h5"), b"not for kindred").unwrap();
        std::fs::write(backbone.join("flax_model.msgpack"), b"not for kindred").unwrap();
        hub.add_repo(BACKBONE, &backbone);
        Self { _rt: rt, hub, root }
    }

    fn kindred(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kindred"));
        c.env("HF_ENDPOINT", &self.hub.url)
            .env_remove("HF_TOKEN")
            .env("KINDRED__DATA_DIR", self.root.path().join("data"))
            .env("KINDRED__MODEL__DECODING__MAX_LENGTH", "6")
            .env("KINDRED__MODEL__DECODING__MIN_LENGTH", "1")
            .env("KINDRED_LOG", "warn");
        c
    }

    fn pull(&self, repo: &str, dir: &Path) -> Output {
        self.kindred()
            .args(["model", "pull", repo, "--dir"])
            .arg(dir)
            .output()
            .unwrap()
    }

    /// Every request came to the stand-in over loopback.
    fn assert_all_loopback(&self) {
        let seen = self.hub.seen();
        assert!(!seen.is_empty());
        for s in &seen {
            assert!(s.host.starts_with("127.0.0.1:"), "{s:?}");
        }
    }

    fn paths(&self) -> Vec<String> {
        self.hub.seen().into_iter().map(|s| s.path).collect()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_papers_checkpoint_is_completed_from_its_backbone_and_chats() {
    let hub = Hub::start();
    let dir = hub.root.path().join("esc");
    let out = hub.pull(PAPER, &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("skipping 4 weights"), "{stdout}");
    assert!(stdout.contains("model.encoder.wre.weight"), "{stdout}");
    assert!(stdout.contains("kindred chat --model"), "{stdout}");

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["vocab_size"], 54953);
    let added: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("added_tokens.json")).unwrap())
            .unwrap();
    assert_eq!(added["[Questions]"], 54944);
    assert_eq!(added["[Providing Suggestions]"], 54951);
    assert_eq!(added["[CLS]"], 54952);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("kindred.json")).unwrap()).unwrap();
    assert_eq!(meta["lineage"], "paper");
    assert_eq!(meta["decoding"]["top_k"], 30);
    assert_eq!(meta["decoding"]["temperature"], 0.7);
    assert!(!dir.join(".kindred-pull").exists());
    for not_taken in [
        "tf_model.h5",
        "flax_model.msgpack",
        "generation_config.json",
        "README.md",
    ] {
        assert!(!dir.join(not_taken).exists(), "{not_taken} was copied");
    }
    let paths = hub.paths();
    assert!(
        !paths.iter().any(|p| p.contains("tf_model.h5")),
        "{paths:?}"
    );
    assert!(paths
        .iter()
        .any(|p| p == "/cdn/lsy641/ESC_Blender_Strategy/pytorch_model.bin"));

    let info = hub
        .kindred()
        .args(["model", "info"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(info.status.success(), "{}", text(&info.stderr));
    let info = text(&info.stdout);
    assert!(info.contains("lineage       paper"), "{info}");
    assert!(
        info.contains("source        lsy641/ESC_Blender_Strategy"),
        "{info}"
    );
    assert!(info.contains("[Questions] = 54944"), "{info}");
    assert!(info.contains("top-k 30"), "{info}");

    let mut chat = hub.kindred();
    chat.args(["chat", "--model"]).arg(&dir);
    let out = run_with_stdin(chat, "hello\nI lost my job today\n/end\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("I'm an AI supporter"), "{stdout}");
    // The rating question comes after two replies of the model.
    assert!(
        stdout.contains("How helpful were my last two replies?"),
        "{stdout}"
    );
    hub.assert_all_loopback();
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let hub = Hub::start();
    let dir = hub.root.path().join("esc");
    hub.hub.cut_next_download(PAPER, "pytorch_model.bin");
    let out = hub
        .kindred()
        .env("HF_TOKEN", "hf_secret_token")
        .args(["model", "pull", PAPER, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("pytorch_model.bin") && err.contains(PAPER) && err.contains("resume"),
        "{err}"
    );
    // HF_TOKEN goes to the hub as a bearer token (not to where its files are redirected),
    // and nowhere else.
    for s in hub.hub.seen() {
        let expected = (!s.path.starts_with("/cdn/")).then_some("Bearer hf_secret_token");
        assert_eq!(s.authorization.as_deref(), expected, "{s:?}");
    }
    assert!(!err.contains("hf_secret_token") && !text(&out.stdout).contains("hf_secret_token"));
    // Nothing half-done is in place; the cut file waits in the staging folder.
    assert!(!dir.join("config.json").exists());
    let part = dir.join(".kindred-pull/pytorch_model.bin");
    let full = std::fs::metadata(fixtures().join("hub/ESC_Blender_Strategy.pytorch_model.bin"))
        .unwrap()
        .len();
    let had = std::fs::metadata(&part).unwrap().len();
    assert!(had > 0 && had < full, "{had} of {full}");

    let out = hub.pull(PAPER, &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ranged: Vec<_> = hub
        .hub
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/cdn/"))
        .filter_map(|s| s.range)
        .collect();
    assert_eq!(ranged, vec![format!("bytes={had}-")]);
    assert_eq!(
        std::fs::read(dir.join("pytorch_model.bin")).unwrap(),
        std::fs::read(fixtures().join("hub/ESC_Blender_Strategy.pytorch_model.bin")).unwrap()
    );
    hub.assert_all_loopback();
}

#[test]
fn a_truncated_file_is_refused_and_not_kept() {
    let hub = Hub::start();
    let dir = hub.root.path().join("esc");
    hub.hub.serve_short(PAPER, "pytorch_model.bin", 1000);
    let out = hub.pull(PAPER, &dir);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("pytorch_model.bin") && err.contains("truncated"),
        "{err}"
    );
    assert!(!dir.join("pytorch_model.bin").exists());
    assert!(!dir.join(".kindred-pull/pytorch_model.bin").exists());

    // A repository that is only weights, and not one Kindred knows, is named as such.
    let bare = hub.root.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(
        fixtures().join("hub/ESC_Blender_Strategy.pytorch_model.bin"),
        bare.join("pytorch_model.bin"),
    )
    .unwrap();
    hub.hub.add_repo("someone/bare", &bare);
    let out = hub.pull("someone/bare", &hub.root.path().join("b"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no config.json") && err.contains(PAPER),
        "{err}"
    );
    let out = hub.pull("someone/missing", &hub.root.path().join("m"));
    assert!(
        text(&out.stderr).contains("is not on the hub"),
        "{}",
        text(&out.stderr)
    );
    hub.assert_all_loopback();
}

#[test]
fn the_pulled_backbone_is_what_train_init_takes() {
    let hub = Hub::start();
    let dir = hub.root.path().join("blender");
    let out = hub.pull(BACKBONE, &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kindred train --init"),
        "{}",
        text(&out.stdout)
    );
    assert!(dir.join("pytorch_model.bin").exists() && dir.join("vocab.json").exists());

    let data = crate::training::small_data(hub.root.path(), 3);
    let ft = hub.root.path().join("ft");
    let out = hub
        .kindred()
        .env("CANDLE_NUM_THREADS", "1")
        .args(["train", "--init"])
        .arg(&dir)
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&ft)
        .args(["--max-steps", "1", "--batch-size", "2", "--dropout", "0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let joint = kindred::model::load(&ft, &Default::default()).unwrap();
    assert_eq!(joint.model.vocab_size(), 54952);

    // Any ordinary repository of a supported architecture: a decoder-only Joint model.
    hub.hub
        .add_repo("someone/tiny-llama", &fixtures().join("tiny-llama/hf"));
    let llama = hub.root.path().join("llama");
    let out = hub.pull("someone/tiny-llama", &llama);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("kindred chat --model"),
        "{}",
        text(&out.stdout)
    );
    let joint = kindred::model::load(&llama, &Default::default()).unwrap();
    assert_eq!(joint.model.architecture(), "llama");
    hub.assert_all_loopback();
}
