"""Shared fixtures: the tiny model shipped in modpo/assets and preference data sampled from it."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may reach a model hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modpo.family import Objective  # noqa: E402

TINY_PROMPTS = [f"tell me about {x}" for x in
                ("cats", "dogs", "rice", "sleep", "music", "rain", "books", "coffee", "trains", "winter", "summer",
                 "friends", "tea", "chess", "running", "gardens")]
OBJECTIVES = [Objective("positivity", "maximize", "sentiment"), Objective("brevity", "maximize", "brevity")]


@pytest.fixture
def tiny():
    """A fresh (model, tokenizer): training modifies the model in place, so each test gets its own."""
    import torch

    from modpo.models import load_base
    torch.manual_seed(0)
    return load_base("tiny")


@pytest.fixture(scope="session")
def tiny_prefs():
    """On-policy pairs from the tiny model labelled by the sentiment and brevity scorers."""
    from modpo.feedback import sample_preferences
    from modpo.generate import GenerationSettings
    from modpo.models import load_base
    model, tokenizer = load_base("tiny")
    return sample_preferences(model, tokenizer, TINY_PROMPTS * 3, OBJECTIVES, GenerationSettings(48, 1.0, 1.0, 0))


@pytest.fixture
def spec_explicit():
    from modpo.family import FamilySpec
    return FamilySpec("tinyfam", "tiny", list(OBJECTIVES), "positivity", 0.1,
                      {"brevity": {"kind": "explicit", "scorer": "brevity", "scale": 0.01}})


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_prefs):
    """A checkpoints root holding 'tiny': a real (tiny-model) family with 3 trained, evaluated weightings."""
    import json

    from modpo.cli import main
    from modpo.data import write_jsonl
    root = tmp_path_factory.mktemp("checkpoints")
    work = tmp_path_factory.mktemp("work")
    write_jsonl(tiny_prefs, work / "prefs.jsonl")
    (work / "eval.json").write_text(json.dumps(TINY_PROMPTS[:6]))
    assert main(["sweep", "--family", str(root / "tiny"), "--data", str(work / "prefs.jsonl"), "--model", "tiny",
                 "--objectives", "positivity:maximize:sentiment,brevity:maximize:brevity", "--target", "positivity",
                 "--margin", "brevity=explicit:0.02", "--weights", "0.7,0.3", "0.3,0.7",
                 "--lora-r", "8", "--lora-alpha", "16", "--lr", "5e-3", "--steps", "8", "--max-length", "256",
                 "--max-new-tokens", "24", "--eval-prompts", str(work / "eval.json")]) == 0
    return root


@pytest.fixture
def checkpoints(tmp_path, tiny_checkpoints, monkeypatch):
    """A private copy of the tiny checkpoints root (tests write jobs and adapters into it), the root the
    dashboard reads."""
    import shutil
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_checkpoints, root)
    monkeypatch.setenv("MODPO_CHECKPOINTS", str(root))
    return root


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed real-browser test leaves a screenshot of the page, named after the test and its step."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        try:
            from browser_helpers import ARTIFACTS, CURRENT
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"failure-{item.name}-{CURRENT['step']}.png"), full_page=True)
        except Exception:  # noqa: BLE001 - the test's own failure is what matters
            pass


@pytest.fixture
def bt_family(tmp_path, tiny_prefs):
    """(root, spec, labelled data): a tiny family whose labels are Bradley-Terry draws of its scorers (every
    objective's reward known, as in the demo), positivity the target, brevity an explicit margin at its
    reward scale; family.json and the preferences written, no pairs yet."""
    from modpo import family as fam
    from modpo.data import write_jsonl
    from modpo.feedback import bradley_terry_labels, reward_scales
    objectives = [fam.Objective("positivity", "maximize", "sentiment"), fam.Objective("brevity", "maximize", "brevity")]
    scales = reward_scales(tiny_prefs, objectives, 1.5)
    data = bradley_terry_labels(tiny_prefs, scales, seed=0)
    labels = {"kind": "bradley-terry", "reward_scales": scales, "nats_per_sd": 1.5, "seed": 0}
    margins = {"brevity": {"kind": "explicit", "scorer": "brevity", "scale": scales["brevity"]}}
    recipe = {"lora_r": 4, "lora_alpha": 8, "learning_rate": 5e-3, "max_length": 256}
    spec = fam.FamilySpec("bt", "tiny", objectives, "positivity", 1.0, margins, labels=labels,
                          notes={"train_config": recipe})
    root = tmp_path / "bt"
    fam.write_family(root, spec)
    write_jsonl(data, fam.preferences_file(root))
    return root, spec, data
