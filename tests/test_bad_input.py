"""Bad input, table-driven: every case must fail with a message that says what was wrong.

Each case is (id, a function that should raise, the exception type, a regex the message must match).
The CLI cases run `python -m modpo` in-process and read its stderr.
"""
import json
import math
import re
from pathlib import Path

import pytest

from modpo import cli
from modpo import family as fam
from modpo.config import TrainConfig
from modpo.data import load_jsonl, rows_from_records
from modpo.generate import GenerationSettings
from modpo.scorers import get_scorer, score
from modpo.weights import target_first, validate_weights

DEMO = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"  # read only: each case fails before a write
GOOD = {"prompt": "Say hi", "responses": ["Hi!", "Hello there."], "preferences": {"a": 0, "b": 1}}


def records(**change):
    return [{**GOOD, **change}]


def dataset_case(**change):
    return lambda tmp: rows_from_records(records(**change), "prefs.jsonl")


def cli_case(*argv):
    def run(tmp):
        code = cli.main([a.replace("{tmp}", str(tmp)) for a in argv])
        raise SystemExit(code)
    return run


def jsonl_case(text):
    def run(tmp):
        (tmp / "bad.jsonl").write_text(text)
        load_jsonl(tmp / "bad.jsonl")
    return run


def raw_jsonl_case(data: bytes):
    def run(tmp):
        (tmp / "bad.jsonl").write_bytes(data)
        load_jsonl(tmp / "bad.jsonl")
    return run


def prompts_file_case(content, *argv):
    """A CLI command given --eval-prompts pointing at a file with content (bytes or JSON-able)."""
    def run(tmp):
        path = tmp / "prompts.json"
        path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
        (tmp / "fam").mkdir()
        (tmp / "fam" / "family.json").write_text(json.dumps(FAMILY))
        raise SystemExit(cli.main([a.replace("{tmp}", str(tmp)) for a in argv] + ["--eval-prompts", str(path)]))
    return run


def family_text_case(text: str):
    def run(tmp):
        (tmp / "f").mkdir()
        (tmp / "f" / "family.json").write_text(text)
        fam.read_family(tmp / "f")
    return run


def status_case(status):
    def run(tmp):
        (tmp / "jobs" / "j1").mkdir(parents=True)
        (tmp / "jobs" / "j1" / "status.json").write_text(json.dumps({"schema_version": 1, "id": "j1", **status}))
        fam.read_status(tmp, "j1")
    return run


def eval_file_case(text: str):
    def run(tmp):
        (tmp / "eval.json").write_text(text)
        fam.read_json(tmp / "eval.json", "eval")
    return run


FAMILY = {"schema_version": 1, "name": "fam", "base_model": {"name": "tiny"},
          "objectives": [{"name": "a", "direction": "maximize", "scorer": "words"},
                         {"name": "b", "direction": "maximize", "scorer": "brevity"}],
          "target": "a", "beta": 0.1}


def family_case(edit):
    def run(tmp):
        root = tmp / "fam"
        (root / "adapters").mkdir(parents=True)
        obj = {"schema_version": fam.SCHEMA_VERSION, "name": "fam", "base_model": {"name": "tiny"},
               "objectives": [{"name": "a", "direction": "maximize", "scorer": "words"},
                              {"name": "b", "direction": "maximize", "scorer": "brevity"}],
               "target": "a", "beta": 0.1}
        edit(obj)
        (root / "family.json").write_text(json.dumps(obj))
        fam.load_family(root)
    return run


CASES = [
    # weights
    ("weights negative", lambda t: validate_weights([1.2, -0.2]), ValueError, r"must be >= 0"),
    ("weights NaN", lambda t: validate_weights([math.nan, 0.5]), ValueError, r"finite numbers"),
    ("weights all zero", lambda t: validate_weights([0.0, 0.0]), ValueError, r"sum to 1 .*divide by their sum"),
    ("weights wrong length", lambda t: validate_weights([0.5, 0.5], 3), ValueError, r"2 entries but there are 3"),
    ("weights target 0", lambda t: validate_weights([0.0, 1.0]), ValueError, r"must be > 0: MODPO divides by it"),
    ("weights not numbers", lambda t: validate_weights(["a", 1]), ValueError, r"1-D list of per-objective weights"),
    (
        "weights family order length",
        lambda t: target_first(["a", "b"], "a", [1.0]),
        ValueError,
        r"1 entries but the family has 2 objectives",
    ),
    (
        "cli weights text",
        cli_case("train", "--family", "{tmp}/nofam", "--weights", "a,b"),
        SystemExit,
        r"expected comma-separated numbers",
    ),
    # datasets
    (
        "data missing column",
        lambda t: rows_from_records([{"prompt": "x", "responses": ["a", "b"]}], "prefs.jsonl"),
        ValueError,
        r"row 0, column 'preferences': is missing",
    ),
    ("data empty response", dataset_case(responses=["Hi!", "  "]), ValueError, r"column 'responses': is empty"),
    ("data non-string prompt", dataset_case(prompt=5), ValueError, r"column 'prompt': expected a string, got int"),
    (
        "data non-string response",
        dataset_case(responses=["Hi!", ["nested"]]),
        ValueError,
        r"expected a string, got list",
    ),
    (
        "data identical responses",
        dataset_case(responses=["Same.", "Same."]),
        ValueError,
        r"both responses are identical",
    ),
    ("data label out of range", dataset_case(preferences={"a": 2, "b": 1}), ValueError, r"must be 0, 1 or null"),
    ("data three responses", dataset_case(responses=["a", "b", "c"]), ValueError, r"exactly two responses"),
    (
        "data objectives differ",
        lambda t: rows_from_records([GOOD, {**GOOD, "preferences": {"a": 1}}], "p"),
        ValueError,
        r"row 1, column 'preferences': has objectives \['a'\], expected \['a', 'b'\]",
    ),
    ("data no rows", lambda t: rows_from_records([], "prefs.jsonl"), ValueError, r"no rows"),
    ("data bad JSON line", jsonl_case('{"prompt": "x"}\n{oops\n'), ValueError,
     r"line 2 is not valid JSON.*fix or delete that line"),
    ("data file missing", lambda t: load_jsonl(t / "nope.jsonl"), FileNotFoundError, r"no preference file at"),
    # training and generation options
    (
        "cli lr negative",
        cli_case("train", "--family", "x", "--weights", "1,0", "--lr", "-1"),
        SystemExit,
        r"must be > 0",
    ),
    (
        "cli beta zero",
        cli_case("train", "--family", "x", "--weights", "1,0", "--beta", "0"),
        SystemExit,
        r"must be > 0",
    ),
    (
        "cli batch size zero",
        cli_case("train", "--family", "x", "--weights", "1,0", "--batch-size", "0"),
        SystemExit,
        r"must be > 0",
    ),
    (
        "cli max new tokens zero",
        cli_case("generate", "--family", "x", "--adapters", "base", "--prompt", "hi", "--max-new-tokens", "0"),
        SystemExit,
        r"must be > 0",
    ),
    (
        "cli temperature too high",
        cli_case("evaluate", "--family", "{tmp}/nofam", "--temperature", "9"),
        SystemExit,
        r"--temperature must be in \[0, 5\]",
    ),
    (
        "cli no-repeat n-gram of one",
        cli_case("evaluate", "--family", "{tmp}/nofam", "--no-repeat-ngram", "1"),
        SystemExit,
        r"--no-repeat-ngram expects 0 \(off\) or a whole number in \[2, 16\], got '1'",
    ),
    (
        "cli port out of range",
        cli_case("dashboard", "--port", "99999"),
        SystemExit,
        r"99999 is not a TCP port: give one from 1 to 65535",
    ),
    (
        "cli votes file missing",
        cli_case("train", "--family", "{tmp}/new", "--weights", "1,0", "--data", "{tmp}/voted/data/votes.jsonl"),
        SystemExit,
        r"voted/data/votes.jsonl: no such file",
    ),
    (
        "cli coherence prompts missing",
        cli_case("coherence", "--family", str(DEMO), "--prompts", "{tmp}/none.json"),
        SystemExit,
        r"--prompts .*none.json: no such file",
    ),
    (
        "cli unknown adapter",
        cli_case("generate", "--family", str(DEMO), "--adapters", "nope", "--prompt", "hi"),
        SystemExit,
        r"error: no adapter 'nope' in family 'demo'; its points: base, ",
    ),
    (
        "cli family missing",
        cli_case("front", "--family", "{tmp}/nofam"),
        SystemExit,
        r"nofam/family.json: file is missing",
    ),
    ("config warmup ratio", lambda t: TrainConfig(warmup_ratio=1.5), ValueError, r"warmup_ratio must be in \[0, 1\)"),
    (
        "config learning rate",
        lambda t: TrainConfig(learning_rate=3.0),
        ValueError,
        r"learning_rate must be in \(0, 1\)",
    ),
    ("config max length", lambda t: TrainConfig(max_length=4), ValueError, r"max_length must be >= 8 tokens"),
    (
        "generation max tokens",
        lambda t: GenerationSettings(max_new_tokens=0),
        ValueError,
        r"max_new_tokens must be in \[1, 4096\]",
    ),
    (
        "generation temperature",
        lambda t: GenerationSettings(temperature=-1),
        ValueError,
        r"temperature must be in \[0, 5\]",
    ),
    ("generation top_p", lambda t: GenerationSettings(top_p=0), ValueError, r"top_p must be in \(0, 1\]"),
    # scorers, objectives, margins
    (
        "unknown scorer",
        lambda t: get_scorer("readability-9000"),
        ValueError,
        r"unknown scorer 'readability-9000'; available",
    ),
    ("scorer length mismatch", lambda t: score("words", ["a", "b"], ["x"]), ValueError, r"2 prompts but 1 responses"),
    (
        "classifier path",
        lambda t: get_scorer(f"hf-classifier:{t}/no-model")(["p"], ["r"]),
        ValueError,
        r"is not a local folder with a sequence classifier",
    ),
    (
        "cli unknown scorer",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/f",
            "--data",
            "x.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:nope,b:maximize:words",
        ),
        SystemExit,
        r"unknown scorer 'nope'",
    ),
    (
        "cli objectives malformed",
        cli_case("sweep", "--family", "{tmp}/f", "--data", "x.jsonl", "--target", "a", "--objectives", "a:maximize"),
        SystemExit,
        r"must be name:direction:scorer",
    ),
    (
        "cli margin malformed",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/f",
            "--data",
            "x.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:words,b:maximize:brevity",
            "--margin",
            "b=magic",
        ),
        SystemExit,
        r"must be NAME=implicit or NAME=explicit:SCALE",
    ),
    # models
    (
        "unknown model name",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/f",
            "--data",
            "{tmp}/p.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:words,b:maximize:brevity",
            "--model",
            "gpt-9-ultra",
        ),
        SystemExit,
        r"unknown model 'gpt-9-ultra': give a short name \(tiny, smollm2-135m-instruct\)",
    ),
    # family files and paths
    (
        "family newer schema",
        family_case(lambda o: o.update(schema_version=fam.SCHEMA_VERSION + 1)),
        fam.FamilyError,
        r"schema_version",
    ),
    ("family missing field", family_case(lambda o: o.pop("target")), fam.FamilyError, r"family.json.*target"),
    (
        "family bad direction",
        family_case(lambda o: o["objectives"][0].update(direction="up")),
        fam.FamilyError,
        r"direction.*is not one of",
    ),
    ("path escapes root", lambda t: fam.inside_root(t, "../elsewhere"), fam.FamilyError, r"not a family name under"),
    ("path absolute", lambda t: fam.inside_root(t, "/etc"), fam.FamilyError, r"not a family name under"),
    # round 2 (issue 11): data files name the file, line and column
    (
        "data non-UTF-8 byte",
        raw_jsonl_case(b'{"prompt": "x"}\n{"prompt": "caf\xe9"}\n'),
        ValueError,
        r"bad.jsonl: line 2, column 16: byte 0xe9 is not UTF-8",
    ),
    (
        "data bad JSON column",
        jsonl_case('{"prompt": "x", oops}\n'),
        ValueError,
        r"line 1 is not valid JSON \(column 17",
    ),
    (
        "data blank lines counted",
        jsonl_case("\n\n" + json.dumps({**GOOD, "prompt": 5}) + "\n"),
        ValueError,
        r"line 3, column 'prompt': expected a string",
    ),
    (
        "data scores not numbers",
        jsonl_case(json.dumps({**GOOD, "scores": {"a": ["high", 0.1]}}) + "\n"),
        ValueError,
        r"line 1, column 'scores.a': scores must be finite numbers",
    ),
    (
        "data scores not a pair",
        jsonl_case(json.dumps({**GOOD, "scores": {"a": [0.1, 0.2, 0.3]}}) + "\n"),
        ValueError,
        r"line 1, column 'scores.a': must be a pair",
    ),
    (
        "data scores not an object",
        jsonl_case(json.dumps({**GOOD, "scores": [1, 2]}) + "\n"),
        ValueError,
        r"column 'scores': must be an object",
    ),
    (
        "data scores NaN",
        jsonl_case('{"prompt": "p", "responses": ["a", "b"], "preferences": {"a": 0}, "scores": {"a": [NaN, 1]}}\n'),
        ValueError,
        r"finite numbers",
    ),
    (
        "data whitespace-only difference",
        dataset_case(responses=["Hi  there.", "Hi there. "]),
        ValueError,
        r"identical \(up to whitespace\)",
    ),
    ("data row not an object", jsonl_case("[1, 2]\n"), ValueError, r"line 1 is not a JSON object"),
    # CLI refusals: one line that says what is wrong and what to do
    (
        "cli steps zero",
        cli_case("train", "--family", "{tmp}/fam", "--weights", "0.5,0.5", "--steps", "0"),
        SystemExit,
        r"--steps: must be > 0",
    ),
    (
        "cli steps negative",
        cli_case("train", "--family", "{tmp}/fam", "--weights", "0.5,0.5", "--steps", "-3"),
        SystemExit,
        r"--steps: must be > 0",
    ),
    (
        "cli grid step zero",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/f",
            "--data",
            "{tmp}/p.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:words,b:maximize:brevity",
            "--grid-step",
            "0",
        ),
        SystemExit,
        r"--grid-step: must be > 0",
    ),
    (
        "cli grid step above one",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/f",
            "--data",
            "{tmp}/p.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:words,b:maximize:brevity",
            "--grid-step",
            "2",
        ),
        SystemExit,
        r"must be in \(0, 1\]",
    ),
    (
        "cli family is a file",
        cli_case("front", "--family", "{tmp}/p.jsonl"),
        SystemExit,
        r"--family .*p.jsonl is a file; give a family folder",
    ),
    (
        "cli sweep family is a file",
        cli_case(
            "sweep",
            "--family",
            "{tmp}/p.jsonl",
            "--data",
            "{tmp}/p.jsonl",
            "--target",
            "a",
            "--objectives",
            "a:maximize:words,b:maximize:brevity",
        ),
        SystemExit,
        r"is a file; give a family folder",
    ),
    (
        "cli weights infinite",
        cli_case("train", "--family", "{tmp}/fam", "--weights", "inf,0"),
        SystemExit,
        r"expected finite numbers",
    ),
    (
        "cli weights NaN",
        cli_case("train", "--family", "{tmp}/fam", "--weights", "nan,1"),
        SystemExit,
        r"expected finite numbers",
    ),
    (
        "cli lr not a number",
        cli_case("train", "--family", "{tmp}/fam", "--weights", "1,0", "--lr", "fast"),
        SystemExit,
        r"expected a number, got 'fast'",
    ),
    ("cli port zero", cli_case("dashboard", "--port", "0"), SystemExit, r"--port: must be > 0"),
    (
        "cli eval prompts without key",
        prompts_file_case({"items": ["x"]}, "evaluate", "--family", "{tmp}/fam"),
        SystemExit,
        r"prompts.json: a JSON object needs a 'prompts' key",
    ),
    (
        "cli eval prompts not UTF-8",
        prompts_file_case(b'["caf\xe9"]', "evaluate", "--family", "{tmp}/fam"),
        SystemExit,
        r"prompts.json: byte 5 is not UTF-8",
    ),
    (
        "cli eval prompts empty strings",
        prompts_file_case(["", " "], "evaluate", "--family", "{tmp}/fam"),
        SystemExit,
        r"non-empty JSON list of non-empty prompt strings",
    ),
    (
        "cli eval prompts missing",
        cli_case("evaluate", "--family", "{tmp}/nofam", "--eval-prompts", "{tmp}/none.json"),
        SystemExit,
        r"family.json: file is missing",
    ),
    (
        "cli eval prompts bad JSON",
        prompts_file_case(b'["a",', "evaluate", "--family", "{tmp}/fam"),
        SystemExit,
        r"not valid JSON \(line 1, column 6",
    ),
    (
        "cli target weight zero names it",
        lambda t: target_first(["b", "a"], "a", [1.0, 0.0]),
        ValueError,
        r"target objective 'a' must get a weight > 0.*b 1, a 0",
    ),
    # family files: every JSON checked against its schema, with the field named
    (
        "family NaN beta",
        family_text_case(json.dumps(FAMILY).replace('"beta": 0.1', '"beta": NaN')),
        fam.FamilyError,
        r"family.json: NaN is not a number JSON allows",
    ),
    (
        "family objective name with markup",
        family_case(lambda o: o["objectives"][0].update(name="[x](http:y)")),
        fam.FamilyError,
        r"field 'objectives\[0\].name'",
    ),
    (
        "family margin kind",
        family_case(lambda o: o.update(margins={"b": {"kind": "telepathy"}})),
        fam.FamilyError,
        r"field 'margins.b.kind'",
    ),
    (
        "family base model empty",
        family_case(lambda o: o.update(base_model={"name": ""})),
        fam.FamilyError,
        r"base_model.name",
    ),
    ("family old schema", family_case(lambda o: o.update(schema_version=0)), fam.FamilyError, r"schema_version"),
    ("family zero bytes", family_text_case(""), fam.FamilyError, r"family.json: the file is empty"),
    (
        "status holds a command",
        status_case({"state": "queued", "command": ["/bin/sh", "-c", "id"]}),
        fam.FamilyError,
        r"status.json: unexpected field\(s\).*command",
    ),
    (
        "status params unknown",
        status_case({"state": "queued", "params": {"weights": [1, 0], "steps": 1, "argv": []}}),
        fam.FamilyError,
        r"status.json: unexpected field\(s\) in params",
    ),
    (
        "status steps text",
        status_case({"state": "queued", "params": {"weights": [1, 0], "steps": "1; id"}}),
        fam.FamilyError,
        r"field 'params.steps' should be integer",
    ),
    (
        "status id mismatch",
        status_case({"state": "queued", "id": "other"}),
        fam.FamilyError,
        r"id 'other' does not match its folder",
    ),
    (
        "eval NaN mean",
        eval_file_case('{"schema_version": 1, "objectives": {"a": {"mean": NaN, "stderr": 0}}}'),
        fam.FamilyError,
        r"eval.json: NaN is not a number",
    ),
    (
        "eval objective a number",
        eval_file_case('{"schema_version": 1, "objectives": {"a": 0.5}}'),
        fam.FamilyError,
        r"field 'objectives.a' should be object",
    ),
]


@pytest.mark.parametrize("run, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(run, error, message, tmp_path, capsys):
    (tmp_path / "p.jsonl").write_text(json.dumps(GOOD) + "\n")  # a valid dataset, for the CLI cases
    with pytest.raises(error) as caught:
        run(tmp_path)
    text = str(caught.value)
    if error is SystemExit:
        assert caught.value.code == 2, "bad input exits with status 2"
        text = capsys.readouterr().err
    assert re.search(message, text, flags=re.S), f"message was: {text}"


def test_prompt_over_the_limit_is_refused():
    from dashboard.compare_page import MAX_PROMPT_CHARS, prompt_problem
    assert prompt_problem("x" * (MAX_PROMPT_CHARS + 1)) == (
        f"The prompt is {MAX_PROMPT_CHARS + 1} characters long; the limit is {MAX_PROMPT_CHARS}. Shorten it.")
    assert "Type a prompt" in prompt_problem("   ")
    assert prompt_problem("How do I boil an egg?") is None
