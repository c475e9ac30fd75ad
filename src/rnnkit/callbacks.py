"""Keras-compatible training callbacks.

The model a callback sees must provide ``stop_training`` (bool),
``get_weights()`` / ``set_weights(list_of_numpy)``, ``save(path)``,
``save_weights(path)`` and ``optimizer.learning_rate`` (a settable float).
Epoch numbers passed to hooks are 0-based, as in Keras; messages and
checkpoint file names show them 1-based.
"""

import collections.abc
import contextlib
import csv
import io
import json
import math
import operator
import os
import random
import shutil
import warnings

import numpy as np
import torch

from . import saving
from ._io import atomic_write_bytes

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class: override the hooks you need; ``model`` and ``params`` are set by ``fit``."""

    def __init__(self):
        self.model = None
        self.params = None

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """Legacy alias of ``on_train_batch_begin``."""

    def on_batch_end(self, batch, logs=None):
        """Legacy alias of ``on_train_batch_end``."""

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


class CallbackList(Callback):
    """Calls every hook on each callback in order, all sharing one ``logs`` dict.

    Sharing the dict is what lets ``ReduceLROnPlateau`` add ``learning_rate``
    for the ``History`` and ``CSVLogger`` placed after it.
    """

    def __init__(self, callbacks=None, add_history=False, model=None, **params):
        super().__init__()
        self.callbacks = list(callbacks or [])
        if add_history and not any(isinstance(cb, History) for cb in self.callbacks):
            self.callbacks.append(History())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)

    @property
    def history(self):
        """The first ``History`` in the list, or ``None``."""
        return next((cb for cb in self.callbacks if isinstance(cb, History)), None)

    def append(self, callback):
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        if self.params is not None:
            callback.set_params(self.params)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def set_params(self, params):
        self.params = params
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model):
        self.model = model
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)


def _dispatcher(hook, with_index):
    if with_index:

        def method(self, index, logs=None):
            self._call(hook, index, {} if logs is None else logs)

    else:

        def method(self, logs=None):
            self._call(hook, {} if logs is None else logs)

    method.__name__ = hook
    method.__doc__ = f"Call ``{hook}`` on every callback."
    return method


for _hook in HOOKS + ("on_batch_begin", "on_batch_end"):
    setattr(CallbackList, _hook, _dispatcher(_hook, "batch" in _hook or "epoch" in _hook))
del _hook


class History(Callback):
    """Records every epoch's logs: ``history[key]`` is a list, ``epoch`` the epoch indices."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


def _resolve_mode(mode, owner):
    if mode not in ("auto", "min", "max"):
        warnings.warn(f"{owner} mode {mode} is unknown, fallback to auto mode.", stacklevel=3)
        return "auto"
    return mode


def _maximizes(monitor, mode):
    """Whether larger is better: ``mode='auto'`` maximizes accuracy-like names only."""
    if mode != "auto":
        return mode == "max"
    name = monitor.removeprefix("val_")
    return "acc" in name or name.endswith("auc")


def _warn_missing(what, monitor, logs):
    warnings.warn(
        f"{what} conditioned on metric `{monitor}` which is not available. "
        f"Available metrics are: {','.join(logs.keys())}",
        stacklevel=3,
    )


class EarlyStopping(Callback):
    """Stop training when the monitored quantity stops improving (Keras 3 semantics).

    Each epoch without improvement of more than ``min_delta`` over the best
    value counts toward ``patience``; when ``patience`` is reached (never on
    the first epoch) ``model.stop_training`` is set. With ``baseline``, the
    count only resets for values that also beat the baseline. With
    ``restore_best_weights``, the best epoch's weights are put back at the end
    of training, whether or not it stopped early (as current Keras 3 does).
    """

    def __init__(
        self,
        monitor="val_loss",
        min_delta=0,
        patience=0,
        verbose=0,
        mode="auto",
        baseline=None,
        restore_best_weights=False,
        start_from_epoch=0,
    ):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.min_delta = abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.mode = _resolve_mode(mode, "EarlyStopping")
        self.monitor_op = operator.gt if _maximizes(monitor, self.mode) else operator.lt
        self._reset()

    def _reset(self):
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0
        self.best = -math.inf if self.monitor_op is operator.gt else math.inf

    def on_train_begin(self, logs=None):
        self._reset()

    def _is_improvement(self, value, reference):
        if self.monitor_op is operator.gt:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            _warn_missing("Early stopping", self.monitor, logs)
        return value

    def on_epoch_end(self, epoch, logs=None):
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) every epoch, or only when the monitor improves.

    ``filepath`` may hold ``str.format`` fields filled from the epoch (1-based)
    and the logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.4f}.rnnkit"``. With an
    integer ``save_freq`` it saves every that many training batches instead.
    """

    def __init__(
        self,
        filepath,
        monitor="val_loss",
        verbose=0,
        save_best_only=False,
        save_weights_only=False,
        mode="auto",
        save_freq="epoch",
        initial_value_threshold=None,
    ):
        super().__init__()
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or "
                "positive integer values"
            )
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self.mode = _resolve_mode(mode, "ModelCheckpoint")
        self.monitor_op = operator.gt if _maximizes(monitor, self.mode) else operator.lt
        if initial_value_threshold is not None:
            self.best = initial_value_threshold
        else:
            self.best = -math.inf if self.monitor_op is operator.gt else math.inf
        self._current_epoch = 0
        self._batches_since_save = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_save += 1
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _get_file_path(self, epoch, batch, logs):
        fields = dict(logs)
        if batch is not None and "batch" not in fields:
            fields["batch"] = batch + 1
        try:
            return self.filepath.format(epoch=epoch + 1, **fields)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}. '
                f"Available keys: epoch, {', '.join(fields)}"
            ) from None

    def _should_save(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Can save best model only with {self.monitor} available. "
                f"Available metrics are: {','.join(logs.keys())}",
                stacklevel=3,
            )
            return True
        if self.monitor_op(current, self.best):
            if self.verbose > 0:
                print(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if os.path.isdir(filepath):
            raise IOError(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used "
                f"is an existing directory: {filepath}"
            )
        if not self._should_save(epoch, logs, filepath):
            return
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Adds the epoch's (pre-reduction) ``learning_rate`` to the logs, then waits
    ``cooldown`` epochs after each reduction; never goes below ``min_lr``.
    """

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        verbose=0,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}"
            )
        self.monitor = monitor
        self.factor = factor
        self.min_lr = min_lr
        self.min_delta = min_delta
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.mode = _resolve_mode(mode, "Learning rate reduction")
        self._reset()

    def _reset(self):
        if _maximizes(self.monitor, self.mode):
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -math.inf
        else:
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = math.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            _warn_missing("Learning rate reduction", self.monitor, logs)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                if old_lr > float(np.float32(self.min_lr)):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(
                            f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                            f"to {new_lr}."
                        )
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite, as Keras's callback of the same name.

    ``fit`` then ends normally and returns its ``History`` (the non-finite step's update is never
    applied); without this callback ``fit`` raises ``FloatingPointError`` instead, with the
    ``History`` as the error's ``.history``."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training", flush=True)
            self.model.stop_training = True


class CSVLogger(Callback):
    """Append one row per epoch (0-based ``epoch`` column, then sorted log keys) to a CSV file.

    The columns are fixed by the first epoch's logs; later missing values are
    written as ``NA``. The file is flushed after every row.
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename, newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    @staticmethod
    def _handle_value(value):
        if isinstance(value, str):
            return value
        if hasattr(value, "ndim") and value.ndim == 0 and hasattr(value, "item"):
            return value.item()
        if isinstance(value, collections.abc.Iterable):
            return f'"[{", ".join(map(str, value))}]"'
        return value

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs.keys())
            for name in getattr(self.model, "metrics_names", None) or []:
                if name.startswith("val_") and name not in self.keys:
                    self.keys.append(name)
        if self.writer is None:
            self.writer = csv.DictWriter(
                self.csv_file,
                fieldnames=["epoch"] + self.keys,
                delimiter=self.sep,
                lineterminator="\n",
            )
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((key, self._handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


class LambdaCallback(Callback):
    """Build a callback from plain functions.

    ``on_epoch_begin``/``on_epoch_end`` take ``(epoch, logs)``, the batch hooks
    ``(batch, logs)``, ``on_train_begin``/``on_train_end`` take ``(logs)``.
    Other hooks (e.g. ``on_test_end``) may be passed as keyword arguments.
    """

    def __init__(
        self,
        on_epoch_begin=None,
        on_epoch_end=None,
        on_train_begin=None,
        on_train_end=None,
        on_train_batch_begin=None,
        on_train_batch_end=None,
        **kwargs,
    ):
        super().__init__()
        unknown = sorted(set(kwargs) - set(HOOKS) - {"on_batch_begin", "on_batch_end"})
        if unknown:
            raise ValueError(f"Unknown callback hooks {unknown}; valid hooks are {list(HOOKS)}.")
        hooks = dict(
            on_epoch_begin=on_epoch_begin,
            on_epoch_end=on_epoch_end,
            on_train_begin=on_train_begin,
            on_train_end=on_train_end,
            on_train_batch_begin=on_train_batch_begin,
            on_train_batch_end=on_train_batch_end,
            **kwargs,
        )
        for hook, fn in hooks.items():
            if fn is not None:
                setattr(self, hook, fn)


class BackupAndRestore(Callback):
    """Resume a killed ``fit`` where it stopped, as Keras's ``BackupAndRestore``.

    At the end of every epoch the weights, the optimizer state, the epoch and the random
    number generators' states (torch, NumPy, Python: they decide the shuffle order and the
    dropout masks) are written to ``backup_dir``, each file atomically and a small
    ``state.json`` last, which names the files of the last complete epoch. When the same
    ``fit`` call runs again with this callback, it starts from the epoch after the one
    backed up, with everything as it was: on the CPU with a fixed seed the final weights
    equal those of an uninterrupted run, bit for bit. A ``fit`` that ends normally deletes
    the backup (``delete_checkpoint=False`` keeps it).

    Arguments:
        backup_dir: the folder for the backup (created if needed).
        save_freq: "epoch" (the only choice: a backup at the end of every epoch).
        delete_checkpoint: delete the backup when training ends normally.

        model.fit(x, y, epochs=50, callbacks=[rnnkit.callbacks.BackupAndRestore("runs/backup")])
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__()
        if save_freq != "epoch":
            raise ValueError(f"BackupAndRestore saves at the end of every epoch; save_freq={save_freq!r} is not "
                             "supported (use 'epoch').")
        self.backup_dir = os.fspath(backup_dir)
        self.delete_checkpoint = delete_checkpoint

    def _path(self, name):
        return os.path.join(self.backup_dir, name)

    def on_train_begin(self, logs=None):
        state_file = self._path("state.json")
        if not os.path.exists(state_file):
            return
        try:
            with open(state_file, encoding="utf-8") as f:
                state = json.load(f)
            epoch = int(state["epoch"])
            saving.load_weights(self.model, self._path(state["weights"]))
            optimizer_state = torch.load(self._path(state["optimizer"]), weights_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise ValueError(f"The backup in '{self.backup_dir}' cannot be restored ({exc}); delete the folder to "
                             "start training afresh.") from None
        self.model.optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        kind, keys, *rest = state["numpy_rng"]
        np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
        python_state = state["python_rng"]
        random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
        self.model._resume_epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        weights, optimizer_file = f"weights-{epoch}.safetensors", f"optimizer-{epoch}.pt"
        saving.save_weights(self.model, self._path(weights))
        buffer = io.BytesIO()
        torch.save(self.model.optimizer.state_dict(), buffer)
        atomic_write_bytes(self._path(optimizer_file), buffer.getvalue())
        numpy_state = np.random.get_state()
        python_state = random.getstate()
        state = {"epoch": epoch, "weights": weights, "optimizer": optimizer_file,
                 "torch_rng": torch.get_rng_state().tolist(),
                 "numpy_rng": [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]],
                 "python_rng": [python_state[0], list(python_state[1]), python_state[2]]}
        atomic_write_bytes(self._path("state.json"), json.dumps(state).encode("utf-8"))
        for name in os.listdir(self.backup_dir):  # earlier epochs' files, now that state.json names these
            if name.startswith(("weights-", "optimizer-")) and name not in (weights, optimizer_file):
                with contextlib.suppress(OSError):
                    os.remove(self._path(name))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not getattr(self.model, "_fit_failed", False):
            shutil.rmtree(self.backup_dir, ignore_errors=True)
