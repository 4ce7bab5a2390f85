#!/usr/bin/env python3
"""Train the learned part of Kindred's crisis screen: a small logistic regression over the
words and word pairs of a normalised message.

Why: the lexicon (src/safety/lexicon/) catches the phrasings it was written for, but on
messages written later, without tuning, it missed about half (tests/fixtures/safety/fresh.tsv,
first measure). Single words carry much of the signal that exact phrases lose ("blade",
"funeral", "wrists", "stay alive"); a linear model over them generalises to new
combinations, runs in microseconds, and can say which words decided it.

Data: the labelled sets in tests/fixtures/safety/ for risk and tricky negatives (all of
them, less those named with --exclude: a set kept out can then measure what retraining
adds), and ESConv's seeker messages (third_party/esconv/train.jsonl) as ordinary distress
that is not a crisis; seeker messages the lexicon flags are left out rather than guessed.
Until session 20 only labelled.tsv and holdout.tsv were used.

Text goes through `kindred safety normalize`, so the model sees exactly what the screen sees.

Usage:
    cargo build && python3 tools/safety/train_classifier.py --kindred target/debug/kindred
It writes src/safety/classifier.json (weights of the features that matter, the bias and
the threshold), which the screen embeds.
"""

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests/fixtures/safety"


# Words that carry no risk on their own; a feature made only of them cannot open the gate.
# (Other languages' "I want": alone, "te quiero mucho" opened it.)
FUNCTION_WORDS = set("""i im ive id ill me my myself a an the and or but so to of in on at for with about it its
is am are was were be been being this that these those just really very too keep want wanna again thinking think
thought feel feeling like do dont not no can cant will would could should have has had get got go going gonna
know what when how why who all any some more most much many time day days now
quiero quero voglio veux ich will möchte yo eu je tu te mi mucho muito molto très""".split())


def read_tsv(path):
    rows = []
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        label, text = line.rstrip("\n").split("\t", 1)
        rows.append((label, text))
    return rows


def run(kindred, args, lines):
    out = subprocess.run([kindred, *args], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return out.stdout.rstrip("\n").split("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kindred", default=str(ROOT / "target/debug/kindred"))
    ap.add_argument("--esconv-limit", type=int, default=20000)
    ap.add_argument("--min-weight", type=float, default=0.05)
    ap.add_argument("--threshold", type=float, default=0.7,
                    help="probability of risk above which the classifier fires (see the README for what it adds)")
    ap.add_argument("--gate", type=float, default=1.2,
                    help="the classifier fires only when a feature with a content word weighs at least this "
                         "(without it, 'I keep thinking about my ex' fired on 'i keep' and 'thinking')")
    ap.add_argument("--exclude", nargs="*", default=[],
                    help="fixture sets (file names) left out of training, to measure on them")
    ap.add_argument("--out", default=str(ROOT / "src/safety/classifier.json"))
    args = ap.parse_args()

    sets = sorted(p for p in FIX.glob("*.tsv") if p.name not in args.exclude)
    print("training on", ", ".join(p.name for p in sets))
    rows = [r for p in sets for r in read_tsv(p)]
    seeker = []
    for line in open(ROOT / "third_party/esconv/train.jsonl"):
        for t in json.loads(line)["dialog"]:
            if t["speaker"] == "usr" and t["text"].strip():
                seeker.append(" ".join(t["text"].split()))
    seeker = seeker[: args.esconv_limit]
    flagged = [l.startswith("risk") for l in run(args.kindred, ["safety", "check"], seeker)]
    seeker = [s for s, f in zip(seeker, flagged) if not f]
    texts = [t for _, t in rows] + seeker
    y = np.array([0 if l == "none" else 1 for l, _ in rows] + [0] * len(seeker))
    norm = run(args.kindred, ["safety", "normalize"], texts)
    assert len(norm) == len(texts)

    vec = CountVectorizer(ngram_range=(1, 2), token_pattern=r"[^ ]+", binary=True, min_df=1)
    X = vec.fit_transform(norm)
    # Risk rows weigh as much as all the ordinary ones together.
    w = np.where(y == 1, (y == 0).sum() / max(1, (y == 1).sum()), 1.0)
    clf = LogisticRegression(C=2.0, max_iter=3000)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    p = cross_val_predict(clf, X, y, cv=folds, method="predict_proba", params={"sample_weight": w})[:, 1]
    threshold = args.threshold
    fp = int(((p >= threshold) & (y == 0)).sum())
    print(f"{X.shape[1]} features; {int(y.sum())} risk, {int((y == 0).sum())} not; "
          f"cross-validated at threshold {threshold:.3f}: recall {((p >= threshold) & (y == 1)).sum() / y.sum():.3f}, "
          f"{fp} false alarms of {(y == 0).sum()}")
    clf.fit(X, y, sample_weight=w)
    names = vec.get_feature_names_out()
    coef = clf.coef_[0]
    keep = {names[i]: round(float(coef[i]), 4) for i in np.argsort(-np.abs(coef)) if abs(coef[i]) >= args.min_weight}
    json.dump({"bias": round(float(clf.intercept_[0]), 4), "threshold": round(threshold, 4),
               "gate": args.gate, "function_words": sorted(FUNCTION_WORDS),
               "weights": keep}, open(args.out, "w"), ensure_ascii=False, indent=0, sort_keys=True)
    top = sorted(keep.items(), key=lambda kv: -kv[1])[:25]
    print("strongest risk features:", ", ".join(f"{k} {v:+.2f}" for k, v in top))
    print(f"wrote {len(keep)} weights to {args.out}")


if __name__ == "__main__":
    main()
