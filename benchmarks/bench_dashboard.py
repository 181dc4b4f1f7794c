"""Dashboard speed: server-side time of a Front page run vs. family size, and Compare-page
generation for K adapters in one batch vs. one generate call per adapter.

    python benchmarks/bench_dashboard.py [--sizes 10 100 1000] [--family checkpoints/demo] [--k 4]

Prints each measurement and the ratios, measured side by side in one run.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from modpo import family as fam  # noqa: E402


def synthetic_family(root: Path, n: int, seed: int = 0) -> None:
    """n evaluated adapters on a made-up concave front (small real safetensors files)."""
    from safetensors.numpy import save_file  # numpy, not torch: the front page must not need torch
    rng = np.random.default_rng(seed)
    spec = fam.FamilySpec(
        "bench",
        "tiny",
        [fam.Objective("a", "maximize", "words"), fam.Objective("b", "maximize", "brevity")],
        "a",
        0.1,
        {"b": {"kind": "explicit", "scorer": "brevity", "scale": 0.01}},
    )
    fam.write_meta(fam.point_dir(root, "base"), {"id": "base", "kind": "base", "base_model": "tiny"})
    fam.write_eval(fam.point_dir(root, "base"), {"id": "base", "objectives": {"a": {"mean": 0, "stderr": 0.1, "n": 64},
                                                                 "b": {"mean": 0, "stderr": 0.1, "n": 64}}})
    for i in range(n):
        w = (i + 1) / (n + 1)
        d = fam.adapter_dir(root, f"w-{i:04d}")
        d.mkdir(parents=True)
        save_file({"lora_A": np.zeros((8, 8), dtype=np.float32)}, str(d / "adapter_model.safetensors"))
        (d / "adapter_config.json").write_text('{"r": 8}')  # the rank the safetensors check compares with
        fam.write_meta(d, {"id": d.name, "kind": "modpo", "base_model": "tiny", "weights": {"a": w, "b": 1 - w},
                           "steps": 48, "loss_curve": [[s, 0.69] for s in range(48)]})
        a, b = np.sqrt(w) + rng.normal(0, 0.02), np.sqrt(1 - w) + rng.normal(0, 0.02)
        fam.write_eval(d, {"id": d.name, "objectives": {"a": {"mean": a, "stderr": 0.02, "n": 64},
                                                        "b": {"mean": b, "stderr": 0.02, "n": 64}},
                           "kl": {"mean": 1.0, "stderr": 0.1}, "samples": [{"prompt": "p", "response": "r" * 200,
                                                                             "scores": {"a": a, "b": b}}] * 24})
    fam.write_family(root, spec)


def front_page_script():
    from dashboard import front_page
    front_page.render()


def bench_front(sizes: list[int], repeats: int = 5) -> None:
    from streamlit.testing.v1 import AppTest
    print(f"{'adapters':>9s} {'first run s':>12s} {'warm run s (median)':>20s} {'torch imported':>15s}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            root = Path(tmp) / f"n{n}"
            synthetic_family(root / "bench", n)
            os.environ["MODPO_CHECKPOINTS"] = str(root)
            at = AppTest.from_function(front_page_script, default_timeout=300)
            at.session_state["family"] = "bench"
            t = time.perf_counter()
            at.run()
            first = time.perf_counter() - t
            assert not at.exception, at.exception
            warm = []
            for _ in range(repeats):
                t = time.perf_counter()
                at.run()
                warm.append(time.perf_counter() - t)
            print(f"{n:>9d} {first:>12.3f} {statistics.median(warm):>20.3f} {str('torch' in sys.modules):>15s}")


def bench_generation(family_dir: Path, k: int, repeats: int = 3, max_new_tokens: int = 32) -> None:
    from modpo.evaluate import adapters_of
    from modpo.generate import GenerationSettings, generate
    from modpo.models import attach_adapters, load_base, peft_name
    family = fam.load_family(family_dir)
    points = [p for p in family.points if p.kind == "modpo"][:k]
    model, tok = load_base(family.spec.base_model)
    model = attach_adapters(model, adapters_of(family, points))
    names = [peft_name(p.id) for p in points]
    prompt = "Give me three ideas for a rainy Sunday afternoon."
    settings = GenerationSettings(max_new_tokens=max_new_tokens)
    def one_batch():
        generate(model, tok, [prompt] * len(names), names, settings)

    def per_adapter():
        for n in names:
            generate(model, tok, [prompt], [n], settings)

    one_batch()  # warm-up
    times = {}
    for label, fn in (("one batch (adapter_names)", one_batch), ("one call per adapter", per_adapter)):
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        times[label] = statistics.median(runs)
        print(
            f"{label:>28s}: {times[label]:.2f} s (median of {repeats}) for K={len(names)} on {family.spec.base_model}"
        )
    print(f"speed-up of one batch over one call per adapter: "
          f"{times['one call per adapter'] / times['one batch (adapter_names)']:.2f}x")


def compare_page_script():
    from dashboard import compare_page
    compare_page.render()


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bench_app_memory(family_dir: Path, k: int) -> None:
    """Peak RSS of the app process (AppTest: the server's own code) after the Compare page generated
    for K selected adapters of the family: the front page first, then Compare with a fresh sample."""
    from streamlit.testing.v1 import AppTest
    family = fam.load_family(family_dir)
    ids = [p.id for p in family.points if p.kind == "modpo"][:k]
    os.environ["MODPO_CHECKPOINTS"] = str(family_dir.parent)
    before = _peak_rss_mib()
    front = AppTest.from_function(front_page_script, default_timeout=300)
    front.session_state["family"] = family_dir.name
    front.run()
    after_front = _peak_rss_mib()
    at = AppTest.from_function(compare_page_script, default_timeout=600)
    at.session_state["family"] = family_dir.name
    at.session_state["selection"] = {family_dir.name: {"selected": ids, "seen": {}}}
    at.run()
    at.radio(key="decoding").set_value("sample").run()
    t = time.perf_counter()
    at.button(key="generate").click().run()
    took = time.perf_counter() - t
    assert not at.exception, at.exception
    print(f"app peak RSS: {before:.0f} MiB at start, {after_front:.0f} MiB after the Front page, "
          f"{_peak_rss_mib():.0f} MiB after Compare generated for base + {len(ids)} adapters of "
          f"{family.spec.base_model} ({took:.1f} s incl. model load); {len(at.text)} responses shown")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--family", default=str(REPO / "checkpoints" / "demo"))
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--memory", action="store_true", help="only the app's peak memory on --family")
    args = parser.parse_args()
    if args.memory:
        bench_app_memory(Path(args.family).resolve(), args.k)
        sys.exit(0)
    bench_front(args.sizes)
    if not args.skip_generation:
        bench_generation(Path(args.family), args.k)
