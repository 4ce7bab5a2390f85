//! BLEU-2, ROUGE-L and Distinct agree with NLTK and pycocoevalcap (nlg-eval) on a fixed
//! sample of ESConv replies (tests/reference/metrics_reference.py made the fixture).

use kindred::train::metrics::{corpus_bleu, distinct, rouge_l, tokenize};

#[test]
fn metrics_match_the_reference_implementations() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/metrics_reference.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let to_vecs = |v: &serde_json::Value| -> Vec<Vec<String>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                s.as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    };
    let py_hyps = to_vecs(&r["hyp_tokens"]);
    let py_refs = to_vecs(&r["ref_tokens"]);
    let pairs = r["pairs"].as_array().unwrap();
    let hyps: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| tokenize(p["hypothesis"].as_str().unwrap()))
        .collect();
    let refs: Vec<Vec<String>> = pairs
        .iter()
        .map(|p| tokenize(p["reference"].as_str().unwrap()))
        .collect();
    for (i, (mine, theirs)) in hyps
        .iter()
        .chain(&refs)
        .zip(py_hyps.iter().chain(&py_refs))
        .enumerate()
    {
        assert_eq!(mine, theirs, "tokenisation differs from NLTK at {i}");
    }
    let close = |name: &str, got: f64, want: f64| {
        assert!(
            (got - want).abs() < 0.01,
            "{name}: {got} vs reference {want}"
        )
    };
    close(
        "BLEU-2",
        corpus_bleu(&hyps, &refs, 2),
        r["bleu2"].as_f64().unwrap(),
    );
    close(
        "ROUGE-L",
        rouge_l(&hyps, &refs),
        r["rougeL"].as_f64().unwrap(),
    );
    close(
        "Distinct-1",
        distinct(&hyps, 1),
        r["dist1"].as_f64().unwrap(),
    );
    close(
        "Distinct-2",
        distinct(&hyps, 2),
        r["dist2"].as_f64().unwrap(),
    );
}
