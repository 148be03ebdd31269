#!/usr/bin/env bash
# The GPU measurements of the README, stage by stage, each within one 10-minute call on a lent GPU machine.
# Run from the repository root after `source .device/setup.sh` (or anywhere the package, its dependencies and
# data/FashionMNIST/raw are at hand). Logs go to $OUT (default: gpu-results/).
#
#   bash benchmarks/gpu_campaign.sh probe    # precision variants, CUDA-only tests
#   bash benchmarks/gpu_campaign.sh table    # the eight configs, 10 epochs each, as a user runs them
#   FIT_TIMEOUT=560 bash benchmarks/gpu_campaign.sh table recipes/resnet   # a recipe (README "Beyond the book")
#   bash benchmarks/gpu_campaign.sh memory   # the 2 GiB cap: the book's DenseNet OOMs, densenet.yaml trains
#   bash benchmarks/gpu_campaign.sh speed LeNet ResNet ...   # the book's loop against ours
#   bash benchmarks/gpu_campaign.sh time_to_accuracy LeNet ResNet ...   # whole process to the book's accuracy
#   bash benchmarks/gpu_campaign.sh overhead # the framework's tax: bare loop, ours (chunked steps), ours with one
#                                            # step per batch (ours1), ours with the chunks' CUDA graph, lean
#   bash benchmarks/gpu_campaign.sh graph_tests  # the CUDA graph's tests (replay = eager chunks, resume, no sync)
#   bash benchmarks/gpu_campaign.sh first_call   # issue 24's first steps in one call of about 8 minutes: the CUDA
#                                                # tests, the tax with and without the graph, the speed; the recipes
#                                                # (table recipes/resnet, ~4 min) take the second call
#   bash benchmarks/gpu_campaign.sh resume   # a 10-epoch run stopped by SIGTERM mid-epoch and resumed
#   bash benchmarks/gpu_campaign.sh tests    # the whole test suite
#   bash benchmarks/gpu_campaign.sh sync_tests   # the CUDA tests that catch a host sync per step
# Results of earlier campaigns: benchmarks/results/.
set -uo pipefail
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 FASHION_MNIST_GZ_DIR=${FASHION_MNIST_GZ_DIR:-$PWD/.device/data}
py=${PYTHON:-python3}

stamp() { date +%s.%N; }

machine() {
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  lscpu | grep -m1 'Model name'
  $py -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
}

probe() {
  machine | tee "$OUT/probe.log"
  timeout 300 $py benchmarks/throughput.py --models LeNet ResNet DenseNet --repeats 1 \
    --variant 'fp32=--trainer.precision 32-true' --variant 'bf16=--trainer.precision bf16-mixed' \
    --variant 'cudnn_benchmark=--trainer.benchmark true' 2>&1 | tee -a "$OUT/probe.log"
  timeout 150 $py benchmarks/throughput.py --models LeNet --repeats 1 --no-book \
    --variant 'compile=--model.init_args.compile true' --variant 'fp32_compile=--trainer.precision 32-true --model.init_args.compile true' \
    2>&1 | tee -a "$OUT/probe.log"
  timeout 240 $py -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_memory.py tests/test_ddp.py \
    -k "cuda or gpu or sync_batchnorm" -x 2>&1 | tee "$OUT/probe-tests.log"
}

table() {
  machine | tee "$OUT/table.log"
  for config in "$@"; do
    start=$(stamp)
    log="$OUT/fit-${config//\//-}.log"  # recipes/resnet → fit-recipes-resnet.log
    timeout "${FIT_TIMEOUT:-200}" $py -m cnn_lightning fit --config "$config.yaml" > "$log" 2>&1
    code=$?
    end=$(stamp)
    printf '%s exit %s wall %.1f s: %s\n' "$config" "$code" "$(awk "BEGIN{print $end - $start}")" \
      "$(grep -E '^loss ' "$log" | tail -1)" | tee -a "$OUT/table.log"
    tar czf "$OUT/table-events.tgz" --exclude='*.ckpt' lightning_logs
  done
}

sync_tests() {
  timeout "${TESTS_TIMEOUT:-100}" $py -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    -k "never_syncs or divergence" 2>&1 | tail -150 > "$OUT/sync-tests.log"
}

graph_tests() {
  timeout "${TESTS_TIMEOUT:-200}" $py -m pytest -v -p no:cacheprovider tests/test_cuda.py \
    -k "graph or never_syncs" 2>&1 | tail -200 > "$OUT/graph-tests.log"
}

memory() {
  machine | tee "$OUT/memory.log"
  # The cap counts the caching allocator only; a real 2 GiB card also holds the CUDA context (~0.3-0.5 GiB).
  for cap in ${CAPS:-2 1.5}; do
    timeout "${MEMORY_TIMEOUT:-300}" $py benchmarks/memory.py --data-dir data --warmup 5 --steps 10 --cap-gib "$cap" \
      2>&1 | tee -a "$OUT/memory.log"
  done
}

speed() {
  machine | tee "$OUT/speed.log"
  timeout "${SPEED_TIMEOUT:-560}" $py benchmarks/throughput.py --repeats "${REPEATS:-3}" --models "$@" \
    --variant "${VARIANT:-bf16=--trainer.precision bf16-mixed}" \
    --variant 'one_step=--trainer.precision bf16-mixed --trainer.strategy.steps_per_batch 1' \
    --variant 'graphed=--trainer.precision bf16-mixed --trainer.strategy.cuda_graph true' 2>&1 | tee -a "$OUT/speed.log"
}

time_to_accuracy() {
  machine | tee "$OUT/time-to-accuracy.log"
  timeout "${TTA_TIMEOUT:-560}" $py benchmarks/time_to_accuracy.py --device cuda --data-dir data \
    --seeds ${SEEDS:-0 1 2} --models ${*:-LeNet LeNetBN} 2>&1 | tee -a "$OUT/time-to-accuracy.log"
}

overhead() {
  machine | tee "$OUT/overhead.log"
  timeout "${OVERHEAD_TIMEOUT:-560}" $py benchmarks/overhead.py --device cuda --data-dir data \
    --repeats "${REPEATS:-5}" --models "${@:-LeNet}" --sides bare ours ours1 graphed lean 2>&1 | tee -a "$OUT/overhead.log"
}

resume() {
  # Stop a 10-epoch run with SIGTERM in the middle of epoch 5, then resume it with the command it prints.
  machine | tee "$OUT/resume.log"
  config=${RESUME_CONFIG:-resnet}
  $py -m cnn_lightning fit --config "$config.yaml" --trainer.logger.init_args.save_dir lightning_logs \
    --trainer.logger.init_args.name resume --trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar \
    > "$OUT/resume-first.log" 2>&1 &  # tqdm prints "Epoch N" where rich stays silent without a terminal
  pid=$!
  until grep -q "Epoch 4" "$OUT/resume-first.log" 2>/dev/null; do
    sleep 0.5; kill -0 $pid 2>/dev/null || break
  done
  sleep "${RESUME_DELAY:-3}"
  kill -TERM $pid; wait $pid; echo "first part exit $?" | tee -a "$OUT/resume.log"
  command=$(grep -o 'python -m cnn_lightning fit --ckpt_path .*' "$OUT/resume-first.log" | tail -1)
  echo "printed: $command" | tee -a "$OUT/resume.log"
  ${command/python/$py} > "$OUT/resume-second.log" 2>&1
  echo "resumed exit $?: $(grep -E '^loss ' "$OUT/resume-second.log" | tail -1)" | tee -a "$OUT/resume.log"
  $py - <<'PY' | tee -a "$OUT/resume.log"
import torch
ckpt = torch.load("lightning_logs/resume/version_0/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
print("resumed run: global_step", ckpt["global_step"], "epoch", ckpt["epoch"])
PY
}

tests() {
  timeout 560 $py -m pytest -v -p no:cacheprovider -n "${WORKERS:-8}" --timeout 400 2>&1 | tee "$OUT/tests.log"
}

first_call() {
  machine | tee "$OUT/first-call.log"
  timeout 170 $py -m pytest -v -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -80 > "$OUT/cuda-tests.log"
  timeout 120 $py benchmarks/overhead.py --device cuda --data-dir data --repeats 3 --models LeNet \
    --sides bare ours graphed 2>&1 | tee -a "$OUT/first-call.log"
  timeout 150 $py benchmarks/throughput.py --repeats 1 --models LeNet ResNet \
    --variant 'bf16=--trainer.precision bf16-mixed' \
    --variant 'graphed=--trainer.precision bf16-mixed --trainer.strategy.cuda_graph true' 2>&1 | tee -a "$OUT/first-call.log"
}

stage=$1; shift
"$stage" "$@"
