"""Time one full ``GAN.train_step`` of minigan against floors and references, in alternating rounds.

What is timed, per architecture and batch size N (float32, the same Adam(lr=2e-4, betas=(0.5, 0.999)) everywhere):

* ``minigan``   -- ``GAN.train_step(real)``: the real API, exactly as ``minigan train`` calls it (D update on
  real + fake, then G update; noise drawn on the host; the four statistics returned as Python floats).
* ``gemm``      -- the *GEMM floor*: only the matrix products that one step needs, on the same shapes and memory
  layouts, written into preallocated outputs. No elementwise work, no optimizer, no Python bookkeeping.
    D step: G forward at N; D forward at 2N; D backward dW at 2N and dx for every layer but the first.
    G step: G forward and D forward at N; D backward dx only (D is frozen: no dW); G backward dW, and dx for
    every layer but the first.
* ``fixed``     -- the GEMM floor plus the work a step keeps as it is so that its numbers stay bit for bit
  (NumPy's normal draws, NumPy's exp/tanh over G's output in both passes, ``Adam.step``): the lowest ``/gemm``
  ratio an exact step can reach (CPU only; ``FixedFloor``).
* ``torch``     -- PyTorch eager, written as a competent user would: D on ``cat(real, fake.detach())``,
  ``requires_grad_(False)`` on D during the G step, ``zero_grad(set_to_none=True)``, ``torch.optim.Adam`` with
  ``foreach=True``; ``torch-fused`` is the same with ``fused=True`` (one C++ kernel for the whole update).
  Torch threads = BLAS threads.
* ``jax``       -- the same step as one ``jax.jit`` function (``value_and_grad``, a hand-written Adam, params and
  optimizer state donated so XLA updates them in place).

Each contender first runs ``--warmup`` steps; then ``--rounds`` rounds run each contender for ``steps / rounds``
steps, the order rotating every round, so a noisy neighbour on the machine slows everyone alike. The table reports
the median ms per step. torch and jax are optional: a missing one is reported and skipped.

    python benchmarks/speed/bench_step.py                       # seed and mlp, N = 64, 128, 256, CPU
    python benchmarks/speed/bench_step.py --backend cupy        # GPU: N up to 8192
    python benchmarks/speed/bench_step.py --quick --json out.json
    python benchmarks/speed/bench_step.py --peak-rss            # also: peak RSS and per-step memory growth

On machines that set OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (to work around old OpenBLAS bugs) a current NumPy runs a
slower kernel: unset both for the benchmark command only, e.g. ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # run from a checkout without installing

from minigan import backend as mb  # noqa: E402
from minigan.gan import GAN  # noqa: E402
from minigan.models import NOISE_DIM, OUTPUT_SCALE, build_models  # noqa: E402
from minigan.nn import Dense, LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: E402
from minigan.optim import Adam  # noqa: E402
from minigan.train import cpu_model  # noqa: E402

DATA_DIM = 784
LR, BETAS, EPS = 2e-4, (0.5, 0.999), 1e-8
CPU_BATCHES = (64, 128, 256)
GPU_BATCHES = (64, 256, 1024, 4096, 8192)
ALL_REFS = ("gemm", "fixed", "torch", "torch-fused", "jax")


# ---------------------------------------------------------------------------------------------- architecture


def layer_specs(model):
    """A minigan Sequential as plain tuples, so the references build exactly the same network:
    ``("dense", W, b)``, ``("relu",)``, ``("leaky", slope)``, ``("sigmoid",)``, ``("tanh",)``."""
    specs = []
    for layer in model:
        if isinstance(layer, Dense):
            specs.append(("dense", mb.to_numpy(layer.W.data), mb.to_numpy(layer.b.data)))
        elif isinstance(layer, LeakyReLU):
            specs.append(("leaky", layer.slope))
        elif isinstance(layer, ReLU):
            specs.append(("relu",))
        elif isinstance(layer, Sigmoid):
            specs.append(("sigmoid",))
        elif isinstance(layer, Tanh):
            specs.append(("tanh",))
        else:
            raise TypeError(f"bench: no reference for layer {layer!r}")
    return specs


def dense_dims(specs):
    """``[(in, out), ...]`` of the dense layers, in order."""
    return [s[1].shape for s in specs if s[0] == "dense"]


def make_real(arch, n, seed=0):
    """A fixed real batch in the generator's output range (its values do not change the cost)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, DATA_DIM), dtype=np.float32)
    return 2 * x - 1 if OUTPUT_SCALE[arch] == "tanh" else x


# ---------------------------------------------------------------------------------------------- contenders


class Minigan:
    name = "minigan"

    def __init__(self, arch, n, backend, seed=0):
        G, D = build_models(arch, DATA_DIM, rng=seed)
        if backend != "numpy":
            G.to(backend), D.to(backend)
        self.gan = GAN(G, D, Adam(G.params(), LR, BETAS, EPS), Adam(D.params(), LR, BETAS, EPS), NOISE_DIM[arch],
                       rng=seed + 1)
        self.real = mb.to_device(make_real(arch, n), backend)

    def step(self):
        self.gan.train_step(self.real)  # returns Python floats: the step has finished when this returns

    def sync(self):
        pass


class GemmFloor:
    """Only the matrix products of one step, into preallocated outputs (see the module docstring)."""

    name = "gemm"

    def __init__(self, arch, n, backend, seed=0):
        G, D = build_models(arch, DATA_DIM, rng=seed)
        xp = mb.get_xp(backend)
        rng = np.random.default_rng(seed)

        def arr(*shape):
            return xp.asarray(rng.standard_normal(shape, dtype=np.float32))

        self.products = []  # (a, b, out) with out = a @ b; a or b may be a transposed view, as in minigan

        def fwd(dims, rows):
            for i, o in dims:
                self.products.append((arr(rows, i), arr(i, o), xp.empty((rows, o), np.float32)))

        def bwd(dims, rows, weights, first_dx):
            for k, (i, o) in enumerate(dims):
                if weights:  # dW = x.T @ dy
                    self.products.append((arr(rows, i).T, arr(rows, o), xp.empty((i, o), np.float32)))
                if k > 0 or first_dx:  # dx = dy @ W.T
                    self.products.append((arr(rows, o), arr(i, o).T, xp.empty((rows, i), np.float32)))

        g_dims, d_dims = dense_dims(layer_specs(G)), dense_dims(layer_specs(D))
        fwd(g_dims, n)  # D step: G(z), no backward into G
        fwd(d_dims, 2 * n)  # D on real + fake
        bwd(d_dims, 2 * n, weights=True, first_dx=False)
        fwd(g_dims, n)  # G step
        fwd(d_dims, n)
        bwd(d_dims, n, weights=False, first_dx=True)  # through the frozen D
        bwd(g_dims, n, weights=True, first_dx=False)
        self.matmul = xp.matmul
        self.out = self.products[-1][2]

    def step(self):
        for a, b, out in self.products:
            self.matmul(a, b, out=out)

    def sync(self):
        mb.synchronize(self.out)


class FixedFloor(GemmFloor):
    """The GEMM floor plus the work a step must do *as it is* for its numbers to stay bit for bit (CPU only).

    That is: NumPy's normal draws for both noise batches; NumPy's ``exp`` (sigmoid output) or ``tanh`` (tanh output)
    over G's output, in the D step and in the G step; and ``Adam.step`` over every parameter of G and D (one compiled
    pass per array, or NumPy's passes without Numba). A faster generator or a compiled exp/tanh would change the
    numbers of every seeded run. What minigan spends above this floor could still be removed; this floor over the
    GEMM floor is the lowest ``/gemm`` ratio a step can reach without changing those numbers.
    """

    name = "fixed"

    def __init__(self, arch, n, backend, seed=0):
        if backend != "numpy":
            raise ValueError("the fixed floor is measured on the CPU (NumPy) only")
        super().__init__(arch, n, backend, seed)
        G, D = build_models(arch, DATA_DIM, rng=seed)
        rng = np.random.default_rng(seed + 1)
        self.noise_rng, self.noise_shape = rng, (n, NOISE_DIM[arch])
        self.activation = np.tanh if OUTPUT_SCALE[arch] == "tanh" else np.exp  # the sigmoid's exp(-|x|)
        self.pre = -np.abs(rng.standard_normal((n, DATA_DIM), dtype=np.float32))  # (N, d) G's last pre-activation
        self.post = np.empty_like(self.pre)
        for p in G.params() + D.params():
            p.grad = rng.standard_normal(p.data.shape, dtype=np.float32) * np.float32(1e-3)  # kept every step
        self.adams = [Adam(G.params(), LR, BETAS, EPS), Adam(D.params(), LR, BETAS, EPS)]

    def step(self):
        super().step()  # the matrix products
        for _ in range(2):  # the D step and the G step each draw a noise batch and run G's output layer
            self.noise_rng.standard_normal(self.noise_shape, dtype=np.float32)
            self.activation(self.pre, out=self.post)
        for adam in self.adams:
            adam.step()


class TorchStep:
    """PyTorch eager, the idiomatic way."""

    name = "torch"
    adam_options = {"foreach": True}

    def __init__(self, arch, n, backend, seed=0):
        import torch
        from torch import nn

        self.torch = torch
        self.device = "cuda" if backend == "cupy" else "cpu"
        G, D = build_models(arch, DATA_DIM, rng=seed)
        self.G, self.D = self._build(layer_specs(G)), self._build(layer_specs(D))
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=LR, betas=BETAS, eps=EPS, **self.adam_options)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=LR, betas=BETAS, eps=EPS, **self.adam_options)
        self.real = torch.from_numpy(make_real(arch, n)).to(self.device)
        self.targets = torch.cat([torch.ones(n, 1), torch.zeros(n, 1)]).to(self.device)
        self.ones = torch.ones(n, 1, device=self.device)
        self.n, self.nz = n, NOISE_DIM[arch]
        self.bce = nn.functional.binary_cross_entropy_with_logits
        self.gen = torch.Generator(device=self.device).manual_seed(seed)

    def _build(self, specs):
        torch, nn = self.torch, self.torch.nn
        layers = []
        for s in specs:
            if s[0] == "dense":
                lin = nn.Linear(*s[1].shape)
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(s[1].T.copy()))
                    lin.bias.copy_(torch.from_numpy(s[2]))
                layers.append(lin)
            elif s[0] == "leaky":
                layers.append(nn.LeakyReLU(s[1]))
            else:
                layers.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[s[0]]())
        return nn.Sequential(*layers).to(self.device)

    def step(self):
        torch, G, D = self.torch, self.G, self.D
        z = torch.randn(self.n, self.nz, device=self.device, generator=self.gen)
        with torch.no_grad():
            fake = G(z)
        logits = D(torch.cat([self.real, fake]))
        d_loss = 2 * self.bce(logits, self.targets)
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        with torch.no_grad():
            probs = torch.sigmoid(logits)
            d_real, d_fake = probs[: self.n].mean(), probs[self.n:].mean()

        z = torch.randn(self.n, self.nz, device=self.device, generator=self.gen)
        D.requires_grad_(False)
        g_loss = self.bce(D(G(z)), self.ones)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        D.requires_grad_(True)
        self.opt_g.step()
        # the same four numbers minigan hands back, as Python floats
        return [float(v) for v in (d_loss.detach(), g_loss.detach(), d_real, d_fake)]

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


class TorchFusedStep(TorchStep):
    name = "torch-fused"
    adam_options = {"fused": True}


class JaxStep:
    """The same step as one jitted function; Adam written out (the update optax.adam performs)."""

    name = "jax"

    def __init__(self, arch, n, backend, seed=0):
        import jax
        import jax.numpy as jnp

        self.jax = jax
        G, D = build_models(arch, DATA_DIM, rng=seed)
        g_specs, d_specs = layer_specs(G), layer_specs(D)
        params = lambda specs: [(jnp.asarray(s[1]), jnp.asarray(s[2])) for s in specs if s[0] == "dense"]  # noqa: E731
        acts = {"relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh}

        def apply(specs, ps, x):
            k = 0
            for s in specs:
                if s[0] == "dense":
                    W, b = ps[k]
                    x, k = x @ W + b, k + 1
                elif s[0] == "leaky":
                    x = jax.nn.leaky_relu(x, s[1])
                else:
                    x = acts[s[0]](x)
            return x

        def bce(logits, y):  # mean(softplus(z) - y z)
            return jnp.mean(jax.nn.softplus(logits) - y * logits)

        def adam(ps, grads, state):
            m, v, t = state
            t = t + 1
            m = jax.tree.map(lambda m, g: BETAS[0] * m + (1 - BETAS[0]) * g, m, grads)
            v = jax.tree.map(lambda v, g: BETAS[1] * v + (1 - BETAS[1]) * g * g, v, grads)
            c1, c2 = 1 - BETAS[0] ** t, 1 - BETAS[1] ** t
            ps = jax.tree.map(lambda p, m, v: p - LR / c1 * m / (jnp.sqrt(v / c2) + EPS), ps, m, v)
            return ps, (m, v, t)

        targets = jnp.concatenate([jnp.ones((n, 1)), jnp.zeros((n, 1))])
        nz = NOISE_DIM[arch]

        def step(state, real, key):
            gp, dp, g_state, d_state = state
            key, k1, k2 = jax.random.split(key, 3)
            fake = jax.lax.stop_gradient(apply(g_specs, gp, jax.random.normal(k1, (n, nz))))
            x = jnp.concatenate([real, fake])

            def d_loss(dp):
                logits = apply(d_specs, dp, x)
                return 2 * bce(logits, targets), logits

            (ld, logits), gd = jax.value_and_grad(d_loss, has_aux=True)(dp)
            dp, d_state = adam(dp, gd, d_state)
            probs = jax.nn.sigmoid(logits)
            z = jax.random.normal(k2, (n, nz))
            lg, gg = jax.value_and_grad(lambda gp: bce(apply(d_specs, dp, apply(g_specs, gp, z)), 1.0))(gp)
            gp, g_state = adam(gp, gg, g_state)
            stats = jnp.stack([ld, lg, probs[:n].mean(), probs[n:].mean()])
            return (gp, dp, g_state, d_state), key, stats

        def zeros(ps):
            return (jax.tree.map(jnp.zeros_like, ps), jax.tree.map(jnp.zeros_like, ps), jnp.zeros((), jnp.int32))

        gp, dp = params(g_specs), params(d_specs)
        self.state = (gp, dp, zeros(gp), zeros(dp))
        self.key = jax.random.PRNGKey(seed)
        self.real = jnp.asarray(make_real(arch, n))
        self.fn = jax.jit(step, donate_argnums=(0,))

    def step(self):
        self.state, self.key, stats = self.fn(self.state, self.real, self.key)
        return [float(v) for v in np.asarray(stats)]  # like minigan: the numbers reach the host

    def sync(self):
        self.jax.block_until_ready(self.state)


CONTENDERS = {"minigan": Minigan, "gemm": GemmFloor, "fixed": FixedFloor, "torch": TorchStep,
              "torch-fused": TorchFusedStep, "jax": JaxStep}


def available_refs(wanted, backend):
    """The references that can run here, and a note for each one that cannot."""
    refs, notes = [], {}
    for name in wanted:
        if name == "fixed" and backend != "numpy":
            notes[name] = "skipped: the fixed floor is measured on the CPU only"
            continue
        try:
            if name.startswith("torch"):
                import torch

                if backend == "cupy" and not torch.cuda.is_available():
                    raise ImportError("this torch has no CUDA")
            elif name == "jax":
                import jax

                if backend == "cupy" and jax.default_backend() != "gpu":
                    raise ImportError("this jax has no GPU backend")
        except ImportError as err:
            notes[name] = f"skipped: {err}"
            continue
        refs.append(name)
    return refs, notes


# ---------------------------------------------------------------------------------------------- timing


def time_steps(contender, steps):
    """Per-step ``(wall, process CPU)`` times in seconds (each step ends with the device idle)."""
    out = []
    clock, cpu = time.perf_counter, time.process_time
    for _ in range(steps):
        t0, c0 = clock(), cpu()
        contender.step()
        contender.sync()
        out.append((clock() - t0, cpu() - c0))
    return out


def bench_case(arch, n, names, backend, steps, rounds, warmup, settle=0.0):
    """Median ms/step of each contender for one (arch, N), in alternating rounds.

    Before each block of steps the process sleeps ``settle`` seconds and runs one untimed step: the thread pools
    of the contender that ran before (OpenBLAS, OpenMP, XLA) keep spinning for a while after their last job, and
    on a 2-core machine that spinning would be charged to whoever runs next.
    """
    contenders = [CONTENDERS[name](arch, n, backend) for name in names]
    for c in contenders:
        time_steps(c, warmup)
    times = {c.name: [] for c in contenders}
    per_round = max(1, steps // rounds)
    for r in range(rounds):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        for c in order:
            if settle:
                time.sleep(settle)
                time_steps(c, 1)
            times[c.name] += time_steps(c, per_round)
    ms = {name: 1e3 * float(np.median([w for w, _ in ts])) for name, ts in times.items()}
    # CPU time over wall time: how many cores a contender kept busy (spinning thread pools count as busy)
    cores = {name: float(np.median([c for _, c in ts]) / np.median([w for w, _ in ts])) for name, ts in times.items()}
    return ms, cores


class Worker:
    """One contender in a process of its own (``bench_step.py --worker NAME``), driven over stdin/stdout.

    The process builds the contender and runs its warm-up at start; each ``run K`` line then times K steps and
    answers one JSON line of per-step ``[wall, cpu]`` seconds. Only one worker runs at a time, so each has the
    machine to itself, and no two BLAS/OpenMP pools share a process.
    """

    def __init__(self, name, arch, n, args):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--arch", arch, "--batch", str(n),
               "--warmup", str(args.warmup), "--threads", str(args.threads), "--backend", args.backend]
        if args.kernel_threads is not None:
            cmd += ["--kernel-threads", str(args.kernel_threads)]
        self.name = name
        # the worker imports what this process imports (a checkout, a test's CuPy stand-in): the same sys.path
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     env=env)
        ready = self.proc.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"bench worker {name} ({arch}, N={n}) did not start: {ready!r}")

    def run(self, steps):
        self.proc.stdin.write(f"run {steps}\n")
        return [tuple(t) for t in json.loads(self.proc.stdout.readline())]

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def worker_main(args):
    set_all_threads(args.threads, args.kernel_threads)
    contender = CONTENDERS[args.worker](args.arch[0], args.batch[0], args.backend)
    time_steps(contender, args.warmup)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.startswith("run"):
            print(json.dumps(time_steps(contender, int(line.split()[1]))), flush=True)
        else:
            break


def set_all_threads(n, kernel_threads=None):
    """BLAS and torch on n threads (jax keeps its own pool: XLA takes no such setting); minigan's kernels on
    ``kernel_threads`` (None: the library's default, one thread, which is what a user runs)."""
    from minigan import kernels

    if kernel_threads is not None:
        kernels.set_threads(kernel_threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def bench_case_separate(arch, n, names, args):
    """``bench_case`` with each contender in its own process (see ``Worker``): the same alternating rounds."""
    workers = [Worker(name, arch, n, args) for name in names]
    try:
        times = {w.name: [] for w in workers}
        per_round = max(1, args.steps // args.rounds)
        for r in range(args.rounds):
            for w in workers[r % len(workers):] + workers[: r % len(workers)]:
                if args.settle:
                    time.sleep(args.settle)
                    w.run(1)
                times[w.name] += w.run(per_round)
    finally:
        for w in workers:
            w.close()
    ms = {name: 1e3 * float(np.median([w for w, _ in ts])) for name, ts in times.items()}
    cores = {name: float(np.median([c for _, c in ts]) / np.median([w for w, _ in ts])) for name, ts in times.items()}
    return ms, cores


# ---------------------------------------------------------------------------------------------- environment


def blas_info():
    """BLAS library, kernel and threads from threadpoolctl when installed (optional), else NumPy's config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"note": "threadpoolctl not installed; pip install threadpoolctl for BLAS details"}]
    keep = ("internal_api", "prefix", "version", "architecture", "num_threads", "threading_layer")
    return [{k: d.get(k) for k in keep} for d in threadpool_info() if d.get("user_api") == "blas"]


@contextlib.contextmanager
def blas_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def usable_cores() -> str:
    """The cores this process may run on, and the machine's ("2 of 16" under ``taskset -c 0,1``)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return str(usable) if usable == os.cpu_count() else f"{usable} of {os.cpu_count()}"


def vector_extensions():
    """The SIMD extensions that decide which BLAS kernel runs (AVX2/FMA: OpenBLAS Haswell/Zen; AVX-512: SkylakeX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return "unknown"
    return " ".join(f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "amx_tile")
                    if f in flags) or "none of sse4.2/avx"


def openblas_kernel():
    """OpenBLAS's own description (version, build) and the kernel it picked, read from NumPy's bundled library."""
    import ctypes
    import glob

    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs", "libscipy_openblas*.so*"))
    if not libs:
        return "not NumPy's bundled OpenBLAS"
    lib = ctypes.CDLL(libs[0])
    for suffix in ("64_", ""):
        get_core = getattr(lib, f"scipy_openblas_get_corename{suffix}", None)
        get_config = getattr(lib, f"scipy_openblas_get_config{suffix}", None)
        if get_core is not None and get_config is not None:
            get_core.restype = get_config.restype = ctypes.c_char_p
            return f"{get_config().decode().strip()}; kernel {get_core().decode()}"
    return "OpenBLAS (no corename call)"


def environment(threads, refs):
    from minigan import kernels

    env = {
        "cpu": cpu_model(), "cores": usable_cores(), "vector_extensions": vector_extensions(),
        "python": platform.python_version(), "numpy": np.__version__,
        "threads": threads, "blas": blas_info(), "openblas": openblas_kernel(),
        "minigan_kernels": (f"numba {kernels._compiled.numba.__version__}, {kernels.threads()} threads, "
                            f"{kernels._compiled.numba.config.THREADING_LAYER} layer"
                            if kernels.available() else "plain NumPy (no Numba)"),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                                "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "MINIGAN_NO_NUMBA")},
    }
    # versions from the package metadata: asking torch or JAX themselves would start their thread pools here
    from importlib.metadata import PackageNotFoundError, version

    for name in ("torch", "jax", "jaxlib"):
        if any(r.startswith(name[:3]) for r in refs):
            try:
                env[name] = version(name)
            except PackageNotFoundError:
                pass
    return env


# ---------------------------------------------------------------------------------------------- report


def ratios(row):
    """minigan relative to each reference: ``minigan / ref`` (below 1: minigan is faster)."""
    m = row["ms"]["minigan"]
    out = {f"minigan/{k}": m / v for k, v in row["ms"].items() if k != "minigan"}
    if "gemm" in row["ms"]:
        out["gemm_share"] = row["ms"]["gemm"] / m
        if "fixed" in row["ms"]:
            out["fixed/gemm"] = row["ms"]["fixed"] / row["ms"]["gemm"]  # the lowest /gemm an exact step can reach
    return out


def format_table(rows, names):
    cols = ["arch", "N"] + [f"{n} ms" for n in names]
    cols += [f"/{n}" for n in names if n != "minigan"] + (["GEMM share"] if "gemm" in names else [])
    lines = []
    for row in rows:
        r = row["ratios"]
        cells = [row["arch"], str(row["batch"])]
        cells += [f"{row['ms'][n]:.2f}" if n in row["ms"] else "-" for n in names]
        cells += [f"{r[f'minigan/{n}']:.2f}" if f"minigan/{n}" in r else "-" for n in names if n != "minigan"]
        if "gemm" in names:
            cells.append(f"{100 * r['gemm_share']:.0f}%" if "gemm_share" in r else "-")
        lines.append(cells)
    width = [max(len(c), *(len(line[i]) for line in lines)) for i, c in enumerate(cols)]
    fmt = lambda cells: "| " + " | ".join(c.rjust(w) for c, w in zip(cells, width)) + " |"  # noqa: E731
    head = [fmt(cols), "|" + "|".join("-" * (w + 1) + ":" for w in width) + "|"]
    return "\n".join(head + [fmt(line) for line in lines])


def peak_rss(args):
    """Run bench_memory.py in a fresh process (RSS is per process: torch and jax would pollute it here)."""
    # one BLAS thread: memory does not depend on it, and the check is not slowed by a busy machine
    cmd = [sys.executable, str(HERE / "bench_memory.py"), "--json", "-", "--backend", args.backend, "--threads", "1"]
    if args.quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--arch", nargs="+", default=["seed", "mlp"], choices=["seed", "mlp"])
    p.add_argument("--batch", nargs="+", type=int, help="batch sizes (default: 64 128 256 on CPU, up to 8192 on GPU)")
    p.add_argument("--steps", type=int, default=120, help="timed steps per contender and case (default 120)")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds the steps are split into (default 6)")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per contender first (default 10)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="seconds of sleep, then one untimed step, before each block (default 0.2; see bench_case)")
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    p.add_argument("--threads", type=int, default=2, help="BLAS threads, and torch threads (default 2)")
    p.add_argument("--kernel-threads", type=int, default=None,
                   help="threads for minigan's compiled kernels (default: the library's default, one)")
    p.add_argument("--refs", nargs="+", default=list(ALL_REFS), choices=ALL_REFS, help="references to time")
    p.add_argument("--quick", action="store_true", help="a few steps only: checks that everything runs")
    p.add_argument("--peak-rss", action="store_true", help="also report peak RSS and per-step memory growth")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--processes", choices=["one", "separate", "both"], default="both",
                   help="one: every contender in this process; separate: each in its own process (no two thread "
                        "pools in one process); both (default): the two tables")
    p.add_argument("--worker", choices=list(CONTENDERS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.rounds, args.warmup, args.settle = 2, 1, 1, 0.0
    if args.batch is None:
        args.batch = list(GPU_BATCHES if args.backend == "cupy" else CPU_BATCHES)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    if args.backend == "cupy":
        mb.resolve("cupy")  # a clear error when there is no GPU
    refs, notes = available_refs(args.refs, args.backend)
    if any(r.startswith("torch") for r in refs):
        import torch

        torch.set_num_threads(args.threads)
    names = ["minigan"] + refs
    # separate first: the one-process rounds leave torch's, JAX's and OpenBLAS's pools in this process, and their
    # spinning would take a core from the workers
    modes = ["separate", "one"] if args.processes == "both" else [args.processes]
    rows = []
    set_all_threads(args.threads, args.kernel_threads)
    with blas_threads(args.threads):
        env = environment(args.threads, refs)
        for mode in modes:
            for arch in args.arch:
                for n in args.batch:
                    load_before = os.getloadavg()[0]
                    if mode == "one":
                        ms, cores = bench_case(arch, n, names, args.backend, args.steps, args.rounds, args.warmup,
                                               args.settle)
                    else:
                        ms, cores = bench_case_separate(arch, n, names, args)
                    row = {"processes": mode, "arch": arch, "batch": n, "ms": ms, "cores_busy": cores,
                           "loadavg_1min": [load_before, os.getloadavg()[0]]}
                    row["ratios"] = ratios(row)
                    rows.append(row)
                    print(f"  [{mode}] {arch} N={n}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()),
                          file=sys.stderr)
    result = {"backend": args.backend, "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup,
              "settle_s": args.settle, "command": " ".join(["bench_step.py"] + list(sys.argv[1:] if argv is None else argv)),
              "environment": env, "skipped": notes, "rows": rows}
    if args.peak_rss:
        result["memory"] = peak_rss(args)
    print(f"backend {args.backend}, {args.threads} threads, median of {args.steps} steps after {args.warmup} warm-up, "
          f"{args.rounds} alternating rounds")
    print(f"CPU: {env['cpu']} ({env['cores']} cores; {env['vector_extensions']}); BLAS: {env['openblas']}; "
          f"threadpoolctl: {env['blas']}; minigan kernels: {env['minigan_kernels']}")
    loads = [x for row in rows for x in row["loadavg_1min"]]
    print(f"1-minute load average during the run: {min(loads):.2f} to {max(loads):.2f} (other processes share the cores)")
    for name, note in notes.items():
        print(f"{name}: {note}")
    for mode in modes:
        print(f"\n{'all contenders in one process' if mode == 'one' else 'each contender in its own process'}:")
        print(format_table([row for row in rows if row["processes"] == mode], names))
    print("ratios are minigan / reference (below 1: minigan faster); GEMM share = gemm / minigan")
    if any("fixed/gemm" in row["ratios"] for row in rows):
        print("fixed = the GEMM floor + the work kept as it is for bit-for-bit results (NumPy's normals, exp/tanh on "
              "G's output, Adam.step); the lowest /gemm an exact step can reach, fixed / gemm: " + "; ".join(
                  f"[{row['processes']}] {row['arch']} {row['batch']}: {row['ratios']['fixed/gemm']:.2f}"
                  for row in rows if "fixed/gemm" in row["ratios"]))
    print("cores kept busy (process CPU time / wall time, medians): " + "; ".join(
        f"{row['arch']} {row['batch']}: " + " ".join(f"{k} {v:.1f}" for k, v in row["cores_busy"].items())
        for row in rows))
    if "memory" in result:
        m = result["memory"]
        print(f"memory ({m['arch']}, N={m['batch']}, {m['steps']} steps after {m['warmup']} warm-up, own process): "
              f"peak RSS {m['peak_rss_mib']:.1f} MiB; RSS {m['rss_first_kib']:,} -> {m['rss_last_kib']:,} KiB "
              f"({m['rss_growth_kib_per_step']:+.2f} KiB/step); traced memory {m['growth_bytes_per_step']:+.1f} B/step")
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
