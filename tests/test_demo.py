"""The shipped demo family (checkpoints/demo): a real front, complete records, loadable adapters.

The acceptance checks of the demo issue, on the committed family as it is (no retraining here).
"""
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from modpo import family as fam
from modpo.front import front_table

DEMO = Path(__file__).resolve().parent.parent / "checkpoints" / "demo"


@pytest.fixture(scope="module")
def demo():
    assert (DEMO / "family.json").exists(), "checkpoints/demo is missing: build it with `python -m modpo demo`"
    family = fam.load_family(DEMO)
    assert not family.errors, family.errors
    return family, front_table(family)


def modpo_rows(table):
    return table[(table["kind"] == "modpo") & table["evaluated"]]


def test_family_json_records_what_it_is(demo):
    family, _ = demo
    spec = family.spec
    assert spec.base_model == "smollm2-135m-instruct" and spec.beta == 0.1
    assert [(o.name, o.direction, o.scorer) for o in spec.objectives] == [
        ("sentiment", "maximize", "sentiment"), ("brevity", "maximize", "brevity")]
    assert spec.data["rows"] >= 250 and spec.data["train_prompts"] >= 300 and spec.data["eval_prompts"] >= 64
    assert spec.target == "brevity" and spec.margins["sentiment"]["kind"] == "explicit"
    clash = spec.notes["conflict"]
    assert clash["pearson"] < 0 and clash["n_responses"] >= 500, "the two objectives must conflict on the samples"
    assert (DEMO / "data" / "preferences.jsonl").exists() and (DEMO / "front.png").exists()


def test_front_has_the_endpoint_five_weightings_and_four_non_dominated(demo):
    _, table = demo
    rows = modpo_rows(table)
    assert len(rows) >= 6, "the DPO endpoint and at least 5 interior weightings"
    assert sorted(rows["w_sentiment"]) == [0.0, 0.5, 0.6, 0.7, 0.8, 0.9]  # 0.0: DPO on the brevity labels
    assert int(table[table["kind"] != "base"]["on_front"].sum()) >= 4


@pytest.mark.parametrize("objective", ["sentiment", "brevity"])
def test_endpoints_differ_by_more_than_3_standard_errors(demo, objective):
    _, table = demo
    ends = modpo_rows(table).sort_values("w_sentiment")
    lo, hi = ends.iloc[0], ends.iloc[-1]  # the DPO endpoint on brevity vs. the most sentiment-weighted
    gap = abs(hi[objective] - lo[objective])
    se = np.hypot(hi[f"{objective}_stderr"], lo[f"{objective}_stderr"])
    assert gap > 3 * se, f"endpoints differ by only {gap / se:.1f} standard errors on {objective}"


@pytest.mark.parametrize("objective", ["sentiment", "brevity"])
def test_each_score_rises_with_its_weight(demo, objective):
    rows = modpo_rows(demo[1])
    rho = spearmanr(rows[f"w_{objective}"], rows[objective])[0]
    assert rho >= 0.8, f"score of {objective} does not rise with its weight (Spearman {rho:.2f})"


def test_every_adapter_records_its_build(demo):
    family, _ = demo
    for p in family.points:
        assert p.eval is not None and p.eval["prompt_set"]["n"] >= 64
        assert "demo_build_times_s" in p.meta
        if p.kind == "modpo":
            assert p.meta["steps"] > 0 and p.meta["wall_time_s"] > 0 and p.meta["loss_curve"]
            assert (p.path / "adapter_model.safetensors").stat().st_size < 8 * 2**20


@pytest.mark.slow
def test_every_adapter_loads_with_plain_peft_and_generates(demo):
    import torch
    from peft import PeftModel

    from modpo.data import format_prompt
    from modpo.models import load_base
    family, _ = demo
    base, tokenizer = load_base("smollm2-135m-instruct")
    ids = tokenizer(format_prompt(tokenizer, "Name a fruit."), return_tensors="pt")
    with torch.no_grad():
        base_out = base.generate(**ids, max_new_tokens=8, do_sample=False)
    for p in family.points:
        if p.kind == "base":
            continue
        model = PeftModel.from_pretrained(base, str(p.path))
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=8, do_sample=False)
            adapted = model(**ids).logits
            with model.disable_adapter():
                plain = model(**ids).logits
        assert out.shape[1] > ids["input_ids"].shape[1]
        assert not torch.allclose(adapted, plain), f"{p.id} does not change the model"
        base = model.unload()
    assert base_out.shape[1] > ids["input_ids"].shape[1]
