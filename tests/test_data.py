"""Tests for minigan.data, minigan.mnist_files and the bundled digits (offline; MNIST tests skip without it)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigan import data, mnist_files
from minigan.assets import build_digits

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_IMAGES, TRAIN_LABELS = data.SPLIT_FILES["train"]


def shared_mnist_dir() -> Path:
    env = os.environ.get("MINIGAN_MNIST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir() -> Path:
    path = shared_mnist_dir()
    if not (path / TRAIN_IMAGES).is_file():
        pytest.skip(f"real MNIST files not found in {path} (set MINIGAN_MNIST_DIR)")
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Empty user cache, no MINIGAN_DATA_DIR, and no mirrors: never the internet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MINIGAN_DATA_DIR", raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setattr(mnist_files, "MIRRORS", {"mnist": [], "fashion-mnist": []})
    monkeypatch.setattr(mnist_files, "DOWNLOAD_RETRIES", 0)  # a 404 is not worth pooch's waits here


# ---------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """Raw IDX encoding of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def md5(blob: bytes) -> str:
    return hashlib.md5(blob).hexdigest()


def synthetic_split(n: int = 20, seed: int = 0, label_offset: int = 0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = ((np.arange(n) + label_offset) % 10).astype(np.uint8)
    return images, labels


def write_split(folder: Path, images, labels, split="train", mtime=0) -> dict:
    """Write gzip IDX files; return {file name: (gz bytes, raw bytes)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, array in zip(data.SPLIT_FILES[split], (images, labels)):
        raw = idx_bytes(array)
        blob = gzip.compress(raw, mtime=mtime)
        (folder / name).write_bytes(blob)
        out[name] = (blob, raw)
    return out


def trust_raw(monkeypatch, files: dict, dataset="mnist") -> None:
    """Make KNOWN_MD5[dataset] expect the uncompressed content of ``files``."""
    table = {name: {"gz": None, "raw": md5(raw)} for name, (_, raw) in files.items()}
    monkeypatch.setitem(mnist_files.KNOWN_MD5, dataset, table)


# ---------------------------------------------------------------- digits


def test_digits_shape_dtype_counts_checksum():
    images, labels = data.load_digits()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [1000] * 10
    assert data.digits_digest(images, labels) == data.DIGITS_SHA256
    assert data.DIGITS_PATH.stat().st_size < 2_100_000
    with np.load(data.DIGITS_PATH, allow_pickle=False) as npz:
        index = npz["source_index"]
    assert index.dtype == np.int32 and np.all(np.diff(index) > 0)


def test_digits_rebuild_is_identical(mnist_dir, tmp_path):
    out = tmp_path / "digits.npz"
    assert build_digits.build(mnist_dir, out) == data.DIGITS_SHA256
    with np.load(out) as new, np.load(data.DIGITS_PATH) as old:
        for key in ("images", "labels", "source_index"):
            np.testing.assert_array_equal(new[key], old[key])
            assert new[key].dtype == old[key].dtype
        train_images, train_labels = data.load_mnist(data_dir=mnist_dir, download=False)
        np.testing.assert_array_equal(train_images[new["source_index"]], new["images"])
        np.testing.assert_array_equal(train_labels[new["source_index"]], new["labels"])


def test_corrupt_digits_file_raises(monkeypatch, tmp_path):
    images, labels = data.load_digits()
    images = images.copy()
    images[0, 0, 0] ^= 1
    bad = tmp_path / "digits.npz"
    np.savez_compressed(bad, images=images, labels=labels)
    monkeypatch.setattr(data, "DIGITS_PATH", bad)
    try:
        with pytest.raises(data.DatasetError, match="(?s)digits.npz.*checksum.*[Rr]einstall"):
            data.load_digits()
    finally:
        data._load_digits_cached.cache_clear()


# ---------------------------------------------------------------- IDX parser


@settings(max_examples=25, deadline=None)
@given(shape=st.one_of(st.tuples(st.integers(0, 30)),
                       st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))),
       compress=st.booleans(), seed=st.integers(0, 2**16))
def test_read_idx_round_trip(shape, compress, seed):
    array = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    blob = idx_bytes(array)
    if compress:
        blob = gzip.compress(blob)
    out = data.read_idx(blob)
    assert out.dtype == np.uint8 and out.shape == shape
    np.testing.assert_array_equal(out, array)


def test_read_idx_from_path(tmp_path):
    images, labels = synthetic_split()
    write_split(tmp_path, images, labels)
    np.testing.assert_array_equal(data.read_idx(tmp_path / TRAIN_IMAGES, ndim=3), images)
    np.testing.assert_array_equal(data.read_idx(tmp_path / TRAIN_LABELS), labels)


@pytest.mark.parametrize("corruption, pattern", [
    ("truncated_gzip", "truncated gzip"),
    ("truncated_payload", "payload truncated"),
    ("trailing_bytes", "trailing bytes"),
    ("wrong_magic", "wrong magic number 0x00000903"),
    ("labels_as_images", "holds labels"),
    ("empty", "too short"),
])
def test_read_idx_corruptions(tmp_path, corruption, pattern):
    images, labels = synthetic_split()
    raw = idx_bytes(images)
    blob = {
        "truncated_gzip": gzip.compress(raw)[:-50],
        "truncated_payload": gzip.compress(raw[:-1]),
        "trailing_bytes": raw + b"\0",
        "wrong_magic": bytes([0, 0, 0x09]) + raw[3:],
        "labels_as_images": gzip.compress(idx_bytes(labels)),
        "empty": b"",
    }[corruption]
    path = tmp_path / TRAIN_IMAGES
    path.write_bytes(blob)
    with pytest.raises(data.DatasetError, match=pattern) as info:
        data.read_idx(path, ndim=3)
    message = str(info.value)
    assert str(path) in message and "Delete" in message


def test_md5_mismatch(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    files = write_split(tmp_path, images, labels)
    trust_raw(monkeypatch, files)
    np.testing.assert_array_equal(data.read_verified_idx(tmp_path / TRAIN_IMAGES), images)
    images[0, 0, 0] ^= 1
    write_split(tmp_path, images, labels)  # valid structure, wrong content
    with pytest.raises(data.DatasetError, match="checksum mismatch") as info:
        data.read_verified_idx(tmp_path / TRAIN_IMAGES)
    assert TRAIN_IMAGES in str(info.value) and "Delete" in str(info.value)
    with pytest.raises(data.DatasetError, match="checksum mismatch"):
        data.load_mnist(data_dir=tmp_path, download=False)


def test_recompressed_copy_accepted_by_raw_md5(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    files = write_split(tmp_path, images, labels, mtime=0)
    trust_raw(monkeypatch, files)
    write_split(tmp_path, images, labels, mtime=12345)  # different gzip bytes
    assert md5((tmp_path / TRAIN_IMAGES).read_bytes()) != md5(files[TRAIN_IMAGES][0])
    got_images, got_labels = data.load_mnist(data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def test_fashion_accepts_only_known_gz_bytes(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    files = write_split(tmp_path, images, labels, mtime=0)
    table = {name: {"gz": md5(blob), "raw": None} for name, (blob, _) in files.items()}
    monkeypatch.setitem(mnist_files.KNOWN_MD5, "fashion-mnist", table)
    got, _ = data.load_mnist(dataset="fashion-mnist", data_dir=tmp_path, download=False)
    np.testing.assert_array_equal(got, images)
    write_split(tmp_path, images, labels, mtime=999)  # same content, other .gz bytes
    with pytest.raises(data.DatasetError, match="checksum mismatch"):
        data.load_mnist(dataset="fashion-mnist", data_dir=tmp_path, download=False)


# ---------------------------------------------------------------- real MNIST


def test_load_mnist_shared(mnist_dir):
    images, labels = data.load_mnist("train", data_dir=mnist_dir, download=False)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == TRAIN_COUNTS
    images, labels = data.load_mnist("test", data_dir=mnist_dir, download=False)
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels).tolist() == TEST_COUNTS


def test_data_dir_may_hold_a_dataset_subfolder(mnist_dir):
    _, labels = data.load_mnist("test", data_dir=mnist_dir.parent, download=False)
    assert len(labels) == 10000
    with pytest.raises(data.DatasetError, match="checksum mismatch"):  # same names!
        data.load_mnist("test", dataset="fashion-mnist", data_dir=mnist_dir, download=False)


# ---------------------------------------------------------------- lookup


def test_lookup_order(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist_files, "_check_md5", lambda *args: None)  # order, not checksums
    arg_dir, env_dir = tmp_path / "arg", tmp_path / "env"
    for folder, offset in ((arg_dir, 1), (env_dir / "mnist", 2), (data.cache_dir(), 3)):
        write_split(folder, *synthetic_split(label_offset=offset))
    monkeypatch.setenv("MINIGAN_DATA_DIR", str(env_dir))

    def first_label(**kw):
        return int(data.load_mnist(download=False, **kw)[1][0])

    assert first_label(data_dir=arg_dir) == 1
    assert first_label(data_dir=tmp_path / "empty") == 2  # falls through to env
    assert first_label() == 2
    monkeypatch.delenv("MINIGAN_DATA_DIR")
    assert first_label() == 3
    assert data.cache_dir("mnist") == tmp_path / "xdg-cache" / "minigan" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.cache_dir("mnist") == Path.home() / ".cache" / "minigan" / "mnist"


def test_missing_without_download(tmp_path):
    with pytest.raises(data.DatasetError, match="not found") as info:
        data.load_mnist(data_dir=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path) in message and str(data.cache_dir()) in message
    assert "by hand" in message


# ---------------------------------------------------------------- download


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1; yields (served folder, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def serve_mirrors(monkeypatch, http_root, kinds):
    """One mirror per entry of ``kinds`` ("good", "corrupt" or "missing")."""
    root, url = http_root
    images, labels = synthetic_split()
    files = write_split(root / "good", images, labels)
    trust_raw(monkeypatch, files)
    for name, (blob, _) in files.items():
        (root / "corrupt").mkdir(exist_ok=True)
        (root / "corrupt" / name).write_bytes(blob[: len(blob) // 2])
    mirrors = [f"{url}{kind}/" for kind in kinds]
    monkeypatch.setitem(mnist_files.MIRRORS, "mnist", mirrors)
    return images, labels, mirrors


def test_download_skips_bad_mirror(monkeypatch, http_root):
    images, labels, _ = serve_mirrors(monkeypatch, http_root, ["corrupt", "good"])
    got_images, got_labels = data.load_mnist(timeout=5)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    cache = data.cache_dir("mnist")
    assert sorted(p.name for p in cache.iterdir()) == sorted([TRAIN_IMAGES, TRAIN_LABELS])

    def no_network(*args):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(mnist_files, "_fetch", no_network)
    np.testing.assert_array_equal(data.load_mnist()[1], labels)


def test_download_all_mirrors_fail(monkeypatch, http_root):
    _, _, mirrors = serve_mirrors(monkeypatch, http_root, ["missing", "corrupt"])
    with pytest.raises(data.DatasetError, match="every mirror failed") as info:
        data.load_mnist(timeout=5)
    message = str(info.value)
    for mirror in mirrors:
        assert mirror + TRAIN_IMAGES in message
    assert "404" in message and "truncated gzip" in message
    assert "by hand" in message and str(data.cache_dir()) in message
    assert list(data.cache_dir().iterdir()) == []  # no temp files left


def test_corrupt_cached_file_is_not_used(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    files = write_split(data.cache_dir(), images, labels)
    trust_raw(monkeypatch, files)
    path = data.cache_dir() / TRAIN_IMAGES
    path.write_bytes(files[TRAIN_IMAGES][0][:-10])
    monkeypatch.setattr(mnist_files, "_fetch", lambda *a: pytest.fail("must not download"))
    with pytest.raises(data.DatasetError, match="Delete") as info:
        data.load_mnist(download=True)
    assert str(path) in str(info.value)
    assert path.exists()  # left for the user to inspect / delete


# ---------------------------------------------------------------- Dataset.batch


def unique_images(n: int) -> np.ndarray:
    """n images whose first two pixels encode their index."""
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    images[:, 0, 1] = np.arange(n) // 256
    return images


def batch_ids(batch: np.ndarray) -> np.ndarray:
    pixels = np.rint(batch[:, :2] * 255).astype(int)  # sigmoid scale
    return pixels[:, 0] + 256 * pixels[:, 1]


def test_image_batches_are_pure_and_cover_each_epoch():
    ds = data.ImageDataset("u", unique_images(1000), scale="sigmoid", seed=3)
    assert ds.batches_per_epoch(64) == 15  # incomplete last batch dropped
    epoch0 = [batch_ids(ds.batch(s, 100)) for s in range(10)]
    assert sorted(np.concatenate(epoch0).tolist()) == list(range(1000))
    epoch1 = np.concatenate([batch_ids(ds.batch(s, 100)) for s in range(10, 20)])
    assert sorted(epoch1.tolist()) == list(range(1000))
    assert not np.array_equal(np.concatenate(epoch0), epoch1)
    fresh = data.ImageDataset("u", unique_images(1000), scale="sigmoid", seed=3)
    np.testing.assert_array_equal(fresh.batch(7, 100), ds.batch(7, 100))  # any order
    other_seed = data.ImageDataset("u", unique_images(1000), scale="sigmoid", seed=4)
    assert not np.array_equal(other_seed.batch(7, 100), ds.batch(7, 100))


@pytest.mark.parametrize("scale, low", [("tanh", -1.0), ("sigmoid", 0.0)])
def test_digits_batches(scale, low):
    ds = data.get_dataset("digits", scale=scale, seed=1)
    assert (ds.kind, ds.dim, ds.image_shape, ds.num_examples) == ("image", 784, (28, 28), 10000)
    assert ds.modes is None and ds.sigma is None and ds.scale == scale
    batch = ds.batch(5, 128)
    assert batch.dtype == np.float32 and batch.shape == (128, 784)
    assert batch.min() == low and batch.max() == 1.0
    np.testing.assert_array_equal(batch, ds.batch(5, 128))
    assert not np.array_equal(batch, ds.batch(6, 128))
    images = ds.to_images(batch)
    assert images.shape == (128, 28, 28) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    pixels = np.rint(images * 255).astype(np.uint8)
    originals = data.load_digits()[0]
    assert any(np.array_equal(pixels[0], img) for img in originals)
    real = ds.real_samples(300, seed=2)
    assert real.dtype == np.float32 and real.shape == (300, 784)
    np.testing.assert_array_equal(real, ds.real_samples(300, seed=2))


def test_images_to_model_scale():
    x = np.array([[[0, 128, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(data.images_to_model_scale(x, "sigmoid"),
                                  np.array([[0, 128 / 255, 1]], dtype=np.float32))
    tanh = data.images_to_model_scale(x, "tanh")
    assert tanh.dtype == np.float32 and tanh[0, 0] == -1 and tanh[0, 2] == 1
    with pytest.raises(TypeError, match="uint8"):
        data.images_to_model_scale(x.astype(np.float32), "tanh")
    with pytest.raises(ValueError, match="scale"):
        data.images_to_model_scale(x, "relu")


# ---------------------------------------------------------------- 2-D targets


def test_modes():
    ring = data.ring8_modes()
    assert ring.shape == (8, 2) and ring.dtype == np.float64
    np.testing.assert_allclose(np.hypot(*ring.T), 1.0)
    np.testing.assert_allclose(ring[2], [0.0, 1.0], atol=1e-12)
    grid = data.grid25_modes()
    assert grid.shape == (25, 2) and len({tuple(p) for p in grid}) == 25
    assert set(grid.ravel()) == {-4.0, -2.0, 0.0, 2.0, 4.0}


@pytest.mark.parametrize("name, sigma", [("ring8", 0.01), ("grid25", 0.05)])
def test_mixture_samples_near_modes(name, sigma):
    ds = data.get_dataset(name, seed=0)
    assert (ds.kind, ds.dim, ds.image_shape, ds.num_examples, ds.sigma) == (
        "2d", 2, None, None, sigma)
    x = ds.batch(11, 5000)
    assert x.dtype == np.float32 and x.shape == (5000, 2)
    dist = np.linalg.norm(x[:, None, :] - ds.modes[None], axis=2)  # (5000, K)
    assert dist.min(axis=1).max() < 5 * sigma
    assert set(dist.argmin(axis=1).tolist()) == set(range(len(ds.modes)))
    with pytest.raises(TypeError):
        ds.to_images(x)


@pytest.mark.parametrize("name", ["ring8", "grid25", "moons", "spiral"])
def test_toy_batches_are_pure(name):
    ds = data.get_dataset(name, seed=5)
    a = ds.batch(3, 256)
    assert a.dtype == np.float32 and a.shape == (256, 2) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, data.get_dataset(name, seed=5).batch(3, 256))
    assert not np.array_equal(a, ds.batch(4, 256))
    assert not np.array_equal(a, data.get_dataset(name, seed=6).batch(3, 256))
    real = ds.real_samples(100, seed=0)
    assert real.dtype == np.float32 and real.shape == (100, 2)
    assert np.abs(a).max() < 6


def test_get_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ring8.*spiral"):
        data.get_dataset("cifar10")
    with pytest.raises(ValueError, match="scale"):
        data.get_dataset("ring8", scale="linear")
    with pytest.raises(ValueError, match="seed"):
        data.get_dataset("ring8", seed=-1)
    ds = data.get_dataset("ring8")
    with pytest.raises(ValueError, match="batch_size"):
        ds.batch(0, 0)
    with pytest.raises(ValueError, match="step"):
        ds.batch(-1, 4)


def test_mnist_dataset_holds_out_the_parzen_validation_images(mnist_dir):
    """Training data never includes the images the Parzen window is chosen on (the last 1,000 of the file)."""
    ds = data.get_dataset("mnist", data_dir=mnist_dir, download=False)
    train, labels = data.load_mnist("train", data_dir=mnist_dir, download=False)
    assert ds.num_examples == 60000 - data.VALIDATION_SIZE == 59000
    np.testing.assert_array_equal(ds._flat, train[:-data.VALIDATION_SIZE].reshape(59000, 784))
    np.testing.assert_array_equal(ds.labels, labels[:-data.VALIDATION_SIZE])


# ---------------------------------------------------------------- downloads by pooch


def test_download_from_a_file_url_mirror_verifies_the_official_gz_md5(monkeypatch, tmp_path):
    """pooch checks the .gz MD5 of a download; a file:// mirror keeps the test offline."""
    images, labels = synthetic_split()
    files = write_split(tmp_path / "mirror", images, labels)
    table = {name: {"gz": md5(blob), "raw": None} for name, (blob, _) in files.items()}
    monkeypatch.setitem(mnist_files.KNOWN_MD5, "mnist", table)
    monkeypatch.setitem(mnist_files.MIRRORS, "mnist", [(tmp_path / "mirror").as_uri() + "/"])
    got_images, got_labels = data.load_mnist()
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert sorted(p.name for p in data.cache_dir().iterdir()) == sorted([TRAIN_IMAGES, TRAIN_LABELS])


def test_pooch_refuses_a_download_whose_md5_differs(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    write_split(tmp_path / "mirror", images, labels)
    table = {name: {"gz": "0" * 32, "raw": None} for name in data.SPLIT_FILES["train"]}
    monkeypatch.setitem(mnist_files.KNOWN_MD5, "mnist", table)
    monkeypatch.setitem(mnist_files.MIRRORS, "mnist", [(tmp_path / "mirror").as_uri() + "/"])
    with pytest.raises(data.DatasetError, match=r"(?s)every mirror failed:\n.*MD5 hash.*0{32}.*by hand"):
        data.load_mnist()
    assert list(data.cache_dir().iterdir()) == []  # pooch removed its temporary file; nothing under the real name


def test_a_flaky_mirror_is_retried(monkeypatch, tmp_path):
    images, labels = synthetic_split()
    files = write_split(tmp_path / "mirror", images, labels)
    trust_raw(monkeypatch, files)
    monkeypatch.setitem(mnist_files.MIRRORS, "mnist", [(tmp_path / "mirror").as_uri() + "/"])
    monkeypatch.setattr(mnist_files, "DOWNLOAD_RETRIES", 1)
    monkeypatch.setattr("time.sleep", lambda s: None)  # pooch waits between attempts
    real_fetch, attempts = mnist_files._fetch, []

    def flaky(url, dest, timeout):
        attempts.append(url)
        if len(attempts) == 1:
            raise ValueError("connection reset")  # what pooch retries: a failed or mismatching download
        real_fetch(url, dest, timeout)

    monkeypatch.setattr(mnist_files, "_fetch", flaky)
    np.testing.assert_array_equal(data.load_mnist()[1], labels)
    assert len(attempts) == 3  # images twice (one retry), labels once


def test_offline_with_files_in_place_never_imports_pooch(mnist_dir):
    """--data-dir / MINIGAN_DATA_DIR with the files there: no network library, no download, as documented."""
    code = ("import sys; sys.modules['pooch'] = None; from minigan import data; "
            f"print(data.load_mnist('test', data_dir={str(mnist_dir)!r}, download=False)[0].shape)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    assert done.returncode == 0 and "(10000, 28, 28)" in done.stdout, done.stderr
