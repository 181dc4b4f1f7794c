"""Preference data labelled on several objectives, and its tokenization into (chosen, rejected) pairs.

A row is a prompt, two responses, and for each objective which response is preferred: 0, 1, or
None (a tie or a missing label). The JSONL schema, one object per line:

    {"prompt": "How do I ...?",
     "responses": ["first answer", "second answer"],
     "preferences": {"helpfulness": 0, "harmlessness": 1},    # index of the preferred response, or null
     "scores": {"helpfulness": [0.7, 0.2]}}                   # optional: the scores behind the labels

Every row must carry the same objectives. Pairs for one objective are (prompt, preferred,
other) for the rows labelled on it. Pairs longer than max_length tokens are dropped and counted,
never truncated (a truncated response would be scored as a different response).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from .loss import IGNORE_INDEX

PKU_SAFERLHF_PREFERENCES = {"helpfulness": "better_response_id", "harmlessness": "safer_response_id"}


@dataclass(frozen=True)
class PreferenceRow:
    prompt: str
    responses: tuple[str, str]
    preferences: Mapping[str, int | None]
    scores: Mapping[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    row: int


@dataclass
class PreferenceDataset:
    objectives: list[str]
    rows: list[PreferenceRow]
    source: str = "memory"

    def pairs(self, objective: str) -> list[Pair]:
        """(prompt, chosen, rejected) for every row with a label on objective; ties are skipped."""
        if objective not in self.objectives:
            raise ValueError(f"unknown objective {objective!r}; this dataset has {self.objectives}")
        out = []
        for i, row in enumerate(self.rows):
            label = row.preferences.get(objective)
            if label is not None:
                out.append(Pair(row.prompt, row.responses[label], row.responses[1 - label], i))
        return out

    def to_records(self) -> list[dict]:
        return [{"prompt": r.prompt, "responses": list(r.responses), "preferences": dict(r.preferences),
                 **({"scores": {k: list(v) for k, v in r.scores.items()}} if r.scores else {})}
                for r in self.rows]


def _fail(source: str, row: int | str, column: str, problem: str) -> ValueError:
    """row: an index into the records, or a string such as "line 7" naming the place in the file."""
    return ValueError(f"{source}: {row if isinstance(row, str) else f'row {row}'}, column {column!r}: {problem}")


def _scores(value: Any, source: str, row: int | str) -> dict[str, tuple[float, float]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(
            source, row, "scores", f"must be an object {{objective: [score_0, score_1]}}, got {type(value).__name__}"
        )
    out = {}
    for name, pair in value.items():
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise _fail(source, row, f"scores.{name}", f"must be a pair [score_0, score_1], got {pair!r}")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in pair):
            raise _fail(source, row, f"scores.{name}", f"scores must be finite numbers, got {pair!r}")
        out[name] = (float(pair[0]), float(pair[1]))
    return out


def _text(value: Any, source: str, row: int, column: str) -> str:
    if not isinstance(value, str):
        raise _fail(source, row, column, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise _fail(source, row, column, "is empty; drop the row or fill it in")
    return value


def _label(value: Any, source: str, row: int, column: str) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or value not in (0, 1):
        raise _fail(source, row, column, f"a preference must be 0, 1 or null (tie/missing), got {value!r}")
    return int(value)


def rows_from_records(records: Iterable[Mapping], source: str, objectives: list[str] | None = None,
                      prompt_column: str = "prompt", response_columns: tuple[str, ...] = ("responses",),
                      preference_columns: Mapping[str, str] | None = None,
                      line_numbers: list[int] | None = None) -> PreferenceDataset:
    """Validate raw records into a PreferenceDataset; errors name the row and the column.

    response_columns: ("responses",) for a list of two, or two column names (e.g. response_0/1).
    preference_columns: objective -> column holding its label; default: the "preferences" dict.
    line_numbers: each record's line in its file, so errors say "line N" (blank lines counted).
    """
    rows: list[PreferenceRow] = []
    for index, rec in enumerate(records):
        i = f"line {line_numbers[index]}" if line_numbers else index
        if not isinstance(rec, Mapping):
            raise ValueError(f"{source}: {i if line_numbers else f'row {i}'} is not a JSON object")
        required = [prompt_column, *response_columns,
                    *(preference_columns.values() if preference_columns else ["preferences"])]
        for col in required:
            if col not in rec:
                raise _fail(source, i, col, f"is missing (row has columns {sorted(rec)})")
        prompt = _text(rec[prompt_column], source, i, prompt_column)
        if len(response_columns) == 1:
            pair = rec[response_columns[0]]
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise _fail(source, i, response_columns[0], "must be a list of exactly two responses")
            responses = tuple(_text(r, source, i, response_columns[0]) for r in pair)
        else:
            responses = tuple(_text(rec[c], source, i, c) for c in response_columns)
        if preference_columns:
            prefs = {obj: _label(rec[col], source, i, col) for obj, col in preference_columns.items()}
        else:
            raw = rec["preferences"]
            if not isinstance(raw, Mapping) or not raw:
                raise _fail(source, i, "preferences", "must be an object {objective: 0 | 1 | null}")
            prefs = {obj: _label(v, source, i, f"preferences.{obj}") for obj, v in raw.items()}
        if objectives is None:
            objectives = list(prefs)
        if sorted(prefs) != sorted(objectives):
            raise _fail(source, i, "preferences", f"has objectives {sorted(prefs)}, expected {sorted(objectives)}")
        if " ".join(responses[0].split()) == " ".join(responses[1].split()) and any(
            v is not None for v in prefs.values()
        ):
            raise _fail(source, i, "responses", "both responses are identical (up to whitespace), so a preference "
                        "between them means nothing; drop the row or set its labels to null")
        scores = _scores(rec.get("scores"), source, i)
        rows.append(PreferenceRow(prompt, responses, prefs, scores))
    if not rows:
        raise ValueError(f"{source}: no rows; a preference dataset needs at least one labelled pair")
    return PreferenceDataset(list(objectives), rows, source)


def load_jsonl(path: str | Path) -> PreferenceDataset:
    """Read the JSONL schema in this module's docstring."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no preference file at {path}; expected JSONL with one row per line")
    records, lines = [], []
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: line {number}, column {e.start + 1}: byte {raw[e.start]:#04x} is not UTF-8; "
                             "save the file as UTF-8") from None
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: line {number} is not valid JSON (column {e.colno}: {e.msg}); fix or delete "
                                 "that line and run again (training reads every line or none)") from None
            lines.append(number)
    return rows_from_records(records, str(path), line_numbers=lines)


def write_jsonl(dataset: PreferenceDataset, path: str | Path) -> None:
    from .family import atomic_write_text
    atomic_write_text(Path(path), "".join(json.dumps(r) + "\n" for r in dataset.to_records()))


def load_hf(name_or_path: str, split: str = "train", prompt_column: str = "prompt",
            response_columns: tuple[str, str] = ("response_0", "response_1"),
            preference_columns: Mapping[str, str] | None = None, limit: int | None = None) -> PreferenceDataset:
    """A Hugging Face dataset (hub name, local data folder, or a save_to_disk folder)."""
    import datasets

    if not preference_columns:
        raise ValueError("preference_columns is required: map each objective to the column holding its label")
    if Path(name_or_path).is_dir() and (Path(name_or_path) / "dataset_info.json").exists():
        ds = datasets.load_from_disk(name_or_path)
        ds = ds[split] if isinstance(ds, datasets.DatasetDict) else ds
    else:
        ds = datasets.load_dataset(name_or_path, split=split)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return rows_from_records(ds, f"{name_or_path}[{split}]", list(preference_columns), prompt_column,
                             tuple(response_columns), preference_columns)


def load_pku_saferlhf(name_or_path: str = "PKU-Alignment/PKU-SafeRLHF", split: str = "train",
                      limit: int | None = None) -> PreferenceDataset:
    """PKU-SafeRLHF: objectives helpfulness (better_response_id) and harmlessness (safer_response_id)."""
    return load_hf(name_or_path, split, "prompt", ("response_0", "response_1"), PKU_SAFERLHF_PREFERENCES, limit)


def load_preferences(spec: str, split: str = "train", limit: int | None = None) -> PreferenceDataset:
    """CLI entry: a .jsonl file, 'pku-saferlhf[:path]', or an HF dataset in the PKU column layout."""
    if spec.endswith(".jsonl"):
        ds = load_jsonl(spec)
        if limit is not None:
            ds.rows = ds.rows[:limit]
        return ds
    if spec.lower().startswith("pku-saferlhf"):
        path = spec.split(":", 1)[1] if ":" in spec else "PKU-Alignment/PKU-SafeRLHF"
        return load_pku_saferlhf(path, split, limit)
    return load_hf(spec, split, preference_columns=PKU_SAFERLHF_PREFERENCES, limit=limit)


# ---- tokenization -------------------------------------------------------------------------------

def format_prompt(tokenizer, prompt: str) -> str:
    """The prompt as the model sees it: through the chat template when the tokenizer has one."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
    return prompt


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    has_template = bool(getattr(tokenizer, "chat_template", None))
    return tokenizer(format_prompt(tokenizer, prompt), add_special_tokens=not has_template)["input_ids"]


def response_ids(tokenizer, response: str) -> list[int]:
    """Response tokens with EOS appended, so the model learns where to stop."""
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; set one so responses can end")
    return tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def tokenize_pairs(pairs: list[Pair], tokenizer, max_length: int) -> tuple[list[dict], int]:
    """Token ids for each pair; drops (and counts) pairs whose prompt + longer response > max_length.

    Returns (examples, n_dropped); each example has prompt_ids, chosen_ids, rejected_ids, row.
    """
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 tokens, got {max_length}")
    examples, dropped = [], 0
    for p in pairs:
        p_ids = prompt_ids(tokenizer, p.prompt)
        c_ids, r_ids = response_ids(tokenizer, p.chosen), response_ids(tokenizer, p.rejected)
        if len(p_ids) + max(len(c_ids), len(r_ids)) > max_length:
            dropped += 1
            continue
        examples.append({"prompt_ids": p_ids, "chosen_ids": c_ids, "rejected_ids": r_ids, "row": p.row})
    return examples, dropped


def right_pad(seqs: list[list[int]], labels: list[list[int]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Sequences and their labels right-padded into (N, T) input_ids, attention_mask and labels
    (IGNORE_INDEX on padding): the one padding of every log-prob pass."""
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    label_ids = torch.full((len(seqs), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, lab) in enumerate(zip(seqs, labels)):
        input_ids[i, :len(s)] = torch.tensor(s)
        label_ids[i, :len(lab)] = torch.tensor(lab)
        attention_mask[i, :len(s)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": label_ids}


def prompt_response(prompt_ids: list[int], response_ids: list[int]) -> tuple[list[int], list[int]]:
    """(sequence, labels) of a prompt and its response: the prompt is masked out of the labels."""
    return list(prompt_ids) + list(response_ids), [IGNORE_INDEX] * len(prompt_ids) + list(response_ids)


def pad_pairs(examples: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Chosen then rejected sequences of a batch in one right-padded tensor, for one forward pass.

    Returns input_ids, attention_mask, labels: (2B, T), rows [0, B) chosen and [B, 2B) rejected;
    labels are IGNORE_INDEX on the prompt and padding.
    """
    rows = [prompt_response(ex["prompt_ids"], ex[key]) for key in ("chosen_ids", "rejected_ids") for ex in examples]
    return right_pad([r[0] for r in rows], [r[1] for r in rows], pad_token_id)


FLOAT_COLUMNS = ("reference_chosen_logps", "reference_rejected_logps",
                 "margin_chosen_rewards", "margin_rejected_rewards", "chosen_probs")


class PairCollator:
    """Trainer data collator: pads pairs and carries the precomputed reference/margin columns."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_pairs(examples, self.pad_token_id)
        for col in FLOAT_COLUMNS:
            if col in examples[0]:
                batch[col] = torch.tensor([ex[col] for ex in examples], dtype=torch.float32)
        if "loss_order" in examples[0]:  # a conditioned adapter's pairs from several objectives' labels
            batch["loss_order"] = torch.tensor([ex["loss_order"] for ex in examples], dtype=torch.long)
        return batch
