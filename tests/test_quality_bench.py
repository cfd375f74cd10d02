"""Smoke tests of the quality benchmarks in benchmarks/quality/: they run end to end and print the right table.

Tiny step budgets: no quality and no timing is asserted, only the table's shape (published rows beside minigan
rows that carry numbers) and the files the scripts write.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "quality"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the module's functions must be importable by name (worker processes)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pacgan():
    return _load("pacgan_table")


@pytest.fixture(scope="module")
def mnist():
    return _load("mnist_table")


NUM = r"\d+(\.\d+)?"
PM = rf"{NUM} ± {NUM}"


def test_pacgan_table_quick(pacgan, tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["--quick", "--seeds", "1", "--jobs", "1", "--steps", "20", "--best-steps", "20", "--work", str(work),
            "--json", str(tmp_path / "runs.json"), "--figure", str(tmp_path / "fig.png"),
            "--out", str(tmp_path / "RESULTS.md")]
    assert pacgan.main(argv) == 0
    table = capsys.readouterr().out
    assert "QUICK SMOKE RUN" in table
    for ds, k in (("ring8", 8), ("grid25", 25)):
        for row, (modes, hq, rkl) in pacgan.PUBLISHED[ds].items():
            if row == "VEEGAN":
                assert f"| {ds} | VEEGAN | Srivastava et al. 2017 |" in table
                assert f"{modes:g}/{k} | {hq:.1f} | n/a |" in table
            else:
                assert f"| {ds} | {row} | Lin et al. 2018 | 10 |" in table
                assert f"{modes:.1f}/{k} | {hq:.1f} | {rkl:.2f} |" in table
                assert re.search(rf"\| {ds} \| minigan {row} \| .*\| 1 \| 20 \| .*\| {PM}/{k} \| {PM} \| {PM} \| "
                                 rf"{NUM} \|", table), (ds, row)
        assert re.search(rf"\| {ds} \| minigan best \(defaults\) \| .*\| {PM}/{k} \| {PM} \| {PM} \|", table)

    runs = json.loads((tmp_path / "runs.json").read_text())
    assert len(runs["runs"]) == 8 and runs["meta"]["quick"] is True
    assert {r["pack"] for r in runs["runs"] if r["row"] != "best"} == {1, 2, 4}
    assert (tmp_path / "fig.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "RESULTS.md").read_text()
    assert "QUICK SMOKE RUN" in report and "pacgan_table.py --quick" in report and "maxout" in report
    assert not any(work.iterdir()), "run folders are removed without --keep"


def test_pacgan_curve_and_keep(pacgan, tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["--quick", "--seeds", "1", "--jobs", "1", "--best-steps", "20", "--datasets", "ring8", "--rows", "best",
            "--curve", "--keep", "--work", str(work)]
    assert pacgan.main(argv) == 0
    out = capsys.readouterr().out
    curve = out.split("Quality against steps")[1]
    assert len(re.findall(rf"\| ring8 \| \d+ \| {PM}/8 \|", curve)) == 5  # steps 4, 8, ..., 20
    assert (work / "ring8-best-seed0" / "checkpoint.npz").is_file()


def test_pacgan_rows_follow_the_defaults(pacgan):
    from minigan.train import TrainConfig

    assert pacgan.row_config("ring8", "best", 3, None) == TrainConfig(dataset="ring8", seed=3)
    cfg = pacgan.row_config("grid25", "PacGAN4", 0, 100)
    assert (cfg.arch, cfg.pack, cfg.batch_size, cfg.lr_g, cfg.lr_d, cfg.beta1) == ("pacgan", 4, 400, 1e-4, 1e-4, 0.8)
    assert cfg.lr_decay == "none"  # the paper's constant learning rate, whatever minigan's 2-D default schedule
    assert pacgan.row_config("grid25", "PacGAN4", 0, 100, batch_unit="samples").batch_size == 100
    assert pacgan.cadence(300, True) == (60, 10) and pacgan.cadence(300, False) == (300, 50)


def test_mnist_table_quick(mnist, tmp_path, capsys):
    data_dir = mnist.default_data_dir()
    if not mnist.mnist_available(data_dir):
        pytest.skip("MNIST files not found (set MINIGAN_DATA_DIR)")
    argv = ["--quick", "--steps", "10", "--work", str(tmp_path / "work"), "--json", str(tmp_path / "m.json"),
            "--out", str(tmp_path / "MNIST.md")]
    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch:
        argv.append("--torch-reference")
    assert mnist.main(argv) == 0
    table = capsys.readouterr().out
    assert "QUICK SMOKE RUN" in table
    metric_cells = rf"\d+/10 \| {NUM} \| {NUM} \| {NUM} \| {NUM} \| -?{NUM} ± {NUM} \|"  # ..., confident %, FID
    names = ["minigan default \\(mlp\\)", "minigan --arch seed", "real data \\(ceiling\\)"]
    names += ["PyTorch reference \\(seed recipe\\)"] if have_torch else []
    for name in names:
        assert re.search(rf"\| {name} \| .*\| {metric_cells}", table), name
    assert "| GAN, Goodfellow et al. 2014 |" in table and "225.0 ± 2.0" in table
    assert table.count("(quick: NOT the protocol)") == len(names) - 1  # every generated row, not the ceiling
    results = json.loads((tmp_path / "m.json").read_text())["results"]
    assert {"default", "seed", "real_ceiling"} <= set(results)
    assert "NOT the protocol" in (tmp_path / "MNIST.md").read_text()


def test_recipe_sweep_smoke(mnist, tmp_path, capsys):
    """Every sampler (the live G and each average) gets a row per evaluation; the markdown groups the final rows."""
    data_dir = mnist.default_data_dir()
    if not mnist.mnist_available(data_dir):
        pytest.skip("MNIST files not found (set MINIGAN_DATA_DIR)")
    sweep = _load("recipe_sweep")
    out = tmp_path / "r.jsonl"
    argv = ["--steps", "4", "--seeds", "0", "1", "--emas", "0.9", "--eval-every", "2", "--eval-n", "30",
            "--final-n", "50", "--json", str(out), "--data-dir", data_dir]
    assert sweep.main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["step"], r["sampler"]) for r in rows] == [
        (s, k, who) for s in (0, 1) for k in (2, 4) for who in ("live", "ema0.9")]
    assert all(r["n"] == (50 if r["final"] else 30) and 0 <= r["confident"] <= 1 for r in rows)
    assert sweep.lr_multiplier(3, 10, 0.5) == 1.0 and sweep.lr_multiplier(9, 10, 0.5) == pytest.approx(0.2)
    capsys.readouterr()
    assert sweep.main(["--markdown", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    from minigan.train import defaults_of

    lr = f"{defaults_of('image')['lr_g']:g}"  # minigan train's image default (the mlp GAN's)
    assert table[2].startswith(f"| 4 | 64 | {lr} | 0.5 | ema0.9 | 0,1 |")
    assert table[3].startswith(f"| 4 | 64 | {lr} | 0.5 | live |")
    curve = table[table.index("| step | live | ema0.9 |"):]  # the in-run curve: one row per evaluated step
    assert [line.split(" | ")[0] for line in curve[2:]] == ["| 2", "| 4"]


def test_recipe_sweep_schedules_are_minigan_trains():
    """The sweep's decay start s: 0.5 is ``--lr-decay linear`` and 1 is ``--lr-decay none``, step for step, so its
    rows measure the runs ``minigan train`` makes."""
    from minigan.train import lr_factor

    sweep = _load("recipe_sweep")
    for total in (10, 7000):
        assert [sweep.lr_multiplier(k, total, 1.0) for k in range(total)] == [1.0] * total
        assert [sweep.lr_multiplier(k, total, 0.5) for k in range(total)] == [
            lr_factor(k, total, "linear") for k in range(total)]


def test_pacgan_summary_counts_diverged_runs(pacgan):
    ok = dict(dataset="ring8", row="GAN", seed=0, steps=10, batch_size=100, pack=1, arch="pacgan", lr=1e-4, beta1=0.8,
              lr_decay="none", modes_covered=8, high_quality=0.9, reverse_kl=0.01, train_wall_s=1.0, steps_per_s=10.0)
    bad = dict(dataset="ring8", row="GAN", seed=1, steps=10, error="loss is nan", train_wall_s=0.5)
    table = pacgan.format_table(pacgan.summarise([ok, bad]), ["ring8"], ["GAN"])
    assert "| 1 (+1 diverged) | 10 |" in table and "| 8.0 ± 0.0/8 | 90.0 ± 0.0 | 0.010 ± 0.000 |" in table
    table = pacgan.format_table(pacgan.summarise([bad]), ["ring8"], ["GAN"])
    assert "0 (all 1 diverged)" in table and "| ring8 | GAN | Lin et al. 2018 |" in table


def test_pacgan_reuse_trains_only_missing_runs(pacgan, tmp_path, capsys):
    """--reuse takes finished runs from an earlier --json and trains only the missing seeds; a changed setting or an
    unreadable file is not silently reused."""
    first = tmp_path / "first.json"
    base = ["--quick", "--jobs", "1", "--steps", "12", "--datasets", "ring8", "--rows", "GAN"]
    assert pacgan.main(base + ["--seeds", "1", "--json", str(first)]) == 0
    old = json.loads(first.read_text())
    assert old["meta"]["complete"] is True and len(old["runs"]) == 1

    second = tmp_path / "second.json"
    assert pacgan.main(base + ["--seeds", "2", "--reuse", str(first), "--json", str(second)]) == 0
    err = capsys.readouterr().err
    assert "1 run(s) taken from it, 1 to train" in err
    runs = json.loads(second.read_text())["runs"]
    assert [(r["seed"], r.get("reused", False)) for r in runs] == [(0, True), (1, False)]
    assert runs[0]["high_quality"] == old["runs"][0]["high_quality"]

    # another step budget is another run: nothing reused
    assert pacgan.main(base[:-4] + ["--steps", "13", "--datasets", "ring8", "--rows", "GAN", "--seeds", "1",
                                    "--reuse", str(first)]) == 0
    assert "0 run(s) taken from it, 1 to train" in capsys.readouterr().err

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit, match="not a JSON file written by --json"):
        pacgan.main(base + ["--seeds", "1", "--reuse", str(tmp_path / "bad.json")])


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_pacgan_table_sigterm_stops_its_workers(tmp_path):
    """Killed with SIGTERM, the script used to die alone and leave its pool workers training as orphans."""
    import os
    import signal
    import subprocess
    import time

    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, str(BENCH / "pacgan_table.py"), "--datasets", "ring8", "--rows", "GAN",
                             "--seeds", "2", "--steps", "1000000", "--jobs", "2", "--work", str(work)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            if len(list(work.glob("*/config.json"))) == 2:  # both workers are training
                break
            time.sleep(0.2)
        assert proc.poll() is None and len(list(work.glob("*/config.json"))) == 2, "the workers never started"
        workers = _children(proc.pid)
        assert len(workers) >= 2
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
        assert "terminated (SIGTERM); workers stopped" in err
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.2)
        orphans = [w for w in workers if _alive(w)]
        assert not orphans, f"worker processes {orphans} outlived the script"
        assert not list(work.iterdir())  # the run folders were removed, as after Ctrl-C
    finally:
        for pid in [proc.pid] + workers:  # never leave a process behind, even when the test fails
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10) if proc.poll() is None else None
