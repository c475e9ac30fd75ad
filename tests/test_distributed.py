"""Data-parallel fit (rnnkit.distribute): two local processes on the loopback interface with gloo,
started the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).

This file is also the worker: ``python test_distributed.py MODE OUT`` trains one model and writes
its weights, history and a log of model-file writes (saves.log) to OUT."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed

if not torch.distributed.is_available():
    pytest.skip("this PyTorch build has no torch.distributed", allow_module_level=True)

GLOBAL_BATCH, SAMPLES, EPOCHS = 64, 200, 2  # 200 = 3 x 64 + 8: the last global batch is split 4 + 4


def log_model_writes(out):
    """In a worker process: note every model file written (rank, name) in OUT/saves.log."""
    from rnnkit import saving

    real_save, rank = saving.save_model, os.environ.get("RANK", "0")

    def logged_save(model, path, **kwargs):
        with open(Path(out) / "saves.log", "a") as f:
            f.write(f"rank {rank} {Path(path).name}\n")
        return real_save(model, path, **kwargs)

    saving.save_model = logged_save


def train(mode, out):
    """Train the test model with batch GLOBAL_BATCH / world size; writes weights-<rank>.npz and
    history-<rank>.json to ``out``."""
    import torch

    torch.set_num_threads(1)
    import rnnkit

    out = Path(out)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    rnnkit.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLES + 40, 6, 3)).astype("float32")
    y = (x[:, :, 0].mean(axis=1, keepdims=True) + 0.1 * x[:, -1, 1:2]).astype("float32")
    inputs = rnnkit.Input(shape=(6, 3))
    outputs = rnnkit.layers.Dense(1)(rnnkit.layers.LSTM(8)(inputs))
    model = rnnkit.Model(inputs, outputs)
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    callbacks = [rnnkit.callbacks.ModelCheckpoint(str(out / "checkpoint.rnnkit")),
                 rnnkit.callbacks.CSVLogger(str(out / "log.csv"))]
    history = model.fit(x[:SAMPLES], y[:SAMPLES], batch_size=GLOBAL_BATCH // world, epochs=EPOCHS, shuffle=True,
                        validation_data=(x[SAMPLES:], y[SAMPLES:]), verbose=0, callbacks=callbacks)
    model.save(out / "final.rnnkit")  # every rank calls it; rank 0 writes
    np.savez(out / f"weights-{rank}.npz", *model.get_weights())
    (out / f"history-{rank}.json").write_text(json.dumps(history.history))
    if mode == "then-fail":  # a second fit in which rank 1 raises at its second batch
        def fail(batch, logs):
            if rank == 1 and batch == 1:
                raise RuntimeError("rank 1 fails on purpose")
        model.fit(x[:SAMPLES], y[:SAMPLES], batch_size=GLOBAL_BATCH // world, epochs=1, verbose=0,
                  callbacks=[rnnkit.callbacks.LambdaCallback(on_batch_end=fail)])
        (out / f"finished-{rank}").write_text("the second fit ended")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(mode, out, world=2, timeout=120):
    """Start ``world`` worker processes as torchrun would; returns (exit status, stdout + stderr) of each."""
    port = _free_port()
    procs = []
    for rank in range(world):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port), OMP_NUM_THREADS="1", RNNKIT_DIST_TIMEOUT="30")
        procs.append(subprocess.Popen([sys.executable, __file__, mode, str(out)], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=timeout)
        results.append((proc.returncode, stdout + stderr))
    return results


def _weights(path):
    with np.load(path) as data:
        return [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]


def _rows(batches):
    return [xb.tolist() for xb, _, _ in batches]


def test_each_rank_takes_its_slice_of_every_global_batch():
    from rnnkit import data_adapter
    from rnnkit.distribute import ShardedArrayBatches, ShardedIterableBatches

    def shards(n, world=2, **kwargs):
        arrays = data_adapter.ArrayBatches(np.arange(n), np.arange(n), batch_size=2)
        return [_rows(ShardedArrayBatches(arrays, r, world, **kwargs)) for r in range(world)]

    assert shards(10) == [[[0, 1], [4, 5], [8]], [[2, 3], [6, 7], [9]]]  # global batches of 4; last 2 split
    assert shards(11) == [[[0, 1], [4, 5], [8]], [[2, 3], [6, 7], [9, 10]]]
    assert shards(9) == [[[0, 1], [4, 5]], [[2, 3], [6, 7]]]  # a last global batch smaller than the world: left out
    assert shards(7, blocks=True) == [[[0, 1], [2]], [[3, 4], [5, 6]]]  # validation: one block per rank
    dataset = data_adapter.IterableBatches([(np.arange(5), np.arange(5)), (np.arange(1), np.arange(1))])
    assert [_rows(ShardedIterableBatches(dataset, r, 2)) for r in (0, 1)] == [[[0, 1]], [[2, 3, 4]]]
    assert [_rows(ShardedIterableBatches(dataset, r, 2, training=False)) for r in (0, 1)] == [[[0, 1], [0]],
                                                                                              [[2, 3, 4]]]


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Two processes that train (batch 32 each), then fail in a second fit (rank 1 raises)."""
    out = tmp_path_factory.mktemp("two")
    return out, _launch("then-fail", out)


def test_two_processes_match_one_with_the_global_batch(two_ranks, tmp_path):
    two, _ = two_ranks
    train("train", tmp_path)  # this process: world size 1, batch 64

    single = _weights(tmp_path / "weights-0.npz")
    rank0, rank1 = _weights(two / "weights-0.npz"), _weights(two / "weights-1.npz")
    for a, b in zip(rank0, rank1):
        np.testing.assert_array_equal(a, b)  # every rank applied the same averaged gradients
    for a, b in zip(rank0, single):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
    # the logs are global means: the same numbers as one process, in both ranks
    h_single = json.loads((tmp_path / "history-0.json").read_text())
    for rank in (0, 1):
        h = json.loads((two / f"history-{rank}.json").read_text())
        for key in ("loss", "mae", "val_loss", "val_mae"):
            np.testing.assert_allclose(h[key], h_single[key], rtol=1e-4)


def test_rank_0_alone_writes_checkpoints_logs_and_models(two_ranks):
    two, _ = two_ranks
    saves = (two / "saves.log").read_text().splitlines()
    assert saves == ["rank 0 checkpoint.rnnkit"] * EPOCHS + ["rank 0 final.rnnkit"]
    assert len((two / "log.csv").read_text().splitlines()) == 1 + EPOCHS  # a header and one row per epoch


def test_a_failing_rank_ends_the_job_with_its_error(two_ranks):
    two, ((code0, out0), (code1, out1)) = two_ranks
    assert code1 != 0 and "rank 1 fails on purpose" in out1
    assert code0 != 0  # rank 0 is not left waiting: its collective fails when rank 1 is gone
    assert not list(two.glob("finished-*"))


if __name__ == "__main__":
    log_model_writes(sys.argv[2])
    train(*sys.argv[1:3])
