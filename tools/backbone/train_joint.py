#!/usr/bin/env python3
"""Fine-tune SmolLM2-135M-Instruct into ESConv's Joint model (strategy token, then reply).

This is the training run behind `models/kindred-esconv-smollm2`. It uses PyTorch because
on these 2-core machines PyTorch's CPU training step is about 3x faster than candle's
(measured in the backbone notes); Kindred itself runs the result with candle.

The recipe (kept identical to what `src/model/llama_context.rs` builds at inference):

    <|im_start|>system\n{SYSTEM}[ Situation: ...]<|im_end|>\n
    <|im_start|>user\n{seeker text}<|im_end|>\n
    <|im_start|>assistant\n[Strategy]{supporter text}<|im_end|>\n
    ...
    <|im_start|>assistant\n            <- the prompt ends here
    target: [Strategy]{reply}<|im_end|>  (loss on these tokens only)

* The 8 strategy tokens are added special tokens (ids 49152..49159, recipe order). Their
  embeddings start as the mean of the embeddings of their names' words and stay frozen, so
  that the frozen lower layers never need gradients (see below). The input and output
  embeddings stay tied.
* What is trained: the top `--train-layers` decoder layers and the final norm. The outputs
  of the frozen layers below are computed once and cached under the run directory, which
  makes every epoch after the first cost only the top layers.
* Resumable: the cache is written in shards, the trainer checkpoints every
  `--checkpoint-every` steps (weights, optimiser, data order, step), and a killed run
  started again with the same command carries on where it was.

Usage:
    python3 tools/backbone/train_joint.py --gguf PATH/SmolLM2-135M-Instruct.Q4_1.gguf \
        --data third_party/esconv/train.jsonl --out runs/smollm2-joint
Then export (bf16 safetensors, HF layout):
    python3 tools/backbone/train_joint.py --export models/kindred-esconv-smollm2 --out runs/smollm2-joint ...
"""

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

STRATEGIES = [
    "Question",
    "Restatement or Paraphrasing",
    "Reflection of feelings",
    "Self-disclosure",
    "Affirmation and Reassurance",
    "Providing Suggestions",
    "Information",
    "Others",
]
STRATEGY_TOKENS = [f"[{s}]" for s in STRATEGIES]
SYSTEM = "You are a kind, supportive listener. Reply briefly."


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def normalise(t):
    return " ".join(t.split())


def load_conversations(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def split_dev(convs, n_dev, seed):
    order = list(range(len(convs)))
    random.Random(seed).shuffle(order)
    dev = set(order[:n_dev])
    return [c for i, c in enumerate(convs) if i not in dev], [c for i, c in enumerate(convs) if i in dev]


class Formatter:
    """Builds token ids exactly as Kindred's Llama context builder does."""

    def __init__(self, tok, max_context, max_target):
        self.tok = tok
        self.max_context = max_context
        self.max_target = max_target
        self.im_start = tok.convert_tokens_to_ids("<|im_start|>")
        self.im_end = tok.convert_tokens_to_ids("<|im_end|>")
        self.strategy_ids = tok.convert_tokens_to_ids(STRATEGY_TOKENS)
        self.nl = self.enc("\n")
        self.role = {r: self.enc(r + "\n") for r in ("system", "user", "assistant")}

    def enc(self, text):
        return self.tok.encode(text, add_special_tokens=False)

    def message(self, role, body_ids):
        return [self.im_start] + self.role[role] + body_ids + [self.im_end] + self.nl

    def system(self, situation):
        text = SYSTEM
        if situation:
            text += " Situation: " + normalise(situation)
        return self.message("system", self.enc(text))

    def turn(self, speaker, text, strategy):
        body = self.enc(normalise(text))
        if speaker == "sys":
            lead = [self.strategy_ids[STRATEGIES.index(strategy)]] if strategy else []
            return self.message("assistant", lead + body)
        return self.message("user", body)

    def prompt(self, situation, turns):
        """turns: [(speaker, text, strategy)] oldest first -> ids ending in the assistant header."""
        head = self.system(situation)
        tail = [self.im_start] + self.role["assistant"]
        budget = self.max_context - len(head) - len(tail)
        kept = []
        for sp, text, st in reversed(turns):
            ids = self.turn(sp, text, st)
            if len(ids) > budget:
                if not kept:  # one utterance longer than the budget keeps its end
                    kept.append(ids[len(ids) - budget:])
                break
            budget -= len(ids)
            kept.append(ids)
        return head + [i for ids in reversed(kept) for i in ids] + tail

    def target(self, strategy, text):
        ids = [self.strategy_ids[STRATEGIES.index(strategy)]] + self.enc(normalise(text)) + [self.im_end]
        return ids[: self.max_target]


def examples(convs, fmt, seed, situation_rate):
    rng = random.Random(seed)
    out = []
    for c in convs:
        turns = [(t["speaker"], t["text"], t.get("strategy")) for t in c["dialog"]]
        for i, (sp, text, st) in enumerate(turns):
            if sp != "sys" or i == 0 or not st or not normalise(text):
                continue
            situation = c.get("situation") if rng.random() < situation_rate else None
            p = fmt.prompt(situation, turns[:i])
            t = fmt.target(st, text)
            out.append((p, t))
    return out


def load_backbone(gguf):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    return tok, model


def add_strategy_tokens(tok, model):
    base = len(tok)
    tok.add_tokens(STRATEGY_TOKENS, special_tokens=True)
    ids = tok.convert_tokens_to_ids(STRATEGY_TOKENS)
    assert ids == list(range(base, base + 8)), ids
    emb = model.get_input_embeddings().weight.data
    model.resize_token_embeddings(base + 8, mean_resizing=False)
    emb = model.get_input_embeddings().weight.data
    for s, i in zip(STRATEGIES, ids):
        words = tok.encode(" " + s.lower(), add_special_tokens=False)
        emb[i] = emb[words].mean(0)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    return ids


def causal_mask(lengths, T, dtype):
    """(B,1,T,T) additive mask: causal, and padded keys masked out."""
    B = len(lengths)
    m = torch.full((T, T), float("-inf")).triu(1)
    mask = m.expand(B, 1, T, T).clone()
    for b, n in enumerate(lengths):
        mask[b, :, :, n:] = float("-inf")
        mask[b, :, n:, :] = 0.0  # padded queries: keep rows finite
    return mask.to(dtype)


def run_layers(model, layers, h, lengths):
    B, T, _ = h.shape
    pos = torch.arange(T).unsqueeze(0).expand(B, T)
    pe = model.model.rotary_emb(h, pos)
    mask = causal_mask(lengths, T, h.dtype)
    for layer in layers:
        out = layer(h, attention_mask=mask, position_ids=pos, position_embeddings=pe)
        h = out[0] if isinstance(out, tuple) else out
    return h


def batches_by_length(items, batch_size, rng):
    idx = list(range(len(items)))
    rng.shuffle(idx)
    # sort within chunks of 50 batches so padding is small but order stays random
    chunk = batch_size * 50
    out = []
    for s in range(0, len(idx), chunk):
        part = sorted(idx[s : s + chunk], key=lambda i: len(items[i][0]) + len(items[i][1]))
        out += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(out)
    return out


def build_cache(model, exs, split_at, run_dir, name, batch_size=16):
    """Hidden states after the first `split_at` layers for each example (f16), in shards."""
    cache_dir = run_dir / f"cache-{name}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    shard = 512
    n_shards = math.ceil(len(exs) / shard)
    layers = model.model.layers[:split_at]
    for s in range(n_shards):
        path = cache_dir / f"{s:04}.pt"
        if path.exists():
            continue
        t0 = time.time()
        part = exs[s * shard : (s + 1) * shard]
        states = [None] * len(part)
        order = sorted(range(len(part)), key=lambda i: len(part[i][0]) + len(part[i][1]))
        with torch.no_grad():
            for j in range(0, len(order), batch_size):
                bi = order[j : j + batch_size]
                seqs = [part[i][0] + part[i][1][:-1] for i in bi]
                lengths = [len(x) for x in seqs]
                T = max(lengths)
                ids = torch.tensor([x + [0] * (T - len(x)) for x in seqs])
                h = model.model.embed_tokens(ids)
                h = run_layers(model, layers, h, lengths)
                for k, i in enumerate(bi):
                    states[i] = h[k, : lengths[k]].to(torch.float16).clone()
        tmp = path.with_suffix(".tmp")
        torch.save(states, tmp)
        os.replace(tmp, path)
        log(f"cache {name}: shard {s + 1}/{n_shards} ({len(part)} examples) in {time.time() - t0:.0f}s")
    states = []
    for s in range(n_shards):
        states += torch.load(cache_dir / f"{s:04}.pt")
    return states


def batch_loss(model, top, exs, states, bi):
    """Mean loss per target token over the batch (and the token count)."""
    seqs = [states[i] for i in bi]
    lengths = [x.shape[0] for x in seqs]
    T = max(lengths)
    D = seqs[0].shape[1]
    h = torch.zeros(len(bi), T, D)
    for k, x in enumerate(seqs):
        h[k, : lengths[k]] = x.float()
    h = run_layers(model, top, h, lengths)
    h = model.model.norm(h)
    rows, labels = [], []
    for k, i in enumerate(bi):
        p, t = exs[i]
        # position of prompt's last token predicts t[0]; ...; position of t[-2] predicts t[-1]
        start = len(p) - 1
        rows.append(h[k, start : start + len(t)])
        labels.append(torch.tensor(t))
    hs = torch.cat(rows)
    y = torch.cat(labels)
    logits = hs @ model.model.embed_tokens.weight.T
    loss = F.cross_entropy(logits, y, reduction="sum")
    return loss, len(y)


def evaluate(model, top, exs, states, batch_size=16):
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        order = sorted(range(len(exs)), key=lambda i: states[i].shape[0])
        for j in range(0, len(order), batch_size):
            l, k = batch_loss(model, top, exs, states, order[j : j + batch_size])
            tot += l.item()
            n += k
    model.train()
    return tot / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--data", default="third_party/esconv/train.jsonl")
    ap.add_argument("--out", default="runs/smollm2-joint")
    ap.add_argument("--train-layers", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--max-context", type=int, default=256)
    ap.add_argument("--max-target", type=int, default=64)
    ap.add_argument("--dev-conversations", type=int, default=45)
    ap.add_argument("--situation-rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training examples (smoke tests)")
    ap.add_argument("--export", help="write the best checkpoint as an HF directory here and stop")
    ap.add_argument("--write-dev", help="write the dev conversations (held out of --data) as JSON lines here and stop: "
                    "decoding is tuned on them, never on valid")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    run = Path(args.out)
    run.mkdir(parents=True, exist_ok=True)

    if args.write_dev:
        _, dev_c = split_dev(load_conversations(args.data), args.dev_conversations, args.seed)
        with open(args.write_dev, "w") as f:
            for c in dev_c:
                f.write(json.dumps(c) + "\n")
        return log(f"wrote {len(dev_c)} dev conversations to {args.write_dev}")

    tok, model = load_backbone(args.gguf)
    add_strategy_tokens(tok, model)
    n_layers = len(model.model.layers)
    split_at = n_layers - args.train_layers
    for p in model.parameters():
        p.requires_grad_(False)
    top = model.model.layers[split_at:]
    trainable = list(top.parameters()) + list(model.model.norm.parameters())
    for p in trainable:
        p.requires_grad_(True)

    if args.export:
        return export(args, tok, model, run)

    fmt = Formatter(tok, args.max_context, args.max_target)
    convs = load_conversations(args.data)
    train_c, dev_c = split_dev(convs, args.dev_conversations, args.seed)
    train = examples(train_c, fmt, args.seed, args.situation_rate)
    dev = examples(dev_c, fmt, args.seed + 1, 0.0)
    if args.limit:
        train = train[: args.limit]
        dev = dev[: max(16, args.limit // 8)]
    log(f"{len(train)} training examples, {len(dev)} dev examples; training layers {split_at}..{n_layers - 1} "
        f"({sum(p.numel() for p in trainable) / 1e6:.1f}M parameters)")
    (run / "args.json").write_text(json.dumps(vars(args), indent=1))

    train_states = build_cache(model, train, split_at, run, f"train-l{split_at}")
    dev_states = build_cache(model, dev, split_at, run, f"dev-l{split_at}")

    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total = steps_per_epoch * args.epochs
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    sched = lambda s: min(1.0, (s + 1) / args.warmup) * max(0.0, (total - s) / max(1, total - args.warmup))
    step, best = 0, float("inf")
    ck = run / "checkpoint.pt"
    if ck.exists():
        state = torch.load(ck)
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["opt"])
        step, best = state["step"], state["best"]
        log(f"resumed at step {step} (best dev loss {best:.4f})")
    else:
        d = evaluate(model, top, dev, dev_states)
        log(f"dev loss before training {d:.4f} (ppl {math.exp(d):.2f})")
    logf = open(run / "log.jsonl", "a")
    model.train()
    t0 = time.time()
    while step < total:
        epoch = step // steps_per_epoch
        order = batches_by_length(train, args.batch_size, random.Random(args.seed * 1000 + epoch))
        for bi in order[step % steps_per_epoch :]:
            for g in opt.param_groups:
                g["lr"] = args.lr * sched(step)
            loss, n = batch_loss(model, top, train, train_states, bi)
            (loss / n).backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            rec = {"step": step, "epoch": epoch, "loss": loss.item() / n, "lr": opt.param_groups[0]["lr"]}
            if step % 20 == 0:
                log(f"step {step}/{total} loss {rec['loss']:.4f} ({(time.time() - t0) / 20:.2f}s/step)")
                t0 = time.time()
            end_of_epoch = step % steps_per_epoch == 0
            if step % args.checkpoint_every == 0 or end_of_epoch or step == total:
                if end_of_epoch or step == total:
                    d = evaluate(model, top, dev, dev_states)
                    rec["dev_loss"] = d
                    log(f"epoch {epoch + 1} done: dev loss {d:.4f} (ppl {math.exp(d):.2f})")
                    if d < best:
                        best = d
                        save_trained(model, split_at, run / "best.pt", step, d)
                state = {"model": {k: v for k, v in model.state_dict().items() if is_trained(k, split_at)},
                         "opt": opt.state_dict(), "step": step, "best": best}
                torch.save(state, run / "checkpoint.tmp")
                os.replace(run / "checkpoint.tmp", ck)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            if step >= total:
                break
    log(f"done: best dev loss {best:.4f} (ppl {math.exp(best):.2f})")


def is_trained(name, split_at):
    if name.startswith("model.norm."):
        return True
    if name.startswith("model.layers."):
        return int(name.split(".")[2]) >= split_at
    return False


def save_trained(model, split_at, path, step, dev_loss):
    state = {k: v.clone() for k, v in model.state_dict().items() if is_trained(k, split_at)}
    torch.save({"model": state, "step": step, "dev_loss": dev_loss}, str(path) + ".tmp")
    os.replace(str(path) + ".tmp", path)


def export(args, tok, model, run):
    """The best checkpoint as an HF Llama directory: bf16 safetensors sharded under 95 MB."""
    best = torch.load(run / "best.pt")
    model.load_state_dict(best["model"], strict=False)
    out = Path(args.export)
    out.mkdir(parents=True, exist_ok=True)
    # Loaded from GGUF, the weights are already dequantised; the quantiser transformers
    # attaches would refuse to save them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = "bfloat16"
    model.to(torch.bfloat16).save_pretrained(out, max_shard_size="90MB", safe_serialization=True)
    tok.save_pretrained(out)
    # What Kindred needs to run it as trained: the recipe lineage, the context budget and
    # whether situations were seen in training (the system prompt is Kindred's default,
    # which is SYSTEM above).
    meta = {
        "name": out.name,
        "lineage": "recipe",
        "max_context_tokens": args.max_context,
        "situation": args.situation_rate > 0,
    }
    (out / "kindred.json").write_text(json.dumps(meta, indent=2) + "\n")
    log(f"exported step {best['step']} (dev loss {best['dev_loss']:.4f}) to {out}")


if __name__ == "__main__":
    sys.exit(main())
