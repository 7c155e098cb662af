"""Real distributed runs and real kills: train.py as worker processes on
127.0.0.1, SIGKILL, restart, and the weights compared with one process.

Runs on a slice of the real Fashion-MNIST (Debian's dataset-fashion-mnist)
written as PNG files, read into memory or streamed: the two feed identical
batches, so every run here has one reference.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
from PIL import Image
import pytest

import keras_ae  # noqa: F401  (registers the model classes for load_model)
from keras_ae import data
from tests.test_train import ROOT, run_train

pytestmark = pytest.mark.slow

# Conv on 1,024 real images: a few seconds an epoch on two workers.
# One step per execution everywhere: multi-worker runs take no other (see
# training.with_steps_per_execution), and the same graph gives the same bits.
FLAGS = ["--variant=conv", "--batch_size=64", "--latent_dim=8", "--seed=3", "--deterministic",
         "--steps_per_execution=1"]
TIMEOUT = 300  # seconds any one process may take


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Training and test folders holding Fashion-MNIST's first 1,024 training
    and 512 test images as PNG files, in their order: the flags that read them."""
    if not os.path.isdir("/usr/share/datasets/fashion-mnist"):
        pytest.fail("needs Debian's dataset-fashion-mnist: apt-get install dataset-fashion-mnist")
    fashion = data.load("fashion_mnist", download=False, train_examples=1024)
    root = tmp_path_factory.mktemp("fashion-png")
    for split, pixels in (("train", fashion.train_images), ("test", fashion.test_images[:512])):
        os.makedirs(root / split)
        for i, image in enumerate(pixels[..., 0]):
            Image.fromarray(image).save(root / split / f"{i:05d}.png")
    return ["--dataset=folder", f"--data_dir={root / 'train'}", f"--test_dir={root / 'test'}"]


@pytest.fixture(scope="module")
def in_memory(folders):
    return [*folders, "--input=memory"]


@pytest.fixture(scope="module")
def streamed(folders):
    return [*folders, "--input=stream"]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_workers(model_dir, flags, scratch, count=2):
    """`count` train.py processes on 127.0.0.1, one cluster; their own TMPDIR."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    os.makedirs(scratch, exist_ok=True)
    processes = []
    for index in range(count):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
            "TMPDIR": str(scratch),
        }
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "train.py"), "--strategy=multi_worker_mirrored",
             f"--model_dir={model_dir}", *flags],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    return processes


def finish(processes, timeout=TIMEOUT):
    """Waits for every process (killing all past `timeout`); their (code, stderr)."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for p in processes:
            _, stderr = p.communicate(timeout=max(1, deadline - time.monotonic()))
            results.append((p.returncode, stderr))
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return results


def wait_for_backup(model_dir, epoch, processes, timeout=TIMEOUT):
    """Blocks until the backup in `model_dir` records `epoch` finished epochs."""
    path = os.path.join(model_dir, "backup", "training_metadata.json")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and json.load(open(path))["epoch"] >= epoch:
            return
        assert all(p.poll() is None for p in processes), "a worker ended early"
        time.sleep(0.05)
    raise AssertionError(f"no backup of epoch {epoch} within {timeout} s")


def weights(model_dir):
    model = keras.saving.load_model(os.path.join(model_dir, "model.keras"))
    return model.get_weights()


def max_difference(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def train_in_one_process(directory, *flags):
    model_dir = str(directory / "run")
    result = run_train(*FLAGS, "--epochs=2", f"--model_dir={model_dir}", *flags, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir


# Two replicas in one process, as the reference every test here shares.
TWO_REPLICAS = ["--strategy=mirrored", "--cpu_devices=2"]


@pytest.fixture(scope="module")
def two_replicas(in_memory, tmp_path_factory):
    """The same training, uninterrupted, in one process with two replicas.

    Two workers compute exactly this: each replica's half of the global batch,
    then their sum. One device sums the whole batch in another order, and
    Adam amplifies those float32 rounding differences over the steps (0.054
    in the weights after 96 steps, 3 epochs of 2,048 images), so it is no
    exact reference.
    """
    return train_in_one_process(tmp_path_factory.mktemp("two_replicas"), *in_memory,
                                *TWO_REPLICAS)


def test_two_workers_streaming_train_like_one_process_and_only_the_chief_writes(
        two_replicas, streamed, tmp_path):
    # Each worker reads only its replica's half of every global batch from the
    # files (tests/test_data.py shows the halves cover each epoch once).
    model_dir = str(tmp_path / "run")
    start = time.monotonic()
    results = finish(start_workers(model_dir, [*FLAGS, *streamed, "--epochs=2"],
                                   tmp_path / "scratch"))
    for code, stderr in results:
        assert code == 0, stderr[-3000:]
    print(f"two workers: {time.monotonic() - start:.1f} s")

    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["replicas"] == 2 and metrics["epochs_trained"] == 2
    assert metrics["input"] == "stream"
    # The chief wrote what a single process writes; the other worker wrote
    # nothing there and removed its own scratch directory.
    assert sorted(os.listdir(model_dir)) == sorted(os.listdir(two_replicas))
    assert os.listdir(tmp_path / "scratch") == []
    difference = max_difference(weights(model_dir), weights(two_replicas))
    print(f"max |weight difference| two workers vs one process: {difference:.3g}")
    assert difference < 1e-6
    reference = json.load(open(os.path.join(two_replicas, "metrics.json")))
    np.testing.assert_allclose(metrics["test_mse"], reference["test_mse"], rtol=1e-5)


def test_a_killed_streamed_run_resumes_where_its_backup_left_off(
        two_replicas, streamed, tmp_path):
    model_dir = str(tmp_path / "run")
    flags = [*FLAGS, *streamed, *TWO_REPLICAS, "--epochs=2", f"--model_dir={model_dir}"]
    command = [sys.executable, os.path.join(ROOT, "train.py"), *flags]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for_backup(model_dir, 1, [first])
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert not os.path.exists(os.path.join(model_dir, "metrics.json"))

    start = time.monotonic()
    result = run_train(*flags, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"resumed run: {time.monotonic() - start:.1f} s")
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    resumed = metrics["resumed_at_epoch"]
    assert resumed >= 1 and f"resuming from the backup at epoch {resumed}" in result.stderr
    assert metrics["epochs_trained"] == 2 - resumed  # no finished epoch again
    difference = max_difference(weights(model_dir), weights(two_replicas))
    print(f"max |weight difference| killed and resumed vs uninterrupted: {difference:.3g}")
    assert difference < 1e-6


def test_two_workers_survive_losing_one(two_replicas, in_memory, tmp_path):
    model_dir = str(tmp_path / "run")
    flags = [*FLAGS, *in_memory, "--epochs=2"]
    workers = start_workers(model_dir, flags, tmp_path / "scratch")
    try:
        wait_for_backup(model_dir, 1, workers)
        workers[1].send_signal(signal.SIGKILL)
        start = time.monotonic()
        (chief_code, chief_stderr), _ = finish(workers, timeout=120)
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
    print(f"the chief failed {time.monotonic() - start:.1f} s after losing its peer")
    assert chief_code == 1
    assert "lost a worker" in chief_stderr and "restart every worker" in chief_stderr

    results = finish(start_workers(model_dir, flags, tmp_path / "scratch"))
    for code, stderr in results:
        assert code == 0, stderr[-3000:]
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["resumed_at_epoch"] >= 1
    assert metrics["epochs_trained"] == 2 - metrics["resumed_at_epoch"]
    difference = max_difference(weights(model_dir), weights(two_replicas))
    print(f"max |weight difference| two workers, one killed, vs one process: {difference:.3g}")
    assert difference < 1e-6
