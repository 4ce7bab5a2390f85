#!/usr/bin/env python3
"""Reference values for Kindred's BLEU-2 / ROUGE-L / Distinct on a fixed sample, from
NLTK (NLTKWordTokenizer, corpus_bleu) and pycocoevalcap's Rouge (what nlg-eval uses).

    .venv/bin/pip install nltk pycocoevalcap
    .venv/bin/python tests/reference/metrics_reference.py > tests/fixtures/metrics_reference.json
"""
import json
from pathlib import Path

from nltk.tokenize import NLTKWordTokenizer
from nltk.translate.bleu_score import corpus_bleu
from pycocoevalcap.rouge.rouge import Rouge

ESCONV = Path(__file__).resolve().parent / "../../third_party/esconv"
tok = NLTKWordTokenizer()

pairs = []
for line in open(ESCONV / "valid.jsonl"):
    sys_turns = [t["text"] for t in json.loads(line)["dialog"] if t["speaker"] == "sys"]
    # Hypothesis: the supporter's previous turn, a realistic partial overlap.
    for prev, cur in zip(sys_turns, sys_turns[1:]):
        pairs.append((prev, cur))
pairs = pairs[::17][:300]
hyps = [tok.tokenize(h.lower()) for h, _ in pairs]
refs = [tok.tokenize(r.lower()) for _, r in pairs]
bleu2 = 100 * corpus_bleu([[r] for r in refs], hyps, weights=(0.5, 0.5))
rouge = Rouge()
rl = 100 * sum(rouge.calc_score([" ".join(h)], [" ".join(r)]) for h, r in zip(hyps, refs)) / len(pairs)

def distinct(n):
    grams = [tuple(h[i:i + n]) for h in hyps for i in range(len(h) - n + 1)]
    return 100 * len(set(grams)) / len(grams)

print(json.dumps({"pairs": [{"hypothesis": h, "reference": r} for h, r in pairs],
                  "hyp_tokens": hyps, "ref_tokens": refs, "bleu2": bleu2, "rougeL": rl,
                  "dist1": distinct(1), "dist2": distinct(2)}))
