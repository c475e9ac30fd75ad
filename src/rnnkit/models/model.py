"""``Model``: compile / fit / evaluate / predict / save for any network whose forward pass is defined.

Three ways to define one, as in Keras: the functional API (``Model(inputs, outputs)``, a
graph of layer calls on symbolic tensors, run by ``forward``), ``Sequential`` (the linear
case of the same graph) and subclassing (define ``call``, or ``forward``). Training knows
nothing of specific layers: it calls the model, one loss per output, metrics and an
optimizer. Several inputs and outputs travel as lists or as dicts keyed by name.
"""
import contextlib
import copy
import inspect
import itertools
import math
import time
import warnings

import numpy as np
import torch
from torch import nn

from .. import callbacks as callbacks_module
from .. import config, losses, metrics as metrics_module, optimizers
from .. import data_adapter, distribute, saving
from ..export import export_onnx
from .._naming import suggest
from ..layers.layer import Layer, added_losses_since
from ..layers.graph_io import graph_config, graph_from_config
from ..layers.symbolic import Graph, KerasTensor, flatten, is_shape, map_structure, pack_like
from ..utils.progbar import Progbar, format_epoch_line
from .summary import format_summary, summary_rows


class Model(Layer):
    """A trainable network with Keras's training API.

    ``Model(inputs, outputs, name=None)``: the functional API. ``inputs`` and ``outputs`` are
    symbolic tensors (from ``rnnkit.Input`` and layer calls), or lists or dicts of them::

        inputs = rnnkit.Input(shape=(None,), dtype="int32")
        x = rnnkit.layers.Embedding(1000, 32, mask_zero=True)(inputs)
        outputs = rnnkit.layers.Dense(1, activation="sigmoid")(rnnkit.layers.LSTM(32)(x))
        model = rnnkit.Model(inputs, outputs)

    Without inputs and outputs, subclass it and define ``call(inputs, training=None)``.
    """

    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            return super().__new__(Functional)
        return super().__new__(cls)

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._graph = None
        if inputs is not None or outputs is not None:
            self._init_graph(inputs, outputs)
        self.optimizer = None
        self.loss = None
        self.loss_weights = None
        self.compiled_metrics = []
        self._metric_specs = []
        self._outputs_compiled = None  # per output: (name, loss, weight, metrics), resolved on the first batch
        self.stop_training = False
        self.history = None
        self.metadata = {}
        self._compile_config = None
        self._device_choice = None
        self._autocast_dtype = None
        self._prepared_for = None
        self._constrained, self._penalised, self._loss_mark = [], False, 0

    # ----- the functional graph ----------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        if inputs is None or outputs is None:
            raise ValueError("Model(inputs, outputs) needs both: the rnnkit.Input tensors and the tensors "
                             "computed from them.")
        for what, structure in (("inputs", inputs), ("outputs", outputs)):
            bad = [t for t in flatten(structure) if not isinstance(t, KerasTensor)]
            if bad:
                raise TypeError(f"Model {what} must be symbolic tensors (from rnnkit.Input and layer calls), got "
                                f"{type(bad[0]).__name__}. Build the model from rnnkit.Input(...) tensors.")
        self._inputs_struct, self._outputs_struct = inputs, outputs
        self._graph = Graph(flatten(inputs), flatten(outputs))
        self._layers = nn.ModuleList(self._graph.layers)
        used = {id(t) for node in self._graph.nodes for t in node.input_tensors}
        unused = [t.name for t in self._graph.inputs if id(t) not in used and t not in self._graph.outputs]
        if unused:
            warnings.warn(f"Model '{self.name}': input '{unused[0]}' is not used to compute any output.",
                          stacklevel=3)
        self.built = True

    @property
    def layers(self):
        """The model's layers (Keras's order: inputs first, then by depth; a subclassed model's
        sub-layers in the order they were assigned)."""
        if self._graph is None and not isinstance(getattr(self, "_layers", None), nn.ModuleList):
            return self._sublayers()
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at ``index``)."""
        if index is not None:
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = [layer.name for layer in self.layers]
        raise ValueError(f"No layer named '{name}' in model '{self.name}'.{suggest(str(name), names)} "
                         f"Layers: {', '.join(names)}.")

    @property
    def inputs(self):
        return list(self._graph.inputs) if self._graph is not None else None

    @property
    def outputs(self):
        return list(self._graph.outputs) if self._graph is not None else None

    @property
    def input(self):
        if self._graph is None:
            return super().input
        return self._inputs_struct

    @property
    def output(self):
        if self._graph is None:
            return super().output
        return self._outputs_struct

    @property
    def input_names(self):
        return [t.name for t in self._graph.inputs] if self._graph is not None else ["input"]

    @property
    def output_names(self):
        if self._graph is None:
            return None
        if isinstance(self._outputs_struct, dict):
            return sorted(self._outputs_struct)
        return [t._keras_history[0].name for t in self._graph.outputs]

    @property
    def input_shape(self):
        shapes = [t.shape for t in self._graph.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._graph.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def forward(self, inputs, training=None, mask=None):
        if self._graph is None:
            if type(self).call is Model.call:
                raise NotImplementedError(f"{type(self).__name__} must define call(inputs) or forward(inputs), "
                                          "or be built as Model(inputs, outputs).")
            return self.call(inputs, training=training) if self._accepts("training") else self.call(inputs)
        values = self._standardize_inputs(inputs, mask)
        outputs = self._graph.run(values, training)
        if len(outputs) == 1 and not isinstance(self._outputs_struct, (list, tuple, dict)):
            return outputs[0]
        return pack_like(self._outputs_struct, outputs)

    def call(self, inputs, training=None):
        raise NotImplementedError

    def _standardize_inputs(self, inputs, mask=None):
        """The values for the graph's inputs, in their order, cast as each Input declares."""
        expected = self._graph.inputs
        if isinstance(inputs, dict):
            keys = sorted(self._inputs_struct) if isinstance(self._inputs_struct, dict) else [t.name for t in expected]
            missing = [k for k in keys if k not in inputs]
            if missing:
                raise ValueError(f"Model '{self.name}' needs inputs named {[t.name for t in expected]}, but the "
                                 f"dict given has no {missing[0]!r} (it has {sorted(inputs)}).")
            values = [inputs[k] for k in keys]
        elif isinstance(inputs, (list, tuple)):
            values = list(inputs)
        else:
            values = [inputs]
        if len(values) != len(expected):
            raise ValueError(f"Model '{self.name}' takes {len(expected)} input(s) "
                             f"({', '.join(t.name for t in expected)}), but was given {len(values)} array(s). "
                             "Pass a list (or a dict keyed by input name) with one array per input.")
        masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(values)
        result = []
        for tensor, value, m in zip(expected, values, masks):
            if not isinstance(value, torch.Tensor):
                value = data_adapter.to_tensor(value, tensor.name)
            if not isinstance(value, torch.Tensor):  # text
                if tensor.dtype != "string":
                    raise ValueError(f"Model '{self.name}' got text for input '{tensor.name}', which takes numbers "
                                     f"({tensor.dtype}); turn the text into token ids first, or make the model's "
                                     "first layer a TextVectorization on an Input(dtype='string').")
                result.append(value)
                continue
            if tensor.dtype.startswith("float") and not value.is_floating_point():
                value = value.float()
            elif tensor.dtype.startswith("int") and value.is_floating_point():
                value = value.long()
            if m is not None:
                value = value.view_as(value)
                value._keras_mask = m
            result.append(value)
        return result

    def compute_output_shape(self, input_shape):
        if self._graph is None:
            return super().compute_output_shape(input_shape)
        shapes = [input_shape] if is_shape(input_shape) else list(input_shape)
        out = self._graph.output_shapes(shapes)
        return out[0] if len(out) == 1 else out

    # ----- compile -----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None, device=None,
                mixed_precision=None, run_eagerly=None, jit_compile=None, steps_per_execution=None):
        """Choose optimizer, loss(es) and metrics (Keras names or objects) and the device.

        Arguments:
            optimizer: name or ``rnnkit.optimizers`` object.
            loss: one loss for every output, or a list (by output) or dict (by output name).
            metrics: a list applied to every output, a list of lists (by output) or a dict.
            loss_weights: weights of the outputs' losses in the total (list or dict), default 1.
            device: "cpu", "cuda", "cuda:1"... (default ``rnnkit.config.get_device()``).
            mixed_precision: "bf16" runs the forward pass under bfloat16 autocast.
            run_eagerly, jit_compile, steps_per_execution: accepted for Keras programs; rnnkit
                always runs eagerly on PyTorch, one step per batch.
        """
        if loss is None:
            raise ValueError("compile() needs a loss, e.g. loss='mse' or loss='binary_crossentropy'.")
        if mixed_precision not in (None, "bf16", "bfloat16"):
            raise ValueError(f"mixed_precision must be None or 'bf16', got {mixed_precision!r}.")
        self.optimizer = optimizers.get(optimizer)
        self.loss = (map_structure(lambda spec: None if spec is None else losses.get(spec), loss)
                     if isinstance(loss, (list, tuple, dict)) else losses.get(loss))
        self.loss_weights = loss_weights
        self._metric_specs = metrics if isinstance(metrics, dict) else list(metrics or [])
        self.compiled_metrics = []
        self._outputs_compiled = None
        self._device_choice = device
        self._autocast_dtype = torch.bfloat16 if mixed_precision else None
        self._compile_config = {
            "optimizer": optimizers.serialize(self.optimizer),
            "loss": map_structure(lambda fn: None if fn is None else losses.serialize(fn), self.loss),
            "metrics": map_structure(lambda m: m if isinstance(m, str) else getattr(m, "name", str(m)),
                                     self._metric_specs),
            "loss_weights": loss_weights,
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
        layers = [m for m in self.modules() if isinstance(m, Layer)]
        self._constrained = [(getattr(m, name), c) for m in layers for name, c in m._constraints]
        self._penalised = any(m._regularizers for m in layers)  # weight penalties: in every step's loss
        self._prepared_for = key

    def _apply(self, *args, **kwargs):
        self._prepared_for = None  # .to() / .cuda() / .float(): check device and optimizer again
        return super()._apply(*args, **kwargs)

    def _build_from_batch(self, x):
        with torch.no_grad():
            self(data_adapter.to_device(map_structure(lambda t: t[:1] if t.shape[0] else t, x), self.device))

    # ----- outputs, losses and metrics -----------------------------------------------------------
    def _compiled_outputs(self, ys, preds):
        """Per output: (log prefix, loss, weight, metrics), resolved once from compile()'s arguments."""
        if self._outputs_compiled is not None:
            return self._outputs_compiled
        n = len(preds)
        names = self.output_names or [f"output_{i + 1}" for i in range(n)]
        if len(names) != n:
            names = [f"output_{i + 1}" for i in range(n)]
        loss_list = _per_output(self.loss, names, "loss")
        weights = _per_output(self.loss_weights, names, "loss_weights", default=1.0)
        specs = self._metric_specs
        if n == 1 or not specs:
            metric_lists = [flatten(specs) if n == 1 else []] * n
        elif isinstance(specs, dict):
            metric_lists = [_as_list(specs.get(name)) for name in names]
        elif len(specs) == n and all(isinstance(m, (list, tuple)) or m is None for m in specs):
            metric_lists = [_as_list(m) for m in specs]
        else:
            metric_lists = [list(specs)] * n
        compiled, self.compiled_metrics = [], []
        for i, name in enumerate(names):
            prefix = "" if n == 1 else f"{name}_"
            found = [metrics_module.get(spec, loss=loss_list[i], y_true=ys[i], y_pred=preds[i])
                     for spec in metric_lists[i]]
            if n > 1:  # each output needs its own metric objects (one instance given for all is copied)
                found = [copy.deepcopy(m) if any(m is seen for seen in self.compiled_metrics) else m for m in found]
            self.compiled_metrics.extend(found)
            compiled.append((prefix, loss_list[i], float(weights[i]), found))
        self._outputs_compiled = compiled
        return compiled

    def _flat_targets(self, y, n):
        if isinstance(y, dict):
            names = self.output_names or []
            missing = [k for k in names if k not in y]
            if missing:
                raise ValueError(f"The targets are a dict without {missing[0]!r}; this model's outputs are "
                                 f"{names}.")
            return [y[k] for k in names]
        if isinstance(y, (list, tuple)) and n > 1:
            if len(y) != n:
                raise ValueError(f"Model '{self.name}' has {n} outputs but was given {len(y)} target arrays; pass "
                                 "one per output (a list in output order or a dict by output name).")
            return list(y)
        return [y]

    def _flat_predictions(self, y_pred):
        if isinstance(y_pred, dict):
            names = self.output_names or list(y_pred)
            return [y_pred[k] for k in names]
        return list(y_pred) if isinstance(y_pred, (list, tuple)) else [y_pred]

    def _total_loss(self, y, y_pred, sample_weight=None):
        """The weighted sum of the outputs' losses, with the per-output parts for the logs."""
        preds = self._flat_predictions(y_pred)
        ys = self._flat_targets(y, len(preds))
        outputs = self._compiled_outputs(ys, preds)
        total, parts = None, []
        for (prefix, loss_fn, weight, _), target, pred in zip(outputs, ys, preds):
            if loss_fn is None:
                parts.append(None)
                continue
            weights = self._mask_weights(_output_mask(pred), loss_fn)
            if sample_weight is not None:
                per_sample = sample_weight.reshape(-1, *([1] * (weights.dim() - 1))) if weights is not None \
                    else sample_weight
                weights = per_sample if weights is None else weights * per_sample
            value = loss_fn(target, pred.float(), sample_weight=weights)
            parts.append(value)
            total = value * weight if total is None else total + value * weight
        if total is None:
            raise ValueError("compile() gave no loss for any output.")
        if self._penalised or added_losses_since(self._loss_mark):  # add_loss / activity penalties of this call
            extra = self.losses
            self._clear_added_losses()
            if extra:
                total = total + torch.stack([torch.as_tensor(t, device=total.device).float().reshape(())
                                             for t in extra]).sum()
        return total, parts, ys, preds

    def _clear_added_losses(self):
        """Forget add_loss terms of earlier calls (Keras keeps only the current call's)."""
        if added_losses_since(self._loss_mark):
            for module in self.modules():
                if isinstance(module, Layer):
                    module._added_losses.clear()
        self._loss_mark = added_losses_since(None)

    def _mask_weights(self, mask, loss_fn=None):
        if mask is None:
            return None
        return losses.mask_weights(mask, getattr(loss_fn or self.loss, "reduction", "sum_over_batch_size"))

    def _update_metrics(self, ys, preds, loss_value, parts, count):
        self._loss_total += loss_value * count
        self._loss_count += count
        logs = {"loss": self._loss_total / self._loss_count}
        outputs = self._outputs_compiled
        for i, ((prefix, _, _, found), target, pred) in enumerate(zip(outputs, ys, preds)):
            if prefix and parts[i] is not None:
                self._part_totals[i] = self._part_totals.get(i, 0.0) + float(parts[i].detach()) * count
                logs[f"{prefix}loss"] = self._part_totals[i] / self._loss_count
            mask = _output_mask(pred)
            pred = pred.detach().float()
            for metric in found:
                if mask is None:
                    metric.update_state(target, pred)
                else:
                    metric.update_state(target, pred, sample_weight=mask)
        for prefix, _, _, found in outputs:
            logs.update({prefix + m.name: m.result() for m in found})
        return logs

    def _reset_metrics(self):
        self._loss_total, self._loss_count, self._part_totals = 0.0, 0, {}
        for metric in self.compiled_metrics:
            metric.reset_state()

    # ----- one batch ---------------------------------------------------------------------------
    def train_on_batch(self, x, y, sample_weight=None, class_weight=None):
        """One optimizer step on one batch; returns the loss (and metric values) of that batch."""
        self._require_compiled("train_on_batch")
        w = _sample_weights(y, sample_weight, class_weight)
        x, y = data_adapter.to_tensors(x, "x"), data_adapter.to_tensors(y, "y")
        self._prepare(x)
        self._reset_metrics()
        logs = self._train_step(data_adapter.to_device(x, self.device), data_adapter.to_device(y, self.device),
                                None if w is None else torch.as_tensor(w).to(self.device))
        return _logs_to_return(logs)

    def _train_step(self, x, y, sample_weight=None):
        if not self.training:
            self.train()
        self.optimizer.zero_grad()
        self._clear_added_losses()
        with self._autocast():
            y_pred = self(x, training=True)
        loss, parts, ys, preds = self._total_loss(y, y_pred, sample_weight)
        loss.backward()
        # The step's one host sync (like loss.item() in a torch loop), after the backward pass
        # is queued so a GPU is not left idle, and before the update so NaN never reaches the weights.
        value = distribute.average_gradients(self.parameters(), float(loss.detach()),  # torchrun: over all ranks
                                             len(data_adapter.first_leaf(x)))
        if not math.isfinite(value):
            error = FloatingPointError(
                f"The loss became {value} at training step {self.optimizer.iterations}. Lower the "
                "learning rate, add clipnorm= to the optimizer, or check the data for extreme values.")
            error.loss = value
            raise error
        self.optimizer.step()
        if self._constrained:
            with torch.no_grad():
                for weight, constraint in self._constrained:
                    weight.copy_(constraint(weight))
        return self._update_metrics(ys, preds, value, parts, len(data_adapter.first_leaf(x)))

    def test_on_batch(self, x, y, sample_weight=None):
        self._require_compiled("test_on_batch")
        self._reset_metrics()
        w = None if sample_weight is None else data_adapter.to_tensor(sample_weight, "sample_weight").float()
        batch = [(data_adapter.to_tensors(x), data_adapter.to_tensors(y), w)]
        return _logs_to_return(self._evaluate_batches(batch))

    def predict_on_batch(self, x):
        return _to_numpy(self._predict_tensor(data_adapter.to_tensors(x, "x")))

    # ----- fit / evaluate / predict ------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, sample_weight=None,
            class_weight=None):
        """Train for ``epochs`` passes over the data; returns a ``History``.

        ``sample_weight`` (one weight per sample) and ``class_weight`` (``{class: weight}``, read from
        integer, one-hot or binary targets) weigh each sample's loss, as in Keras; the metrics stay
        unweighted (Keras's ``metrics``). ``validation_data`` may carry weights as ``(x, y, w)``.

        A non-finite loss never reaches the weights: that step's update is skipped and training
        stops. With a callback that stops training on it (``callbacks.TerminateOnNaN``, as Keras)
        ``fit`` returns the ``History`` as usual; otherwise it raises ``FloatingPointError`` with
        the ``History`` of the completed epochs as its ``.history``. Either way every callback's
        ``on_train_end`` runs (``CSVLogger`` closes its file). A loss that grows a thousandfold over
        its best epoch, and a non-finite validation loss, are reported with a warning."""
        self._require_compiled("fit")
        if distribute.initialize(self.device):  # launched by torchrun: join the others (rnnkit.distribute)
            self._ensure_on_device()
        for name, value in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                            ("validation_steps", validation_steps), ("validation_batch_size", validation_batch_size)):
            data_adapter.check_count(value, name)
        sample_weight = _sample_weights(y, sample_weight, class_weight)
        if validation_split and validation_data is None:
            (x, y, sample_weight), validation_data = data_adapter.split_validation(x, y, validation_split,
                                                                                 sample_weight)
        train = data_adapter.batches(x, y, batch_size, shuffle=shuffle, steps=steps_per_epoch,
                                     sample_weight=sample_weight)
        val = None
        if validation_data is not None:
            val = _validation_batches(validation_data, validation_batch_size or batch_size, validation_steps)
        train, val = distribute.shard(train), distribute.shard_validation(val)
        verbose = 1 if verbose == "auto" else verbose
        verbose = verbose if distribute.is_primary() else 0
        history = callbacks_module.History()
        callback_list = callbacks_module.CallbackList(distribute.callbacks_for_rank(callbacks) + [history])
        callback_list.set_model(self)
        callback_list.set_params({"epochs": epochs, "steps": len(train), "verbose": verbose})
        self.stop_training = False
        self._fit_failed = False
        if isinstance(train, data_adapter.ArrayBatches):  # built before the callbacks start (BackupAndRestore
            self._prepare(train.first(1))                 # restores weights and optimizer state into it)
        callback_list.on_train_begin({})
        initial_epoch = max(initial_epoch, self.__dict__.pop("_resume_epoch", 0))
        watch = _LossWatch()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callback_list.on_epoch_begin(epoch, {})
            if verbose:
                print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            bar = Progbar(len(train), verbose=1 if verbose == 1 else 0)
            started = time.perf_counter()
            batches = enumerate(train, start=1)
            step, logs = _skip_trained_batches(self, batches)  # 0, {} unless BackupAndRestore resumes mid-epoch
            for step, (xb, yb, wb) in batches:
                if yb is None:
                    raise ValueError("fit() needs targets: pass y, or a dataset that yields (x, y) batches.")
                if step == 1:
                    self._prepare(xb)
                    distribute.broadcast_model(self)
                callback_list.on_train_batch_begin(step - 1, {})
                try:
                    logs = self._train_step(data_adapter.to_device(xb, self.device, non_blocking=True),
                                            data_adapter.to_device(yb, self.device, non_blocking=True),
                                            None if wb is None else wb.to(self.device, non_blocking=True))
                except FloatingPointError as exc:  # a non-finite loss; the weights were not updated
                    logs = {"loss": getattr(exc, "loss", math.nan)}
                    callback_list.on_train_batch_end(step - 1, logs)
                    if not self.stop_training:  # no TerminateOnNaN: end cleanly, then raise
                        self._fit_failed = True
                        callback_list.on_train_end({})
                        self.history = exc.history = history
                        raise
                    break
                logs = distribute.average_logs(logs, self._loss_count)
                callback_list.on_train_batch_end(step - 1, logs)
                bar.update(step, list(logs.items()), finalize=False)
                self.stop_training = distribute.any_rank(self.stop_training)
                if self.stop_training:
                    break
            if step == 0:
                raise ValueError("The training data yielded no batches.")
            epoch_logs = dict(logs)
            if val is not None:
                self._reset_metrics()
                val_logs = distribute.average_logs(self._evaluate_batches(val), self._loss_count)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            watch.check(epoch, epoch_logs)
            seconds = time.perf_counter() - started
            if verbose == 1:
                bar.update(step, list(epoch_logs.items()), finalize=True)
            elif verbose == 2:
                print(format_epoch_line(seconds, step, epoch_logs), flush=True)
            callback_list.on_epoch_end(epoch, epoch_logs)
            self.stop_training = distribute.any_rank(self.stop_training)
            if self.stop_training:
                break
        callback_list.on_train_end({})
        self.history = history
        return history

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", steps=None, return_dict=False,
                 sample_weight=None):
        """Loss and metrics on the data (no weight updates); ``sample_weight`` weighs the loss as in ``fit``."""
        self._require_compiled("evaluate")
        data = data_adapter.batches(x, y, batch_size, shuffle=False, steps=steps, sample_weight=sample_weight)
        self._reset_metrics()
        logs = self._evaluate_batches(data)
        _warn_if_not_finite(logs.get("loss"), "evaluate(): the loss")
        if verbose not in (0, "auto"):
            print(" - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
        return logs if return_dict else _logs_to_return(logs)

    def _evaluate_batches(self, data):
        self.eval()
        logs = {}
        with torch.inference_mode(), self._autocast():
            for xb, yb, wb in data:
                if yb is None:
                    raise ValueError("evaluate() needs targets: pass y, or a dataset that yields (x, y).")
                self._prepare(xb)
                xb, yb = data_adapter.to_device(xb, self.device), data_adapter.to_device(yb, self.device)
                self._clear_added_losses()
                y_pred = self(xb, training=False)
                loss, parts, ys, preds = self._total_loss(yb, y_pred, None if wb is None else wb.to(self.device))
                logs = self._update_metrics(ys, preds, float(loss), parts, len(data_adapter.first_leaf(xb)))
        if not logs:
            raise ValueError("The evaluation data yielded no batches.")
        return logs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` as NumPy (a list or dict of arrays for several outputs), computed in
        batches (default 256) under inference mode; ``verbose="auto"`` or 1 shows a progress bar,
        as Keras does."""
        data = data_adapter.batches(x, None, batch_size, shuffle=False, steps=steps, default_batch_size=256)
        bar = Progbar(len(data), verbose=1 if verbose in (1, "auto") else 0)
        outputs = []
        for i, (xb, _, _) in enumerate(data, start=1):
            outputs.append(map_structure(lambda t: t.cpu(), self._predict_tensor(xb)))
            bar.update(i)
        if not outputs:
            raise ValueError("predict() got no data.")
        if isinstance(outputs[0], torch.Tensor):
            return torch.cat(outputs).numpy()
        flat = [torch.cat(parts).numpy() for parts in zip(*(flatten(o) for o in outputs))]
        return pack_like(outputs[0], flat)

    def _predict_tensor(self, x):
        if not self.built:
            self._build_from_batch(x)
        self._ensure_on_device()
        if self.training:
            self.eval()
        with torch.inference_mode(), self._autocast():
            out = self(data_adapter.to_device(x, self.device), training=False)
            return map_structure(lambda t: t.float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t,
                                 out)

    def reset_states(self):
        """Forget the states that stateful recurrent layers carry between batches."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_states") and getattr(module, "stateful", False):
                module.reset_states()

    # ----- summary -----------------------------------------------------------------------------
    def summary(self, line_length=None, print_fn=None, expand_nested=False, show_trainable=False):
        """Print Keras's table of layers, output shapes and parameter counts ("Connected to" too for
        graphs that are not a plain chain). An unbuilt model shows '?' shapes and unbuilt layers."""
        rows, connected = summary_rows(self)
        weights = self.weights if self.built or self.layers else []
        total = sum(w.numel() for w in weights if _is_materialised(w))
        trainable = sum(w.numel() for w in weights if w.requires_grad and _is_materialised(w))
        text = format_summary(self.name, rows, total, trainable, line_length, connected=connected)
        (print_fn or print)(text)


    # ----- saving ------------------------------------------------------------------------------
    def save(self, filepath, include_optimizer=True):
        """Write architecture, weights and optimizer state to one ``.rnnkit`` file, atomically (under
        torchrun: by rank 0 only)."""
        if not distribute.is_primary():
            return
        saving.save_model(self, filepath, include_optimizer=include_optimizer)

    def save_weights(self, filepath):
        if not distribute.is_primary():  # torchrun: rank 0 writes
            return
        saving.save_weights(self, filepath)

    def load_weights(self, filepath):
        saving.load_weights(self, filepath)

    def export(self, filepath, format="onnx", verbose=None, input_signature=None, **kwargs):
        """Write the model for another runtime, as Keras 3's ``model.export``: ``format="onnx"`` (the only
        one) writes an ONNX file with :func:`rnnkit.export.export_onnx` (keyword arguments, e.g.
        ``masks="any"`` or ``opset=18``, go to it) and returns its ``ExportInfo``; ``verbose`` prints it."""
        if format != "onnx":
            raise ValueError(f"Unknown export format {format!r}: rnnkit exports format='onnx' (Keras's "
                             "'tf_saved_model' needs TensorFlow).")
        if input_signature is not None:
            raise ValueError("input_signature is not used by the ONNX export: batch and time axes are always "
                             "dynamic, feature sizes come from the model.")
        info = export_onnx(self, filepath, **kwargs)
        if verbose:
            print(info)
        return info

    def get_compile_config(self):
        return self._compile_config

    def compile_from_config(self, compile_config):
        loss = _map_serialized(losses.deserialize, compile_config["loss"])
        self.compile(optimizer=optimizers.deserialize(compile_config["optimizer"]), loss=loss,
                     metrics=compile_config.get("metrics"), loss_weights=compile_config.get("loss_weights"),
                     mixed_precision=compile_config.get("mixed_precision"))

    def build_from_config(self, config):
        """Build a subclassed model again from its saved input shape: one call on zeros creates the
        weights of the layers that ``call`` uses."""
        if not config or self._graph is not None:
            return
        shapes = config["input_shape"]
        dtypes = config.get("dtype")
        dummy = _dummy_batch(shapes, dtypes)
        with torch.no_grad():
            self.eval()
            self(dummy)
            self.train()

    # ----- config: the graph as data -------------------------------------------------------------
    def get_config(self):
        if self._graph is None:
            return super().get_config()
        return {"name": self.name, "trainable": self.trainable,
                **graph_config(self._graph, self._inputs_struct, self._outputs_struct)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if "layers" not in config or "input_layers" not in config:
            return _construct(cls, config)
        inputs, outputs = graph_from_config(config, custom_objects)
        return (Functional if cls is Model else cls)(inputs, outputs, name=config.get("name"))


class Functional(Model):
    """A model defined by a graph of layer calls: what ``Model(inputs, outputs)`` returns."""

    def __init__(self, inputs, outputs, name=None, trainable=True):
        super().__init__(inputs, outputs, name=name, trainable=trainable)


def _output_mask(y_pred):
    """The mask a model marked on its (batch, time, ...) output, or None."""
    mask = getattr(y_pred, "_keras_mask", None)
    if mask is None or tuple(mask.shape) != tuple(y_pred.shape[:mask.dim()]):
        return None
    return mask


class _LossWatch:
    """What ``fit`` reports after each epoch: a training loss a thousandfold (or more) above its best
    epoch's and above its first epoch's (divergence, warned once per ``fit``; a spike from a
    near-zero loss back to where training started is not) and a non-finite validation loss."""

    GROWTH = 1000.0

    def __init__(self):
        self.best, self.best_epoch, self.first, self.warned = math.inf, None, None, False

    def check(self, epoch, logs):
        loss = logs.get("loss")
        if loss is not None and math.isfinite(loss):
            if self.first is None:
                self.first = loss
            if not self.warned and loss > self.GROWTH * max(self.best, 1e-6) and loss > self.first:
                self.warned = True
                warnings.warn(f"Epoch {epoch + 1}: the loss grew to {loss:.4g} from {self.best:.4g} at epoch "
                              f"{self.best_epoch + 1}, more than {self.GROWTH:.0f}-fold: training is diverging. "
                              "Lower the learning rate or add clipnorm= to the optimizer.", RuntimeWarning,
                              stacklevel=3)
            if loss < self.best:
                self.best, self.best_epoch = loss, epoch
        _warn_if_not_finite(logs.get("val_loss"), f"Epoch {epoch + 1}: the validation loss")


def _skip_trained_batches(model, batches):
    """Step-level resume (``callbacks.BackupAndRestore(save_freq=N)``): draw and drop the batches of this
    epoch that the interrupted run had trained on (the epoch's shuffle order is drawn as it was), then
    let the callback put back that step's random, loss and metric state. Returns ``(batches skipped,
    logs of the last one)``, or ``(0, {})`` when there is nothing to resume."""
    resume = model.__dict__.pop("_resume_within_epoch", None)
    if resume is None:
        return 0, {}
    done, restore_step = resume
    skipped = 0
    for skipped, (xb, yb, _) in itertools.islice(batches, done):
        if skipped == 1:
            model._prepare(xb)
    if skipped != done:
        raise ValueError(f"The backup was made after batch {done} of this epoch, but the data now has only "
                         f"{skipped} batches: resume with the same data and batch size.")
    if model._outputs_compiled is None:  # a fresh model: create its metrics (from one batch's shapes) first
        with torch.no_grad():
            xb = data_adapter.to_device(xb, model.device)
            model._total_loss(data_adapter.to_device(yb, model.device), model(xb, training=False))
        model._clear_added_losses()
    return skipped, restore_step()


def _warn_if_not_finite(value, what):
    if value is not None and not math.isfinite(value):
        warnings.warn(f"{what} is {value}: the model's outputs overflow on that data, or its targets are "
                      "out of the loss's range.", RuntimeWarning, stacklevel=3)


def _validation_batches(validation_data, batch_size, steps):
    """``(x, y[, sample_weight])`` or ``[x, y]`` of arrays (as Keras takes them), else a dataset of batches."""
    pair = isinstance(validation_data, tuple) or isinstance(validation_data, list) and not isinstance(
        validation_data[0], tuple)
    if pair and len(validation_data) in (2, 3) and data_adapter.is_array(validation_data[0]):
        weights = validation_data[2] if len(validation_data) == 3 else None
        return data_adapter.batches(validation_data[0], validation_data[1], batch_size, shuffle=False,
                                    sample_weight=weights)
    return data_adapter.batches(validation_data, None, batch_size, shuffle=False, steps=steps)


def _sample_weights(y, sample_weight, class_weight):
    """Per-sample loss weights from ``sample_weight`` and ``class_weight`` (their product), or None.
    Classes are read from integer labels, one-hot rows (argmax) or binary targets (rounded)."""
    if class_weight is None:
        return sample_weight
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight must be a dict {{class index: weight}}, got {type(class_weight).__name__}.")
    if y is None or isinstance(y, (dict, list, tuple)) or not data_adapter.is_array(y):
        raise ValueError("class_weight needs the targets as one array (y=...); for several outputs or a dataset, "
                         "pass sample_weight instead.")
    labels = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    if labels.ndim >= 2 and labels.shape[-1] > 1:
        labels = labels.argmax(-1)
    labels = np.rint(labels.reshape(len(labels), -1)[:, 0]).astype(int)
    missing = sorted(set(labels.tolist()) - set(class_weight))
    if missing:
        raise ValueError(f"class_weight has no weight for class {missing[0]}; give one for every class in y.")
    weights = np.array([class_weight[c] for c in labels], dtype=np.float32)
    if sample_weight is not None:
        weights = weights * np.asarray(sample_weight, dtype=np.float32).reshape(len(weights))
    return weights


def _dummy_batch(shapes, dtypes):
    if isinstance(shapes, dict):
        return {k: _dummy_batch(v, (dtypes or {}).get(k)) for k, v in shapes.items()}
    if shapes and all(d is None or isinstance(d, int) for d in shapes):
        dtype = torch.long if str(dtypes).startswith(("int", "bool")) else torch.float32
        return torch.zeros([1 if d is None else d for d in shapes], dtype=dtype)
    dtypes = dtypes if isinstance(dtypes, list) else [dtypes] * len(shapes)
    return [_dummy_batch(s, d) for s, d in zip(shapes, dtypes)]


def _construct(cls, config):
    """``cls(**config)``, leaving out what a subclass's ``__init__`` does not take (a subclassed
    model written as ``def __init__(self):`` still gets its saved name)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return cls(**config)
    obj = cls(**{k: v for k, v in config.items() if k in params})
    if "name" in config and "name" not in params:
        obj.name = config["name"]
    return obj


def _map_serialized(fn, spec):
    """``fn`` on each serialized object (a dict with "class_name", or a name) of a list/dict structure."""
    if spec is None:
        return None
    if isinstance(spec, str) or isinstance(spec, dict) and "class_name" in spec:
        return fn(spec)
    if isinstance(spec, dict):
        return {k: _map_serialized(fn, v) for k, v in spec.items()}
    return [_map_serialized(fn, v) for v in spec]


def _per_output(spec, names, what, default=None):
    """One entry per output from a single value, a list (by output) or a dict (by output name)."""
    if spec is None:
        return [default] * len(names)
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"compile({what}=...) names an output {unknown[0]!r}{suggest(unknown[0], names)}; "
                             f"this model's outputs are {names}.")
        return [spec.get(name, default) for name in names]
    if isinstance(spec, (list, tuple)):
        if len(spec) != len(names):
            raise ValueError(f"compile({what}=...) has {len(spec)} entries but the model has {len(names)} outputs "
                             f"({', '.join(names)}); give one per output or a dict by output name.")
        return list(spec)
    return [spec] * len(names)


def _as_list(value):
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _to_numpy(value):
    return map_structure(lambda t: t.cpu().numpy() if isinstance(t, torch.Tensor) else t, value)


def _is_materialised(weight):
    return not isinstance(weight, nn.parameter.UninitializedParameter)


def _logs_to_return(logs):
    values = [float(v) for v in logs.values()]
    return values[0] if len(values) == 1 else values

