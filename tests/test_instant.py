"""modpo/instant.py: exact cat merges, MOD mixing, and merge/mix points saved and evaluated like any adapter."""
import shutil

import pytest
import torch

from modpo import family as fam
from modpo.evaluate import EvalSettings
from modpo.generate import GenerationSettings, generate, mix_generate
from modpo.instant import convex_coefficients, make_instant_point, merge_adapters
from modpo.models import attach_adapters, load_base, peft_name

PROMPTS = ["tell me about cats", "how do i cook rice"]


@pytest.fixture
def tiny_family(tmp_path, tiny_checkpoints):
    root = tmp_path / "tiny"
    shutil.copytree(tiny_checkpoints / "tiny", root)
    return root


def loaded(root, ids):
    family = fam.load_family(root)
    model, tok = load_base("tiny")
    model = attach_adapters(model, {peft_name(i): family.point(i).path for i in ids})
    return model, tok


def lora_delta(model, name, layer=0):
    q = model.base_model.model.model.layers[layer].self_attn.q_proj
    return q.scaling[name] * (q.lora_B[name].weight @ q.lora_A[name].weight)


def test_cat_merge_is_the_exact_weighted_sum_of_deltas(tiny_family):
    ids = ["w-1.00-0.00", "w-0.30-0.70"]
    model, _ = loaded(tiny_family, ids)
    merge_adapters(model, [peft_name(i) for i in ids], [0.25, 0.75], "merged")
    expected = 0.25 * lora_delta(model, peft_name(ids[0])) + 0.75 * lora_delta(model, peft_name(ids[1]))
    assert expected.abs().max() > 1e-4
    torch.testing.assert_close(lora_delta(model, "merged"), expected, rtol=1e-5, atol=1e-6)
    # and the merged layer's output is base + that delta
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    x = torch.randn(3, q.in_features)
    model.set_adapter("merged")
    with torch.no_grad():
        torch.testing.assert_close(q(x), q.base_layer(x) + x @ expected.T, rtol=1e-4, atol=1e-5)


def test_mix_with_one_hot_weights_reproduces_the_adapter_greedy(tiny_family):
    ids = ["w-1.00-0.00", "w-0.30-0.70"]
    model, tok = loaded(tiny_family, ids)
    settings = GenerationSettings(max_new_tokens=20)
    for onehot, adapter in (([1.0, 0.0], ids[0]), ([0.0, 1.0], ids[1])):
        mixed = mix_generate(model, tok, PROMPTS, [peft_name(i) for i in ids], onehot, settings)
        single = generate(model, tok, PROMPTS, [peft_name(adapter)] * len(PROMPTS), settings)
        assert [m["response_ids"] for m in mixed] == [s["response_ids"] for s in single]


def test_mixed_distribution_matches_the_formula(tiny_family):
    from modpo.data import prompt_ids
    ids = ["w-1.00-0.00", "w-0.30-0.70"]
    model, tok = loaded(tiny_family, ids)
    c = [0.3, 0.7]
    out = mix_generate(model, tok, PROMPTS[:1], [peft_name(i) for i in ids], c, GenerationSettings(max_new_tokens=1))
    x = torch.tensor([prompt_ids(tok, PROMPTS[0])])
    with torch.no_grad():
        logps = [model(input_ids=x, adapter_names=[peft_name(i)]).logits[0, -1].log_softmax(-1) for i in ids]
    mixed = (c[0] * logps[0] + c[1] * logps[1]).log_softmax(-1)
    token = out[0]["response_ids"][0]
    assert token == int(mixed.argmax())
    assert out[0]["mixed_logp"] == pytest.approx(float(mixed[token]), abs=1e-5)


def test_merge_and_mix_points_are_saved_and_evaluated(tiny_family):
    family = fam.load_family(tiny_family)
    settings = EvalSettings.from_recorded(fam.recorded_eval_settings(family))
    prompts = fam.read_eval_prompts(tiny_family)
    with pytest.raises(ValueError, match="evaluated on data/eval_prompts.json"):  # measured like the trained points
        make_instant_point(tiny_family, [0.7, 0.3], "merge", PROMPTS, settings, log=lambda *_: None)
    merge, model = make_instant_point(tiny_family, [0.7, 0.3], "merge", prompts, settings, log=lambda *_: None)
    tok = load_base("tiny")[1]
    mix, _ = make_instant_point(tiny_family, [0.7, 0.3], "mix", prompts, settings, model=model, tokenizer=tok,
                                log=lambda *_: None)
    family = fam.load_family(tiny_family)
    assert not family.errors
    m, x = family.point(merge["id"]), family.point(mix["id"])
    assert m.kind == "merge" and x.kind == "mix" and m.weights == {"positivity": 0.7, "brevity": 0.3}
    assert m.meta["recipe"]["sources"] == ["w-1.00-0.00", "w-0.30-0.70"]
    assert m.meta["recipe"]["coefficients"] == pytest.approx([4 / 7, 3 / 7])
    assert (m.path / "adapter_model.safetensors").exists() and not (x.path / "adapter_model.safetensors").exists()
    for p in (m, x):
        assert p.eval["prompt_set"]["n"] == len(prompts) and set(p.eval["objectives"]) == {"positivity", "brevity"}
    assert not (tiny_family / "jobs" / merge["id"]).exists()


@pytest.mark.parametrize("weights, message", [
    ([0.7, 0.2], "summing to 1"), ([-0.1, 1.1], "summing to 1"), ([float("nan"), 1.0], "summing to 1"),
    ([0.7, 0.3, 0.0], "2 numbers"),
])
def test_bad_instant_weights(tiny_family, weights, message):
    with pytest.raises(ValueError, match=message):
        make_instant_point(tiny_family, weights, "merge", PROMPTS, EvalSettings())


def test_weights_outside_the_sources_hull_are_refused(tiny_family):
    with pytest.raises(ValueError, match="not a convex combination"):
        convex_coefficients([0.1, 0.9], [[1.0, 0.0], [0.3, 0.7]])
    with pytest.raises(ValueError, match="not a convex combination"):
        make_instant_point(tiny_family, [0.1, 0.9], "mix", PROMPTS, EvalSettings())
    assert convex_coefficients([0.5, 0.5], [[1.0, 0.0], [0.0, 1.0]]) == pytest.approx([0.5, 0.5])


def test_source_from_another_base_model_is_refused(tiny_family):
    d = tiny_family / "adapters" / "w-0.30-0.70"
    meta = fam.read_json(d / "meta.json", "meta")
    meta["base_model"] = "gpt2"
    fam.write_meta(d, {k: v for k, v in meta.items() if k != "schema_version"})
    with pytest.raises(KeyError, match="no adapter 'w-0.30-0.70'"):
        make_instant_point(
            tiny_family, [0.7, 0.3], "merge", PROMPTS, EvalSettings(), sources=["w-1.00-0.00", "w-0.30-0.70"]
        )
    assert "trained on base model 'gpt2'" in "\n".join(fam.load_family(tiny_family).errors)


def test_a_different_tokenizer_is_refused(tiny_family):
    spec = fam.load_family(tiny_family).spec
    assert spec.notes["tokenizer"]["vocab_size"] > 0  # recorded by the sweep
    model, tok = load_base("tiny")
    tok.add_tokens(["<|a-token-the-family-never-saw|>"])
    prompts = fam.read_eval_prompts(tiny_family)  # measured like the family's points, so only the tokenizer differs
    settings = EvalSettings.from_recorded(fam.recorded_eval_settings(fam.load_family(tiny_family)))
    with pytest.raises(ValueError, match="different tokenizer"):
        make_instant_point(tiny_family, [0.7, 0.3], "mix", prompts, settings, model=model, tokenizer=tok)


def test_on_three_objectives_the_default_sources_are_the_vertices():
    """The demo's merge and mix default to its three trained vertices, so every weighting of the simplex is
    a convex combination of them (two ends alone surround no interior weighting of three objectives)."""
    from pathlib import Path

    from modpo import family as fam
    from modpo.instant import convex_coefficients, default_sources, source_weights
    family = fam.load_family(Path(__file__).resolve().parent.parent / "checkpoints" / "demo")
    sources = default_sources(family)
    assert [p.id for p in sources] == ["w-1.00-0.00-0.00", "w-0.00-1.00-0.00", "w-0.00-0.00-1.00"]
    names = family.spec.objective_names
    lam = convex_coefficients([0.34, 0.33, 0.33], [source_weights(p, names, family.spec.margins) for p in sources])
    assert lam == pytest.approx([0.34, 0.33, 0.33], abs=1e-9)
