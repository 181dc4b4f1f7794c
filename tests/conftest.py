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
