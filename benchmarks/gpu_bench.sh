#!/usr/bin/env bash
# The GPU benchmark run, as one prepared script: the side-by-side K-adapter generation benchmark and the
# training-step benchmark (ours vs on-the-fly vs TRL), on a seeded random-weight 1.07B Llama
# (benchmarks/random_model.py: hidden 2048, 16 layers, 32 heads, 8 kv heads, MLP 8192, SmolLM2's
# tokenizer and vocabulary of 49,152), bf16 weights on cuda. Results land in $OUT (JSON per part,
# written as each part finishes) and on stdout; benchmarks/RESULTS.md section 7 reports one run.
#
# Made for a bare machine with no network (the project's device machine): nothing is downloaded.
# Prepared here, in the repo root, before the run (all three folders are ignored and carried):
#   .bench_tokenizer/  SmolLM2's tokenizer, saved from load_tokenizer("smollm2-135m-instruct") and
#                      packed (the carried tree has a 64 MiB limit) as .bench_tokenizer/tokenizer.tar.gz
#   .bench_src/        a snapshot of the committed library and these benchmarks, so the run does not
#                      pick up uncommitted edits of modpo/ in the working tree:
#                        rm -rf .bench_src && mkdir -p .bench_src/benchmarks &&
#                        git archive HEAD modpo | tar -x -C .bench_src && cp benchmarks/*.py .bench_src/benchmarks/ &&
#                        rm .bench_src/modpo/assets/tiny-llama/model.safetensors   # not needed, 0.7 MB
#   .whl/              wheels for the pinned versions the machine lacks (transformers 5.23.0,
#                      peft 0.21.2, trl 1.16.0, datasets 5.2.0, dill, multiprocess, jsonschema and its
#                      referencing, jsonschema-specifications, rpds-py; Python 3.12 wheels); without them,
#                      or if they do not import, the machine's own packages are used (and printed).
#   The tracked tree with the demo's adapters (about 77 MiB) is over the device's 64 MiB transfer limit,
#   and only checkpoints/demo/data is needed there: untrack the rest in the index for the run, restore after:
#     git rm -r -q --cached checkpoints/demo/adapters checkpoints/demo/conditioned &&
#     printf '/checkpoints/demo/adapters/\n/checkpoints/demo/conditioned/\n' >> .git/info/exclude
#     ... the run ...;  git reset -q -- checkpoints/demo && sed -i '\#^/checkpoints/demo/#d' .git/info/exclude
# Then, on the machine:   OUT=/some/dir bash benchmarks/gpu_bench.sh
# CPU check of the same path (tiny shape, a few steps):   BENCH_SHAPE=tiny OUT=/tmp/gb bash benchmarks/gpu_bench.sh
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_bench_out}
mkdir -p "$OUT"
export TQDM_DISABLE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export MODPO_CACHE=${MODPO_CACHE:-/tmp/modpo-bench-cache}  # the random model is built here once
SHAPE=${BENCH_SHAPE:-1b}
TOK=${BENCH_TOKENIZER:-.bench_tokenizer}
if [ -f "$TOK/tokenizer.tar.gz" ]; then
  mkdir -p /tmp/bench_tokenizer && tar xzf "$TOK/tokenizer.tar.gz" -C /tmp/bench_tokenizer && TOK=/tmp/bench_tokenizer
fi
SRC=.
[ -d .bench_src/modpo ] && SRC=.bench_src
PY=${PYTHON:-python3}

if [ "$SHAPE" = 1b ]; then
  DT=bfloat16; AUTOCAST=--bf16; WARM=3; STEPS=8; TOKENS=64; KS="4 8"; REPEATS=3
else  # CPU check: TrainingArguments refuses bf16 autocast without a GPU
  DT=bfloat16; AUTOCAST=; WARM=1; STEPS=1; TOKENS=4; KS="2"; REPEATS=1
fi

echo "== $(date -u +%FT%TZ) gpu_bench.sh shape=$SHAPE src=$SRC tokenizer=$TOK out=$OUT"
if [ "${BENCH_WHEELS:-1}" = 1 ] && ls .whl/*.whl >/dev/null 2>&1; then
  if $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; then
    if PYTHONPATH=/tmp/site $PY -c "import transformers, peft, trl, datasets, jsonschema" 2>"$OUT/wheel_import_error.txt"; then
      export PYTHONPATH=/tmp/site
    else
      echo "carried transformers does not import here (wheel_import_error.txt); retrying with the machine's transformers"
      rm -rf /tmp/site/transformers /tmp/site/transformers-*
      if PYTHONPATH=/tmp/site $PY -c "import transformers, peft, trl, datasets, jsonschema" 2>>"$OUT/wheel_import_error.txt"; then
        export PYTHONPATH=/tmp/site
      else
        echo "carried wheels unusable; the machine's own packages are used"
      fi
    fi
  else
    echo "pip could not install the carried wheels; the machine's own packages are used"
  fi
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv
$PY - <<'EOF'
import platform, sys
import torch
print("python", platform.python_version(), sys.executable, "| torch", torch.__version__, "| cuda",
      torch.cuda.is_available() and torch.cuda.get_device_name())
for name in ("transformers", "peft", "trl", "datasets", "accelerate", "tokenizers", "huggingface_hub"):
    try:
        m = __import__(name)
        print(f"  {name} {m.__version__} {m.__file__}")
    except Exception as e:
        print(f"  {name} missing: {type(e).__name__}: {e}")
EOF

status=0
run() {  # run NAME LIMIT_S CMD...: one part, bounded, its failure does not stop the others
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $(date -u +%T) $name (limit ${limit}s): $*"
  timeout "$limit" "$@"
  local rc=$?
  echo "== $name: rc $rc in $((SECONDS - t0)) s"
  [ $rc = 0 ] || status=1
}

run build 90 $PY $SRC/benchmarks/random_model.py "$SHAPE" --tokenizer "$TOK" --dtype $DT
# 1. side-by-side generation, K random LoRA adapters (warm-up calls before the first K only): routed
#    (modpo/routing.py), peft's adapter_names, one call per adapter, and the floor
run generation 170 $PY $SRC/benchmarks/bench_generation.py --random-config "$SHAPE" --tokenizer "$TOK" \
  --dtype $DT --tokens $TOKENS --k $KS --repeats $REPEATS --warmup 1 --warmup-first-k-only \
  --json "$OUT/generation.json"
# 2. training step at longer sequences (each response 8 of the data's joined: 345 tokens a sequence on
#    average), two rounds, the second in reverse order (the first run on the machine showed an order effect)
run train_long 150 $PY $SRC/benchmarks/bench_train_step.py --random-config "$SHAPE" --tokenizer "$TOK" \
  --dtype $DT $AUTOCAST --pairs 8 --warmup $WARM --steps $STEPS --max-length 512 --lengthen 8 --rounds 2 \
  --json "$OUT/train_long.json"
# 3. training step at the demo data's lengths (comparable with RESULTS.md section 1), two rounds
run train_short 120 $PY $SRC/benchmarks/bench_train_step.py --random-config "$SHAPE" --tokenizer "$TOK" \
  --dtype $DT $AUTOCAST --pairs 8 --warmup $WARM --steps $STEPS --max-length 512 --rounds 2 \
  --json "$OUT/train_short.json"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=memory.used,clocks.sm,temperature.gpu --format=csv
echo "== $(date -u +%T) done, status $status"
exit $status
