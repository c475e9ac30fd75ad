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
import time
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

    A backup holds the weights, the optimizer state, where training was (epoch, and batches done
    in it), the random number generators' states (torch, CUDA, NumPy, Python: they decide the
    shuffle order and the dropout masks), and the running loss and metric totals of the epoch.
    It is written to ``backup_dir`` as two files, each atomically, and then a small
    ``state.json`` that names them: a kill at any moment, during a backup too, leaves the
    previous complete backup. When the same ``fit`` call runs again with this callback, it
    continues from the backup with everything as it was. After a mid-epoch backup
    (``save_freq=N``) it draws the epoch's shuffle order again from the epoch's saved random
    state, skips the batches already trained on, and goes on with the random state of that
    step; on the CPU with a fixed seed the final weights (and the logs) equal those of an
    uninterrupted run, bit for bit. (Keras 3 instead repeats the interrupted epoch from its
    first batch.) A ``fit`` that ends normally deletes the backup.

    The resumed run must be the same program: the same model, compile and ``fit`` arguments and
    data. Not restored: the state of other callbacks (``EarlyStopping``'s patience count starts
    again), of stateful recurrent layers, and of a Python generator passed as data (it restarts
    from its beginning; its batches of the resumed epoch are skipped).

    Arguments:
        backup_dir: the folder for the backup (created if needed); use it for nothing else.
        save_freq: ``"epoch"`` (a backup at the end of every epoch) or an integer ``N`` (a backup
            after every ``N`` training batches, counted across epochs, as Keras does).
        double_checkpoint: also keep the previous backup; if the latest cannot be read, training
            resumes from the previous one.
        delete_checkpoint: delete the backup when training ends normally (``False`` keeps it).

    Example::

        backup = rnnkit.callbacks.BackupAndRestore("runs/backup", save_freq=100)
        model.fit(x, y, epochs=50, callbacks=[backup])  # killed? run the same line again
    """

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(f"Invalid value for argument `save_freq`. Received: save_freq={save_freq!r}. Expected "
                             "either 'epoch' or a positive integer (a backup every that many batches).")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._batches_since_backup = 0
        self._epoch = 0
        self._epoch_rng = None  # the random state at the start of the running epoch (it draws the shuffle order)
        self._resumed_epoch_rng = None  # set while resuming inside an epoch: that epoch's starting random state

    def _path(self, name):
        return os.path.join(self.backup_dir, name)

    # ----- restoring ---------------------------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._batches_since_backup, self._resumed_epoch_rng = 0, None
        problems = []
        for state_name in ("state.json", "previous.json"):
            if not os.path.exists(self._path(state_name)):
                continue
            try:
                state, training = self._read(state_name)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
                problems.append(f"{state_name}: {exc}")
                continue
            self._restore(state, training)
            return
        if problems:
            raise ValueError(f"The backup in '{self.backup_dir}' cannot be restored ({'; '.join(problems)}); delete "
                             "the folder to start training afresh.")

    def _read(self, state_name):
        with open(self._path(state_name), encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or not isinstance(state.get("epoch"), int) or not (
                state.get("batches") is None or isinstance(state["batches"], int) and state["batches"] > 0):
            raise ValueError(f"{state_name} does not say where training was")
        if any(os.path.basename(str(state.get(key))) != state.get(key) for key in ("weights", "training")):
            raise ValueError(f"{state_name} names files outside the backup folder")
        saving.load_weights(self.model, self._path(state["weights"]))
        training = torch.load(self._path(state["training"]), weights_only=True)
        return state, training

    def _restore(self, state, training):
        model = self.model
        model.optimizer.load_state_dict(training["optimizer"])
        if state["batches"] is None:  # a backup at the end of an epoch: start the next one
            _set_rng_state(training["rng"])
            model._resume_epoch = state["epoch"] + 1
            return
        self._resumed_epoch_rng = training["epoch_rng"]
        model._resume_epoch = state["epoch"]

        def restore_step():
            """Called by ``fit`` once the batches already trained on are skipped: the step's state."""
            _set_rng_state(training["rng"])
            model._loss_total, model._loss_count, model._part_totals = training["loss_totals"]
            for metric, values in zip(model.compiled_metrics, training["metrics"]):
                for name, value in values.items():
                    setattr(metric, name, value)
            return dict(training["logs"])

        model._resume_within_epoch = (state["batches"], restore_step)

    # ----- backing up --------------------------------------------------------------------------
    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._resumed_epoch_rng is not None:  # the same epoch again: the same shuffle order
            _set_rng_state(self._resumed_epoch_rng)
            self._resumed_epoch_rng = None
        self._epoch_rng = _rng_state()

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_since_backup += 1
        if self._batches_since_backup >= self.save_freq:
            self._batches_since_backup = 0
            self._backup(self._epoch, batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._backup(epoch, None, logs)

    def _backup(self, epoch, batches, logs):
        """Write the weights and the training state, then ``state.json`` naming them (each atomically)."""
        model = self.model
        os.makedirs(self.backup_dir, exist_ok=True)
        tag = f"{epoch}" if batches is None else f"{epoch}-{batches}"
        state = {"epoch": epoch, "batches": batches, "weights": f"weights-{tag}.safetensors",
                 "training": f"training-{tag}.pt"}
        saving.save_weights(model, self._path(state["weights"]))
        training = {"optimizer": model.optimizer.state_dict(), "rng": _rng_state(), "epoch_rng": self._epoch_rng,
                    "loss_totals": (model._loss_total, model._loss_count, dict(model._part_totals)),
                    "metrics": [_metric_state(m) for m in model.compiled_metrics],
                    "logs": {k: float(v) for k, v in (logs or {}).items()}}
        buffer = io.BytesIO()
        torch.save(training, buffer)
        atomic_write_bytes(self._path(state["training"]), buffer.getvalue())
        keep = {state["weights"], state["training"]}
        if self.double_checkpoint and os.path.exists(self._path("state.json")):
            with contextlib.suppress(OSError, ValueError):
                with open(self._path("state.json"), encoding="utf-8") as f:
                    previous = json.load(f)
                atomic_write_bytes(self._path("previous.json"), json.dumps(previous).encode("utf-8"))
                keep |= {previous["weights"], previous["training"]}
        atomic_write_bytes(self._path("state.json"), json.dumps(state).encode("utf-8"))
        for name in os.listdir(self.backup_dir):  # older backups' files, now that state.json names these
            if name.startswith(("weights-", "training-")) and name not in keep:
                with contextlib.suppress(OSError):
                    os.remove(self._path(name))

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and not getattr(self.model, "_fit_failed", False):
            shutil.rmtree(self.backup_dir, ignore_errors=True)


def _rng_state():
    """The global random states (torch CPU and CUDA, NumPy, Python) in types ``torch.load(weights_only=True)``
    reads back."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss),
            "python": random.getstate()}


def _set_rng_state(state):
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _metric_state(metric):
    """A metric's running totals: its attributes that are tensors or not yet set (``None``)."""
    return {name: value for name, value in vars(metric).items()
            if isinstance(value, torch.Tensor) or value is None and name.startswith("_")}


class TensorBoard(Callback):
    """Keras's ``TensorBoard`` callback, written with PyTorch's ``torch.utils.tensorboard`` writer
    (it needs the ``tensorboard`` package: ``pip install "rnnkit[tensorboard]"``).

    Event files go to ``log_dir/train`` and ``log_dir/validation`` with Keras's tags:

    - ``epoch_<name>`` at step ``epoch`` (0-based) for every loss and metric of the epoch's logs,
      validation ones (``val_<name>``) under ``validation/`` without the prefix, and
      ``epoch_learning_rate`` (the optimizer's learning rate) under ``train/``;
    - ``evaluation_<name>_vs_iterations`` under ``validation/`` at step ``optimizer.iterations``;
    - ``batch_<name>`` at the global batch number every ``update_freq`` batches, when
      ``update_freq`` is ``"batch"`` (every batch) or an integer;
    - ``<layer>/<weight>/histogram`` (and ``/image`` with ``write_images``) every
      ``histogram_freq`` epochs; ``epoch_steps_per_second`` / ``batch_steps_per_second`` with
      ``write_steps_per_second``; the model's config as the text ``keras`` with ``write_graph``
      (PyTorch has no graph for TensorBoard's graph view).

    ``profile_batch`` and ``embeddings_freq`` must stay 0 (Keras's PyTorch backend has neither).
    Under ``torchrun`` only rank 0 writes (``fit`` leaves the callback out elsewhere).

    Example::

        board = rnnkit.callbacks.TensorBoard(log_dir="logs", histogram_freq=1)
        model.fit(x, y, epochs=5, validation_split=0.2, callbacks=[board])
        # then: tensorboard --logdir logs
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        self._summary_writer_class = _summary_writer_class()
        if not (isinstance(histogram_freq, int) and histogram_freq >= 0):
            raise ValueError(f"histogram_freq must be an integer >= 0 (0: no histograms), got {histogram_freq!r}.")
        if update_freq not in ("epoch", "batch") and not (isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"update_freq must be 'epoch', 'batch' or a positive integer, got {update_freq!r}.")
        if profile_batch or embeddings_freq:
            raise ValueError("Profiling and embeddings are not available with the PyTorch backend (as in Keras); "
                             f"leave profile_batch=0 and embeddings_freq=0 (got {profile_batch!r}, "
                             f"{embeddings_freq!r}).")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_metadata = embeddings_metadata
        self._writers = {}
        self._global_train_batch = 0
        self._batch_started = self._epoch_started = 0.0
        self._epoch_iterations = 0

    def _writer(self, run):
        """The ``SummaryWriter`` of ``log_dir/<run>`` ("train" or "validation"), made when first used."""
        if run not in self._writers:
            self._writers[run] = self._summary_writer_class(log_dir=os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph:
            config = self.model.get_config() if hasattr(self.model, "get_config") else {}
            text = json.dumps({"class_name": type(self.model).__name__, "config": config}, default=str)
            self._writer("train").add_text("keras", text, global_step=0)

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        self._batch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        writer = self._writer("train")
        if self.write_steps_per_second:
            writer.add_scalar("batch_steps_per_second", 1.0 / max(time.perf_counter() - self._batch_started, 1e-9),
                              step)
        for name, value in (logs or {}).items():
            writer.add_scalar(f"batch_{name}", float(value), step)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_started = time.perf_counter()
        self._epoch_iterations = self.model.optimizer.iterations

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = self.model.optimizer
        train["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            seconds = max(time.perf_counter() - self._epoch_started, 1e-9)
            train["steps_per_second"] = (optimizer.iterations - self._epoch_iterations) / seconds
        for run, values in (("train", train), ("validation", val)):
            for name, value in values.items():
                self._writer(run).add_scalar(f"epoch_{name}", float(value), epoch)
        for name, value in val.items():  # what Keras writes at the end of each validation
            self._writer("validation").add_scalar(f"evaluation_{name}_vs_iterations", float(value),
                                                  optimizer.iterations)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _log_weights(self, epoch):
        """Histograms (and images) of every layer's weights, named ``<layer>/<weight path>``."""
        writer = self._writer("train")
        for layer in self.model.layers:
            for path, weight in layer.named_parameters():
                name = f"{layer.name}/{path.replace('.', '/')}"
                values = weight.detach().float().cpu()
                writer.add_histogram(f"{name}/histogram", values, epoch)
                if self.write_images and values.dim() <= 2:
                    image = values.reshape(1, -1) if values.dim() < 2 else values
                    if image.shape[0] > image.shape[1]:
                        image = image.T  # as Keras: the longer side across
                    span = (image.max() - image.min()).clamp_min(1e-12)
                    writer.add_image(f"{name}/image", (image - image.min()) / span, epoch, dataformats="HW")

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


def _summary_writer_class():
    """PyTorch's ``SummaryWriter``, or an ImportError that says how to install what it needs."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ImportError('rnnkit.callbacks.TensorBoard needs the tensorboard package: pip install '
                          '"rnnkit[tensorboard]" (or pip install tensorboard).') from None
    return SummaryWriter
