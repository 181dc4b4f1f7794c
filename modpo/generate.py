"""Decoding: batched generation over several adapters at once, decoding-time mixing of adapters,
log-probs of given responses, and trimming of answers cut by the token cap.

One base model in memory; each row of a batch names its adapter ("__base__" for the base model), so K
adapters answer a prompt in one generate call instead of K: routing.py runs every row's adapter in each
LoRA layer at once (peft's `adapter_names` where a layer computes otherwise; `rows_run` picks).
A mix ("MOD", Shi et al. 2024) decodes from softmax(sum_i c_i log pi_i(. | x, y_<t)), all K source
policies in one forward over K copies of each prompt.
"""
from __future__ import annotations

import re
from contextlib import nullcontext

import torch

from .config import TRIM_RULE, TRIM_RULES, GenerationSettings  # noqa: F401 (re-exported)
from .data import prompt_ids, prompt_response, right_pad
from .loss import model_sequence_logps
from .routing import BASE, per_row_adapters, routable


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def rows_run(model, names: list[str] | None) -> tuple:
    """(context, extra forward kwargs) under which batch row i runs adapter names[i]: one pass over all
    adapters at once (routing.py) where every LoRA layer allows it, else peft's `adapter_names`."""
    if names is None or not _is_peft(model):
        return nullcontext(), {}
    if routable(model, names):
        return per_row_adapters(model, names), {}
    return nullcontext(), {"adapter_names": names}


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    return ids, mask


def repeated_ngram_bans(answer: list[int], n: int) -> list[int]:
    """The tokens that would complete, as answer's next token, an n-gram answer already holds: banning them
    keeps every token n-gram of an answer unique (no_repeat_ngram). Only the answer counts, so unlike
    transformers' no_repeat_ngram_size an answer may still quote its prompt (and its chat template)."""
    if n < 2 or len(answer) < n:
        return []
    prefix = answer[len(answer) - n + 1:]
    return sorted({answer[i + n - 1] for i in range(len(answer) - n + 1) if answer[i:i + n - 1] == prefix})


class NoRepeatInAnswer:
    """A transformers logits processor: in each row, the tokens repeated_ngram_bans names after the first
    prompt_len (the left-padded prompts') get -inf. Returns new scores (B, V): the given ones are generate's
    raw logits too (output_logits), which the log-probs of the row's own policy are taken from."""

    def __init__(self, n: int, prompt_len: int):
        self.n, self.prompt_len = n, prompt_len

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.clone()
        for row, answer in enumerate(input_ids[:, self.prompt_len:].tolist()):
            banned = repeated_ngram_bans(answer, self.n)
            if banned:
                scores[row, banned] = float("-inf")
        return scores


class RowStreamer:
    """Collects each row's new tokens as generate() makes them (transformers' streamer protocol, for a
    whole batch: TextStreamer takes one row only), so another thread can show answers as they grow.

    tokens[i]: the ids generated so far for row i of the whole call (up to and including EOS); rows:
    what each row is, when the caller sets it (answer_points: (point id, prompt)). done: set at the end.
    """

    def __init__(self, eos_token_id: int):
        self.eos, self.offset, self.skip_prompt = eos_token_id, 0, True
        self.tokens: dict[int, list[int]] = {}
        self.rows: list = []
        self.done = False

    def begin(self, offset: int) -> None:
        """A new batch starts at row offset; its first put() is the prompt, not new tokens."""
        self.offset, self.skip_prompt = offset, True

    def put(self, value) -> None:
        if self.skip_prompt:
            self.skip_prompt = False
            return
        for i, token in enumerate(value.reshape(-1).tolist()):  # (B,) one new token per row
            row = self.tokens.setdefault(self.offset + i, [])
            if not row or row[-1] != self.eos:
                row.append(token)

    def end(self) -> None:
        pass

    def text(self, tokenizer, row: int) -> str:
        return tokenizer.decode(self.tokens.get(row, []), skip_special_tokens=True).strip()


@torch.no_grad()
def generate(model, tokenizer, prompts: list[str], adapter_names: list[str] | None = None,
             settings: GenerationSettings = GenerationSettings(), batch_size: int = 32,
             progress: str | None = None, with_logps: bool = False, on_batch=None,
             streamer: RowStreamer | None = None) -> list[dict]:
    """Generate one response per row. adapter_names: one per prompt (peft names or "__base__").

    Returns [{"text", "response_ids"}] in row order; response_ids stop at (and include) EOS.
    progress: a description to show a progress bar over the batches (None: no bar).
    on_batch: called as on_batch(rows_done, rows_total) after each batch (UI progress, job status).
    with_logps: also "logp", the summed log-prob of response_ids under the row's own policy, taken
    from the logits generation computed anyway (untempered, before settings.no_repeat_ngram's bans;
    equals response_logps without a pass).
    streamer: a RowStreamer that receives every row's tokens as they are generated.
    """
    from tqdm.auto import tqdm

    if adapter_names is not None and len(adapter_names) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(adapter_names)} adapter names")
    if adapter_names is not None and not _is_peft(model) and set(adapter_names) != {BASE}:
        raise ValueError("adapter_names given but the model holds no adapters")
    model.eval()  # torch's eval mode: no dropout; routing.routable also requires it
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    torch.manual_seed(settings.seed)
    out: list[dict] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc=progress, disable=progress is None, unit="batch"):
        chunk = prompts[start:start + batch_size]
        ids, mask = left_pad([prompt_ids(tokenizer, p) for p in chunk], pad)
        kwargs = dict(max_new_tokens=settings.max_new_tokens, pad_token_id=pad, eos_token_id=eos,
                      do_sample=settings.temperature > 0, min_new_tokens=settings.min_new_tokens or None)
        if settings.temperature > 0:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        rows = None if adapter_names is None else adapter_names[start:start + batch_size]
        routed, routed_kwargs = rows_run(model, rows)
        kwargs.update(routed_kwargs)
        if with_logps:
            kwargs.update(output_logits=True, return_dict_in_generate=True)
        if settings.no_repeat_ngram:
            from transformers import LogitsProcessorList
            kwargs["logits_processor"] = LogitsProcessorList([NoRepeatInAnswer(settings.no_repeat_ngram, ids.shape[1])])
        if streamer is not None:
            streamer.begin(start)
            kwargs["streamer"] = streamer
        with routed:
            generated = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        sequences = generated.sequences if with_logps else generated
        new_tokens = sequences[:, ids.shape[1]:]
        logps = _generated_logps(generated.logits, new_tokens, eos) if with_logps else None
        for i, row in enumerate(new_tokens.tolist()):
            if eos in row:
                row = row[:row.index(eos) + 1]
            out.append({"text": tokenizer.decode(row, skip_special_tokens=True).strip(), "response_ids": row})
            if with_logps:
                out[-1]["logp"] = float(logps[i])
        if on_batch:
            on_batch(len(out), len(prompts))
    if streamer is not None:
        streamer.done = True
    return out


def _generated_logps(step_logits: tuple, new_tokens: torch.Tensor, eos: int) -> torch.Tensor:
    """Summed log-prob of each row's tokens up to and including its first EOS. step_logits: T x (B, V)
    raw logits; new_tokens: (B, T). Returns (B,)."""
    total = torch.zeros(new_tokens.shape[0])
    alive = torch.ones(new_tokens.shape[0], dtype=torch.bool)
    for t, logits in enumerate(step_logits):
        token = new_tokens[:, t].cpu()
        step = logits.float().log_softmax(-1).cpu().gather(1, token[:, None]).squeeze(1)
        total += torch.where(alive, step, torch.zeros_like(step))
        alive &= token != eos
    return total


@torch.no_grad()
def response_logps(model, tokenizer, prompts: list[str], response_ids: list[list[int]],
                   adapter_names: list[str] | None = None, batch_size: int = 32) -> torch.Tensor:
    """Summed log-prob of each given response under its row's adapter. Returns (N,)."""
    model.eval()  # torch's eval mode: no dropout; routing.routable also requires it
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id
    out = []
    for start in range(0, len(prompts), batch_size):
        rows = [prompt_response(prompt_ids(tokenizer, p), r)
                for p, r in zip(prompts[start:start + batch_size], response_ids[start:start + batch_size])]
        batch = right_pad([r[0] for r in rows], [r[1] for r in rows], pad)
        ids, mask, lab = batch["input_ids"], batch["attention_mask"], batch["labels"]
        routed, kwargs = rows_run(model, None if adapter_names is None else adapter_names[start:start + batch_size])
        with routed:
            out.append(model_sequence_logps(model, ids.to(device), mask.to(device), lab.to(device), **kwargs).cpu())
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def mix_generate(model, tokenizer, prompts: list[str], adapter_names: list[str], coefficients: list[float],
                 settings: GenerationSettings = GenerationSettings()) -> list[dict]:
    """Decode from softmax(sum_i c_i log pi_i(. | x, y_<t)) for each prompt.

    One forward per step over K copies of the batch (row b*K + i runs adapter i on prompt b), with a
    KV cache. Returns [{"text", "response_ids", "mixed_logp"}]; mixed_logp is the summed log-prob of
    the response under the mixed policy (before settings.no_repeat_ngram's bans, as generate's logp).
    """
    k = len(adapter_names)
    if k == 0 or len(coefficients) != k:
        raise ValueError(
            f"give one coefficient per adapter: {len(adapter_names)} adapters, {len(coefficients)} coefficients"
        )
    coef = torch.tensor(coefficients, dtype=torch.float32)
    if (coef < 0).any() or abs(float(coef.sum()) - 1) > 1e-6:
        raise ValueError(f"mixing coefficients must be >= 0 and sum to 1, got {coefficients}")
    model.eval()  # torch's eval mode: no dropout; routing.routable also requires it
    device = next(model.parameters()).device
    ids, mask = left_pad([prompt_ids(tokenizer, p) for p in prompts], tokenizer.pad_token_id)  # (B, T)
    b = ids.shape[0]
    ids, mask = ids.repeat_interleave(k, 0).to(device), mask.repeat_interleave(k, 0).to(device)  # (B*K, T)
    names = adapter_names * b
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    routed, routed_kwargs = rows_run(model, names)
    with routed:
        return _mix_decode(model, tokenizer, settings, coef, ids, mask, positions, b, k, routed_kwargs)


def _mix_decode(model, tokenizer, settings, coef, ids, mask, positions, b, k, routed_kwargs) -> list[dict]:
    """mix_generate's decoding loop over the (B*K, T) copies, inside its per-row adapter context."""
    device, eos, pad = ids.device, tokenizer.eos_token_id, tokenizer.pad_token_id
    generator = torch.Generator().manual_seed(settings.seed)
    past, step_ids = None, ids
    out_tokens = torch.full((b, settings.max_new_tokens), pad, dtype=torch.long)
    logps = torch.zeros(b)
    done = torch.zeros(b, dtype=torch.bool)
    for t in range(settings.max_new_tokens):
        out = model(input_ids=step_ids, attention_mask=mask, past_key_values=past, use_cache=True,
                    position_ids=positions[:, -step_ids.shape[1]:], **routed_kwargs)
        past = out.past_key_values
        token_logps = out.logits[:, -1, :].float().log_softmax(-1).cpu().view(b, k, -1)  # (B, K, V)
        mixed = (coef[None, :, None] * token_logps).sum(1).log_softmax(-1)  # (B, V)
        allowed = mixed if not settings.no_repeat_ngram else NoRepeatInAnswer(settings.no_repeat_ngram, 0)(
            out_tokens[:, :t], mixed)
        if settings.temperature > 0:
            probs = (allowed / settings.temperature).softmax(-1)
            next_tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        else:
            next_tokens = allowed.argmax(-1)
        next_tokens = torch.where(done, torch.full_like(next_tokens, pad), next_tokens)
        logps += torch.where(done, 0.0, mixed.gather(1, next_tokens[:, None]).squeeze(1))
        out_tokens[:, t] = next_tokens
        done |= next_tokens == eos
        if done.all():
            break
        step_ids = next_tokens.repeat_interleave(k).to(device)[:, None]
        mask = torch.cat([mask, torch.ones((mask.shape[0], 1), dtype=mask.dtype, device=device)], 1)
        positions = torch.cat([positions, positions[:, -1:] + 1], 1)
    results = []
    for i in range(b):
        row = out_tokens[i].tolist()
        row = row[:row.index(eos) + 1] if eos in row else [x for x in row[:t + 1]]
        results.append({"text": tokenizer.decode(row, skip_special_tokens=True).strip(), "response_ids": row,
                        "mixed_logp": float(logps[i])})
    return results


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
# rule 2: a list item's number ("\n\n1.", "- 2.", "tips: 1.", "**3.") ends no sentence; rule 1 took it for one,
# so 9% of the first demo's trimmed answers ended on a dangling "1." (TRIM_RULES in config.py)
_LIST_NUMBER = re.compile(r"(?:(?:^|\n)[\s*#>-]*|[:.!?][\s*#>-]+)\d{1,3}\.$")


def trim_to_sentence(text: str, rule: int = TRIM_RULE) -> str | None:
    """A response cut by the token cap, trimmed to its last complete sentence (None: no sentence ended).

    Training appends EOS to every response, so a response cut mid-sentence would teach the model to
    stop mid-sentence; trimmed, it is a prefix the model could have ended on. Under rule 2 (the default)
    the number opening a list item is no sentence end: "Tips:\n\n1." is not an answer to stop at.
    """
    if rule not in TRIM_RULES:
        raise ValueError(f"unknown trim rule {rule!r}: one of {sorted(TRIM_RULES)}")
    ends = [m for m in _SENTENCE_END.finditer(text)
            if rule == 1 or not (m.group()[0] == "." and _LIST_NUMBER.search(text, 0, m.start() + 1))]
    return text[:ends[-1].end()].strip() if ends else None


def trim_capped(texts: list[str], response_ids: list[list[int]], eos_token_id: int,
                rule: int = TRIM_RULE) -> list[str]:
    """Each response that hit the token cap (no EOS in its ids) trimmed to its last complete sentence;
    kept whole when no sentence ended. Responses that ended by themselves are untouched."""
    return [(trim_to_sentence(t, rule) or t) if eos_token_id not in ids else t for t, ids in zip(texts, response_ids)]
