"""modpo/generate.py: log-probs taken from generation equal a separate forward pass, per adapter."""
import pytest
import torch

from modpo import family as fam
from modpo.generate import BASE, GenerationSettings, generate, response_logps
from modpo.models import attach_adapters, load_base, peft_name

PROMPTS = ["tell me about cats", "how do i cook rice", "give me advice on sleep"]


@pytest.mark.parametrize("settings", [GenerationSettings(max_new_tokens=20),
                                      GenerationSettings(max_new_tokens=20, temperature=1.3, seed=3)],
                         ids=["greedy", "sampled"])
def test_generation_logps_equal_a_forward_pass(tiny_checkpoints, settings):
    family = fam.load_family(tiny_checkpoints / "tiny")
    ids = ["w-0.70-0.30", "w-0.30-0.70"]
    model, tok = load_base("tiny")
    model = attach_adapters(model, {peft_name(i): family.point(i).path for i in ids})
    names = [BASE, peft_name(ids[0]), peft_name(ids[1])] * len(PROMPTS)
    prompts = [p for p in PROMPTS for _ in range(3)]
    outputs = generate(model, tok, prompts, names, settings, batch_size=4, with_logps=True)
    from_generation = torch.tensor([o["logp"] for o in outputs])
    forward = response_logps(model, tok, prompts, [o["response_ids"] for o in outputs], names, batch_size=5)
    assert torch.allclose(from_generation, forward, atol=1e-3, rtol=1e-4), (from_generation, forward)
    assert (from_generation < 0).all() and from_generation.std() > 0
    plain = generate(model, tok, prompts, names, settings, batch_size=4)
    assert [o["response_ids"] for o in plain] == [o["response_ids"] for o in outputs], "same responses either way"


def test_the_streamer_sees_every_row_grow_into_its_final_answer(tiny_checkpoints):
    """RowStreamer gets each row's tokens as they are made, across batches, stopping at EOS: what it
    holds at the end is exactly what generate returns."""
    from modpo.generate import RowStreamer
    family = fam.load_family(tiny_checkpoints / "tiny")
    model, tok = load_base("tiny")
    model = attach_adapters(model, {peft_name("w-0.70-0.30"): family.point("w-0.70-0.30").path})
    names = [BASE, peft_name("w-0.70-0.30")] * len(PROMPTS)
    prompts = [p for p in PROMPTS for _ in range(2)]
    seen = []

    class Watching(RowStreamer):
        def put(self, value):
            super().put(value)
            seen.append(sum(len(t) for t in self.tokens.values()))

    streamer = Watching(tok.eos_token_id)
    outputs = generate(model, tok, prompts, names, GenerationSettings(max_new_tokens=12), batch_size=4,
                       streamer=streamer)
    assert streamer.done and sorted(streamer.tokens) == list(range(len(prompts)))
    assert [streamer.tokens[i] for i in range(len(prompts))] == [o["response_ids"] for o in outputs]
    assert [streamer.text(tok, i) for i in range(len(prompts))] == [o["text"] for o in outputs]
    assert len(seen) > 4 and seen == sorted(seen) and seen[0] < seen[-1], "tokens arrive step by step"
