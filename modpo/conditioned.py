"""One adapter for every weighting: MODPO conditioned on w through the singular values of an SVD-LoRA
(Panacea, Zhong et al. 2024, arXiv 2402.02030; DESIGN §6).

Every target linear layer W of the base model gets

    delta W(w) = (alpha / r) * B diag(s(w)) A,    s(w) = [s_1, ..., s_{r-nm}, lambda * (w_1 1_m, ..., w_n 1_m)]

with A (r, d_in), B (d_out, r), the r - nm free singular values s and the per-layer scale lambda learned;
the weighting sits in the last nm singular values, m per objective (Panacea: m = 1; `per_objective`
gives w a larger share of the rank: RESULTS.md §12). Training minimizes E_{w ~ D} L_w(theta), with L_w
the MODPO loss (loss.modpo_loss, one weighting per example) on the family's precomputed pairs: for every w
its optimum is the exact adapter's, pi_ref exp(w . r / beta) / Z, so one run can reach them all if the
adapter can represent them.

The target's weight w_0 divides the loss's logit, so its gradient grows like 1 / w_0 near that end.
D is w = eps * e_0 + (1 - eps) * Dirichlet(1, ..., 1): w_0 >= eps, every weighting with w_0 >= eps
reachable. The w_0 = 0 face is not trained here: there the exact family trains DPO on another
objective's own labels (weights.loss_plan). labels "largest" trains it too, on a family that knows every
objective's reward: each pair comes from the labels of one objective k, with the others as margins, and its
w is drawn where k holds the largest weight, so the divisor is at most n and no face is left out.

At a fixed w each layer is an ordinary LoRA of rank r: A' = A, B' = B diag(s(w)), same alpha. So
`export_lora` writes a plain peft adapter whose outputs equal the conditioned adapter's at that w (to
float rounding; tested to 1e-4 in logits).

The comparator (method "embedding", the weighting in the input as Rewards-in-Context and Conditioned
Language Policies put it in the prompt): the same LoRA with every singular value free, plus a learned
embedding E w (E: (d_model, n), zero at the start) added to every input token's embedding. The same loss
and w distribution train it; it has no plain-LoRA form (E w is not a weight of the base model), so it is
measured (benchmarks/bench_conditioning.py), not exported. RESULTS.md §12 compares the two.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ConditionedConfig:
    r: int = 16                 # LoRA rank, including the n * m weight-carrying singular values
    alpha: float = 32.0         # LoRA alpha (scaling alpha / r, as peft)
    target_modules: tuple = ("q_proj", "k_proj", "v_proj", "o_proj")
    n_objectives: int = 2       # n: objectives in the weighting
    per_objective: int = 1      # m: singular values per objective that carry its weight (n * m in all)
    eps: float = 0.05           # the target's weight is at least eps in training (the 1 / w_0 divisor)
    method: str = "svd"         # "svd": w in the singular values; "embedding": w as an input embedding
    loss_scale: str = "none"    # "target": each pair's loss times its w_target (LOSS_SCALES)
    labels: str = "target"      # whose labels train each pair (LABELS); "largest" trains the whole simplex, eps 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown conditioning {self.method!r}; choose one of {list(METHODS)}")
        if self.loss_scale not in LOSS_SCALES:
            raise ValueError(f"unknown loss scale {self.loss_scale!r}; choose one of {list(LOSS_SCALES)}")
        if self.per_objective < 1 or self.n_objectives < 2 or self.r <= self.n_objectives * self.per_objective:
            raise ValueError(f"the rank r ({self.r}) must exceed the number of objectives ({self.n_objectives}, at "
                             f"least 2) times the singular values per objective ({self.per_objective}, at least 1) = "
                             f"{self.n_objectives * self.per_objective}: those carry the weighting, the rest are free; "
                             "raise --lora-r or lower --per-objective")
        if self.labels not in LABELS:
            raise ValueError(f"unknown labels {self.labels!r}; choose one of {list(LABELS)}")
        if self.labels in ("largest", "all"):
            self.eps = 0.0  # no divisor below 1 / n: every weighting is trained, the vertices included
        elif not 0 < self.eps < 1:
            raise ValueError(f"eps (the target's least weight in training) must be in (0, 1), got {self.eps}")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise ValueError(f"alpha must be a positive number, got {self.alpha}")


METHODS = {"svd": "svd-lora (Panacea)", "embedding": "weight embedding added to the input tokens"}
# How each pair's loss L_w counts in E_w[.]: "none" as is; "target" times w_target. w_target * L_w has the
# same minimizer as L_w at every w (a positive constant per w), but its gradient in the log-ratio is
# bounded by beta as w_target -> 0, where L_w's grows as 1 / w_target and the pairs drawn near the
# target's zero end would drive the whole update.
LOSS_SCALES = {"none": "L_w", "target": "w_target * L_w"}
# Whose labels train a pair at weighting w. "target": the family's target's, w_target >= eps (the divisor up
# to 1 / eps). "largest": the labels of w's largest objective, the others (the target too) its margins, on a
# family whose every objective's reward is known (Bradley-Terry labels): the same optimum at every w, a
# divisor of at most n, and the whole simplex trained (README: the demo's divisor, measured on exact points).
# "all": every objective's labels at once, each objective's loss weighted by its weight squared
# (loss.modpo_mixture_loss: each objective's labels pull in proportion to its weight): no divisor at all, the
# whole simplex trained.
LABELS = {"target": "the target's labels, w_target >= eps",
          "largest": "the labels of the objective with the largest weight, the others as margins",
          "all": "every objective's labels, each objective's loss weighted by its weight squared"}


class Weighting:
    """The weighting every conditioned layer reads: (n,) for all rows, or (B, n) one per row."""
    def __init__(self):
        self.w: torch.Tensor | None = None


class ConditionedLinear(nn.Module):
    """base(x) + (alpha / r) * B diag(s(w)) A x, with s(w) = [free, lambda * w (each w_k m times)]."""

    def __init__(self, base: nn.Linear, cfg: ConditionedConfig, weighting: Weighting):
        super().__init__()
        self.base, self.weighting, self.scaling = base, weighting, cfg.alpha / cfg.r
        self.m = cfg.per_objective if cfg.method == "svd" else 0  # singular values per objective that carry w
        self.n = cfg.n_objectives * self.m
        self.lora_A = nn.Parameter(torch.empty(cfg.r, base.in_features))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as peft initialises LoRA A
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, cfg.r))  # delta W = 0 at the start, as LoRA
        self.free = nn.Parameter(torch.ones(cfg.r - self.n))
        self.scale = nn.Parameter(torch.ones(1))  # lambda (unused by the embedding method)

    def singular_values(self, w: torch.Tensor) -> torch.Tensor:
        """(..., r) from w (..., n)."""
        w = w.to(self.free.dtype)
        free = self.free.expand(*w.shape[:-1], -1)
        return torch.cat([free, self.scale * w.repeat_interleave(self.m, dim=-1)], dim=-1) if self.n else free

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weighting.w
        if w is None:
            raise RuntimeError("no weighting set: call set_weighting(model, w) before the forward pass")
        s = self.singular_values(w.to(x.device))  # (r,) or (B, r)
        h = nn.functional.linear(x, self.lora_A.to(x.dtype))  # (B, T, r)
        h = h * (s[:, None, :] if s.dim() == 2 else s).to(x.dtype)
        return self.base(x) + nn.functional.linear(h, self.lora_B.to(x.dtype)) * self.scaling


def add_conditioned_lora(model: nn.Module, cfg: ConditionedConfig) -> Weighting:
    """Replace every target linear layer of model by a ConditionedLinear around it (in place); freezes
    the base weights. Returns the Weighting the layers read."""
    weighting = Weighting()
    for p in model.parameters():
        p.requires_grad = False
    targets = [(name, m) for name, m in model.named_modules()
               if isinstance(m, nn.Linear) and name.split(".")[-1] in cfg.target_modules]
    if not targets:
        raise ValueError(f"no linear layer named {cfg.target_modules} in this model")
    for name, module in targets:
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        setattr(parent, name.rsplit(".", 1)[-1], ConditionedLinear(module, cfg, weighting))
    if cfg.method == "embedding":
        embed = WeightEmbedding(model.get_input_embeddings().embedding_dim, cfg.n_objectives, weighting)
        model.modpo_weight_embedding = embed  # a submodule: trained, saved and found with the layers
        model.get_input_embeddings().register_forward_hook(lambda _m, _i, out: out + embed(out))
    return weighting


class WeightEmbedding(nn.Module):
    """E w added to every input token's embedding (the embedding method): (B, T, d) -> (B, T, d) shift."""

    def __init__(self, dim: int, n: int, weighting: Weighting):
        super().__init__()
        self.weighting = weighting
        self.weight = nn.Parameter(torch.zeros(dim, n))  # zero: the adapter starts as the base model

    def forward(self, token_embeddings: torch.Tensor) -> torch.Tensor:
        w = self.weighting.w
        if w is None:
            raise RuntimeError("no weighting set: call set_weighting(model, w) before the forward pass")
        shift = nn.functional.linear(w.to(token_embeddings), self.weight.to(token_embeddings.dtype))  # (d,)|(B, d)
        return shift[:, None, :] if shift.dim() == 2 else shift


def set_weighting(model: nn.Module, w) -> None:
    """The weighting for the next forward passes: (n,) for every row or (B, n) one per row."""
    layers = conditioned_layers(model)
    layers[0][1].weighting.w = torch.as_tensor(w, dtype=torch.float32)


def conditioned_layers(model: nn.Module) -> list[tuple[str, ConditionedLinear]]:
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, ConditionedLinear)]
    if not layers:
        raise ValueError("this model holds no conditioned adapter (add_conditioned_lora)")
    return layers


def conditioned_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The learned tensors only, keyed '<layer>.<lora_A|lora_B|free|scale>' (what is saved), and
    'modpo_weight_embedding.weight' for the embedding method."""
    state = {f"{name}.{k}": v.detach().cpu().contiguous() for name, m in conditioned_layers(model)
             for k, v in (("lora_A", m.lora_A), ("lora_B", m.lora_B), ("free", m.free), ("scale", m.scale))}
    if isinstance(getattr(model, "modpo_weight_embedding", None), WeightEmbedding):
        state["modpo_weight_embedding.weight"] = model.modpo_weight_embedding.weight.detach().cpu().contiguous()
    return state


def load_conditioned_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load conditioned_state's tensors into a model prepared by add_conditioned_lora, shapes checked."""
    layers = dict(conditioned_layers(model))
    expected = {f"{name}.{k}" for name in layers for k in ("lora_A", "lora_B", "free", "scale")}
    if isinstance(getattr(model, "modpo_weight_embedding", None), WeightEmbedding):
        layers["modpo_weight_embedding"] = model.modpo_weight_embedding
        expected.add("modpo_weight_embedding.weight")
    if set(state) != expected:
        missing, extra = sorted(expected - set(state))[:3], sorted(set(state) - expected)[:3]
        raise ValueError(f"the conditioned adapter does not fit this model (missing {missing}, unexpected {extra})")
    for key, value in state.items():
        name, part = key.rsplit(".", 1)
        param = getattr(layers[name], part)
        if param.shape != value.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)} does not fit this model's {tuple(param.shape)}")
        with torch.no_grad():
            param.copy_(value)


def export_lora(state: dict[str, torch.Tensor], w) -> dict[str, torch.Tensor]:
    """The plain LoRA of the conditioned adapter at weighting w, as peft's saved tensors
    ('base_model.model.<layer>.lora_A.weight' / 'lora_B.weight'): A' = A, B' = B diag(s(w)), exact."""
    if "modpo_weight_embedding.weight" in state:
        raise ValueError("this adapter is conditioned through an input embedding (method 'embedding'), which no "
                         "plain LoRA can hold; only an SVD-conditioned adapter (the default) exports")
    w = torch.as_tensor(w, dtype=torch.float32)
    out = {}
    for key in [k for k in state if k.endswith(".lora_A")]:
        name = key[: -len(".lora_A")]
        m = (state[key].shape[0] - state[f"{name}.free"].shape[0]) // len(w)  # singular values per objective
        s = torch.cat([state[f"{name}.free"], state[f"{name}.scale"] * w.repeat_interleave(m)])  # (r,)
        out[f"base_model.model.{name}.lora_A.weight"] = state[key].clone()
        out[f"base_model.model.{name}.lora_B.weight"] = (state[f"{name}.lora_B"] * s[None, :]).contiguous()
    return out


def sample_weightings(batch: int, n: int, eps: float, generator: torch.Generator) -> torch.Tensor:
    """(batch, n): w = eps * e_0 + (1 - eps) * Dirichlet(1, ..., 1), target first (w_0 >= eps)."""
    gamma = -torch.log(torch.rand(batch, n, generator=generator).clamp_min(1e-12))  # Exp(1) = Gamma(1)
    w = (1 - eps) * gamma / gamma.sum(-1, keepdim=True)
    w[:, 0] += eps
    return w


def sample_in_regions(first: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """(B, n) weightings, row i uniform on the part of the simplex where position first[i] holds the largest
    weight: a Dirichlet(1, ..., 1) draw with its largest entry swapped into that position (uniform there:
    each point of the region has n preimages of equal density)."""
    gamma = -torch.log(torch.rand(len(first), n, generator=generator).clamp_min(1e-12))
    w = gamma / gamma.sum(-1, keepdim=True)
    rows, top = torch.arange(len(first)), w.argmax(-1)
    largest, displaced = w[rows, top].clone(), w[rows, first].clone()
    w[rows, top], w[rows, first] = displaced, largest
    return w


def pair_weightings(pairs: int, n: int, eps: float, generator: torch.Generator,
                    loss_order: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(w for the adapter (B, n), target first; the same w in the loss's order (B, n)) for a batch of pairs.

    loss_order: None (labels "target": w from sample_weightings, both orders the same), or (B, n) per pair the
    loss's order (its labels' objective first, then its margin columns) as positions of the adapter's; its
    w is drawn where that objective holds the largest weight (sample_in_regions)."""
    if loss_order is None:
        w = sample_weightings(pairs, n, eps, generator)
        return w, w
    w = sample_in_regions(loss_order[:, 0], n, generator)
    return w, w.gather(1, loss_order)


# ---- training: the transformers Trainer with one weighting per example ------------------------------------

def make_trainer_class():
    """ConditionedTrainer (built lazily: importing transformers' Trainer is slow)."""
    from transformers import Trainer

    from .loss import model_sequence_logps, modpo_loss, modpo_mixture_loss

    class ConditionedTrainer(Trainer):
        """Trainer whose loss is E_{w ~ D} of MODPO Eq. 7: each pair gets its own w (sample_weightings)."""

        def __init__(self, *args, beta: float, n_objectives: int, eps: float, seed: int, loss_scale: str = "none",
                     reward_order: list[int] | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.beta, self.n, self.eps, self.loss_scale = beta, n_objectives, eps, loss_scale
            self.reward_order = reward_order  # labels "all": the reward columns in the adapter's order
            self.generator = torch.Generator().manual_seed(seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            pairs = inputs["input_ids"].shape[0] // 2
            w, w_loss = pair_weightings(pairs, self.n, self.eps, self.generator, inputs.get("loss_order"))
            set_weighting(model, torch.cat([w, w]))  # chosen rows, then rejected rows
            logps = model_sequence_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["labels"])
            if self.reward_order is not None:  # every objective's labels (mixture); w over the whole simplex
                chosen, rejected = (inputs[f"margin_{s}_rewards"][:, self.reward_order] for s in ("chosen", "rejected"))
                losses = modpo_mixture_loss(logps[:pairs], logps[pairs:], inputs["reference_chosen_logps"],
                                            inputs["reference_rejected_logps"], chosen, rejected, w.to(torch.float64),
                                            self.beta)
                loss = losses.mean()
                return (loss, {"logps": logps}) if return_outputs else loss
            losses = modpo_loss(logps[:pairs], logps[pairs:], inputs["reference_chosen_logps"],
                                inputs["reference_rejected_logps"], inputs["margin_chosen_rewards"],
                                inputs["margin_rejected_rewards"], w_loss.to(torch.float64), self.beta,
                                inputs.get("chosen_probs"))  # (B,)
            if self.loss_scale == "target":
                losses = losses * w_loss[:, 0].to(losses)
            loss = losses.mean()
            return (loss, {"logps": logps}) if return_outputs else loss

    return ConditionedTrainer


def train_conditioned(model, train_examples, cfg, ccfg: ConditionedConfig, work_dir, report=None,
                      reward_order: list[int] | None = None) -> dict:
    """Add a conditioned SVD-LoRA to model (in place) and train it on the pairs (precomputed reference and
    margin columns, margins.py) over the simplex. cfg: TrainConfig (steps, lr, batch, seed, beta).
    labels "all": the pairs carry every objective's reward (n columns); reward_order gives, for each position
    of the adapter's weighting (target first), its column (default: the same order).
    Returns the record for meta.json (steps, loss curve, wall time, configs)."""
    import time

    from transformers import set_seed

    from .data import PairCollator
    from .loss import MIXTURE_TERM_POWER
    from .train import ProgressCallback, training_arguments

    if len(train_examples) == 0:
        raise ValueError("no training pairs; check the family's stored pairs")
    n_margins = len(train_examples[0]["margin_chosen_rewards"])
    mixture = ccfg.labels == "all"
    if n_margins != ccfg.n_objectives - (0 if mixture else 1):
        raise ValueError(f"{ccfg.n_objectives} objectives but the pairs carry {n_margins} margin columns")
    if mixture:
        reward_order = list(range(ccfg.n_objectives)) if reward_order is None else list(reward_order)
        if sorted(reward_order) != list(range(ccfg.n_objectives)):
            raise ValueError(f"reward_order {reward_order} must order the {ccfg.n_objectives} reward columns")
    set_seed(cfg.seed)
    add_conditioned_lora(model, ccfg)
    args = training_arguments(cfg, work_dir, quiet=report is not None)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    trainer = make_trainer_class()(model=model, args=args, train_dataset=train_examples,
                                   data_collator=PairCollator(pad_id), beta=cfg.beta, n_objectives=ccfg.n_objectives,
                                   eps=ccfg.eps, seed=cfg.seed, loss_scale=ccfg.loss_scale,
                                   reward_order=reward_order if mixture else None,
                                   callbacks=[ProgressCallback(report)] if report else [])
    start = time.perf_counter()
    trainer.train()
    history = trainer.state.log_history
    return {"steps": trainer.state.global_step, "wall_time_s": round(time.perf_counter() - start, 2),
            "loss_curve": [[h["step"], h["loss"]] for h in history if "loss" in h],
            "train_pairs": len(train_examples), "config": cfg.to_json(),
            "conditioning": {"method": METHODS[ccfg.method], "r": ccfg.r, "alpha": ccfg.alpha,
                             "target_modules": list(ccfg.target_modules), "n_objectives": ccfg.n_objectives,
                             "per_objective": ccfg.per_objective, "eps": ccfg.eps,
                             "distribution": {"largest": "Dirichlet(1), each pair in its labels' region",
                                              "all": "Dirichlet(1)"}.get(ccfg.labels,
                                                                         "eps * e_target + (1 - eps) * Dirichlet(1)"),
                             "loss": f"sum_j w_j^{MIXTURE_TERM_POWER} L_j" if mixture else LOSS_SCALES[ccfg.loss_scale],
                             "labels": ccfg.labels}}


def write_lora(directory, tensors: dict[str, torch.Tensor], ccfg: ConditionedConfig, base_model: str) -> None:
    """An exported weighting as a plain peft LoRA folder (adapter_config.json + adapter_model.safetensors)
    that PeftModel.from_pretrained loads as is; written into a temp folder, then renamed into place."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from peft import LoraConfig
    from safetensors.torch import save_file

    from .models import HUB_IDS

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        LoraConfig(r=ccfg.r, lora_alpha=ccfg.alpha, target_modules=list(ccfg.target_modules), bias="none",
                   lora_dropout=0.0, task_type="CAUSAL_LM",
                   base_model_name_or_path=HUB_IDS.get(base_model, base_model)).save_pretrained(str(tmp))
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
        if directory.exists():
            raise FileExistsError(f"{directory} already exists; export to a new folder or delete it first")
        os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the conditioned adapter's points: exported weightings, evaluated like any point -------------------

def grid_weightings(names: list[str], target: str, eps: float, trained: list[list[float]] = ()) -> list[list[float]]:
    """Family-order weightings to evaluate the conditioned adapter at: a grid over the part of the simplex
    it was trained on (w_target >= eps; step 0.1 for two objectives, 11 points; 0.25 for more, 15 for
    three), plus every trained weighting it covers (for the audit against the exact adapters)."""
    from .pareto import weight_grid
    from .weights import normalize
    t = names.index(target)
    shrink = [[eps * (i == t) + (1 - eps) * g for i, g in enumerate(grid)]
              for grid in weight_grid(len(names), 0.1 if len(names) == 2 else 0.25, interior=False)]
    out = []
    for w in [*shrink, *[list(w) for w in trained if w[t] >= eps - 1e-9]]:
        w = normalize(w)
        if w not in out:
            out.append(w)
    return out


def export_weighting(spec, tensors: dict, meta: dict, weights, folder) -> None:
    """Write the conditioned adapter (tensors, meta from family.read_conditioned) at a family-order
    weighting as a plain peft LoRA folder: the one export the CLI, the grid points and the Compare
    page's Any-weighting columns share."""
    from .weights import reorder, target_first, validate_simplex
    c = meta["conditioning"]
    largest = c.get("labels") in ("largest", "all")  # trained on the whole simplex
    ccfg = ConditionedConfig(r=c["r"], alpha=c["alpha"], target_modules=tuple(c["target_modules"]),
                             n_objectives=c["n_objectives"], per_objective=c.get("per_objective", 1), eps=c["eps"],
                             labels=c["labels"] if largest else "target")
    if largest:  # trained on the whole simplex: the adapter's order (target first), no weight refused
        ordered = reorder(spec.objective_names, spec.target, validate_simplex(weights, spec.objective_names))
    else:
        ordered = target_first(spec.objective_names, spec.target, weights)
        if ordered[0] < ccfg.eps - 1e-9:
            raise ValueError(f"weight {ordered[0]:g} on the target ({spec.target}) is below {ccfg.eps:g}, the least "
                             "this conditioned adapter was trained with (MODPO divides by the target's weight): its "
                             f"answers there were never trained; give {spec.target} at least {ccfg.eps:g}")
    write_lora(folder, export_lora(tensors, ordered), ccfg, spec.base_model)


def exported_folder(root, conditioned_id: str, weights):
    """The plain LoRA folder of conditioned_id at weights (family order), exported once per file version and
    weighting into this user's private cache (family.private_cache): what a conditioned point, or a column
    of the Compare page's Any weighting, loads. Exact, milliseconds; the family itself stores no copy."""
    import hashlib

    from . import family as fam
    weights = [float(w) for w in weights]
    weights_file = fam.conditioned_dir(root, conditioned_id) / "conditioned.safetensors"
    stat = weights_file.stat()
    key = hashlib.sha256(f"{weights_file.resolve()}|{stat.st_mtime_ns}|{stat.st_size}|{weights}".encode())
    folder = fam.private_cache("exports") / key.hexdigest()[:24]
    if not (folder / "adapter_model.safetensors").exists():
        tensors, meta = fam.read_conditioned(root, conditioned_id)
        try:
            export_weighting(fam.read_family(root), tensors, meta, weights, folder)
        except FileExistsError:  # another process wrote the same export first: it is the same file
            pass
    return folder


def point_id(conditioned_id: str, weights) -> str:
    from .weights import weights_id
    return f"{conditioned_id}-{weights_id(weights)[2:]}"


def publish_points(root, conditioned_id: str, tensors: dict, meta: dict,
                   weightings: list[list[float]]) -> list[str]:
    """Add the conditioned adapter at each weighting (family order) as a point adapters/<id>-<weights> of
    kind conditioned unless there already: meta.json only (written in jobs/, renamed into place), its
    weights exported from conditioned/<id> when it is loaded (exported_folder). Returns the new ids."""
    import shutil

    from . import family as fam
    spec = fam.read_family(root)
    made = []
    for w in weightings:
        pid = fam.check_id(point_id(conditioned_id, w))
        if fam.adapter_dir(root, pid).exists():
            continue
        work = fam.job_dir(root, pid) / "adapter"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        fam.write_meta(work, {"id": pid, "kind": "conditioned", "base_model": spec.base_model,
                              "weights": dict(zip(spec.objective_names, w)), "conditioned": conditioned_id,
                              "steps": meta.get("steps", 0), "wall_time_s": 0.0})
        fam.publish_adapter(root, pid, pid)
        made.append(pid)
    return made
