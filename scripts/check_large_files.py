"""Refuse to commit files over a size limit (pre-commit hook): rebuilt adapters and caches grow the
repository for good. The shipped demo family's adapters and its precomputed pairs (which `train` needs
to add a point) are the exceptions, listed in ALLOWED."""
from __future__ import annotations

import argparse
import sys
from fnmatch import fnmatch
from pathlib import Path

ALLOWED = ["checkpoints/demo/adapters/*/adapter_model.safetensors", "checkpoints/demo/data/pairs-*/*.arrow",
           "checkpoints/demo/conditioned/*/conditioned.safetensors", "modpo/assets/tiny-llama/*"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--max-kb", type=int, default=1024)
    a = ap.parse_args(argv)
    too_big = [(f, Path(f).stat().st_size // 1024) for f in a.files
               if Path(f).is_file() and Path(f).stat().st_size > a.max_kb * 1024
               and not any(fnmatch(f, pattern) for pattern in ALLOWED)]
    for f, kb in too_big:
        print(f"{f}: {kb} KB is over the {a.max_kb} KB limit; keep model weights and caches out of git "
              "(see README, 'How the demo's adapters are versioned')", file=sys.stderr)
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
