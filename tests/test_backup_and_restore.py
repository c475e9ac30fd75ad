"""BackupAndRestore: a fit killed after an epoch resumes, when run again, from the next epoch with
the weights, optimizer state and random state it had, and ends with the weights of a run that was
never interrupted (bit for bit on the CPU, with a fixed seed)."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import rnnkit

PROGRAM = r"""
import os, signal, sys
import numpy as np, torch
import rnnkit
from rnnkit import layers
torch.set_num_threads(1)
rnnkit.utils.set_random_seed(0)
backup, out, kill_after = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.normal(size=(64, 6, 3)).astype("float32"); y = rng.normal(size=(64, 1)).astype("float32")
model = rnnkit.Sequential([rnnkit.Input((6, 3)), layers.GRU(5, dropout=0.2), layers.Dropout(0.3), layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")

class Kill(rnnkit.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

callbacks = [rnnkit.callbacks.BackupAndRestore(backup)] if backup != "-" else []
history = model.fit(x, y, epochs=5, batch_size=16, verbose=0, callbacks=callbacks + [Kill()])
np.save(out, np.concatenate([w.ravel() for w in model.get_weights()]))
print(len(history.history["loss"]))
"""


def _run(tmp_path, backup, kill_after, name):
    out = tmp_path / f"{name}.npy"
    done = subprocess.run([sys.executable, "-c", PROGRAM, backup, str(out), str(kill_after)],
                          capture_output=True, text=True, timeout=120)
    return done, out


def test_a_killed_fit_resumes_and_ends_with_the_uninterrupted_weights(tmp_path):
    backup = str(tmp_path / "backup")
    killed, _ = _run(tmp_path, backup, kill_after=1, name="killed")
    assert killed.returncode == -signal.SIGKILL
    state = json.loads((tmp_path / "backup" / "state.json").read_text())
    assert state["epoch"] == 1
    resumed, resumed_out = _run(tmp_path, backup, kill_after=-1, name="resumed")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "3"  # epochs 3, 4 and 5 ran
    assert not os.path.exists(backup)  # removed once fit ended normally
    plain, plain_out = _run(tmp_path, "-", kill_after=-1, name="plain")
    assert plain.returncode == 0, plain.stderr
    np.testing.assert_array_equal(np.load(resumed_out), np.load(plain_out))


def test_a_damaged_backup_is_a_clear_error(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    model = rnnkit.Sequential([rnnkit.Input((3,)), rnnkit.layers.Dense(1)])
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="cannot be restored.*delete the folder"):
        model.fit(np.zeros((4, 3), "float32"), np.zeros((4, 1), "float32"), verbose=0,
                  callbacks=[rnnkit.callbacks.BackupAndRestore(tmp_path)])
