"""Benchmark: how soon the Compare page's first words show (issue 15), streamed vs waiting for the batch.

What the page does on Generate: every selected point answers one prompt in one batched call
(evaluate.answer_points, peft adapter_names per row) while a modpo.generate.RowStreamer collects each
row's tokens; the page redraws the columns from it about every 0.3 s. This measures, in one run, on
the family's base model with every adapter attached (loaded once, as the page's model service is):

  first words   seconds from the call to the moment every column holds at least one decoded word
  all done      seconds until the call returns (what a spinner shows before any word: the old page)

    python benchmarks/bench_stream.py --family checkpoints/demo --tokens 48 --repeats 3
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modpo import family as fam  # noqa: E402
from modpo.config import EvalSettings  # noqa: E402
from modpo.evaluate import adapters_of, answer_points, policy_of  # noqa: E402
from modpo.generate import RowStreamer  # noqa: E402
from modpo.models import attach_adapters, load_base  # noqa: E402


def one_call(model, tokenizer, family, points, prompt: str, settings) -> tuple[float, float]:
    """(seconds until every row shows a word, seconds until the call returns)."""
    streamer = RowStreamer(tokenizer.eos_token_id)
    worker = threading.Thread(target=answer_points, args=(model, tokenizer, family.spec, [prompt],
                                                          {p.id: policy_of(p) for p in points}, settings),
                              kwargs={"streamer": streamer})
    start = time.perf_counter()
    worker.start()
    first = None
    while worker.is_alive():
        worker.join(0.02)
        if first is None and streamer.rows and all(
                streamer.text(tokenizer, i).strip() for i in range(len(streamer.rows))):
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total), total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    family = fam.load_family(a.family)
    points = [p for p in family.points if p.kind in ("base", "modpo", "dpo-margin")]
    model, tokenizer = load_base(family.spec.base_model)
    model = attach_adapters(model, adapters_of(family, points))
    settings = EvalSettings(max_new_tokens=a.tokens, trim_capped=True)
    prompts = [s["prompt"] for s in family.point("base").eval["samples"]][:a.repeats + 1]
    one_call(model, tokenizer, family, points, prompts[0], settings)  # warm-up
    runs = [one_call(model, tokenizer, family, points, p, settings) for p in prompts[1:]]
    first, total = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"{len(points)} policies x 1 prompt, up to {a.tokens} new tokens, median of {len(runs)} prompts")
    print(f"  first words in every column  {first:6.2f} s")
    print(f"  whole batch done             {total:6.2f} s")
    print(f"  ratio (batch / first words)  {total / first:6.1f}x")


if __name__ == "__main__":
    main()
