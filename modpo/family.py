"""All file I/O for families, adapters, evaluations and jobs (DESIGN §3).

    <family>/family.json             index: base model, objectives, target, margins, beta, adapters
    <family>/data/                   preference data and its precomputed reference / margin columns
    <family>/base/                   meta.json + eval.json of the base model (no weights)
    <family>/adapters/<id>/          adapter_config.json, adapter_model.safetensors, meta.json, eval.json
                                     (a conditioned adapter's weighting: meta.json and eval.json only)
    <family>/conditioned/<id>/       conditioned.safetensors, meta.json: one adapter for every weighting
    <family>/jobs/<id>/              status.json, launch.json, log.txt, and adapter/ while training

A family folder is untrusted data: every path is built here and checked by `within` (no link may
lead out of the family), and every JSON file is read by `read_json` against its schema (schema.py).
Every JSON file carries schema_version. Every write is a temp file plus os.replace, and an adapter
appears in adapters/ only when complete: it is trained into jobs/<id>/adapter and renamed.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schema
from .schema import ADAPTER_KINDS, DIRECTIONS, JOB_STATES, SCHEMA_VERSION, FamilyError  # noqa: F401 (re-exported)
from .weights import EVERY, LARGEST, check_beta

_ID = re.compile(schema.ID_PATTERN)


# ---- atomic writes and validated reads ----------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps({"schema_version": SCHEMA_VERSION, **obj}, indent=2, default=str) + "\n")


def within(root: str | Path, path: str | Path) -> Path:
    """path, refused unless it resolves (links followed) to a place inside root: a family folder is
    untrusted data, and no read or write may follow a link out of it."""
    root_real, real = Path(root).resolve(), Path(path).resolve()
    if real != root_real and root_real not in real.parents:
        raise FamilyError(f"{path}: is a link to a place outside the family folder {root}; refused "
                          "(a family may not point outside itself): remove the link")
    return Path(path)


def read_json(path: Path, kind: str, root: Path | None = None) -> dict:
    """A JSON file of the format, checked against its schema (schema.py); errors name the file and
    what is wrong with it. root: refuse a path that leaves it through a link."""
    path = Path(path)
    if root is not None:
        within(root, path)
    if not path.is_file():
        raise FamilyError(f"{path}: file is missing")
    data = path.read_bytes()
    if not data.strip():
        raise FamilyError(f"{path}: the file is empty (0 bytes or only whitespace); it was cut short")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise FamilyError(f"{path}: line {line}, column {column}: byte {data[e.start]:#04x} is not UTF-8; "
                          "the file is corrupt or not one of ours") from None
    return schema.validate(kind, schema.parse(text, str(path)), str(path))


def check_id(adapter_id: str) -> str:
    if not isinstance(adapter_id, str) or not _ID.match(adapter_id) or ".." in adapter_id:
        raise ValueError(f"invalid id {adapter_id!r}: use letters, digits, '.', '_' or '-' (at most 128)")
    return adapter_id


BASE_ID = "base"  # the base model's point (the family's base/ folder): never an adapter's id


def check_new_id(adapter_id: str) -> str:
    """check_id for a new adapter, which may not take the base model's id."""
    if check_id(adapter_id) == BASE_ID:
        raise ValueError(f"id {BASE_ID!r} names the base model in every family; pick another --id")
    return adapter_id


def inside_root(root: str | Path, user_path: str | Path) -> Path:
    """Resolve a user-typed family path, refusing anything outside root (.., absolute, symlinks)."""
    root_real = Path(root).resolve()
    text = str(user_path)
    if not text or Path(text).is_absolute() or ".." in Path(text).parts:
        raise FamilyError(f"{text!r} is not a family name under {root}: give a plain name such as 'demo'")
    candidate = (root_real / text).resolve()
    if candidate != root_real and root_real not in candidate.parents:
        raise FamilyError(f"{text!r} points outside the checkpoints root {root}; refused")
    return candidate


# ---- the family index ---------------------------------------------------------------------------

@dataclass
class Objective:
    name: str
    direction: str = "maximize"
    scorer: str = ""

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


@dataclass
class FamilySpec:
    """What family.json holds. Weights everywhere are in `objectives` order."""
    name: str
    base_model: str
    objectives: list[Objective]
    target: str
    beta: float
    margins: dict[str, dict] = field(default_factory=dict)  # objective -> {kind, scorer|adapter, scale}
    base_revision: str | None = None
    data: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # keys of family.json this version does not know: kept on rewrite
    # how the labels were made, when known: {"kind": "bradley-terry", "reward_scales": {objective: scale}, ...}
    # (feedback.py); training then uses the expected loss over the label draw (loss.modpo_loss chosen_probs)
    labels: dict = field(default_factory=dict)

    def __post_init__(self):
        names = [o.name for o in self.objectives]
        if len(names) < 2 or len(set(names)) != len(names):
            raise FamilyError(f"a family needs at least two distinct objectives, got {names}")
        for o in self.objectives:
            if o.direction not in DIRECTIONS:
                raise FamilyError(f"objective {o.name!r}: direction must be one of {DIRECTIONS}, got {o.direction!r}")
        if self.target not in names:
            raise FamilyError(f"target {self.target!r} is not one of the objectives {names}")
        try:
            check_beta(self.beta)
        except ValueError as e:
            raise FamilyError(str(e)) from None
        if self.labels and (self.labels.get("kind") != "bradley-terry" or not isinstance(
                self.labels.get("reward_scales"), dict) or not set(self.labels["reward_scales"]) <= set(names)):
            raise FamilyError("labels must be {'kind': 'bradley-terry', 'reward_scales': {objective: scale}} over "
                              f"the objectives {names}, got {self.labels!r}")

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def target_index(self) -> int:
        return self.objective_names.index(self.target)

    def label_scale(self, objective: str) -> float | None:
        """The reward scale of the Bradley-Terry model that drew objective's labels, when the family says."""
        return (self.labels or {}).get("reward_scales", {}).get(objective)

    def reward_known(self, objective: str) -> bool:
        """Whether objective's true reward is known, so it can be a margin on another objective's labels: its
        labels were drawn from a Bradley-Terry model of its scorer (labels.reward_scales)."""
        scorer = next((o.scorer for o in self.objectives if o.name == objective), None)
        return bool(scorer) and self.label_scale(objective) is not None

    def to_json(self) -> dict:
        return {
            **self.extra,
            "name": self.name,
            "base_model": {"name": self.base_model, "revision": self.base_revision},
            "objectives": [vars(o) for o in self.objectives],
            "target": self.target,
            "beta": self.beta,
            "margins": self.margins,
            "data": self.data,
            "notes": self.notes,
            **({"labels": self.labels} if self.labels else {}),
        }


def write_family(root: Path, spec: FamilySpec) -> None:
    root = Path(root)
    adapters = sorted(p.name for p in (root / "adapters").iterdir() if p.is_dir()) \
        if (root / "adapters").is_dir() else []
    atomic_write_json(root / "family.json", {**spec.to_json(), "adapters": adapters})


FAMILY_KEYS = ("schema_version", "name", "base_model", "objectives", "target", "beta", "margins", "data", "notes",
               "adapters", "labels")


def is_family(root: Path) -> bool:
    return (Path(root) / "family.json").is_file()


def preferences_file(root: Path) -> Path:
    """The labelled pairs a family was trained on (JSONL, data.py's schema)."""
    return within(root, Path(root) / "data" / "preferences.jsonl")


def front_png(root: Path) -> Path:
    return within(root, Path(root) / "front.png")


def signature(root: Path) -> tuple:
    """Changes whenever family.json, the eval prompts, an adapter folder or an eval.json changes (one
    stat each): a cache of a loaded family is fresh while its signature is."""
    root = Path(root)
    prompts = root / "data" / "eval_prompts.json"
    stamps = [(root / "family.json").stat().st_mtime_ns, prompts.stat().st_mtime_ns if prompts.exists() else 0]
    for parent in (root / "adapters", root / "base"):
        if parent.is_dir():
            stamps.append(parent.stat().st_mtime_ns)
            for d in os.scandir(parent):
                if d.is_dir():
                    stamps.append(d.stat().st_mtime_ns)
                    e = Path(d.path) / "eval.json"
                    stamps.append(e.stat().st_mtime_ns if e.exists() else 0)
    return tuple(stamps)


def read_family(root: Path) -> FamilySpec:
    path = Path(root) / "family.json"
    obj = read_json(path, "family", root)
    try:
        objectives = [Objective(o["name"], o.get("direction", "maximize"), o.get("scorer", ""))
                      for o in obj["objectives"]]
        return FamilySpec(obj["name"], obj["base_model"]["name"], objectives, obj["target"], float(obj["beta"]),
                          obj.get("margins", {}), obj["base_model"].get("revision"), obj.get("data", {}),
                          obj.get("notes", {}), {k: v for k, v in obj.items() if k not in FAMILY_KEYS},
                          obj.get("labels", {}))
    except FamilyError as e:
        raise FamilyError(f"{path}: {e}") from None


def family_recipe(family: "Family") -> dict:
    """The training recipe of a family's points (TrainConfig fields), so a new point is trained like them:
    notes.train_config when the builder recorded it, else the config of its first trained adapter."""
    recorded = family.spec.notes.get("train_config")
    if isinstance(recorded, dict):
        return dict(recorded)
    for p in family.points:
        if p.kind == "modpo" and isinstance(p.meta.get("config"), dict):
            return dict(p.meta["config"])
    return {}


def family_labels_from(spec: FamilySpec) -> str | None:
    """Whose labels the family's weightings trained on (notes.labels_from, recorded by the sweep: loss_plan's
    labels_from), so a new point is trained like them; None: the target's. Checked: a stranger's family.json."""
    rule = spec.notes.get("labels_from")
    allowed = [*spec.objective_names, EVERY, LARGEST]
    if rule is not None and (not isinstance(rule, str) or rule not in allowed):
        raise FamilyError(f"family.json notes.labels_from must be one of {allowed} (whose labels train a weighting), "
                          f"got {rule!r}; fix it or remove the key (the target's labels)")
    return rule


# ---- points: adapters and the base model ---------------------------------------------------------

@dataclass
class Point:
    """One evaluated policy of a family: a trained adapter, a merge, a mix, or the base model."""
    id: str
    kind: str
    weights: dict[str, float] | None
    meta: dict
    eval: dict | None
    path: Path
    eval_problem: str | None = None  # why eval.json could not be used (the point shows unevaluated; re-evaluate)


def adapter_dir(root: Path, adapter_id: str) -> Path:
    return within(root, Path(root) / "adapters" / check_id(adapter_id))


def point_dir(root: Path, point_id: str) -> Path:
    return within(root, Path(root) / "base") if point_id == "base" else adapter_dir(root, point_id)


def ensure_base_point(root: Path, base_model: str) -> None:
    """The base model's point (base/meta.json, no weights), so it is evaluated beside the adapters."""
    if not (point_dir(root, "base") / "meta.json").exists():
        write_meta(point_dir(root, "base"), {"id": "base", "kind": "base", "base_model": base_model})


def write_meta(directory: Path, meta: dict) -> None:
    schema.validate("meta", {"schema_version": SCHEMA_VERSION, **meta}, str(Path(directory) / "meta.json"))
    atomic_write_json(Path(directory) / "meta.json", meta)


def write_eval(directory: Path, evaluation: dict) -> None:  # writes eval.json (an evaluation), no Python eval
    schema.validate("eval", {"schema_version": SCHEMA_VERSION, **evaluation}, str(Path(directory) / "eval.json"))
    atomic_write_json(Path(directory) / "eval.json", evaluation)


def read_point(directory: Path, spec: FamilySpec, root: Path) -> Point:
    """One point of a family; FamilyError when its meta.json or weights are unusable. An unusable
    eval.json does not hide the point: it loads unevaluated, with eval_problem saying why."""
    directory = within(root, directory)
    meta_path = directory / "meta.json"
    meta = read_json(meta_path, "meta", root)
    is_base = directory.name == BASE_ID and directory.parent == Path(root)
    if not is_base and directory.name == BASE_ID:
        raise FamilyError(f"{directory}: the id {BASE_ID!r} names the base model, so an adapter may not take it; "
                          "rename the folder and the id in its meta.json")
    expected_id = BASE_ID if is_base else directory.name
    if meta["id"] != expected_id:
        raise FamilyError(f"{meta_path}: id {meta['id']!r} does not match its folder {expected_id!r}; "
                          "rename the folder or fix the id")
    base = meta.get("base_model")
    if base is not None and base != spec.base_model:
        raise FamilyError(f"{directory}: trained on base model {base!r}, but the family's is {spec.base_model!r}")
    weights = meta.get("weights")
    if weights is not None:
        if sorted(weights) != sorted(spec.objective_names):
            raise FamilyError(f"{meta_path}: weights name {sorted(weights)}, "
                              f"the family's objectives are {spec.objective_names}")
        if abs(sum(weights.values()) - 1) > 1e-4:
            raise FamilyError(f"{meta_path}: weights {weights} do not sum to 1")
    if meta["kind"] == "conditioned" and not (directory / "adapter_model.safetensors").exists():
        # a weighting of a conditioned adapter keeps no weights of its own: they are exported from
        # conditioned/<id> when needed (conditioned.exported_folder), so the whole front costs one adapter
        if "conditioned" not in meta:
            raise FamilyError(f"{meta_path}: a conditioned point needs its weights or the field 'conditioned' "
                              "naming the conditioned adapter it comes from")
        source = conditioned_dir(root, meta["conditioned"]) / "conditioned.safetensors"
        if not within(root, source).is_file():
            raise FamilyError(f"{directory}: its conditioned adapter {source} is missing; train it again with "
                              "`python -m modpo train-conditioned`, or delete this point")
        if weights is None:
            raise FamilyError(f"{meta_path}: a conditioned point needs its weights")
    elif meta["kind"] in ("modpo", "dpo-margin", "merge", "conditioned"):
        weights_file = directory / "adapter_model.safetensors"
        config_file = directory / "adapter_config.json"
        if not weights_file.is_file() or not config_file.is_file():
            raise FamilyError(f"{directory}: adapter_model.safetensors or adapter_config.json is missing")
        for f in (weights_file, config_file):
            within(root, f)
        check_safetensors(weights_file, _lora_rank(config_file))
    evaluation, problem = None, None
    if (directory / "eval.json").exists() or (directory / "eval.json").is_symlink():
        try:
            evaluation = read_json(directory / "eval.json", "eval", root)
            missing = [o for o in spec.objective_names if o not in evaluation["objectives"]]
            if missing:
                raise FamilyError(f"{directory / 'eval.json'}: no scores for objectives {missing}")
        except FamilyError as e:
            evaluation, problem = None, f"{e}; re-evaluate it with `python -m modpo evaluate --family {root}`"
    return Point(meta["id"], meta["kind"], weights, meta, evaluation, directory, problem)


def _lora_rank(config_file: Path) -> int:
    try:
        obj = schema.parse(config_file.read_text(encoding="utf-8"), str(config_file))
    except UnicodeDecodeError:
        raise FamilyError(f"{config_file}: not UTF-8 text") from None
    rank = obj.get("r") if isinstance(obj, dict) else None
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise FamilyError(f"{config_file}: field r (the LoRA rank) should be an integer >= 1, got {rank!r}")
    return rank


def delete_preview(root: Path, point_id: str) -> None:
    """Remove a merged or mixed point (a preview: recomputable from its recipe). Trained adapters are never
    deleted by the app."""
    directory = adapter_dir(root, point_id)
    meta = read_json(directory / "meta.json", "meta", root)
    if meta["kind"] not in ("merge", "mix"):
        raise FamilyError(f"{point_id!r} is a {meta['kind']} point, not a preview; only merges and mixes are "
                          "deleted from the app (delete a trained adapter's folder by hand)")
    trash = directory.with_name(f".{directory.name}.deleted")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(directory, trash)  # gone from the family in one rename, then removed
    shutil.rmtree(trash, ignore_errors=True)


def check_safetensors(path: Path, rank: int | None = None) -> None:
    """Cheap integrity check without loading: the header parses, the file is as long as the header
    says, and every LoRA tensor is 2-D with the rank of adapter_config.json (A: (r, in), B: (out, r))."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length out of range")
            header = json.loads(f.read(header_len))
        tensors = {k: v for k, v in header.items() if k != "__metadata__"}
        end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
        if 8 + header_len + end != size:
            raise ValueError(f"expected {8 + header_len + end} bytes, found {size}")
        for name, v in tensors.items():
            shape = v["shape"]
            if rank is not None and ("lora_A" in name or "lora_B" in name):
                r = shape[0] if "lora_A" in name else shape[-1]
                if len(shape) != 2 or r != rank:
                    raise ValueError(f"tensor {name} has shape {shape}, not that of a rank-{rank} LoRA factor")
    except (ValueError, KeyError, TypeError, IndexError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FamilyError(f"{path}: corrupt or truncated safetensors file ({e}); delete the adapter "
                          "folder and train it again") from None


@dataclass
class Family:
    root: Path
    spec: FamilySpec
    points: list[Point]
    errors: list[str]  # one line per file that could not be used (the rest of the family still loads)

    def point(self, point_id: str) -> Point:
        for p in self.points:
            if p.id == point_id:
                return p
        known = [p.id for p in self.points]
        shown = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40 else "")
        raise KeyError(f"no adapter {point_id!r} in family {self.spec.name!r}; its points: {shown}")


def load_family(root: str | Path) -> Family:
    """family.json must be valid; a broken adapter or evaluation is reported in .errors, the rest loads."""
    root = Path(root)
    spec = read_family(root)
    points, errors = [], []
    dirs = [root / "base"] if (root / "base").is_dir() else []
    if (root / "adapters").is_dir():
        dirs += sorted(p for p in within(root, root / "adapters").iterdir()
                       if p.is_dir() and not p.name.startswith("."))
    for d in dirs:
        try:
            point = read_point(d, spec, root)
        except FamilyError as e:
            errors.append(str(e))
            continue
        points.append(point)
        if point.eval_problem:
            errors.append(point.eval_problem)
    try:
        prompts = read_eval_prompts(root)
    except FamilyError as e:
        prompts = None
        errors.append(f"{e}; the evaluation prompts are unknown, so new points cannot be evaluated")
    if prompts:  # a point scored on other prompts is not comparable with the rest: shown unevaluated
        sha = prompt_set_id(prompts)
        for p in points:
            if p.eval and p.eval.get("prompt_set", {}).get("sha", sha) != sha:
                p.eval, p.eval_problem = None, (
                    f"{p.path / 'eval.json'}: scored on another prompt set than data/eval_prompts.json, so it is "
                    f"not comparable with the other points; re-evaluate it with `python -m modpo evaluate --family "
                    f"{root}`")
                errors.append(p.eval_problem)
    return Family(root, spec, points, errors)


def prompt_set_id(prompts: list[str]) -> str:
    return hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:12]


def incomparable(family: Family, prompts: list[str], settings) -> str | None:
    """Why evaluating new points of family on prompts with settings (an EvalSettings) would make them
    incomparable with its evaluated points, or None."""
    stored = read_eval_prompts(family.root)
    if stored and prompts != stored:
        return (f"the family's points are evaluated on data/eval_prompts.json ({len(stored)} prompts), not on the "
                f"{len(prompts)} prompts given; drop --eval-prompts/--eval-limit, or re-evaluate every point on the "
                "new set with `evaluate --force`")
    differ = settings.differs_from(recorded_eval_settings(family))
    if differ:
        what = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in differ.items())
        return (f"the family's points were evaluated with other settings ({what}); drop those flags, or "
                "re-evaluate every point with them using `evaluate --force`")
    return None


def recorded_eval_settings(family: Family) -> dict:
    """The evaluation settings the family's points were evaluated with ({} when none is evaluated), so a
    new point is measured the same way as the ones it is drawn beside."""
    for p in family.points:
        if p.eval and isinstance(p.eval.get("settings"), dict):
            return dict(p.eval["settings"])
    return {}


def list_families(checkpoints_root: str | Path) -> list[str]:
    root = Path(checkpoints_root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "family.json").is_file())


# ---- data: preference pairs with their precomputed columns ----------------------------------------

def pairs_dir(root: Path, objective: str) -> Path:
    return within(root, Path(root) / "data" / f"pairs-{check_id(objective)}")


def write_pairs(root: Path, objective: str, info: dict, examples: list[dict]) -> None:
    """Save tokenized pairs + reference/margin columns (Arrow) and info.json, replacing any old copy."""
    import datasets

    final = pairs_dir(root, objective)
    tmp = final.with_name(f".{final.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    datasets.Dataset.from_list(examples).save_to_disk(str(tmp))
    atomic_write_json(tmp / "info.json", info)
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def read_pairs(root: Path, objective: str):
    """(info, datasets.Dataset) for stored pairs, or None when there are none yet."""
    import datasets

    d = pairs_dir(root, objective)
    if not (d / "info.json").exists():
        return None
    info = read_json(d / "info.json", "pairs_info", root)
    info.pop("schema_version", None)
    for f in d.iterdir():
        within(root, f)
    try:
        pairs = datasets.load_from_disk(str(d))
        if len(pairs) != info["kept"]:
            raise ValueError(f"{len(pairs)} rows, info.json says {info['kept']}")
        if len(pairs):
            pairs[len(pairs) - 1]  # reads the last row: a truncated Arrow file fails here, not mid-training
    except Exception as e:  # Arrow and datasets raise many types for a damaged file
        raise FamilyError(
            f"{d}: the stored pairs are damaged ({type(e).__name__}: {str(e)[:200]}); delete "
            f"that folder and re-run `python -m modpo sweep` with the same data to recompute them"
        ) from None
    return info, pairs


def eval_prompts_path(root: Path) -> Path:
    return within(root, Path(root) / "data" / "eval_prompts.json")


def read_eval_prompts(root: Path) -> list[str] | None:
    path = eval_prompts_path(root)
    return read_json(path, "eval_prompts", root)["prompts"] if path.exists() else None


def write_data_file(root: Path, name: str, obj: dict) -> None:
    atomic_write_json(within(root, Path(root) / "data" / check_id(name)), obj)


# ---- jobs: training runs on disk ------------------------------------------------------------------
# status.json has one writer at a time: jobs.submit (queued), then the training process itself
# (running ... done | failed); only once that process is gone may jobs.py write failed or cancelled.
# launch.json is the launcher's own record of the process it started.

def job_dir(root: Path, job_id: str) -> Path:
    return within(root, Path(root) / "jobs" / check_id(job_id))


def write_status(root: Path, job_id: str, **fields: Any) -> dict:
    """Merge fields into jobs/<id>/status.json (validated, atomically) and return the new status."""
    path = job_dir(root, job_id) / "status.json"
    status = read_json(path, "status", root) if path.exists() else {"id": job_id, "state": "queued"}
    status.update(fields)
    status["schema_version"] = SCHEMA_VERSION
    schema.validate("status", status, str(path))
    status.pop("schema_version")
    atomic_write_json(path, status)
    return status


def read_status(root: Path, job_id: str) -> dict:
    status = read_json(job_dir(root, job_id) / "status.json", "status", root)
    if status["id"] != job_id:
        raise FamilyError(f"{job_dir(root, job_id) / 'status.json'}: id {status['id']!r} does not match its folder")
    return status


def process_start(pid: int) -> int | None:
    """When process pid started (clock ticks since boot, /proc/<pid>/stat field 22), or None if it is gone:
    with the pid it names one process, never a later one that reused the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def write_launch(root: Path, job_id: str, pid: int, started: float) -> None:
    atomic_write_json(job_dir(root, job_id) / "launch.json", {"pid": pid, "started": started})


def read_launch(root: Path, job_id: str) -> dict | None:
    path = job_dir(root, job_id) / "launch.json"
    return read_json(path, "launch", root) if path.exists() else None


def list_jobs(root: Path) -> list[dict]:
    """Every job's status; a status file that is unreadable or holds anything but our fields is listed
    as refused (state failed, error naming the file) and never acted on."""
    jobs = []
    folder = Path(root) / "jobs"
    if not folder.is_dir():
        return jobs
    for d in sorted(within(root, folder).iterdir()):
        if not d.is_dir() or not _ID.match(d.name):
            continue
        try:
            jobs.append(read_status(root, d.name))
        except FamilyError as e:
            jobs.append({"id": d.name, "state": "failed", "refused": True, "error": f"refused: {e}"})
    return sorted(jobs, key=lambda j: str(j.get("created", "")))


@contextmanager
def training_claim(root: Path, adapter_id: str):
    """Held while one process trains adapter_id: a second process asking for the same adapter is
    refused at once (it would race the first to publish) instead of training it twice."""
    lock = within(root, Path(root) / "jobs" / f".train-{check_id(adapter_id)}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FamilyError(f"adapter {adapter_id!r} is being trained by another process right now; wait for it "
                              "to finish (it will appear on the front) or pick another weighting") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def publish_adapter(root: Path, job_id: str, adapter_id: str) -> Path:
    """Move a finished adapter from jobs/<job>/adapter into adapters/<id> in one rename."""
    src = job_dir(root, job_id) / "adapter"
    dst = within(root, adapter_dir(root, adapter_id))
    if dst.exists():
        raise FamilyError(f"{dst} already exists; remove it first to retrain that adapter")
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    return dst


def remove_partial(root: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(root, job_id) / "adapter", ignore_errors=True)


# ---- votes: data/votes.jsonl, one vote per line (votes.py makes and reads the records) ---------------

def votes_file(root: Path) -> Path:
    return within(root, Path(root) / "data" / "votes.jsonl")


def append_vote(root: Path, vote: dict) -> int:
    """Add one vote (schema-checked first) to data/votes.jsonl; returns the number of lines now in it.

    Under an exclusive lock shared by every session, thread and process, the file's bytes plus the new
    line are written to a temp file that replaces it: a crash at any moment leaves the old file or the
    new one, never a torn line, and two writers never both append to the same old copy. Lines this
    version cannot read are carried over byte for byte (read_votes reports them; nothing is dropped).
    """
    line = json.dumps({"schema_version": SCHEMA_VERSION, **vote}, ensure_ascii=True)  # ascii: no U+2028 breaks
    schema.validate("vote", schema.parse(line, "the new vote"), "the new vote")
    path = votes_file(root)
    lock = within(root, path.parent / ".votes.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            old = path.read_bytes() if path.exists() else b""
            if old and not old.endswith(b"\n"):
                old += b"\n"  # a cut-off last line stays a line of its own (reported by read_votes, kept)
            data = old + line.encode("ascii") + b"\n"
            atomic_write_bytes(path, data)
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return data.count(b"\n")


def read_votes(root: Path, known_ids: set[str] | None = None) -> tuple[list[dict], list[str]]:
    """(votes, problems): every readable vote of data/votes.jsonl in file order, each with its "line"
    number; problems names each line that is not a vote this version reads (bad JSON, a cut-off line,
    a wrong type, a point not in known_ids) and why. A bad line costs only itself."""
    return read_votes_file(votes_file(root), known_ids)


def read_votes_file(path: Path, known_ids: set[str] | None = None) -> tuple[list[dict], list[str]]:
    """read_votes for a votes file anywhere (e.g. given to the CLI)."""
    path = Path(path)
    if not path.exists():
        return [], []
    votes, problems = [], []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            vote = schema.validate("vote", schema.parse(raw.decode("utf-8"), where), where)
        except UnicodeDecodeError:
            problems.append(f"{where}: not UTF-8 text; the line is corrupt")
            continue
        except FamilyError as e:
            problems.append(str(e))
            continue
        unknown = [p["id"] for p in vote["points"] if known_ids is not None and p["id"] not in known_ids]
        if unknown:
            problems.append(f"{where}: point(s) {unknown} are not in this family (deleted or from another family); "
                            "the vote is kept in the file but not used")
            continue
        votes.append({**vote, "line": number})
    return votes, problems


# ---- conditioned adapters: conditioned/<id>/ (one adapter for every weighting, conditioned.py) ---------

def conditioned_dir(root: Path, conditioned_id: str) -> Path:
    return within(root, Path(root) / "conditioned" / check_id(conditioned_id))


def write_conditioned(root: Path, conditioned_id: str, tensors: dict, meta: dict) -> Path:
    """Save a conditioned adapter (safetensors + meta.json) into a temp folder, then rename it into
    conditioned/<id>: a killed run leaves no half-written adapter. Refuses to overwrite."""
    from safetensors.torch import save_file

    target = conditioned_dir(root, conditioned_id)
    if target.exists():
        raise FamilyError(f"{target} already exists; delete it to train that conditioned adapter again")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{conditioned_id}."))
    try:
        save_file(tensors, str(tmp / "conditioned.safetensors"))
        atomic_write_json(tmp / "meta.json", {"id": conditioned_id, "kind": "conditioned", **meta})
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def read_conditioned(root: Path, conditioned_id: str) -> tuple[dict, dict]:
    """(tensors, meta) of conditioned/<id>, checked (schema, safetensors integrity, the family's objectives);
    a FamilyError says what is wrong and what to do."""
    from safetensors.torch import load_file

    d = conditioned_dir(root, conditioned_id)
    if not d.is_dir():
        raise FamilyError(f"{d}: no conditioned adapter {conditioned_id!r} in this family; train one with "
                          "`python -m modpo train-conditioned`")
    meta = read_json(d / "meta.json", "conditioned_meta", root)
    weights = within(root, d / "conditioned.safetensors")
    if not weights.is_file():
        raise FamilyError(f"{weights}: file is missing; delete {d} and train it again")
    check_safetensors(weights)
    spec = read_family(root)
    if meta["objectives"] != spec.objective_names:
        raise FamilyError(f"{d}: trained for objectives {meta['objectives']}, the family has {spec.objective_names}")
    tensors = load_file(str(weights))
    r, n = meta["conditioning"]["r"], meta["conditioning"]["n_objectives"]
    m = meta["conditioning"].get("per_objective", 1)  # singular values per objective (1 before it was recorded)
    expected = {"lora_A": lambda t: t.dim() == 2 and t.shape[0] == r,
                "lora_B": lambda t: t.dim() == 2 and t.shape[1] == r,
                "free": lambda t: tuple(t.shape) == (r - n * m,), "scale": lambda t: tuple(t.shape) == (1,)}
    layers = {k.rsplit(".", 1)[0] for k in tensors}
    for layer in layers:  # every layer whole and of the rank meta.json says, before anything multiplies them
        for part, fits in expected.items():
            t = tensors.get(f"{layer}.{part}")
            if t is None or not fits(t):
                raise FamilyError(f"{weights}: tensor {layer}.{part} is missing or not of rank {r} with {n} "
                                  f"objectives x {m} as meta.json says; delete the folder and train it again")
    if not layers or n != len(spec.objectives):
        raise FamilyError(f"{weights}: no layers, or {n} objectives for a family of {len(spec.objectives)}")
    return tensors, meta


def private_cache(name: str) -> Path:
    """This user's folder <tmp>/modpo-<name>-<uid> for files made from a family (exported weightings), made
    private (0700) and refused when someone else owns it: another local user must not be able to plant
    adapter files where this code looks for them."""
    folder = Path(tempfile.gettempdir()) / f"modpo-{name}-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise FamilyError(f"{folder} is not a private folder of this user; remove it and try again")
    return folder


def list_conditioned(root: Path) -> list[str]:
    folder = Path(root) / "conditioned"
    if not folder.is_dir():
        return []
    return sorted(d.name for d in within(root, folder).iterdir() if d.is_dir() and _ID.match(d.name))
