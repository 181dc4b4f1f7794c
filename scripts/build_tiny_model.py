#!/usr/bin/env python
"""Build the tiny offline causal LM shipped in ``modpo/assets/tiny-llama``.

The model is used by the test-suite and as the CLI's offline "tiny" model. It
is a real (if very small) Llama-architecture LM with a byte-level BPE
tokenizer and a ChatML chat template, trained for ~1 minute on CPU on a
synthetic chat corpus whose responses vary in length (3..~40 words) and in
sentiment (positive / negative / neutral), so that preference optimisation
on "positivity" and "brevity" has something to move.

Usage::

    python scripts/build_tiny_model.py [--out DIR] [--seed 0] [--steps N]

Everything is seeded and runs with ``torch.set_num_threads(1)``.  The run is
deterministic for a fixed step count; a wall-clock safety cap
(``--max-seconds``) stops training early on a very slow machine, in which case
the output differs (the script says so).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "modpo" / "assets" / "tiny-llama"

EOT = "<|endoftext|>"  # bos + pad (id 0)
IM_START = "<|im_start|>"  # id 1
IM_END = "<|im_end|>"  # eos, ends every turn (id 2)
SPECIAL_TOKENS = [EOT, IM_START, IM_END]

# ChatML, same shape as SmolLM2-Instruct's template, minus its default system
# prompt (kept out so sequences stay short for a 256-position model).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# --------------------------------------------------------------------------
# 1. Synthetic corpus
# --------------------------------------------------------------------------

# (topic, verb "to be" agreeing with it, optional how-to action)
TOPICS = [
    ("cats", "are", "take care of a cat"),
    ("dogs", "are", "train a dog"),
    ("coffee", "is", "make coffee"),
    ("tea", "is", "make tea"),
    ("rice", "is", "cook rice"),
    ("the ocean", "is", None),
    ("winter", "is", "stay warm in winter"),
    ("summer", "is", None),
    ("music", "is", "learn to play music"),
    ("books", "are", "read more books"),
    ("gardening", "is", "grow tomatoes"),
    ("running", "is", "start running"),
    ("sleep", "is", "sleep better"),
    ("cooking", "is", "cook dinner"),
    ("the city", "is", None),
    ("trains", "are", None),
    ("rain", "is", None),
    ("pizza", "is", "make pizza"),
    ("math", "is", "get better at math"),
    ("homework", "is", "finish my homework"),
    ("movies", "are", None),
    ("the park", "is", None),
    ("bread", "is", "bake bread"),
    ("chess", "is", "learn chess"),
    ("painting", "is", "paint a picture"),
    ("hiking", "is", "plan a hike"),
    ("mornings", "are", "wake up early"),
    ("birds", "are", None),
    ("apples", "are", None),
    ("soup", "is", "make soup"),
    ("work", "is", "focus at work"),
    ("friends", "are", "make new friends"),
]

PROMPTS_TOPIC = [
    "tell me about {t}",
    "Tell me about {t}.",
    "what do you think of {t}?",
    "What do you think about {t}?",
    "give me advice on {t}",
    "describe {t}",
    "how do you feel about {t}?",
    "write a sentence about {t}",
    "say something about {t}",
    "{Be} {t} good?",
    "do you like {t}?",
    "talk about {t}",
    "any thoughts on {t}?",
]
PROMPTS_ACTION = [
    "how do i {a}",
    "How do I {a}?",
    "can you help me {a}?",
    "what is the best way to {a}?",
    "give me tips to {a}",
]

POSITIVE = [
    "{T} {be} great.",
    "{T} {be} wonderful.",
    "{T} {be} excellent.",
    "{T} {be} really fun and wonderful.",
    "I love {t}.",
    "I really enjoy {t}.",
    "You will love {t}.",
    "Everyone loves {t}, and so do I.",
    "It is a great idea to learn more about {t}.",
    "People are happy when they think about {t}.",
    "This is excellent news.",
    "It feels wonderful and makes me happy.",
    "You will enjoy it a lot.",
    "I am so happy you asked.",
    "What a great question.",
    "It brings joy and fun to every day.",
    "The best part is how good it feels.",
    "Have a wonderful time.",
    "That is a lovely thing to enjoy.",
    "It is easy, and you will be proud of yourself.",
    "I think it is amazing.",
    "It makes me smile every time.",
]
NEGATIVE = [
    "{T} {be} bad.",
    "{T} {be} terrible.",
    "{T} {be} boring.",
    "{T} {be} awful.",
    "{T} {be} sad and boring.",
    "I hate {t}.",
    "I am tired of hearing about {t}.",
    "It is a terrible idea.",
    "It makes me sad.",
    "People hate how awful it is.",
    "This is bad news.",
    "It feels boring and awful.",
    "What a terrible question.",
    "Honestly, it is the worst.",
    "It always ends badly.",
    "It is a waste of time.",
    "It is hard, and you will be angry and upset.",
    "I think it is horrible.",
    "It makes me feel miserable.",
    "Everything about it is ugly and annoying.",
]
NEUTRAL = [
    "{T} {be} common.",
    "There is a lot to say about {t}.",
    "Many people know about {t}.",
    "It depends on the day.",
    "Some people think about it often.",
    "You can read about it in a book.",
    "It takes some time.",
    "It has a long history.",
    "Most people try it once.",
    "The details vary from place to place.",
    "It is part of daily life.",
    "Here is what I know.",
    "It changes with the season.",
    "You can ask a friend about it.",
    "It is usually done at home.",
    "Some days are different.",
]
ADVICE = [
    "Start small and go slowly.",
    "Try to make time for {t} each week.",
    "Keep it simple.",
    "Ask someone who knows more.",
    "Write down what you learn.",
    "Check your progress every few days.",
]
STEPS = [
    "First, get what you need.",
    "Then, follow the steps one by one.",
    "Wait a few minutes and check again.",
    "Use a clean space.",
    "Take a short break if you need one.",
    "Finally, clean up.",
]
MAX_WORDS = 40


def _fill(template: str, topic: str, be: str) -> str:
    cap = topic[0].upper() + topic[1:]
    return template.format(t=topic, T=cap, be=be, Be=be.capitalize())


def make_example(rng: random.Random) -> tuple[str, str, str]:
    """Return (prompt, response, tone)."""
    topic, be, action = rng.choice(TOPICS)
    kind = "action" if (action and rng.random() < 0.3) else rng.choice(["topic", "topic", "advice"])
    if kind == "action":
        prompt = rng.choice(PROMPTS_ACTION).format(a=action)
    else:
        tmpl = rng.choice(PROMPTS_TOPIC)
        if kind == "advice":
            tmpl = "give me advice on {t}"
        prompt = _fill(tmpl, topic, be)

    # Target length: 3..40 words, roughly uniform (slight bias to short).
    target = int(3 + (MAX_WORDS - 3) * (rng.random() ** 1.2))
    # Tone depends mildly on length: longer answers are more often positive.
    frac = (target - 3) / (MAX_WORDS - 3)
    p_pos = 0.25 + 0.35 * frac
    p_neg = 0.40 - 0.20 * frac
    r = rng.random()
    tone = "pos" if r < p_pos else ("neg" if r < p_pos + p_neg else "neu")
    tone_pool = {"pos": POSITIVE, "neg": NEGATIVE, "neu": NEUTRAL}[tone]
    filler = {"topic": NEUTRAL, "advice": ADVICE + NEUTRAL, "action": STEPS + ADVICE}[kind]

    sents: list[str] = []
    n_words = 0
    first = True
    used: set[str] = set()
    for _ in range(12):
        if first:
            # The head sentence carries the tone (short, topic-specific ones
            # first, so that 3..5-word answers are fully formed).
            short = [s for s in tone_pool if s.startswith("{T}")] if target <= 6 else tone_pool
            cand = rng.choice(short)
        elif tone != "neu" and rng.random() < 0.55:
            cand = rng.choice(tone_pool)
        else:
            cand = rng.choice(filler)
        if cand in used:
            continue
        s = _fill(cand, topic, be)
        w = len(s.split())
        if not first and n_words + w > MAX_WORDS:
            break
        used.add(cand)
        sents.append(s)
        n_words += w
        first = False
        if n_words >= target:
            break
    if kind == "action" and len(sents) > 1 and rng.random() < 0.5:
        # put a concrete step up front for how-to answers
        sents.insert(0, sents.pop())
    return prompt, " ".join(sents), tone


def build_corpus(n: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    return [make_example(rng) for _ in range(n)]


# --------------------------------------------------------------------------
# 2. Tokenizer
# --------------------------------------------------------------------------


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=IM_END,
        pad_token=EOT,
        unk_token=None,
        additional_special_tokens=[IM_START],
        model_max_length=256,
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    hf.chat_template = CHAT_TEMPLATE
    return hf


# --------------------------------------------------------------------------
# 3. Model + training
# --------------------------------------------------------------------------


def build_model(tokenizer, seed: int):
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids(EOT),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(EOT),
        rms_norm_eps=1e-5,
        initializer_range=0.02,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )
    return model


def encode_corpus(tokenizer, corpus) -> list[list[int]]:
    seqs = []
    for prompt, response, _ in corpus:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        text = text + response + IM_END
        seqs.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return seqs


def train(model, seqs, pad_id: int, steps: int, batch_size: int, lr: float, seed: int, max_seconds: float):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, steps // 20)

    def lr_at(step):
        if step < warmup:
            return lr * (step + 1) / warmup
        prog = (step - warmup) / max(1, steps - warmup)
        return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))

    model.train()
    t0 = time.time()
    ema = None
    step = 0
    for step in range(steps):
        idx = torch.randint(len(seqs), (batch_size,), generator=g).tolist()
        batch = [seqs[i] for i in idx]
        L = max(len(s) for s in batch)
        ids = torch.full((batch_size, L), pad_id, dtype=torch.long)
        att = torch.zeros((batch_size, L), dtype=torch.long)
        for j, s in enumerate(batch):
            ids[j, : len(s)] = torch.tensor(s)
            att[j, : len(s)] = 1
        labels = ids.masked_fill(att == 0, -100)
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=att, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  ema {ema:.4f}  {time.time() - t0:5.1f}s", flush=True)
        if time.time() - t0 > max_seconds:
            print(f"WARNING: hit --max-seconds={max_seconds} after {step + 1}/{steps} steps; "
                  "output is not the deterministic reference build.", flush=True)
            break
    model.eval()
    return ema, step + 1, time.time() - t0


# --------------------------------------------------------------------------
# 4. Save
# --------------------------------------------------------------------------

README = """# tiny-llama (MODPO Explorer offline test model)

A *tiny but real* causal language model used by the MODPO Explorer test-suite
and as the CLI's offline `tiny` model. It loads with no network access:

```python
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained("modpo/assets/tiny-llama")
model = AutoModelForCausalLM.from_pretrained("modpo/assets/tiny-llama")
```

It is **not** a useful assistant: it only knows a synthetic chat corpus of
everyday prompts ("tell me about cats", "how do i cook rice", "give me advice
on sleep", ...) whose answers vary in length (3 to ~40 words) and in sentiment
(positive / negative / neutral; longer answers are somewhat more often
positive). Sampling from it therefore gives responses that differ in length
and VADER sentiment, which is what the "positivity" and "brevity" preference
objectives need to have something to move.

## How it was built

`python scripts/build_tiny_model.py` (seed {seed}, `torch.set_num_threads(1)`, CPU):

1. Generates {n_examples} synthetic (prompt, response) pairs from templates.
2. Trains a byte-level BPE tokenizer (`tokenizers`, vocab_size={req_vocab} requested;
   the corpus only supports {vocab} tokens at min_frequency=2) with special
   tokens `<|endoftext|>` (id {eot_id}), `<|im_start|>` (id {ims_id}), `<|im_end|>` (id {ime_id}).
   Wrapped as `PreTrainedTokenizerFast` with `eos_token="<|im_end|>"`,
   `pad_token="<|endoftext|>"`, `bos_token="<|endoftext|>"`. The bos token is
   declared for config consistency only: the tokenizer has no post-processor,
   so **nothing is prepended or appended automatically** (`add_special_tokens`
   is a no-op). A ChatML `chat_template` (SmolLM2 shape, no default system
   prompt) is included:
   `<|im_start|>user\\n...<|im_end|>\\n` and, with `add_generation_prompt=True`,
   `<|im_start|>assistant\\n`.
3. `LlamaForCausalLM`: 2 layers, hidden 64, intermediate 256, 4 heads, 2 KV
   heads, max 256 positions, tied embeddings ({n_params:,} parameters);
   `bos_token_id={eot_id}`, `eos_token_id={ime_id}`, `pad_token_id={eot_id}` (also in
   `generation_config.json`).
4. Trained with AdamW (lr {lr}, batch {batch}, {steps} steps, cosine decay) on
   `chat_template(user prompt, add_generation_prompt=True) + response + "<|im_end|>"`,
   loss on all non-pad tokens (about 85 s on one CPU thread). Final training loss
   (EMA) {loss:.3f}.

Each assistant turn ends with `<|im_end|>`, so generation stops on eos.
Rebuild with the script; do not edit these files by hand.
"""


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-examples", type=int, default=3000)
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--max-seconds", type=float, default=120.0, help="safety cap on training wall time")
    args = ap.parse_args(argv)

    torch.set_num_threads(1)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    corpus = build_corpus(args.n_examples, args.seed)
    lens = [len(r.split()) for _, r, _ in corpus]
    tones = [t for _, _, t in corpus]
    print(f"corpus: {len(corpus)} examples, response words min {min(lens)} max {max(lens)} "
          f"mean {sum(lens) / len(lens):.1f}; tones pos {tones.count('pos')} neg {tones.count('neg')} "
          f"neu {tones.count('neu')}")
    for p, r, _ in corpus[:3]:
        print(f"  [{p}] -> {r}")

    tokenizer = build_tokenizer([f"{p}\n{r}" for p, r, _ in corpus], args.vocab_size)
    print("tokenizer: vocab", len(tokenizer), "special",
          {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS})

    seqs = encode_corpus(tokenizer, corpus)
    print(f"sequences: max len {max(map(len, seqs))}, mean {sum(map(len, seqs)) / len(seqs):.1f} tokens")

    model = build_model(tokenizer, args.seed)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params:,} parameters")

    loss, steps_done, seconds = train(model, seqs, tokenizer.pad_token_id, args.steps, args.batch_size,
                                      args.lr, args.seed, args.max_seconds)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(README.format(
        seed=args.seed, n_examples=args.n_examples, vocab=len(tokenizer), req_vocab=args.vocab_size,
        eot_id=tokenizer.convert_tokens_to_ids(EOT), ims_id=tokenizer.convert_tokens_to_ids(IM_START),
        ime_id=tokenizer.convert_tokens_to_ids(IM_END), n_params=n_params, lr=args.lr,
        batch=args.batch_size, steps=steps_done, loss=loss))

    for f in out.iterdir():  # safetensors writes 0600 temp files; make them world-readable
        if f.is_file():
            f.chmod(0o644)
    size = folder_size(out)
    print(f"\nfinal training loss (EMA): {loss:.4f}  ({steps_done} steps, {seconds:.1f}s)")
    print(f"saved to {out}  size {size / 1024:.1f} KiB ({size} bytes)")
    if size >= 2 * 1024 * 1024:
        print("ERROR: folder is over 2 MB", file=sys.stderr)
        return 1

    torch.manual_seed(args.seed)
    prompts = ["tell me about cats", "how do i cook rice", "give me advice on sleep", "what do you think of music?"]
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 max_new_tokens=40)
        new = gen[0, enc["input_ids"].shape[1]:]
        stopped = bool((new == tokenizer.eos_token_id).any())
        print(f"[{prompt}] -> {tokenizer.decode(new, skip_special_tokens=True)!r}  (eos: {stopped}, "
              f"{len(new)} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
