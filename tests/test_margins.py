"""modpo/margins.py: batched log-probs, and the stored one-pass precompute equals on-the-fly values."""
import torch

from modpo import family as fam
from modpo.data import tokenize_pairs
from modpo.generate import response_logps
from modpo.loss import sequence_logps
from modpo.margins import MarginSpec, pair_logps
from modpo.scorers import score
from modpo.sweep import prepare_pairs


def one_sequence_logp(model, prompt_ids, response_ids):
    ids = torch.tensor([prompt_ids + response_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + response_ids])
    with torch.no_grad():
        return sequence_logps(model(input_ids=ids).logits, labels)[0]


def test_batched_logps_equal_per_sequence_loop(tiny, tiny_prefs):
    model, tok = tiny
    model.eval()
    examples, _ = tokenize_pairs(tiny_prefs.pairs("positivity")[:6], tok, 256)
    chosen, rejected = pair_logps(model, examples, tok.pad_token_id)
    for i, ex in enumerate(examples):
        torch.testing.assert_close(
            chosen[i], one_sequence_logp(model, ex["prompt_ids"], ex["chosen_ids"]), rtol=1e-4, atol=1e-4
        )
        torch.testing.assert_close(
            rejected[i], one_sequence_logp(model, ex["prompt_ids"], ex["rejected_ids"]), rtol=1e-4, atol=1e-4
        )
    # the generation-side helper (right padding, per-row adapters) agrees too
    many = response_logps(model, tok, [tiny_prefs.pairs("positivity")[i].prompt for i in range(6)],
                          [ex["chosen_ids"] for ex in examples])
    torch.testing.assert_close(many, chosen, rtol=1e-4, atol=1e-4)


def test_stored_columns_equal_on_the_fly(tmp_path, tiny, tiny_prefs, spec_explicit):
    from peft import LoraConfig, get_peft_model
    model, tok = tiny
    # an implicit margin from a LoRA adapter with non-zero weights, plus the explicit brevity margin
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                             init_lora_weights=False), adapter_name="dpo-brevity")
    margins = [MarginSpec("brevity", "implicit", adapter="dpo-brevity"),
               MarginSpec("brevity", "explicit", scorer="brevity", scale=0.01)]
    stored = prepare_pairs(tmp_path, spec_explicit, model, tok, tiny_prefs, "positivity", margins, 256, progress=False)
    info, reread = fam.read_pairs(tmp_path, "positivity")
    assert info["kept"] == len(reread) == len(stored) > 10
    model.eval()
    for ex in reread.select(range(5)):
        with model.disable_adapter():
            ref_c = one_sequence_logp(model, ex["prompt_ids"], ex["chosen_ids"])
            ref_r = one_sequence_logp(model, ex["prompt_ids"], ex["rejected_ids"])
        pol_c = one_sequence_logp(model, ex["prompt_ids"], ex["chosen_ids"])
        assert abs(float(pol_c - ref_c)) > 1e-3, "the adapter must change log-probs for this test to mean anything"
        torch.testing.assert_close(torch.tensor(ex["reference_chosen_logps"]), ref_c, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(torch.tensor(ex["reference_rejected_logps"]), ref_r, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(
            torch.tensor(ex["margin_chosen_rewards"][0]), 0.1 * (pol_c - ref_c), rtol=1e-4, atol=1e-4
        )
        brevity = score("brevity", [ex["prompt"]], [ex["chosen"]])[0]
        assert abs(ex["margin_chosen_rewards"][1] - 0.01 * brevity) < 1e-9
    # a second call with the same settings reads the cache instead of recomputing
    again = prepare_pairs(tmp_path, spec_explicit, model, tok, tiny_prefs, "positivity", margins, 256, progress=False)
    assert again["reference_chosen_logps"] == reread["reference_chosen_logps"]


def test_minimized_objective_flips_explicit_margin_sign():
    m = MarginSpec.from_json("length", {"kind": "explicit", "scorer": "words", "scale": 0.5}, maximize=False)
    assert m.sign == -1.0 and m.scale == 0.5


def test_head_on_response_window_equals_full_logits(tiny):
    """model_sequence_logps runs the LM head from the first response position on: same log-probs and
    gradients as the full (B, T, V) logits, with prompts of different lengths and right padding."""
    from modpo.data import pad_pairs
    from modpo.loss import model_sequence_logps, response_window

    model, _ = tiny
    g = torch.Generator().manual_seed(0)
    examples = [{"prompt_ids": torch.randint(5, 200, (n_prompt,), generator=g).tolist(),
                 "chosen_ids": torch.randint(5, 200, (n_c,), generator=g).tolist(),
                 "rejected_ids": torch.randint(5, 200, (n_r,), generator=g).tolist()}
                for n_prompt, n_c, n_r in [(9, 4, 7), (5, 6, 2), (12, 3, 3)]]
    batch = pad_pairs(examples, pad_token_id=0)
    width = batch["input_ids"].shape[1]
    assert response_window(batch["labels"]) == width - 4  # shortest prompt is 5: positions 4.. predict responses
    full = sequence_logps(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits,
                          batch["labels"])
    full.sum().backward()
    full_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    window = model_sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    window.sum().backward()
    window_grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    torch.testing.assert_close(window, full, rtol=1e-5, atol=1e-5)
    assert len(window_grads) == len(full_grads) > 0
    for a, b in zip(window_grads, full_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
