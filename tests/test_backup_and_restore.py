"""BackupAndRestore: a fit killed (SIGKILL) after an epoch, in the middle of one, or in the middle of
writing a backup resumes, when the same program runs again, from the last complete backup with the
weights, optimizer state, random state and shuffle order it had, and ends with the weights and logs of
a run that was never interrupted (bit for bit on the CPU, with a fixed seed).

The interrupted and resumed runs are separate processes: forked from the test process (fast), and for
the step-level case the resumed run is a fresh interpreter, as a user would run the program again; the
uninterrupted run is the test process itself."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import rnnkit

EPOCHS, BATCHES_PER_EPOCH = 5, 4


def main(backup, out, kill_at_step=-1, save_freq="epoch", kill_at_backup=0):
    """The training program: 5 epochs of 4 shuffled batches (GRU with dropout, a Dropout layer, Adam, a
    metric, validation data). Kills itself after training step ``kill_at_step`` (counted from 1 over the
    whole run), or while writing its ``kill_at_backup``-th backup, just before ``state.json``."""
    torch.set_num_threads(1)
    rnnkit.utils.set_random_seed(0)
    layers = rnnkit.layers
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 3)).astype("float32")
    y = rng.normal(size=(64, 1)).astype("float32")
    model = rnnkit.Sequential([rnnkit.Input((6, 3)), layers.GRU(5, dropout=0.2), layers.Dropout(0.3), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    steps = []

    class Kill(rnnkit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)
            if len(steps) == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)

    if kill_at_backup:
        write, writes = rnnkit.callbacks.atomic_write_bytes, []

        def write_or_die(path, data):
            if path.endswith("state.json"):
                writes.append(path)
                if len(writes) == kill_at_backup:
                    os.kill(os.getpid(), signal.SIGKILL)
            return write(path, data)

        rnnkit.callbacks.atomic_write_bytes = write_or_die
    callbacks = [] if backup == "-" else [rnnkit.callbacks.BackupAndRestore(backup, save_freq=save_freq)]
    history = model.fit(x, y, epochs=EPOCHS, batch_size=16, verbose=0, validation_data=(x[:16], y[:16]),
                        callbacks=callbacks + [Kill()])
    np.save(out + ".npy", np.concatenate([w.ravel() for w in model.get_weights()]))
    with open(out + ".json", "w") as f:
        json.dump({"history": history.history, "steps": len(steps)}, f)


def _forked(*args):
    """Run ``main(*args)`` in a forked child; its exit status (negative: killed by that signal)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            main(*args)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _fresh(*args):
    """Run ``main(*args)`` in a fresh interpreter, as a user runs the program again."""
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import conftest, "
            f"test_backup_and_restore as t; t.main(*{list(args)!r})")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).returncode


def _results(out):
    with open(out + ".json") as f:
        return np.load(out + ".npy"), json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The run without a backup or a kill, in this process (which also warms up what the forks inherit)."""
    out = str(tmp_path_factory.mktemp("plain") / "plain")
    main("-", out)
    return _results(out)


def _assert_resumed_equals(out, uninterrupted, first_epoch, steps):
    weights, record = _results(out)
    plain_weights, plain = uninterrupted
    np.testing.assert_array_equal(weights, plain_weights)
    assert record["steps"] == steps  # batches trained after the resume
    for key, values in plain["history"].items():  # logs of the resumed epochs, the first one included
        assert record["history"][key] == values[first_epoch:], key


def test_a_fit_killed_after_an_epoch_resumes_from_the_next(tmp_path, uninterrupted):
    backup, out = str(tmp_path / "backup"), str(tmp_path / "run")
    assert _forked(backup, out, 2 * BATCHES_PER_EPOCH + 1) == -signal.SIGKILL
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert (state["epoch"], state["batches"]) == (1, None)
    assert _forked(backup, out) == 0
    _assert_resumed_equals(out, uninterrupted, first_epoch=2, steps=3 * BATCHES_PER_EPOCH)
    assert not os.path.exists(backup)  # removed once fit ended normally


def test_a_fit_killed_inside_an_epoch_resumes_after_the_last_backed_up_step(tmp_path, uninterrupted):
    """save_freq=3: backups after steps 3, 6 and 9; killed after step 10, the resumed run (a fresh
    interpreter) skips the first batch of the third epoch, which step 9 trained on."""
    backup, out = str(tmp_path / "backup"), str(tmp_path / "run")
    assert _forked(backup, out, 10, 3) == -signal.SIGKILL
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert (state["epoch"], state["batches"]) == (2, 1)
    assert sorted(os.listdir(backup)) == ["state.json", "training-2-1.pt", "weights-2-1.safetensors"]
    assert _fresh(backup, out, -1, 3) == 0
    _assert_resumed_equals(out, uninterrupted, first_epoch=2, steps=EPOCHS * BATCHES_PER_EPOCH - 9)


def test_a_kill_while_writing_a_backup_leaves_the_previous_one(tmp_path, uninterrupted):
    """save_freq=4: a backup after the last batch of every epoch. Killed while writing the third (its
    weights and training state written, not yet state.json), the run resumes from the second: it skips
    all batches of epoch 2 and goes on with its validation and the epochs after it."""
    backup, out = str(tmp_path / "backup"), str(tmp_path / "run")
    assert _forked(backup, out, -1, 4, 3) == -signal.SIGKILL
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert (state["epoch"], state["batches"]) == (1, 4)
    assert "weights-2-4.safetensors" in os.listdir(backup)  # the unfinished backup's files, not named
    assert _forked(backup, out, -1, 4) == 0
    _assert_resumed_equals(out, uninterrupted, first_epoch=1, steps=3 * BATCHES_PER_EPOCH)


def _small_fit(callbacks, epochs=3, x=None):
    rnnkit.utils.set_random_seed(1)
    model = rnnkit.Sequential([rnnkit.Input((3,)), rnnkit.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.ones((8, 3), "float32") if x is None else x
    return model.fit(x, x[:, :1], epochs=epochs, batch_size=4, verbose=0, callbacks=callbacks)


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    backup = rnnkit.callbacks.BackupAndRestore(tmp_path, double_checkpoint=True, delete_checkpoint=False)
    _small_fit([backup])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 2 and json.loads((tmp_path / "previous.json").read_text())["epoch"] == 1
    (tmp_path / state["weights"]).write_bytes(b"damaged")
    history = _small_fit([backup])  # resumes after epoch 2 (the previous backup): one epoch left
    assert len(history.history["loss"]) == 1
    assert os.path.exists(tmp_path / "state.json")  # delete_checkpoint=False kept it


def test_a_damaged_backup_is_a_clear_error(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be restored.*delete the folder"):
        _small_fit([rnnkit.callbacks.BackupAndRestore(tmp_path)])


def test_resuming_with_other_data_is_a_clear_error(tmp_path):
    keep = rnnkit.callbacks.BackupAndRestore(tmp_path, save_freq=2, delete_checkpoint=False)
    _small_fit([keep], epochs=1)  # backed up after its 2nd (and last) batch
    with pytest.raises(ValueError, match="after batch 2 of this epoch, but the data now has only 1"):
        _small_fit([keep], x=np.ones((4, 3), "float32"))


@pytest.mark.parametrize("save_freq", [0, -3, 1.5, "batch", True, None])
def test_bad_save_freq_is_refused(tmp_path, save_freq):
    with pytest.raises(ValueError, match="save_freq"):
        rnnkit.callbacks.BackupAndRestore(tmp_path, save_freq=save_freq)
