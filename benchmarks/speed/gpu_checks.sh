#!/usr/bin/env bash
# Every GPU check of the speed issue in one call, for a session that has the device machine (H100/H200, CuPy
# preinstalled, no network). From the repository root:
#
#     bash benchmarks/speed/gpu_checks.sh "$OUT"
#
# It writes into OUTDIR (default ./gpu_out): device.txt (card, driver, versions, and whether the suite's [cupy] cases
# ran on the real CuPy: tests/conftest.py uses its CuPy stand-in only where no real CuPy sees a device), pytest.txt
# (the whole default suite), lesson10.txt + 10_gpu/results.json (the GPU lesson at full length: parity, timing),
# cli.txt (minigan train/sample/evaluate --backend cupy), bench.txt + bench.json (CuPy vs PyTorch CUDA eager, one
# GAN.train_step, seed and mlp archs, batch 128-8192), and, when the time left allows, cpu_bench.txt + cpu_bench.json:
# the CPU step on the machine's own processor pinned to 2 cores (a second machine class for RESULTS.md when that
# processor has AVX-512; lscpu.txt says which it is). Packages the machine lacks travel as wheels in .whl/ (named
# in the run's carry list), installed with --target since the machine has no network.
set -u
OUT=${1:-gpu_out}
PY=${PYTHON:-python3}  # on the device machine, python3 is the Python that holds CuPy and PyTorch
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    $PY -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, \
'cupy', cupy.__version__, cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())" 2>&1
    $PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
    grep -m1 "model name" /proc/cpuinfo; grep -m1 -o -w "avx512f" /proc/cpuinfo || echo "no avx512f"
} > "$OUT/device.txt"
lscpu > "$OUT/lscpu.txt" 2>&1

# Packages the machine lacks (pooch, say) travel as wheels in .whl/ (see the device notes); no network there.
if ls .whl/*.whl > /dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl > "$OUT/pip.txt" 2>&1 \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
$PY -c "import pytest, hypothesis, matplotlib, tqdm, pooch" 2>> "$OUT/device.txt" || echo "MISSING deps: see device.txt"
$PY -c "import sys; sys.path.insert(0, 'tests'); import conftest; print('cupy cases on', 'the STAND-IN' if \
conftest.CUPY_IS_STANDIN else 'the real GPU')" >> "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

# 1. the test suite, its [cupy] cases on the real GPU (pytest-xdist spreads it over the cores when installed)
XDIST=$($PY -c "import xdist" 2> /dev/null && echo "-n 8")
timeout "${PYTEST_TIMEOUT:-200}" $PY -m pytest -q -p no:cacheprovider -ra $XDIST > "$OUT/pytest.txt" 2>&1
echo "pytest exit $?: $(tail -n 1 "$OUT/pytest.txt")"
grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -n 20

# 2. the tutorials' GPU lesson at full length: parity with NumPy and timing, on the card
MINIGAN_TUTORIAL_OUT="$OUT" timeout 90 $PY tutorials/10_gpu.py > "$OUT/lesson10.txt" 2>&1
echo "lesson 10 exit $?"; grep -E "CuPy|NumPy|after|skipped" "$OUT/lesson10.txt" | head -n 12

# 3. the CLI on the GPU: train, sample and evaluate a short run
{
    timeout 60 $PY -m minigan train --dataset ring8 --steps 400 --backend cupy --out /tmp/gpu_ring --log-every 200 \
        && timeout 30 $PY -m minigan sample /tmp/gpu_ring -n 16 --npy /tmp/gpu_ring/s.npy \
        && timeout 60 $PY -m minigan evaluate /tmp/gpu_ring
} > "$OUT/cli.txt" 2>&1
echo "cli exit $?"; tail -n 6 "$OUT/cli.txt"

# 4. speed: CuPy vs PyTorch CUDA eager (and the GEMM floor on the GPU), same step, batch 128..8192
timeout "${BENCH_TIMEOUT:-150}" $PY benchmarks/speed/bench_step.py --backend cupy --batch 128 512 2048 8192 \
    --steps 60 --rounds 4 --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
echo "bench exit $?"
tail -n 30 "$OUT/bench.txt"

# 5. the CPU step on this machine's own processor, if the time left allows (the call's limit is 600 s): 2 cores,
#    2 threads, the issue's configuration. Its processor is likely another machine class than the project's AMD AVX2
#    VM (bench_step.py prints the model, vector extensions and BLAS kernel). JAX is kept on the CPU.
LEFT=$((560 - SECONDS))
if [ "$LEFT" -ge 90 ]; then
    # pinned by Python itself (no need for taskset); the benchmark's own processes inherit the two cores
    JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES="" timeout "$LEFT" $PY -c "import os, sys; os.sched_setaffinity(0, {0, 1}); \
os.execvp(sys.executable, [sys.executable] + sys.argv[1:])" benchmarks/speed/bench_step.py \
        --backend numpy --threads 2 --batch 64 128 256 --refs gemm torch-fused jax --processes separate \
        --steps 60 --rounds 3 --json "$OUT/cpu_bench.json" > "$OUT/cpu_bench.txt" 2>&1
    echo "cpu bench exit $? (${LEFT} s allowed)"
    tail -n 16 "$OUT/cpu_bench.txt"
else
    echo "cpu bench skipped: only ${LEFT} s left of the call"
fi
