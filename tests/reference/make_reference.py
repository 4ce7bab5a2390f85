#!/usr/bin/env python3
"""Builds random-initialised BlenderBot-small Joint models with transformers and records
reference outputs that Kindred's candle implementation must reproduce.

Run by developers, not by CI (it needs torch + transformers):

    python -m venv .venv && .venv/bin/pip install torch transformers safetensors
    .venv/bin/python tests/reference/make_reference.py --size tiny --out tests/fixtures/tiny-recipe
    .venv/bin/python tests/reference/make_reference.py --size full --out /tmp/full-90m
    .venv/bin/python tests/reference/make_reference.py --tokenizer-only --out tests/fixtures

The tiny model and its references are committed; `cargo test --test it model_parity` compares.
With KINDRED_EXTRA_REFERENCE=/tmp/full-90m the same test also checks the full-size model.
"""
import argparse, json, os, shutil, sys
from pathlib import Path

import torch
from transformers import BlenderbotSmallConfig, BlenderbotSmallForConditionalGeneration, BlenderbotSmallTokenizer
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
BASE = (HERE / "../../third_party/blenderbot_small-90M").resolve()
STRATEGIES = ["Question", "Restatement or Paraphrasing", "Reflection of feelings", "Self-disclosure",
              "Affirmation and Reassurance", "Providing Suggestions", "Information", "Others"]


def tokenizer_with_strategies():
    tok = BlenderbotSmallTokenizer(str(BASE / "vocab.json"), str(BASE / "merges.txt"))
    tok.add_tokens([f"[{s}]" for s in STRATEGIES], special_tokens=True)
    return tok


PAPER_TOKENS = ["[Questions]", "[Reflection of feelings]", "[Information]", "[Restatement or Paraphrasing]",
                "[Other]", "[Self-disclosure]", "[Affirmation and Reassurance]", "[Providing Suggestions]", "[CLS]"]
PAPER_NAME = {"Question": "[Questions]", "Others": "[Other]"}


def paper_tokenizer():
    tok = BlenderbotSmallTokenizer(str(BASE / "vocab.json"), str(BASE / "merges.txt"))
    tok.add_tokens(PAPER_TOKENS, special_tokens=True)
    return tok


def paper_context(tok, turns, max_tokens, max_turns=5):
    """The paper's code: each utterance (supporter ones led by their strategy token)
    followed by eos; whole utterances dropped from the front to fit; the interactive
    loop kept the last few utterances."""
    pieces = []
    for t in turns[-max_turns:]:
        ids = []
        if t["speaker"] == "sys" and t.get("strategy"):
            ids.append(tok.convert_tokens_to_ids(PAPER_NAME.get(t["strategy"], f"[{t['strategy']}]")))
        ids += tok.encode(norm(t["text"])) + [tok.eos_token_id]
        pieces.append(ids)
    kept, total = [], 0
    for p in reversed(pieces):
        if total + len(p) > max_tokens:
            break
        kept.insert(0, p)
        total += len(p)
    return [i for p in kept for i in p]


def norm(text):
    return " ".join(text.split())


def recipe_context(tok, turns, max_tokens=160):
    """The recipe: utterances (supporter ones led by their strategy token) each followed by
    eos, the final eos dropped, the last max_tokens kept."""
    ids = []
    for t in turns:
        if t["speaker"] == "sys" and t.get("strategy"):
            ids.append(tok.convert_tokens_to_ids(f"[{t['strategy']}]"))
        ids.extend(tok.encode(norm(t["text"])))
        ids.append(tok.eos_token_id)
    ids = ids[:-1]
    return ids[-max_tokens:]


def write_tokenizer_reference(out: Path):
    tok = tokenizer_with_strategies()
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(HERE / "../../third_party/esconv/valid.jsonl") as f, open(out / "tokenizer_valid.tsv", "w") as w:
        w.write("# utterance (JSON string)\tids\tdecoded (JSON string), from transformers' BlenderbotSmallTokenizer\n")
        for line in f:
            for t in json.loads(line)["dialog"]:
                text = t["text"]
                ids = tok.encode(text)
                dec = tok.decode(ids, skip_special_tokens=True)
                w.write(f"{json.dumps(text)}\t{' '.join(map(str, ids))}\t{json.dumps(dec)}\n")
                n += 1
    print(f"{n} utterances -> {out / 'tokenizer_valid.tsv'}")


def build_model(size, seed, vocab=54944 + 8):
    torch.manual_seed(seed)
    base = json.load(open(BASE / "config.json"))
    if size == "tiny":
        kw = dict(d_model=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                  decoder_attention_heads=4, encoder_ffn_dim=32, decoder_ffn_dim=32,
                  max_position_embeddings=256, init_std=0.4)
    else:
        kw = {k: base[k] for k in ["d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                                   "decoder_attention_heads", "encoder_ffn_dim", "decoder_ffn_dim",
                                   "max_position_embeddings", "init_std"]}
    cfg = BlenderbotSmallConfig(vocab_size=vocab, scale_embedding=True, activation_function="gelu",
                                pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                                dropout=0.1, attention_dropout=0.0, activation_dropout=0.0, **kw)
    model = BlenderbotSmallForConditionalGeneration(cfg)
    with torch.no_grad():
        # Non-trivial layer norms and logit bias, so a wrong order of operations shows.
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                p.add_(torch.randn_like(p) * 0.2)
        model.final_logits_bias.normal_(0, 0.5)
    model.eval()
    return model


class ScaledEmbedding(torch.nn.Module):
    """transformers 4.x (and ParlAI, where every BlenderBot-small checkpoint was trained)
    scaled the decoder's token embeddings by sqrt(d_model) before `layernorm_embedding`;
    transformers 5.x dropped that factor from the decoder (the encoder keeps it). The
    layer norm hides most of it, but not all (eps), so the 5.x decoder is not the model
    the checkpoints were trained as. Kindred follows the training-time model; this wrapper
    restores it in the reference."""

    def __init__(self, emb, scale):
        super().__init__()
        self.emb, self.scale = emb, scale

    def forward(self, ids):
        return self.emb(ids) * self.scale


def restore_decoder_embed_scale(model):
    dec = model.model.decoder
    if "* self.embed_scale" not in __import__("inspect").getsource(type(dec).forward):
        dec.embed_tokens = ScaledEmbedding(model.model.shared, dec.embed_scale)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["tiny", "full"], default="tiny")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--tokenizer-only", action="store_true")
    ap.add_argument("--lineage", choices=["recipe", "paper"], default="recipe")
    args = ap.parse_args()
    out = Path(args.out)
    if args.tokenizer_only:
        write_tokenizer_reference(out)
        return
    paper = args.lineage == "paper"
    tok = paper_tokenizer() if paper else tokenizer_with_strategies()
    model = build_model(args.size, args.seed, vocab=54944 + (9 if paper else 8))
    out.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(out)
    # Both weight formats that users meet: safetensors (tied weights stored once) and
    # the legacy pickle.
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file({k: v for k, v in state.items() if k == "model.shared.weight" or
               not (k.endswith("embed_tokens.weight") or k == "lm_head.weight")},
              str(out / "model.safetensors"), metadata={"format": "pt"})
    torch.save(state, out / "pytorch_model.bin")
    restore_decoder_embed_scale(model)
    for f in ["vocab.json", "merges.txt", "special_tokens_map.json"]:
        shutil.copy(BASE / f, out / f)
    if paper:
        # The published checkpoint's added_tokens.json; no kindred.json, so the lineage is inferred.
        json.dump({t: 54944 + i for i, t in enumerate(PAPER_TOKENS)}, open(out / "added_tokens.json", "w"), indent=1)
    else:
        json.dump({f"[{s}]": 54944 + i for i, s in enumerate(STRATEGIES)}, open(out / "added_tokens.json", "w"), indent=1)
        json.dump({"name": f"random-{args.size}", "lineage": "recipe"}, open(out / "kindred.json", "w"), indent=1)

    convs = [json.loads(l) for l in open(HERE / "../../third_party/esconv/valid.jsonl")][:4]
    cases = []
    logit_ids = list(range(0, 54952, 97)) + list(range(54944, 54952))
    for ci, conv in enumerate(convs):
        dialog = conv["dialog"]
        # The context before the 3rd supporter turn (or as many as there are) and its reply.
        sys_idx = [i for i, t in enumerate(dialog) if t["speaker"] == "sys" and i > 0]
        k = sys_idx[min(2 + ci, len(sys_idx) - 1)]
        turns, target = dialog[:k], dialog[k]
        if paper:
            enc = paper_context(tok, turns, min(512, model.config.max_position_embeddings))
            strat = tok.convert_tokens_to_ids(PAPER_NAME.get(target["strategy"], f"[{target['strategy']}]"))
        else:
            enc = recipe_context(tok, turns)
            strat = tok.convert_tokens_to_ids(f"[{target['strategy']}]")
        labels = ([strat] + tok.encode(norm(target["text"])) + [tok.eos_token_id])[:41]
        dec = [1] + labels[:-1]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([enc]), decoder_input_ids=torch.tensor([dec])).logits[0]
            logp = torch.log_softmax(logits, -1)
            ll = sum(logp[i, l].item() for i, l in enumerate(labels) if l < 54944 or l == 54952 and paper)
            n = sum(1 for l in labels if l < 54944 or l == 54952 and paper)
            gen = model.generate(input_ids=torch.tensor([enc]), attention_mask=torch.ones(1, len(enc), dtype=torch.long),
                                 max_new_tokens=24, do_sample=False, num_beams=1, min_length=0,
                                 no_repeat_ngram_size=0, repetition_penalty=1.0, decoder_start_token_id=1,
                                 eos_token_id=2, pad_token_id=0, forced_eos_token_id=None)[0].tolist()[1:]
        if 2 in gen:
            gen = gen[: gen.index(2) + 1]
        top2 = torch.topk(logits, 2, -1).values
        cases.append({
            "turns": [{"speaker": "supporter" if t["speaker"] == "sys" else "seeker", "text": t["text"],
                       "strategy": t.get("strategy")} for t in turns],
            "encoder_ids": enc, "decoder_ids": dec, "labels": labels,
            "logit_ids": logit_ids,
            "logits": [[round(row[i].item(), 7) for i in logit_ids] for row in logits],
            "argmax": logits.argmax(-1).tolist(),
            "min_top2_gap": (top2[:, 0] - top2[:, 1]).min().item(),
            "greedy": gen, "loglik": ll, "loglik_tokens": n,
        })
        print(f"case {ci}: enc {len(enc)} dec {len(dec)} greedy {len(gen)} gap {cases[-1]['min_top2_gap']:.4f}")
    json.dump({"transformers": __import__("transformers").__version__, "torch": torch.__version__,
               "cases": cases}, open(out / "reference.json", "w"))
    print("wrote", out)


if __name__ == "__main__":
    main()
