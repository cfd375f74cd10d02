"""The speed benchmark runs end to end (a few steps, tiny batches): no timing is asserted, only that every
contender present here runs and the report is complete. torch and jax are optional; when missing they are
reported as skipped."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

SPEED = Path(__file__).resolve().parent.parent / "benchmarks" / "speed"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", SPEED / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return _load("bench_step")


def test_quick_benchmark_reports_every_contender(bench, tmp_path, capsys):
    out = tmp_path / "speed.json"
    result = bench.main(["--quick", "--arch", "seed", "--batch", "8", "--threads", "1", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    timed = ["minigan", "gemm", "fixed"] + [r for r in ("torch", "torch-fused", "jax") if r not in saved["skipped"]]
    # both tables: each contender in a process of its own, then every contender in this process
    assert [(r["processes"], r["arch"], r["batch"]) for r in saved["rows"]] == [("separate", "seed", 8),
                                                                               ("one", "seed", 8)]
    for row in saved["rows"]:
        assert sorted(row["ms"]) == sorted(timed) and all(v > 0 for v in row["ms"].values())
        assert 0 < row["ratios"]["gemm_share"] and set(row["ratios"]) >= {f"minigan/{r}" for r in timed[1:]}
        assert row["ratios"]["fixed/gemm"] == row["ms"]["fixed"] / row["ms"]["gemm"]
    env = saved["environment"]
    assert env["threads"] == 1 and env["cpu"] and env["vector_extensions"] and env["openblas"]
    printed = capsys.readouterr().out
    assert "| seed |" in printed and "GEMM share" in printed and "each contender in its own process" in printed


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_the_report_counts_the_cores_the_benchmark_may_use(bench):
    """gpu_checks.sh pins the CPU benchmark to 2 of the device machine's cores: the report must say 2, not 16."""
    import os

    everything = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(everything)})
        total = os.cpu_count()
        assert bench.usable_cores() == ("1" if total == 1 else f"1 of {total}")
    finally:
        os.sched_setaffinity(0, everything)
    assert bench.usable_cores() == (str(total) if len(everything) == total else f"{len(everything)} of {total}")


def test_every_architecture_has_its_references(bench):
    for arch in ("seed", "mlp"):
        minigan, floor = bench.Minigan(arch, 4, "numpy"), bench.GemmFloor(arch, 4, "numpy")
        minigan.step(), floor.step()


def test_gemm_floor_counts_the_products_of_one_step(bench):
    """seed: G 100->256->784, D 784->256->1. D step: 2 G fwd + 2 D fwd + 2 dW + 1 dx; G step: 2 + 2 fwd,
    2 D dx (no dW), 2 G dW + 1 dx: 7 + 9 = 16 products."""
    floor = bench.GemmFloor("seed", 4, "numpy")
    assert len(floor.products) == 16
    shapes = [(a.shape, b.shape) for a, b, _ in floor.products]
    assert shapes[2] == ((8, 784), (784, 256))  # D forward on real + fake: 2N rows
    assert ((256, 8), (8, 1)) in shapes and ((4, 1), (1, 256)) in shapes  # dW at 2N; dx through the frozen D at N
    floor.step()


def test_fixed_floor_is_the_gemm_floor_plus_the_work_kept_as_it_is(bench, monkeypatch):
    """The fixed floor runs the GEMM floor's products, then per pass a noise batch and G's output transcendental
    (twice a step), then Adam over every parameter of G and D -- counted by spying on each."""
    calls = {"products": 0, "normals": [], "activation": 0}
    fixed = bench.FixedFloor("seed", 4, "numpy")
    assert fixed.activation is np.exp and bench.FixedFloor("mlp", 4, "numpy").activation is np.tanh
    products = len(bench.GemmFloor("seed", 4, "numpy").products)
    assert len(fixed.products) == products
    fixed.matmul = lambda a, b, out: calls.__setitem__("products", calls["products"] + 1)
    draw = fixed.noise_rng.standard_normal
    fixed.noise_rng = type("Spy", (), {"standard_normal": lambda self, shape, dtype: calls["normals"].append(
        (shape, dtype)) or draw(shape, dtype=dtype)})()
    real_activation = fixed.activation
    fixed.activation = lambda x, out: calls.__setitem__("activation", calls["activation"] + 1) or real_activation(
        x, out=out)
    before = [p.data.copy() for adam in fixed.adams for p in adam.params]
    fixed.step()
    assert calls["products"] == products and calls["activation"] == 2
    assert calls["normals"] == [((4, 100), np.float32)] * 2
    after = [p.data for adam in fixed.adams for p in adam.params]
    assert len(after) == 8 and all(not np.array_equal(a, b) for a, b in zip(before, after))  # Adam moved them all
    with pytest.raises(ValueError, match="CPU"):
        bench.FixedFloor("seed", 4, "cupy")


def test_memory_check_sees_no_growth_per_step():
    memory = _load("bench_memory")
    result = memory.measure("seed", batch=8, steps=30, warmup=5, threads=1)
    assert result["peak_rss_mib"] > 0
    # optimizer state and cached targets exist after warm-up: later steps allocate and free the same amount
    assert abs(result["median_change_bytes"]) < 4096 and abs(result["growth_bytes_per_step"]) < 64


def test_profile_prints_every_category_and_leaves_the_engine_unpatched(capsys):
    from minigan import gan, nn, optim

    before = (nn.Dense.forward, nn.Dense.backward, nn.LeakyReLU.backward, gan.discriminator_loss, optim.Adam.step)
    profile = _load("profile_step")
    rows = profile.main(["--arch", "seed", "--batch", "8", "--threads", "0", "--steps", "2"])
    assert [(r["arch"], r["batch"]) for r in rows] == [("seed", 8)]
    assert all(rows[0][c] >= 0 for c in profile.CATEGORIES) and rows[0]["GEMM"] > 0 and rows[0]["Adam"] > 0
    assert (nn.Dense.forward, nn.Dense.backward, nn.LeakyReLU.backward, gan.discriminator_loss,
            optim.Adam.step) == before
    assert "| Adam |" in capsys.readouterr().out


def test_ab_step_times_two_checkouts_and_tells_whether_their_models_stay_equal(tmp_path, monkeypatch):
    """Two copies of this checkout train identically; a copy whose D has another leaky slope does not."""
    monkeypatch.setenv("MINIGAN_NO_NUMBA", "1")  # the plain path in both copies: nothing to compile here
    ab = _load("ab_step")
    repo = SPEED.parent.parent
    options = ["--arch", "seed", "--batch", "4", "--rounds", "2", "--block", "1", "--warmup", "1", "--threads", "0"]
    same = ab.main(["--base", str(repo), *options, "--json", str(tmp_path / "ab.json")])
    assert [(r["arch"], r["batch"], r["steps"], r["rounds"]) for r in same] == [("seed", 4, 3, 2)]
    assert same[0]["same_models"] and same[0]["base_ms"] > 0 and same[0]["head_ms"] > 0
    assert 0 < same[0]["paired_ratio"] and 0 <= same[0]["head_won"] <= 2
    assert json.loads((tmp_path / "ab.json").read_text())["rows"] == json.loads(json.dumps(same))

    changed = tmp_path / "changed"
    shutil.copytree(repo / "minigan", changed / "minigan", ignore=shutil.ignore_patterns("__pycache__"))
    models = changed / "minigan" / "models.py"
    assert "LeakyReLU(0.2)" in models.read_text()
    models.write_text(models.read_text().replace("LeakyReLU(0.2)", "LeakyReLU(0.25)"))
    differs = ab.main(["--base", str(changed), *options])
    assert not differs[0]["same_models"]
