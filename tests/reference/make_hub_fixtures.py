"""Writes the pickled weights the hub stand-in serves (tests/it/hub.rs).

The published paper checkpoint `lsy641/ESC_Blender_Strategy` is one pickled
`pytorch_model.bin`: BlenderBot-small with the paper's 54,953-token vocabulary, plus the
authors' unused role and turn embeddings. `facebook/blenderbot_small-90M`, the backbone it
was fine-tuned from, has the 54,944-token vocabulary. Both are made here from the tiny
paper-lineage fixture (d_model 16), stored as float16 to keep the repository small.

    python3 tests/reference/make_hub_fixtures.py
"""
from pathlib import Path

import torch
from safetensors.torch import load_file

root = Path(__file__).resolve().parents[1] / "fixtures"
out = root / "hub"
out.mkdir(exist_ok=True)
tiny = load_file(root / "tiny-paper" / "model.safetensors")


def with_tied(state):
    """As transformers pickles BlenderBot-small: the tied embeddings are one storage."""
    shared = state["model.shared.weight"]
    state["model.encoder.embed_tokens.weight"] = shared
    state["model.decoder.embed_tokens.weight"] = shared
    state["lm_head.weight"] = shared
    return state


paper = {k: v.to(torch.float16) for k, v in tiny.items()}
g = torch.Generator().manual_seed(0)
for side in ("encoder", "decoder"):
    # The paper's code tried role and turn embeddings; its checkpoint still carries them.
    paper[f"model.{side}.wre.weight"] = torch.randn(2, 16, generator=g).to(torch.float16)
    paper[f"model.{side}.wte.weight"] = torch.randn(64, 16, generator=g).to(torch.float16)
torch.save(with_tied(paper), out / "ESC_Blender_Strategy.pytorch_model.bin")

backbone = {k: v.to(torch.float16) for k, v in tiny.items()}
backbone["model.shared.weight"] = backbone["model.shared.weight"][:54944].clone()
backbone["final_logits_bias"] = backbone["final_logits_bias"][:, :54944].clone()
torch.save(with_tied(backbone), out / "blenderbot_small-90M.pytorch_model.bin")
print("wrote", sorted(p.name for p in out.iterdir()))
