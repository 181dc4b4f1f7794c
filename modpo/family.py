"""All file I/O for families, adapters, evaluations and jobs (DESIGN §3).

    <family>/family.json             index: base model, objectives, target, margins, beta, adapters
    <family>/data/                   preference data and its precomputed reference / margin columns
    <family>/base/                   meta.json + eval.json of the base model (no weights)
    <family>/adapters/<id>/          adapter_config.json, adapter_model.safetensors, meta.json, eval.json
    <family>/jobs/<id>/              status.json, log.txt, and adapter/ while training

Every JSON file carries schema_version. Every write is a temp file plus os.replace, and an adapter
appears in adapters/ only when complete: it is trained into jobs/<id>/adapter and renamed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
ADAPTER_KINDS = ("modpo", "dpo-margin", "merge", "mix", "base")
DIRECTIONS = ("maximize", "minimize")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class FamilyError(ValueError):
    """A family, adapter or job on disk is missing, malformed, or from another version."""


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


def read_json(path: Path, required: dict[str, type | tuple] | None = None) -> dict:
    """Read a JSON file of ours; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FamilyError(f"{path}: file is missing")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FamilyError(f"{path}: not valid JSON ({e}); the file is corrupt or was cut short") from None
    if not isinstance(obj, dict):
        raise FamilyError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if not isinstance(version, int):
        raise FamilyError(f"{path}: field 'schema_version' is missing or not an integer")
    if version > SCHEMA_VERSION:
        raise FamilyError(f"{path}: schema_version {version} is newer than this library reads "
                          f"({SCHEMA_VERSION}); upgrade modpo")
    for key, typ in (required or {}).items():
        if key not in obj:
            raise FamilyError(f"{path}: required field {key!r} is missing")
        if not isinstance(obj[key], typ):
            raise FamilyError(f"{path}: field {key!r} should be {getattr(typ, '__name__', typ)}, "
                              f"got {type(obj[key]).__name__}")
    return obj


def check_id(adapter_id: str) -> str:
    if not isinstance(adapter_id, str) or not _ID.match(adapter_id) or ".." in adapter_id:
        raise ValueError(f"invalid id {adapter_id!r}: use letters, digits, '.', '_' or '-' (at most 128)")
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

    def __post_init__(self):
        names = [o.name for o in self.objectives]
        if len(names) < 2 or len(set(names)) != len(names):
            raise FamilyError(f"a family needs at least two distinct objectives, got {names}")
        for o in self.objectives:
            if o.direction not in DIRECTIONS:
                raise FamilyError(f"objective {o.name!r}: direction must be one of {DIRECTIONS}, got {o.direction!r}")
        if self.target not in names:
            raise FamilyError(f"target {self.target!r} is not one of the objectives {names}")
        if not self.beta > 0:
            raise FamilyError(f"beta must be > 0, got {self.beta}")

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def target_index(self) -> int:
        return self.objective_names.index(self.target)

    def to_json(self) -> dict:
        return {"name": self.name, "base_model": {"name": self.base_model, "revision": self.base_revision},
                "objectives": [vars(o) for o in self.objectives], "target": self.target,
                "beta": self.beta, "margins": self.margins, "data": self.data, "notes": self.notes}


def write_family(root: Path, spec: FamilySpec) -> None:
    root = Path(root)
    adapters = sorted(p.name for p in (root / "adapters").iterdir() if p.is_dir()) \
        if (root / "adapters").is_dir() else []
    atomic_write_json(root / "family.json", {**spec.to_json(), "adapters": adapters})


def read_family(root: Path) -> FamilySpec:
    path = Path(root) / "family.json"
    obj = read_json(path, {"name": str, "base_model": dict, "objectives": list, "target": str,
                           "beta": (int, float)})
    try:
        objectives = [Objective(o["name"], o.get("direction", "maximize"), o.get("scorer", ""))
                      for o in obj["objectives"]]
        return FamilySpec(obj["name"], obj["base_model"]["name"], objectives, obj["target"], float(obj["beta"]),
                          obj.get("margins", {}), obj["base_model"].get("revision"), obj.get("data", {}),
                          obj.get("notes", {}))
    except (KeyError, TypeError) as e:
        raise FamilyError(f"{path}: malformed entry ({e!r}); each objective needs a 'name'") from None
    except FamilyError as e:
        raise FamilyError(f"{path}: {e}") from None


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


def adapter_dir(root: Path, adapter_id: str) -> Path:
    return Path(root) / "adapters" / check_id(adapter_id)


def point_dir(root: Path, point_id: str) -> Path:
    return Path(root) / "base" if point_id == "base" else adapter_dir(root, point_id)


def write_meta(directory: Path, meta: dict) -> None:
    if meta.get("kind") not in ADAPTER_KINDS:
        raise ValueError(f"meta kind must be one of {ADAPTER_KINDS}, got {meta.get('kind')!r}")
    atomic_write_json(Path(directory) / "meta.json", meta)


def write_eval(directory: Path, evaluation: dict) -> None:
    atomic_write_json(Path(directory) / "eval.json", evaluation)


def read_point(directory: Path, spec: FamilySpec) -> Point:
    directory = Path(directory)
    meta = read_json(directory / "meta.json", {"id": str, "kind": str})
    if meta["kind"] not in ADAPTER_KINDS:
        raise FamilyError(f"{directory / 'meta.json'}: kind {meta['kind']!r} is not one of {ADAPTER_KINDS}")
    base = meta.get("base_model")
    if base is not None and base != spec.base_model:
        raise FamilyError(f"{directory}: trained on base model {base!r}, but the family's is {spec.base_model!r}")
    weights = meta.get("weights")
    if weights is not None and sorted(weights) != sorted(spec.objective_names):
        raise FamilyError(f"{directory / 'meta.json'}: weights name {sorted(weights)}, "
                          f"the family's objectives are {spec.objective_names}")
    if meta["kind"] in ("modpo", "dpo-margin", "merge"):
        weights_file = directory / "adapter_model.safetensors"
        if not weights_file.is_file() or not (directory / "adapter_config.json").is_file():
            raise FamilyError(f"{directory}: adapter_model.safetensors or adapter_config.json is missing")
        check_safetensors(weights_file)
    evaluation = read_json(directory / "eval.json", {"objectives": dict}) if (directory / "eval.json").exists() else None
    if evaluation is not None:
        missing = [o for o in spec.objective_names if o not in evaluation["objectives"]]
        if missing:
            raise FamilyError(f"{directory / 'eval.json'}: no scores for objectives {missing}; re-run evaluate")
    return Point(meta["id"], meta["kind"], weights, meta, evaluation, directory)


def check_safetensors(path: Path) -> None:
    """Cheap integrity check: the header parses and the file is as long as the header says."""
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            if header_len <= 0 or 8 + header_len > size:
                raise ValueError("header length out of range")
            header = json.loads(f.read(header_len))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + header_len + end != size:
            raise ValueError(f"expected {8 + header_len + end} bytes, found {size}")
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise FamilyError(f"{path}: corrupt or truncated safetensors file ({e}); delete the adapter "
                          "folder and train it again") from None


@dataclass
class Family:
    root: Path
    spec: FamilySpec
    points: list[Point]
    errors: list[str]  # one line per adapter that failed to load; the rest still load

    def point(self, point_id: str) -> Point:
        for p in self.points:
            if p.id == point_id:
                return p
        raise KeyError(f"no adapter {point_id!r} in family {self.spec.name!r}")


def load_family(root: str | Path) -> Family:
    """family.json must be valid; a broken adapter is reported in .errors and skipped."""
    root = Path(root)
    spec = read_family(root)
    points, errors = [], []
    dirs = [root / "base"] if (root / "base").is_dir() else []
    if (root / "adapters").is_dir():
        dirs += sorted(p for p in (root / "adapters").iterdir() if p.is_dir() and not p.name.startswith("."))
    for d in dirs:
        try:
            points.append(read_point(d, spec))
        except FamilyError as e:
            errors.append(str(e))
    return Family(root, spec, points, errors)


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
    return Path(root) / "data" / f"pairs-{check_id(objective)}"


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
    info = read_json(d / "info.json")
    info.pop("schema_version", None)
    return info, datasets.load_from_disk(str(d))


def read_eval_prompts(root: Path) -> list[str] | None:
    path = Path(root) / "data" / "eval_prompts.json"
    return read_json(path, {"prompts": list})["prompts"] if path.exists() else None


def write_data_file(root: Path, name: str, obj: dict) -> None:
    atomic_write_json(Path(root) / "data" / name, obj)


# ---- jobs: training runs on disk ------------------------------------------------------------------

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")


def job_dir(root: Path, job_id: str) -> Path:
    return Path(root) / "jobs" / check_id(job_id)


def write_status(root: Path, job_id: str, **fields: Any) -> dict:
    """Merge fields into jobs/<id>/status.json (atomically) and return the new status."""
    path = job_dir(root, job_id) / "status.json"
    status = read_json(path) if path.exists() else {"id": job_id, "state": "queued"}
    status.update(fields)
    if status["state"] not in JOB_STATES:
        raise ValueError(f"job state must be one of {JOB_STATES}, got {status['state']!r}")
    status.pop("schema_version", None)
    atomic_write_json(path, status)
    return status


def read_status(root: Path, job_id: str) -> dict:
    return read_json(job_dir(root, job_id) / "status.json", {"id": str, "state": str})


def list_jobs(root: Path) -> list[dict]:
    jobs = []
    for d in sorted((Path(root) / "jobs").glob("*/status.json")):
        try:
            jobs.append(read_json(d, {"id": str, "state": str}))
        except FamilyError as e:
            jobs.append({"id": d.parent.name, "state": "failed", "error": str(e)})
    return sorted(jobs, key=lambda j: j.get("created", ""))


def publish_adapter(root: Path, job_id: str, adapter_id: str) -> Path:
    """Move a finished adapter from jobs/<job>/adapter into adapters/<id> in one rename."""
    src = job_dir(root, job_id) / "adapter"
    dst = adapter_dir(root, adapter_id)
    if dst.exists():
        raise FamilyError(f"{dst} already exists; remove it first to retrain that adapter")
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
    return dst


def remove_partial(root: Path, job_id: str) -> None:
    shutil.rmtree(job_dir(root, job_id) / "adapter", ignore_errors=True)
