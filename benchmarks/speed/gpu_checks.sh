#!/usr/bin/env bash
# Every GPU check of the speed issue in one call, for a session that has the device machine (H100/H200, CuPy
# preinstalled, no network). From the repository root:
#
#     bash benchmarks/speed/gpu_checks.sh "$OUT"
#
# It writes into OUTDIR (default ./gpu_out): device.txt (card, driver, versions), pytest.txt (the whole default suite,
# whose [cupy] cases -- gradient checks, parity with NumPy, the GAN step, the CLI -- run here on the real CuPy: tests/
# conftest.py puts its CuPy stand-in on the path only when no real CuPy sees a device),
# bench.txt + bench.json (CuPy vs PyTorch CUDA eager, one GAN.train_step, seed and mlp archs, batch 128-8192).
# If the machine lacks pytest/hypothesis/matplotlib, build a wheel folder here first (it is not tracked):
#     pip download -d .wheels pytest hypothesis matplotlib tqdm
# and name .wheels in the run's carry list; this script installs from it without a network.
set -u
OUT=${1:-gpu_out}
mkdir -p "$OUT"
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
    python -c "import sys, numpy, cupy; print('python', sys.version.split()[0], 'numpy', numpy.__version__, \
'cupy', cupy.__version__, cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())" 2>&1
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
} > "$OUT/device.txt"
cat "$OUT/device.txt"

if [ -d .wheels ]; then
    pip install -q --no-index --find-links .wheels -e ".[test]" > "$OUT/pip.txt" 2>&1 || true
else
    pip install -q --no-deps -e . > "$OUT/pip.txt" 2>&1 || true
fi
python -c "import pytest, hypothesis, matplotlib" 2>> "$OUT/device.txt" || echo "MISSING test deps: see device.txt"

# 1. the test suite, CuPy cases on the real GPU (device.txt's last line says so; the stand-in is for GPU-less runs)
python -c "import sys; sys.path.insert(0, 'tests'); import conftest; print('cupy cases on', 'the STAND-IN' if conftest.CUPY_IS_STANDIN else 'the real GPU')" >> "$OUT/device.txt" 2>&1
timeout 300 python -m pytest -q -p no:cacheprovider -ra > "$OUT/pytest.txt" 2>&1
echo "pytest exit $?: $(tail -n 1 "$OUT/pytest.txt")"

# 2. speed: CuPy vs PyTorch CUDA eager (and the GEMM floor on the GPU), same step, batch 128..8192
timeout 240 python benchmarks/speed/bench_step.py --backend cupy --json "$OUT/bench.json" > "$OUT/bench.txt" 2>&1
echo "bench exit $?"
tail -n 40 "$OUT/bench.txt"
