"""``Model``: compile / fit / evaluate / predict / save for any network whose forward pass is defined.

Training knows nothing of specific layers: it calls the model, a loss, metrics and an
optimizer. Subclass ``Model`` and define ``call`` (or ``forward``) for a custom model;
``Sequential`` is the stack-of-layers case.
"""
import contextlib
import math
import time

import torch

from .. import callbacks as callbacks_module
from .. import config, losses, metrics as metrics_module, optimizers
from .. import data_adapter
from ..layers.layer import Layer
from ..utils.progbar import Progbar, format_epoch_line


class Model(Layer):
    """A trainable network with Keras's training API."""

    def __init__(self, *args, name=None, **kwargs):
        if args or "inputs" in kwargs:
            raise NotImplementedError("The functional API (Model(inputs, outputs)) is not available yet: "
                                      "use Sequential or subclass Model and define call().")
        super().__init__(name=name, **kwargs)
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self.metadata = {}
        self._compile_config = None
        self._device_choice = None
        self._autocast_dtype = None
        self._prepared_for = None

    def forward(self, inputs, training=None, mask=None):
        if type(self).call is Model.call:
            raise NotImplementedError(f"{type(self).__name__} must define call(inputs) or forward(inputs).")
        return self.call(inputs, training=training)

    def call(self, inputs, training=None):
        raise NotImplementedError

    # ----- compile -----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, device=None, mixed_precision=None):
        """Choose optimizer, loss and metrics (Keras names or objects) and the device.

        ``device``: "cpu", "cuda", "cuda:1"... (default ``rnnkit.config.get_device()``).
        ``mixed_precision="bf16"`` runs the forward pass under bfloat16 autocast.
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='mse' or loss='binary_crossentropy'.")
        if mixed_precision not in (None, "bf16", "bfloat16"):
            raise ValueError(f"mixed_precision must be None or 'bf16', got {mixed_precision!r}.")
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        self._metric_specs = list(metrics or [])
        self.compiled_metrics = []
        self._device_choice = device
        self._autocast_dtype = torch.bfloat16 if mixed_precision else None
        self._compile_config = {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": losses.serialize(self.loss),
            "metrics": [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in self._metric_specs],
            "mixed_precision": mixed_precision,
        }
        self._ensure_on_device()
        if self.built:
            self.optimizer.build(list(self.parameters()))

    @property
    def device(self):
        return config.resolve_device(self._device_choice)

    def _ensure_on_device(self):
        device = self.device
        param = next(self.parameters(), None)
        if param is not None and param.device != device:
            self.to(device)

    def _require_compiled(self, what):
        if self.loss is None:
            raise RuntimeError(f"Call model.compile(optimizer, loss) before {what}().")

    def _autocast(self):
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._autocast_dtype)

    def _prepare(self, x):
        """Build the model on the first batch, put it on its device and create the optimizer's
        state; remembered until compile(), a device move or a change of layers."""
        if not self.built:
            self._build_from_batch(x)
        key = (self.optimizer, self._device_choice, config.get_device())
        if self._prepared_for == key:
            return
        self._ensure_on_device()
        if self.optimizer is not None:
            self.optimizer.build(list(self.parameters()))
        self._prepared_for = key

    def _apply(self, *args, **kwargs):
        self._prepared_for = None  # .to() / .cuda() / .float(): check device and optimizer again
        return super()._apply(*args, **kwargs)

    def _build_from_batch(self, x):
        with torch.no_grad():
            self(x[:1].to(self.device) if x.shape[0] else x)

    def _resolve_metrics(self, y, y_pred):
        if self.compiled_metrics or not self._metric_specs:
            return
        self.compiled_metrics = [metrics_module.get(spec, loss=self.loss, y_true=y, y_pred=y_pred)
                                 for spec in self._metric_specs]

    # ----- one batch ---------------------------------------------------------------------------
    def train_on_batch(self, x, y):
        """One optimizer step on one batch; returns the loss (and metric values) of that batch."""
        self._require_compiled("train_on_batch")
        x, y = data_adapter.to_tensor(x, "x"), data_adapter.to_tensor(y, "y")
        self._prepare(x)
        self._reset_metrics()
        logs = self._train_step(x.to(self.device), y.to(self.device))
        return _logs_to_return(logs)

    def _train_step(self, x, y):
        if not self.training:
            self.train()
        self.optimizer.zero_grad()
        with self._autocast():
            y_pred = self(x, training=True)
        mask = _output_mask(y_pred)
        loss = self.loss(y, y_pred.float(), sample_weight=self._mask_weights(mask))
        loss.backward()
        # The step's one host sync (like loss.item() in a torch loop), after the backward pass
        # is queued so a GPU is not left idle, and before the update so NaN never reaches the weights.
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"The loss became {value} at training step {self.optimizer.iterations}. Lower the "
                "learning rate, add clipnorm= to the optimizer, or check the data for extreme values.")
        self.optimizer.step()
        return self._update_metrics(y, y_pred.detach().float(), value, len(x), mask)

    def _mask_weights(self, mask):
        if mask is None:
            return None
        return losses.mask_weights(mask, getattr(self.loss, "reduction", "sum_over_batch_size"))

    def _update_metrics(self, y, y_pred, loss_value, count, mask=None):
        self._resolve_metrics(y, y_pred)
        self._loss_total += loss_value * count
        self._loss_count += count
        for metric in self.compiled_metrics:
            if mask is None:
                metric.update_state(y, y_pred)
            else:
                metric.update_state(y, y_pred, sample_weight=mask)
        logs = {"loss": self._loss_total / self._loss_count}
        logs.update({m.name: m.result() for m in self.compiled_metrics})
        return logs

    def _reset_metrics(self):
        self._loss_total, self._loss_count = 0.0, 0
        for metric in self.compiled_metrics:
            metric.reset_state()

    def test_on_batch(self, x, y):
        self._require_compiled("test_on_batch")
        self._reset_metrics()
        return _logs_to_return(self._evaluate_batches([(data_adapter.to_tensor(x), data_adapter.to_tensor(y))]))

    def predict_on_batch(self, x):
        return self._predict_tensor(data_adapter.to_tensor(x, "x")).cpu().numpy()

    # ----- fit / evaluate / predict ------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None):
        """Train for ``epochs`` passes over the data; returns a ``History``."""
        self._require_compiled("fit")
        if validation_split and validation_data is None:
            (x, y), validation_data = data_adapter.split_validation(x, y, validation_split)
        train = data_adapter.batches(x, y, batch_size, shuffle=shuffle, steps=steps_per_epoch)
        val = None
        if validation_data is not None:
            val = _validation_batches(validation_data, validation_batch_size or batch_size, validation_steps)
        verbose = 1 if verbose == "auto" else verbose
        history = callbacks_module.History()
        callback_list = callbacks_module.CallbackList(list(callbacks or []) + [history])
        callback_list.set_model(self)
        callback_list.set_params({"epochs": epochs, "steps": len(train), "verbose": verbose})
        self.stop_training = False
        callback_list.on_train_begin({})
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callback_list.on_epoch_begin(epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = Progbar(len(train), verbose=1 if verbose == 1 else 0)
            started = time.perf_counter()
            logs, step = {}, 0
            for step, (xb, yb) in enumerate(train, start=1):
                if yb is None:
                    raise ValueError("fit() needs targets: pass y, or a dataset that yields (x, y) batches.")
                if step == 1:
                    self._prepare(xb)
                callback_list.on_train_batch_begin(step - 1, {})
                logs = self._train_step(xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True))
                callback_list.on_train_batch_end(step - 1, logs)
                bar.update(step, list(logs.items()), finalize=False)
                if self.stop_training:
                    break
            if step == 0:
                raise ValueError("The training data yielded no batches.")
            epoch_logs = dict(logs)
            if val is not None:
                self._reset_metrics()
                val_logs = self._evaluate_batches(val)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            seconds = time.perf_counter() - started
            if verbose == 1:
                bar.update(step, list(epoch_logs.items()), finalize=True)
            elif verbose == 2:
                print(format_epoch_line(seconds, step, epoch_logs), flush=True)
            callback_list.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        callback_list.on_train_end({})
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None, return_dict=False):
        """Loss and metrics on the data (no weight updates)."""
        self._require_compiled("evaluate")
        data = data_adapter.batches(x, y, batch_size, shuffle=False, steps=steps)
        self._reset_metrics()
        logs = self._evaluate_batches(data)
        if verbose not in (0, "auto"):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
        return logs if return_dict else _logs_to_return(logs)

    def _evaluate_batches(self, data):
        self.eval()
        logs = {}
        with torch.inference_mode(), self._autocast():
            for xb, yb in data:
                if yb is None:
                    raise ValueError("evaluate() needs targets: pass y, or a dataset that yields (x, y).")
                if not self.built:
                    self._prepare(xb)
                xb, yb = xb.to(self.device), yb.to(self.device)
                y_pred = self(xb, training=False)
                mask = _output_mask(y_pred)
                y_pred = y_pred.float()
                loss = self.loss(yb, y_pred, sample_weight=self._mask_weights(mask))
                logs = self._update_metrics(yb, y_pred, float(loss), len(xb), mask)
        if not logs:
            raise ValueError("The evaluation data yielded no batches.")
        return logs

    def predict(self, x, batch_size=None, verbose=0, steps=None):
        """Outputs for ``x`` as NumPy, computed in batches (default 256) under inference mode."""
        data = data_adapter.batches(x, None, batch_size, shuffle=False, steps=steps, default_batch_size=256)
        bar = Progbar(len(data), verbose=1 if verbose == 1 else 0)
        outputs = []
        for i, (xb, _) in enumerate(data, start=1):
            outputs.append(self._predict_tensor(xb).cpu())
            bar.update(i)
        if not outputs:
            raise ValueError("predict() got no data.")
        return torch.cat(outputs).numpy()

    def _predict_tensor(self, x):
        if not self.built:
            self._build_from_batch(x)
        self._ensure_on_device()
        if self.training:
            self.eval()
        with torch.inference_mode(), self._autocast():
            return self(x.to(self.device), training=False).float()

    def reset_states(self):
        """Forget the states that stateful recurrent layers carry between batches."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_states") and getattr(module, "stateful", False):
                module.reset_states()

    # ----- saving ------------------------------------------------------------------------------
    def save(self, filepath, include_optimizer=True):
        """Write architecture, weights and optimizer state to one ``.rnnkit`` file, atomically."""
        from .. import saving

        saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath):
        from .. import saving

        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        from .. import saving

        saving.load_weights(self, filepath)

    def get_compile_config(self):
        return self._compile_config

    def compile_from_config(self, compile_config):
        self.compile(optimizer=optimizers.deserialize(compile_config["optimizer"]),
                     loss=losses.deserialize(compile_config["loss"]), metrics=compile_config.get("metrics"),
                     mixed_precision=compile_config.get("mixed_precision"))


def _output_mask(y_pred):
    """The mask a model marked on its (batch, time, ...) output, or None."""
    mask = getattr(y_pred, "_keras_mask", None)
    if mask is None or tuple(mask.shape) != tuple(y_pred.shape[:mask.dim()]):
        return None
    return mask


def _validation_batches(validation_data, batch_size, steps):
    if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and data_adapter.is_array(
            validation_data[0]):
        return data_adapter.batches(validation_data[0], validation_data[1], batch_size, shuffle=False)
    return data_adapter.batches(validation_data, None, batch_size, shuffle=False, steps=steps)


def _logs_to_return(logs):
    values = [float(v) for v in logs.values()]
    return values[0] if len(values) == 1 else values

