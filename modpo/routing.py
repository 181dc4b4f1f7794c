"""Per-row adapters in one pass: row i of a batch runs through adapter names[i] ("__base__": none).

peft does this with `adapter_names=[...]`: in every LoRA layer it loops over the distinct adapters,
gathers each one's rows with a Python index list, runs that adapter's A and B, and scatters the result
back. On a GPU each index list is a host-to-device copy, so a 1B model decoding 4 adapters side by side
ran at 4.2x the cost of decoding one (benchmarks/RESULTS.md section 7). Here each LoRA layer does the
same sum with two matrix products over all adapters at once:

    delta(x) = ((x @ A_cat) * row_mask) @ B_cat

A_cat (in, R) holds the K adapters' A matrices side by side (R = sum of their ranks), B_cat (R, out) their
B matrices stacked, and row_mask (B, R) is adapter k's scaling on the R-slice of k for the rows that run
k, 0 elsewhere. Each adapter's rank stays its own (no padding); an adapter a layer lacks adds nothing
there, as in peft. Adapters peft computes in another way (DoRA, a LoRA bias, merged weights, a non-Linear
layer, dropout in training, modules_to_save, another tuner than LoRA) are not routed: `routable` says so
and the caller keeps peft's path.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

BASE = "__base__"


def lora_layers(model) -> list:
    """The peft LoRA Linear layers of model (those with a base_layer and lora_A / lora_B dicts)."""
    from peft.tuners.lora import Linear as LoraLinear
    return [m for m in model.modules() if isinstance(m, LoraLinear)]


def routable(model, names: list[str]) -> bool:
    """Whether every LoRA layer computes the named adapters as the plain x @ A @ B * scaling."""
    from peft import PeftType
    if not hasattr(model, "peft_config") or model.training:
        return False
    wanted = set(names) - {BASE}
    if not wanted <= set(model.peft_config):
        return False
    for layer in lora_layers(model):
        if layer.merged or not isinstance(layer.base_layer, torch.nn.Linear):
            return False
        if wanted & set(getattr(layer, "lora_variant", None) or {}):  # DoRA and other variants compute otherwise
            return False
    for n in wanted:
        cfg = model.peft_config[n]
        if getattr(cfg, "peft_type", None) != PeftType.LORA:
            return False  # another tuner's layers are not LoRA layers: routing would skip them
        if any(getattr(cfg, f, None) for f in ("use_dora", "lora_bias", "modules_to_save", "trainable_token_indices")):
            return False  # disable_adapter would switch the extra modules off and routing would not add them back
    return True


def stacked_lora(layer, adapters: list[str]) -> tuple[torch.Tensor, torch.Tensor, list] | None:
    """A_cat (in, R), B_cat (R, out) and, per adapter in `adapters`, (start, end, scaling) of its slice
    (start == end where the layer lacks the adapter). None when the layer holds none of them."""
    a_parts, b_parts, slices, at = [], [], [], 0
    for name in adapters:
        if name not in layer.lora_A:
            slices.append((at, at, 0.0))
            continue
        a, b = layer.lora_A[name].weight, layer.lora_B[name].weight  # (r, in), (out, r)
        a_parts.append(a)
        b_parts.append(b)
        slices.append((at, at + a.shape[0], float(layer.scaling[name])))
        at += a.shape[0]
    if not a_parts:
        return None
    dtype = a_parts[0].dtype
    return torch.cat([a.to(dtype) for a in a_parts]).T, torch.cat([b.to(dtype) for b in b_parts], 1).T, slices


def row_mask(slices: list[tuple[int, int, float]], rank: int, rows: list[int], device, dtype) -> torch.Tensor:
    """(B, R): row i holds its adapter's scaling on that adapter's slice. rows[i]: index into slices, or
    -1 for a base-model row (all zeros)."""
    mask = torch.zeros(len(rows), rank, dtype=dtype)
    for i, k in enumerate(rows):
        if k >= 0:
            start, end, scaling = slices[k]
            mask[i, start:end] = scaling
    return mask.to(device)


@contextmanager
def per_row_adapters(model, names: list[str]):
    """Inside the block, every forward of model runs adapter names[i] on batch row i (B = len(names)).

    The model's own LoRA computation is switched off (peft's disable_adapter) and a forward hook on each
    LoRA layer's base Linear adds ((x @ A_cat) * row_mask) @ B_cat. Rows keep their order through
    generate() with greedy or sampled decoding (no beams). Check `routable(model, names)` first.
    """
    adapters = sorted(set(names) - {BASE})
    rows = [adapters.index(n) if n != BASE else -1 for n in names]
    handles = []

    def make_hook(a_cat, b_cat, mask):
        def hook(module, args, output):
            x = args[0]
            if x.dim() != 3 or x.shape[0] != mask.shape[0]:
                raise RuntimeError(f"per-row adapters were set for {mask.shape[0]} rows but a layer got input "
                                   f"{tuple(x.shape)}; call the model with the batch the rows were named for")
            delta = ((x.to(a_cat.dtype) @ a_cat) * mask[:, None, :]) @ b_cat
            return output + delta.to(output.dtype)
        return hook

    try:
        for layer in lora_layers(model):
            stacked = stacked_lora(layer, adapters)
            if stacked is None:
                continue
            a_cat, b_cat, slices = stacked
            mask = row_mask(slices, a_cat.shape[1], rows, a_cat.device, a_cat.dtype)
            handles.append(layer.base_layer.register_forward_hook(make_hook(a_cat, b_cat, mask)))
        with model.disable_adapter():
            yield
    finally:
        for h in handles:
            h.remove()
