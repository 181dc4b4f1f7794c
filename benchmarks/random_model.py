"""Random-weight Llama models of a realistic shape for timing, saved as a local model folder.

The folder holds config, safetensors weights and a tokenizer, so the benchmarks load it through the
library's own `modpo.models.load_base(folder)` like any local model. Nothing is downloaded: the
tokenizer is SmolLM2's (vocabulary 49,152), taken from the offline short name
`smollm2-135m-instruct` or from a folder that holds a saved copy of it (--tokenizer).

    SHAPES["1b"]    hidden 2048, 16 layers, 32 heads, 8 kv heads, MLP 8192, tied embeddings: 1.07B params
    SHAPES["tiny"]  hidden 64, 2 layers, 4 heads, 2 kv heads, MLP 256 (CPU check of the same code path)

Weights are seeded (the same folder on every machine for a given shape, seed and dtype) and cached
under $MODPO_CACHE/random-models/ so several benchmark processes build the model once.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo.models import cache_dir, load_tokenizer  # noqa: E402

SHAPES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=256),
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
               intermediate_size=8192),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def random_model_folder(shape: str, tokenizer: str = "smollm2-135m-instruct", dtype: str = "bfloat16",
                        seed: int = 0) -> str:
    """The folder of a seeded random Llama of `shape` with `tokenizer`; built on first use."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    tok = load_tokenizer(tokenizer)
    out = cache_dir() / "random-models" / f"{shape}-vocab{len(tok)}-{dtype}-seed{seed}"
    if (out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file():
        return str(out)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, rope_theta=100000.0, **SHAPES[shape])
    torch.manual_seed(seed)
    build_on = "cuda" if torch.cuda.is_available() else "cpu"  # a 1B init takes seconds on a GPU
    with torch.device(build_on):
        model = LlamaForCausalLM(config)
    model = model.to(DTYPES[dtype]).cpu()
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    (tmp / "shape.json").write_text(json.dumps({"shape": shape, **SHAPES[shape], "vocab_size": len(tok),
                                                "params": n_params, "dtype": dtype, "seed": seed}, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    os.replace(tmp, out)
    return str(out)


def describe(folder: str) -> dict:
    """shape.json of a folder made here: the shape, vocabulary, parameter count, dtype and seed."""
    return json.loads((Path(folder) / "shape.json").read_text())


def random_lora_adapters(model_folder: str, names: list[str], out: Path, r: int = 16, alpha: float = 32,
                         target_modules=("q_proj", "k_proj", "v_proj", "o_proj"), seed: int = 0) -> dict[str, Path]:
    """Fresh LoRA adapters with random A and B (non-identity, distinct per name), saved as peft folders."""
    from peft import LoraConfig, get_peft_model

    from modpo.models import load_base

    base, _ = load_base(model_folder, dtype=DTYPES[describe(model_folder)["dtype"]])
    paths = {}
    model = None
    for i, name in enumerate(names):
        torch.manual_seed(seed + i)
        cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(target_modules), bias="none",
                         task_type="CAUSAL_LM", init_lora_weights=False)
        if model is None:
            model = get_peft_model(base, cfg, adapter_name=name)
        else:
            model.add_adapter(name, cfg)
        model.save_pretrained(str(out / "tmp"), selected_adapters=[name], safe_serialization=True)
        nested = out / "tmp" / name if name != "default" else out / "tmp"
        nested.rename(out / name)
        paths[name] = out / name
    return paths


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("--tokenizer", default="smollm2-135m-instruct")
    ap.add_argument("--dtype", default="bfloat16", choices=sorted(DTYPES))
    a = ap.parse_args()
    folder = random_model_folder(a.shape, a.tokenizer, a.dtype)
    print(folder, describe(folder))
