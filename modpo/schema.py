"""The JSON schemas of every file of the family format (DESIGN §3), and the one check against them.

A family folder is untrusted data (someone's zip): every JSON file read from it passes `validate`
before any field is used, so a malformed file is refused with its path and the place inside it
that is wrong, never half-used. Pure: no file I/O here (family.py reads and writes).

Schemas allow unknown keys (a newer writer may add some; rewriting keeps them), except a job's
status.json, which may hold only what this code writes: nothing read from it may become a command.
"""
from __future__ import annotations

import json
import math
from typing import Any

import jsonschema

SCHEMA_VERSION = 1
MIN_SCHEMA_VERSION = 1
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ADAPTER_KINDS = ("modpo", "dpo-margin", "merge", "mix", "base", "conditioned")
DIRECTIONS = ("maximize", "minimize")
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
VOTE_LABELS = ("left", "right", "tie", "both bad")  # the four buttons of the Compare page


class FamilyError(ValueError):
    """A family, adapter or job on disk is missing, malformed, or from another version."""


_ID = {"type": "string", "pattern": ID_PATTERN}
_NUMBER = {"type": "number"}
_NONNEG = {"type": "number", "minimum": 0}
_COUNT = {"type": "integer", "minimum": 0}
_TEXT = {"type": "string"}
_CURVE = {"type": "array", "items": {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}}
_STATS = {"type": "object", "required": ["mean", "stderr"],
          "properties": {"mean": _NUMBER, "stderr": _NONNEG, "n": _COUNT}}
_VERSION = {"type": "integer", "minimum": MIN_SCHEMA_VERSION, "maximum": SCHEMA_VERSION}

# The parameters a queued training job may carry; the code builds the command from them (jobs.py).
JOB_PARAMS = {
    "type": "object", "additionalProperties": False, "required": ["weights", "steps"],
    "properties": {
        "weights": {"type": "array", "items": _NONNEG, "minItems": 2, "maxItems": 16},
        "steps": {"type": "integer", "minimum": 1, "maximum": 100_000},
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "lora_r": {"type": "integer", "minimum": 1, "maximum": 4096},
        "lora_alpha": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
        "batch_size": {"type": "integer", "minimum": 1, "maximum": 4096},
        "max_length": {"type": "integer", "minimum": 8, "maximum": 1_000_000},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
        "evaluate": {"type": "boolean"},
    },
}

SCHEMAS: dict[str, dict] = {
    "family": {
        "type": "object", "required": ["schema_version", "name", "base_model", "objectives", "target", "beta"],
        "properties": {
            "schema_version": _VERSION,
            "name": _TEXT,
            "base_model": {"type": "object", "required": ["name"],
                           "properties": {"name": {"type": "string", "minLength": 1},
                                          "revision": {"type": ["string", "null"]}}},
            "objectives": {"type": "array", "minItems": 2, "items": {
                "type": "object", "required": ["name"],
                "properties": {"name": _ID, "direction": {"enum": list(DIRECTIONS)}, "scorer": _TEXT}}},
            "target": _ID,
            "beta": {"type": "number", "exclusiveMinimum": 0},
            "margins": {"type": "object", "additionalProperties": {
                "type": "object", "required": ["kind"],
                "properties": {"kind": {"enum": ["implicit", "explicit"]}, "adapter": _ID,
                               "scale": _NUMBER, "scorer": _TEXT}}},
            "data": {"type": "object"},
            "notes": {"type": "object"},
            "labels": {"type": "object", "properties": {
                "kind": {"enum": ["bradley-terry"]},
                "reward_scales": {"type": "object", "additionalProperties": _NUMBER},
                "seed": _COUNT, "nats_per_sd": _NUMBER}},
            "adapters": {"type": "array", "items": _TEXT},
        },
    },
    "meta": {
        "type": "object", "required": ["schema_version", "id", "kind"],
        "properties": {
            "schema_version": _VERSION,
            "id": _ID,
            "kind": {"enum": list(ADAPTER_KINDS)},
            "base_model": _TEXT,
            "weights": {"type": ["object", "null"], "additionalProperties": _NONNEG},
            "objective": {"type": ["string", "null"]},
            "mixture_term_power": {"enum": [1, 2]},  # objective "all": each objective's loss weighted by w_j^k
            "conditioned": _ID,  # kind conditioned: the conditioned adapter (conditioned/<id>) this was exported from
            "steps": _COUNT,
            "wall_time_s": _NUMBER,
            "loss_curve": _CURVE,
            "config": {"type": "object"},
            "recipe": {"type": "object", "required": ["sources", "coefficients"],
                       "properties": {"sources": {"type": "array", "items": _ID, "minItems": 1},
                                      "coefficients": {"type": "array", "items": _NONNEG, "minItems": 1},
                                      "combination_type": {"enum": ["cat", "linear", "svd"]}}},
        },
    },
    "eval": {
        "type": "object", "required": ["schema_version", "objectives"],
        "properties": {
            "schema_version": _VERSION,
            "id": _ID,
            "objectives": {"type": "object", "additionalProperties": _STATS},
            "kl": _STATS,
            "mean_response_tokens": _NONNEG,
            "settings": {"type": "object", "properties": {
                "max_new_tokens": {"type": "integer", "minimum": 1}, "temperature": _NONNEG,
                "seed": {"type": "integer"}, "trim_capped": {"type": "boolean"},
                "trim_rule": {"enum": [1, 2]}, "no_repeat_ngram": {"enum": [0, *range(2, 17)]},
                "batch_size": {"type": "integer", "minimum": 1}, "samples_saved": _COUNT}},
            "prompt_set": {"type": "object", "properties": {"n": _COUNT, "sha": _TEXT}},
            "samples": {"type": "array", "items": {
                "type": "object", "required": ["prompt", "response", "scores"],
                "properties": {"prompt": _TEXT, "response": _TEXT, "capped": {"type": "boolean"},
                               "scores": {"type": "object", "additionalProperties": _NUMBER}}}},
            "wall_time_s": _NUMBER,
        },
    },
    "status": {
        "type": "object", "additionalProperties": False, "required": ["schema_version", "id", "state"],
        "properties": {
            "schema_version": _VERSION,
            "id": _ID,
            "state": {"enum": list(JOB_STATES)},
            "kind": {"enum": list(ADAPTER_KINDS)},
            "adapter": _ID,
            "params": JOB_PARAMS,
            "pid": {"type": "integer", "minimum": 1},
            "pid_start": {"type": "integer", "minimum": 0},
            "phase": {"enum": ["starting", "training", "trained", "evaluating", "evaluated"]},
            "step": _COUNT, "total_steps": _COUNT,
            "eval_done": _COUNT, "eval_total": _COUNT, "eval_started": _NUMBER,
            "loss_curve": _CURVE,
            "created": _TEXT, "started": _NUMBER, "finished": _NUMBER,
            "error": _TEXT,
        },
    },
    "launch": {
        "type": "object", "additionalProperties": False, "required": ["schema_version", "pid", "started"],
        "properties": {"schema_version": _VERSION, "pid": {"type": "integer", "minimum": 1}, "started": _NUMBER},
    },
    "pairs_info": {
        "type": "object", "required": ["schema_version", "objective", "max_length", "beta", "margins", "kept"],
        "properties": {"schema_version": _VERSION, "objective": _ID, "max_length": {"type": "integer", "minimum": 2},
                       "beta": {"type": "number", "exclusiveMinimum": 0}, "margins": {"type": "array"},
                       "n_rows": _COUNT, "dropped": _COUNT, "kept": _COUNT},
    },
    # one line of data/votes.jsonl: a user's vote between two answers to one prompt (votes.py). The
    # project's preference row (prompt, responses, preferences) plus who answered, how, when and by whom.
    "vote": {
        "type": "object",
        "required": ["schema_version", "prompt", "responses", "preferences", "label", "points", "time", "session"],
        "properties": {
            "schema_version": _VERSION,
            "prompt": {"type": "string", "minLength": 1},
            "responses": {"type": "array", "items": _TEXT, "minItems": 2, "maxItems": 2},
            "preferences": {"type": "object", "minProperties": 1,
                            "additionalProperties": {"enum": [0, 1, None]}},
            "label": {"enum": list(VOTE_LABELS)},
            "points": {"type": "array", "minItems": 2, "maxItems": 2, "items": {
                "type": "object", "required": ["id"],
                "properties": {"id": _ID, "weights": {"type": ["object", "null"], "additionalProperties": _NONNEG},
                               "settings": {"type": "object"}}}},
            "scores": {"type": "object", "additionalProperties": {
                "type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}},
            "time": _NUMBER,
            "session": {"type": "string", "minLength": 1, "maxLength": 128},
            "blind": {"type": "boolean"},
        },
    },
    # conditioned/<id>/meta.json: one weight-conditioned adapter for the whole front (conditioned.py)
    "conditioned_meta": {
        "type": "object", "required": ["schema_version", "id", "kind", "objectives", "conditioning"],
        "properties": {
            "schema_version": _VERSION,
            "id": _ID,
            "kind": {"enum": ["conditioned"]},
            "objectives": {"type": "array", "items": _ID, "minItems": 2},
            "conditioning": {"type": "object", "required": ["r", "alpha", "target_modules", "n_objectives", "eps"],
                             "properties": {"r": {"type": "integer", "minimum": 3, "maximum": 4096},
                                            "alpha": {"type": "number", "exclusiveMinimum": 0},
                                            "target_modules": {"type": "array", "minItems": 1, "items": _ID},
                                            "n_objectives": {"type": "integer", "minimum": 2, "maximum": 16},
                                            "per_objective": {"type": "integer", "minimum": 1, "maximum": 1024},
                                            "eps": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
                                            "labels": {"enum": ["target", "largest", "all"]}}},
            "steps": _COUNT, "wall_time_s": _NUMBER, "loss_curve": _CURVE, "config": {"type": "object"},
        },
    },
    "eval_prompts": {
        "type": "object", "required": ["schema_version", "prompts"],
        "properties": {"schema_version": _VERSION,
                       "prompts": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}}},
    },
}


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def parse(text: str, where: str) -> Any:
    """json.loads that refuses NaN and Infinity (Python's json accepts them; no other reader does)."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise FamilyError(f"{where}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                          "the file is corrupt or was cut short") from None
    except ValueError as e:
        raise FamilyError(f"{where}: {e}") from None


def _place(error: jsonschema.ValidationError) -> str:
    return (
        "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".") or "the top level"
    )


_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number",
               type(None): "null"}


def _describe(e: jsonschema.ValidationError) -> str:
    place = _place(e)
    if e.validator == "required":
        missing = next((k for k in e.validator_value if k not in e.instance), "?")
        return f"required field {missing!r} is missing" + ("" if place == "the top level" else f" in {place!r}")
    if e.validator == "type":
        got = _JSON_TYPES.get(type(e.instance), "?")
        return f"field {place!r} should be {e.validator_value}, got {got} {e.instance!r:.60}"
    if e.validator == "additionalProperties" and e.validator_value is False:
        return f"unexpected field(s) in {place}: {e.message.split('(')[-1].rstrip(')')}; this file may hold only " \
               "the fields this library writes"
    message = e.message if len(e.message) < 200 else e.message[:200] + "..."
    return f"field {place!r}: {message}"


def validate(kind: str, obj: Any, where: str) -> dict:
    """obj checked against SCHEMAS[kind]; a FamilyError names the file, the field and the problem."""
    if not isinstance(obj, dict):
        raise FamilyError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise FamilyError(f"{where}: schema_version {version} is newer than this library reads "
                          f"({SCHEMA_VERSION}); upgrade modpo")
    validator = jsonschema.Draft202012Validator(SCHEMAS[kind])
    errors = sorted(validator.iter_errors(obj), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise FamilyError(f"{where}: {_describe(errors[0])}")
    _check_finite(obj, where)
    return obj


def _check_finite(obj: Any, where: str, path: str = "") -> None:
    """Numbers built in Python (not parsed) can still be NaN; refuse them the same way."""
    if isinstance(obj, float) and not math.isfinite(obj):
        raise FamilyError(f"{where}: field {path or 'the top level'}: {obj} is not a finite number")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, where, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _check_finite(v, where, f"{path}[{i}]")
