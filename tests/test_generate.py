"""modpo/generate.py: log-probs taken from generation equal a separate forward pass, per adapter."""
import pytest
import torch

from modpo import family as fam
from modpo.generate import BASE, GenerationSettings, generate, response_logps
from modpo.models import attach_adapters, load_base, peft_name

PROMPTS = ["tell me about cats", "how do i cook rice", "give me advice on sleep"]


@pytest.mark.parametrize("settings", [GenerationSettings(max_new_tokens=20),
                                      GenerationSettings(max_new_tokens=20, temperature=1.3, seed=3),
                                      GenerationSettings(max_new_tokens=20, no_repeat_ngram=2)],
                         ids=["greedy", "sampled", "no-repeat"])
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


def _repeats(ids: list[int], n: int) -> int:
    grams = [tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)]
    return len(grams) - len(set(grams))


def test_repeated_ngram_bans_name_the_tokens_that_would_repeat_an_ngram():
    from modpo.generate import repeated_ngram_bans
    assert repeated_ngram_bans([1, 2, 3, 1, 2], 3) == [3]       # "1 2" again: 3 would repeat "1 2 3"
    assert repeated_ngram_bans([1, 2, 3, 1, 2, 4, 1, 2], 3) == [3, 4]
    assert repeated_ngram_bans([1, 2, 3, 1, 2], 2) == [3]       # after "2" came 3 before
    assert repeated_ngram_bans([1, 2, 3, 4], 2) == []           # "4" never came before
    assert repeated_ngram_bans([1, 2], 3) == [] and repeated_ngram_bans([1, 1, 1], 0) == []


def test_no_repeat_bans_only_the_answers_own_ngrams_not_the_prompts():
    """transformers' no_repeat_ngram_size would also forbid quoting the prompt; NoRepeatInAnswer looks only at
    the answer (the tokens after the left-padded prompts)."""
    from modpo.generate import NoRepeatInAnswer
    ids = torch.tensor([[7, 1, 2, 3, 1, 2], [7, 1, 2, 3, 9, 9]])  # prompt 7 1 2 3, then each row's answer
    scores = NoRepeatInAnswer(3, prompt_len=4)(ids, torch.zeros(2, 10))
    assert torch.isinf(scores).sum() == 0, "'1 2' then 3 is in the prompt only: an answer may quote it"
    ids = torch.tensor([[7, 1, 2, 3, 1, 2, 3, 1, 2], [7, 1, 2, 3, 9, 9, 9, 9, 9]])
    scores = NoRepeatInAnswer(3, prompt_len=4)(ids, torch.zeros(2, 10))
    assert scores[0].isinf().nonzero().flatten().tolist() == [3]  # the answer said "1 2 3" already
    assert scores[1].isinf().nonzero().flatten().tolist() == [9]  # "9 9 9" again


def test_generation_with_no_repeat_never_repeats_an_ngram(tiny_checkpoints):
    """The tiny random model loops when greedy; with no_repeat_ngram=2 no answer (generate or a mix) holds any
    token bigram twice, and the answers differ from the unconstrained ones."""
    from modpo.generate import mix_generate
    family = fam.load_family(tiny_checkpoints / "tiny")
    ids = ["w-0.70-0.30", "w-0.30-0.70"]
    model, tok = load_base("tiny")
    model = attach_adapters(model, {peft_name(i): family.point(i).path for i in ids})
    names = [BASE, peft_name(ids[0])] * len(PROMPTS)
    prompts = [p for p in PROMPTS for _ in range(2)]
    free = generate(model, tok, prompts, names, GenerationSettings(max_new_tokens=40), batch_size=4)
    banned = generate(model, tok, prompts, names, GenerationSettings(max_new_tokens=40, no_repeat_ngram=2),
                      batch_size=4)
    strip = [[t for t in o["response_ids"] if t != tok.eos_token_id] for o in banned]
    assert sum(_repeats(o["response_ids"], 2) for o in free) > 0, "the test needs a model that repeats itself"
    assert all(_repeats(r, 2) == 0 for r in strip), strip
    mixed = mix_generate(model, tok, PROMPTS, [peft_name(i) for i in ids], [0.5, 0.5],
                         GenerationSettings(max_new_tokens=40, no_repeat_ngram=2))
    assert all(_repeats([t for t in m["response_ids"] if t != tok.eos_token_id], 2) == 0 for m in mixed)
    assert all(len(m["response_ids"]) > 10 for m in mixed)
