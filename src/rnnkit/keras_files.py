"""Keras's own files, both ways: ``.keras`` archives, ``.weights.h5`` weights, and Keras 2 ``.h5`` models.

* ``.keras`` (Keras 3): a zip of ``metadata.json``, ``config.json`` (the model's config in
  Keras's layout: ``{"module", "class_name", "config", "registered_name", "build_config",
  "compile_config"}``) and ``model.weights.h5``.
* ``.weights.h5`` (Keras 3): HDF5; each layer's variables under ``layers/<snake class name>/vars/<i>``
  (names made unique in layer order: ``dense``, ``dense_1``...), a recurrent layer's under
  ``layers/<name>/cell/vars/<i>``, a ``Bidirectional``'s under ``forward_layer/`` and
  ``backward_layer/``, a wrapper's under ``layer/``, a nested model's under ``layers/``.
* Keras 2 ``.h5`` (``tf.keras`` 2.x ``model.save("m.h5")``): HDF5 attributes ``model_config``
  (JSON) and ``model_weights/<layer>/`` groups listing ``weight_names``.

Configs are translated layer by layer: Keras-only entries that change nothing here (dtype
policies, ``None`` regularizers and constraints, initializer objects: the weights are loaded
over them) are dropped; anything rnnkit cannot honour is a ``ModelFileError`` naming the
layer and the argument, never a half-loaded model.

HDF5 is read defensively (``_h5_node``, ``_h5_names``, ``_datasets``): only hard links are
followed (a soft or external link may point to itself, another file or a FIFO); paths, attributes
and name lists are bounded in depth, size and count before they are read; a weight array must
match the config's shape and dtype, keep its data in this file (no external or virtual storage),
fully written, within the file's length, not overlapping another array, uncompressed or
compressed (gzip, lzf; with shuffle, fletcher32) at most ``MAX_INFLATION``:1; and all arrays
together may not exceed ``MAX_INFLATION`` times the file's size. Only then is anything read.
HDF5 has no checksums (unless a dataset uses the fletcher32 filter, which Keras never does): a byte
changed inside a weight array's raw data, or in its data address where that still points to
unused bytes of the file, loads as a different weight, and nothing can detect it.
"""
import datetime
import io
import json
import math
import os
import zipfile

import warnings

import h5py
import numpy as np
import torch

from . import losses, optimizers, registry
from ._io import (MAX_INFLATION, ModelFileError, atomic_write_bytes, open_regular, open_zip, read_json,
                  read_member)
from ._naming import snake_case
from .layers.graph_io import graph_config, replay

KERAS_VERSION = "3.15.1"  # the Keras release whose layout these files follow (and that the tests load them with)
_RNN_CLASSES = {"SimpleRNN", "LSTM", "GRU", "RNN"}
_DROPPED = {"dtype", "quantization_config", "optional", "ragged", "sparse", "shared_object_id", "input_dtype"}
_ONLY_NONE = ("_regularizer", "_constraint")  # None in Keras's configs: left out of rnnkit's
_RNNKIT_ONLY = {"use_fused", "batch_input_shape"}
# Keras arguments rnnkit does not take, dropped when they hold the value that means "as rnnkit does"
_KERAS_DEFAULTS = {"data_format": ("channels_last",), "groups": (1,), "lora_rank": (None,), "lora_alpha": (None,),
                   "implementation": (1, 2), "time_major": (False,), "input_length": (None,),
                   "sparse": (False,), "autocast": (True,), "rms_scaling": (False,), "synchronized": (False,),
                   "renorm": (False,), "renorm_clipping": (None,), "renorm_momentum": (0.99,)}


class _Unsupported(ValueError):
    pass


# ----- configs: Keras -> rnnkit ----------------------------------------------------------------------
def _initializer_name(spec):
    if isinstance(spec, dict):
        return snake_case(spec.get("class_name", "glorot_uniform"))
    return spec


def from_keras_layer(spec, custom_objects=None):
    """An rnnkit layer from one layer entry of a Keras config."""
    class_name, config = spec["class_name"], dict(spec.get("config") or {})
    name = config.get("name", spec.get("name", "?"))
    if class_name == "InputLayer":
        shape = config.get("batch_shape") or config.get("batch_input_shape")
        dtype = config.get("dtype")
        dtype = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        return registry.lookup("InputLayer")(batch_shape=shape, dtype=dtype, name=name)
    for key in list(config):
        value = config[key]
        if key in _DROPPED or key in _KERAS_DEFAULTS and value in _KERAS_DEFAULTS[key]:
            del config[key]
        elif key.endswith(_ONLY_NONE) or key == "activity_regularizer":
            if value is None:
                del config[key]
            elif isinstance(value, dict):
                config[key] = {"class_name": value.get("class_name"), "config": value.get("config") or {}}
        elif key.endswith("_initializer"):
            config[key] = _initializer_name(value)
        elif key in ("layer", "backward_layer", "cell") and isinstance(value, dict):
            config[key] = from_keras_layer(value, custom_objects)
        elif key == "cell" and isinstance(value, list):
            config[key] = [from_keras_layer(v, custom_objects) for v in value]
    if class_name in ("Sequential", "Functional", "Model"):
        return from_keras_model({"class_name": class_name, "config": spec["config"]}, custom_objects)
    try:
        cls = registry.lookup(class_name, custom_objects)
    except ValueError:
        raise _Unsupported(f"layer '{name}' is a Keras {class_name}, which rnnkit does not have") from None
    try:
        return cls(**config) if not hasattr(cls, "from_keras_config") else cls.from_keras_config(config)
    except TypeError as exc:
        raise _Unsupported(f"layer '{name}' ({class_name}): {exc}") from None


def _node_kwargs(node):
    kwargs = dict(node.get("kwargs") or {})
    kwargs.pop("training", None)  # Keras records the flag of the call that built the graph; rnnkit passes its own
    return {"args": node.get("args", []), "kwargs": kwargs}


def _refs(value):
    """Layer names of the tensors a (nested) call argument names."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        return [value["config"]["keras_history"][0]]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _refs(v)]
    if isinstance(value, list):
        return [n for v in value for n in _refs(v)]
    return []


def _mask_ops(layers):
    """Names of the graph ops that only compute masks. Keras 3 records the masks layers make
    (``Embedding(mask_zero=True)``: ``not_equal``; ``Masking``: ``not_equal`` then ``any``) as ops
    whose outputs reach other layers as ``mask=``; rnnkit carries masks on the tensors, so these
    ops and those arguments are left out. An op whose output is computed on is kept (and refused)."""
    ops = {spec["name"] for spec in layers if str(spec.get("module", "")).startswith("keras.src.ops")}
    changed = True
    while changed:  # drop ops that a layer, or an op already dropped, uses other than as its mask
        changed = False
        for spec in layers:
            if spec["name"] in ops:
                continue  # a mask-only op's own arguments say nothing about it
            for node in spec.get("inbound_nodes", []):
                kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if k != "mask"}
                bad = ops & set(_refs(node.get("args", [])) + _refs(kwargs))
                if bad:
                    ops -= bad
                    changed = True
    return ops


def _without_mask_kwargs(spec, mask_ops):
    def is_op_mask(value):
        return (isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"
                and value["config"]["keras_history"][0] in mask_ops)

    nodes = []
    for node in spec.get("inbound_nodes", []):
        kwargs = {k: v for k, v in (node.get("kwargs") or {}).items() if not (k == "mask" and (
            is_op_mask(v) or isinstance(v, list) and any(is_op_mask(m) for m in v)))}
        if any(is_op_mask(a) for a in node.get("args", [])):
            raise _Unsupported(f"layer '{spec.get('name')}' computes on a mask tensor, which rnnkit cannot load")
        nodes.append({**node, "kwargs": kwargs})
    return {**spec, "inbound_nodes": nodes}


def from_keras_model(spec, custom_objects=None):
    """An rnnkit Sequential or functional model from a Keras model config."""
    config = spec["config"]
    if spec["class_name"] == "Sequential":
        model = registry.lookup("Sequential")(name=config.get("name"))
        for layer_spec in config["layers"]:
            model.add(from_keras_layer(layer_spec, custom_objects))
        shape = config.get("build_input_shape") or (spec.get("build_config") or {}).get("input_shape")
        if not model.built and shape:
            model.build(tuple(shape))
        return model
    mask_ops = _mask_ops(config["layers"])
    items = []
    for layer_spec in config["layers"]:
        if layer_spec.get("name") in mask_ops:
            continue  # rnnkit carries masks on the tensors themselves
        layer_spec = _without_mask_kwargs(layer_spec, mask_ops)
        layer = from_keras_layer(layer_spec, custom_objects)
        nodes = [_node_kwargs(n) for n in layer_spec.get("inbound_nodes", [])]
        items.append((layer, layer_spec.get("name", layer.name), nodes))
    inputs, outputs = replay(items, config["input_layers"], config["output_layers"])
    return registry.lookup("Functional")(inputs, outputs, name=config.get("name"))


# ----- configs: rnnkit -> Keras ----------------------------------------------------------------------
def _keras_entry(class_name, config, build_shape=None, module="keras.layers"):
    entry = {"module": module, "class_name": class_name, "config": config, "registered_name": None}
    if build_shape is not None:
        entry["build_config"] = {"input_shape": build_shape}
    return entry


def to_keras_layer(layer):
    """One layer as an entry of a Keras config (rnnkit-only arguments left out)."""
    class_name = type(layer).__name__
    if getattr(layer, "_graph", None) is not None or class_name == "Sequential":
        return to_keras_model(layer)
    if class_name not in _KERAS_LAYERS:
        raise _Unsupported(f"layer '{layer.name}' is an rnnkit {class_name}, which Keras files cannot hold "
                           "(save it as .rnnkit)")
    config = {k: v for k, v in layer.get_config().items() if k not in _RNNKIT_ONLY}
    if class_name == "InputLayer":
        config = {"batch_shape": config["batch_shape"], "dtype": config.get("dtype") or "float32",
                  "sparse": False, "name": layer.name}
        return _keras_entry(class_name, config)
    for key in ("layer", "backward_layer"):
        if isinstance(config.get(key), dict):
            config[key] = to_keras_layer(getattr(layer, "forward_layer" if key == "layer" else key, None)
                                         or getattr(layer, key))
    if isinstance(config.get("cell"), dict):
        config["cell"] = to_keras_layer(layer.cell)
    for key, value in list(config.items()):
        for suffix, module in (("_initializer", "keras.initializers"), ("_regularizer", "keras.regularizers"),
                               ("_constraint", "keras.constraints")):
            if key.endswith(suffix) and isinstance(value, dict):
                config[key] = {"module": module, "registered_name": None, **value}
    if class_name == "Bidirectional":
        config["layer"]["config"]["name"] = layer.forward_layer.name
    shape = getattr(layer, "_build_shapes", None)
    return _keras_entry(class_name, config, _json_shape(shape))


def _json_shape(shape):
    if shape is None:
        return None
    if isinstance(shape, tuple):
        return list(shape)
    return [_json_shape(s) for s in shape]


def to_keras_model(model):
    """A Keras 3 ``{"module", "class_name", "config", ...}`` entry for a Sequential or functional model."""
    if type(model).__name__ == "Sequential":
        layers = [to_keras_layer(model._chain[0].node.layer)] if model.built else []
        layers += [to_keras_layer(layer) for layer in model.layers]
        config = {"name": model.name, "trainable": model.trainable, "layers": layers}
        if model.built:
            config["build_input_shape"] = list(model._chain[0].shape)
        return _keras_entry("Sequential", config, config.get("build_input_shape"), module="keras")
    if getattr(model, "_graph", None) is None:
        raise _Unsupported(f"model '{model.name}' is a subclassed {type(model).__name__}; Keras files hold "
                           "Sequential and functional models (save it as .rnnkit)")
    config = {"name": model.name, "trainable": model.trainable,
              **graph_config(model._graph, model._inputs_struct, model._outputs_struct, serialize=to_keras_layer)}
    entry = _keras_entry("Functional", config, module="keras.src.models.functional")
    entry["registered_name"] = "Functional"
    return entry


# rnnkit layers whose arguments and weights are Keras's own (what a Keras file can carry both ways)
_KERAS_LAYERS = {
    "InputLayer", "Dense", "Embedding", "SimpleRNN", "LSTM", "GRU", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell",
    "StackedRNNCells", "Bidirectional", "TimeDistributed", "Dropout", "SpatialDropout1D", "Activation", "Flatten",
    "RepeatVector", "Conv1D", "MaxPooling1D", "GlobalMaxPooling1D", "GlobalAveragePooling1D", "Concatenate",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Dot", "Reshape", "Permute", "Masking",
    "Attention", "AdditiveAttention", "LayerNormalization", "BatchNormalization",
}


# ----- weights in Keras 3's HDF5 layout --------------------------------------------------------------
def _unique(name, used):
    count = used.get(name, 0)
    used[name] = count + 1
    return name if count == 0 else f"{name}_{count}"


def weight_paths(layer, prefix):
    """HDF5 dataset paths of ``layer.weights``, in order, as Keras 3 stores them."""
    class_name = type(layer).__name__
    if getattr(layer, "_graph", None) is not None or class_name == "Sequential":
        used, paths = {}, []
        for child in layer.layers:
            paths += weight_paths(child, f"{prefix}/layers/{_unique(snake_case(type(child).__name__), used)}")
        return paths
    if class_name == "Bidirectional":
        return (weight_paths(layer.forward_layer, f"{prefix}/forward_layer")
                + weight_paths(layer.backward_layer, f"{prefix}/backward_layer"))
    if class_name == "TimeDistributed":
        return weight_paths(layer.layer, f"{prefix}/layer")
    if class_name in _RNN_CLASSES:
        cell = getattr(layer, "cell", None)
        if cell is not None and type(cell).__name__ == "StackedRNNCells":
            used, paths = {}, []
            for inner in cell.cells:
                paths += weight_paths(inner, f"{prefix}/cell/cells/{_unique(snake_case(type(inner).__name__), used)}")
            return paths
        return [f"{prefix}/cell/vars/{i}" for i in range(len(layer.weights))]
    return [f"{prefix}/vars/{i}" for i in range(len(layer.weights))]


def _write_weights_h5(model):
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for path, weight in zip(weight_paths(model, ""), model.weights):
            f.create_dataset(path.lstrip("/"), data=weight.detach().cpu().numpy())
        f.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


_H5_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
               h5py.h5z.FILTER_FLETCHER32: "fletcher32", 32000: "lzf"}
_H5_COMPRESSORS = (h5py.h5z.FILTER_DEFLATE, 32000)
_H5_MAX_DEPTH = 32  # components of a weight's HDF5 path (Keras writes 2 to 5)
_H5_MAX_NAME = 1024  # bytes of one layer or weight name
_H5_MAX_NAMES = 4096  # names in one layer_names or weight_names list
_H5_MAX_CHUNKS = 16384  # chunks of one weight array


def _h5_node(group, path, filepath):
    """The object at ``path`` below ``group`` (None if absent), following hard links only: a soft or
    external link (to itself, to another file, to a FIFO) is a ``ModelFileError``, as is a path of
    more than ``_H5_MAX_DEPTH`` components or with empty, ``.`` or ``..`` ones.

        _h5_node(f, "model_weights/dense/dense/kernel:0", "m.h5")  # -> h5py.Dataset or None
    """
    parts = path.split("/")
    if len(parts) > _H5_MAX_DEPTH or any(part in ("", ".", "..") for part in parts):
        raise ModelFileError(f"'{filepath}': the HDF5 path '{path[:120]}' is not a plain path of at most "
                             f"{_H5_MAX_DEPTH} names; the file is damaged or crafted.")
    node = group
    for part in parts:
        name = part.encode("utf-8", "surrogateescape")
        if not isinstance(node, h5py.Group) or not node.id.links.exists(name):  # H5Lexists: resolves nothing
            return None
        if node.id.links.get_info(name).type != h5py.h5l.TYPE_HARD:
            raise ModelFileError(f"'{filepath}': '{path[:120]}' is an HDF5 soft or external link; Keras files hold "
                                 "their arrays themselves, and rnnkit follows no links (they may point to other "
                                 "files).")
        node = node[part]
    return node


def _h5_attribute(obj, name, filepath, limit):
    """Attribute ``name`` of ``obj`` (None if absent), read only if it stores at most ``limit`` bytes."""
    if name not in obj.attrs:
        return None
    attribute = h5py.h5a.open(obj.id, name.encode())
    size = math.prod(attribute.shape or ()) * attribute.dtype.itemsize  # the declared size, before reading
    if size > limit:
        raise ModelFileError(f"'{filepath}': the HDF5 attribute '{name}' holds {size:,} bytes, more than the "
                             f"{limit:,} it can need; the file is damaged or crafted.")
    return obj.attrs[name]


def _h5_names(obj, name, filepath):
    """A Keras 2 name list (``layer_names``, ``weight_names``): a 1-D array of at most ``_H5_MAX_NAMES``
    UTF-8 strings of at most ``_H5_MAX_NAME`` bytes each (an empty array of any type is an empty list)."""
    value = _h5_attribute(obj, name, filepath, _H5_MAX_NAMES * _H5_MAX_NAME)
    where = f"'{filepath}': the '{name}' attribute of '{obj.name}'"
    if value is None:
        raise ModelFileError(f"{where} is missing: the file is not a complete Keras 2 model.")
    value = np.asarray(value)
    if value.size == 0:
        return []
    if value.ndim != 1 or value.dtype.kind not in "SOU" or len(value) > _H5_MAX_NAMES:
        raise ModelFileError(f"{where} must be a list of at most {_H5_MAX_NAMES} names, not a {value.dtype} "
                             f"array of shape {value.shape}.")
    names = []
    for item in value:
        if not isinstance(item, (bytes, str)):
            raise ModelFileError(f"{where} holds a {type(item).__name__}, not a name.")
        try:
            text = item.decode("utf-8") if isinstance(item, bytes) else item
        except UnicodeDecodeError:
            raise ModelFileError(f"{where} holds a name that is not UTF-8 text.") from None
        if len(text.encode("utf-8", "surrogatepass")) > _H5_MAX_NAME:
            raise ModelFileError(f"{where} holds a name longer than {_H5_MAX_NAME} bytes.")
        names.append(text)
    return names


def _datasets(f, paths, weights, filepath, file_size):
    """The arrays at ``paths`` for ``weights``, read only once all of them pass ``_checked_dataset``,
    their bytes in the file do not overlap (two weights read from the same bytes means a damaged data
    address) and together they fit in ``MAX_INFLATION`` times the file's size."""
    nodes = [_checked_dataset(f, path, weight, filepath, file_size) for path, weight in zip(paths, weights)]
    spans = sorted((node.id.get_offset(), node.id.get_offset() + node.id.get_storage_size(), path)
                   for node, path in zip(nodes, paths)
                   if node.size and node.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        if start < end:
            raise ModelFileError(f"'{filepath}': the weight arrays '{first}' and '{second}' share bytes of the file; "
                                 "a data address is damaged.")
    total = sum(node.size * node.dtype.itemsize for node in nodes)
    if total > max(1 << 20, MAX_INFLATION * file_size):
        raise ModelFileError(f"'{filepath}': its weights take {total:,} bytes, more than a {file_size:,}-byte file "
                             "can hold; the file is damaged or crafted.")
    return [np.asarray(node) for node in nodes]


def _checked_dataset(f, path, weight, filepath, file_size):
    """The HDF5 dataset at ``path``, checked before anything is read: shape and dtype against ``weight``,
    its data kept in this file (``file_size`` bytes long), fully written, with known filters and
    compressed at most ``MAX_INFLATION``:1 (see the module's docstring)."""
    node = _h5_node(f, path, filepath)
    if not isinstance(node, h5py.Dataset):
        raise ModelFileError(f"'{filepath}' has no weight array at '{path}'; was it saved from another model?")
    if tuple(node.shape) != tuple(weight.shape):
        raise ModelFileError(f"'{filepath}': '{path}' has shape {tuple(node.shape)}, the model expects "
                             f"{tuple(weight.shape)}.")
    if node.dtype != _numpy_dtype(weight):
        raise ModelFileError(f"'{filepath}': '{path}' holds {node.dtype}, the model expects {_numpy_dtype(weight)}.")
    nbytes = node.size * node.dtype.itemsize
    if nbytes:
        _check_storage(node, path, filepath, file_size, nbytes)
    return node


def _check_storage(node, path, filepath, file_size, nbytes):
    """Refuse a dataset whose ``nbytes`` are not all stored in this file, plainly or compressed at most
    ``MAX_INFLATION``:1 with known filters (reads only HDF5's metadata)."""
    where = f"'{filepath}': the weight array '{path}'"
    plist = node.id.get_create_plist()
    layout = plist.get_layout()
    if layout not in (h5py.h5d.COMPACT, h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED) or plist.get_external_count():
        raise ModelFileError(f"{where} keeps its data outside the file (external or virtual storage), which rnnkit "
                             "does not read.")
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = [code for code in filters if code not in _H5_FILTERS]
    if unknown:
        raise ModelFileError(f"{where} uses HDF5 filter {unknown[0]}; rnnkit reads arrays stored plain or with "
                             f"{', '.join(sorted(_H5_FILTERS.values()))} (h5repack -f NONE converts others).")
    stored = node.id.get_storage_size()
    if layout == h5py.h5d.CHUNKED:
        count = math.prod(math.ceil(s / c) for s, c in zip(node.shape, node.chunks))
        if count > _H5_MAX_CHUNKS:
            raise ModelFileError(f"{where} is cut into {count:,} chunks, more than the {_H5_MAX_CHUNKS:,} rnnkit "
                                 "reads; the file is damaged or crafted.")
        if node.id.get_num_chunks() != count:
            raise ModelFileError(f"{where} was never completely written ({node.id.get_num_chunks()} of {count} "
                                 "chunks hold data).")
        end = max(info.byte_offset + info.size for info in map(node.id.get_chunk_info, range(count)))
    else:
        offset = node.id.get_offset() if layout == h5py.h5d.CONTIGUOUS else 0
        if offset is None or stored < nbytes:
            raise ModelFileError(f"{where} was never written (it stores {stored:,} of its {nbytes:,} bytes).")
        end = offset + stored
    if end > file_size:
        raise ModelFileError(f"{where} reaches byte {end:,} of a {file_size:,}-byte file: the file is truncated "
                             "or damaged.")
    if any(code in _H5_COMPRESSORS for code in filters):
        if nbytes > max(1 << 20, MAX_INFLATION * stored):
            raise ModelFileError(f"{where} would inflate {stored:,} bytes to {nbytes:,} (more than "
                                 f"{MAX_INFLATION}:1), which no trained weights do; refused as a decompression bomb.")
    elif stored < nbytes:
        raise ModelFileError(f"{where} stores {stored:,} of its {nbytes:,} bytes: the file is damaged.")


def _numpy_dtype(weight):
    return np.dtype(str(weight.dtype).replace("torch.", ""))


def _h5_file(data, filepath):
    try:
        return h5py.File(io.BytesIO(data) if isinstance(data, bytes) else data, "r")
    except Exception as exc:  # h5py raises OSError, ValueError and others for damaged files
        raise ModelFileError(f"'{filepath}' is not a readable HDF5 weights file ({exc}).") from None


def _h5_values(model, data, filepath):
    """The arrays of Keras 3's HDF5 layout for ``model``'s weights (a dry-built model will do), each
    checked (shape, dtype, storage) before it is read."""
    with _h5_file(data, filepath) as f:
        try:
            paths = [path.lstrip("/") for path in weight_paths(model, "")]
            return _datasets(f, paths, model.weights, filepath, len(data))
        except ModelFileError:
            raise
        except Exception as exc:  # HDF5 errors in a damaged file
            raise ModelFileError(f"'{filepath}': the HDF5 weights are damaged ({exc}).") from None


def _assign_values(model, values):
    with torch.no_grad():
        for weight, value in zip(model.weights, values):
            weight.copy_(torch.as_tensor(value, dtype=weight.dtype))


def save_weights_h5(model, filepath):
    """``model.save_weights("x.weights.h5")``: Keras 3's HDF5 layout, written atomically."""
    atomic_write_bytes(filepath, _write_weights_h5(model))


def load_weights_h5(model, filepath):
    with open_regular(filepath) as f:
        data = f.read()
    if _is_keras2_h5(data, filepath):
        return _assign_values(model, _keras2_values(model, data, filepath))
    _assign_values(model, _h5_values(model, data, filepath))


# ----- .keras archives ---------------------------------------------------------------------------------
def _keras_compile_config(model):
    config = model.get_compile_config()
    if not config:
        return None
    optimizer = config["optimizer"]
    loss = config["loss"]
    loss = loss.get("config", {}).get("name") if isinstance(loss, dict) and "class_name" in loss else None
    if loss is None:
        return None
    opt_config = dict(optimizer.get("config", {}))
    keras_opt = {"module": "keras.optimizers", "class_name": optimizer["class_name"],
                 "config": {k: v for k, v in opt_config.items()
                            if k in ("name", "learning_rate", "beta_1", "beta_2", "epsilon", "rho", "momentum",
                                     "nesterov", "weight_decay", "clipnorm", "clipvalue", "amsgrad", "centered")},
                 "registered_name": None}
    return {"optimizer": keras_opt, "loss": loss, "loss_weights": config.get("loss_weights"),
            "metrics": config.get("metrics") or None}


def save_keras(model, filepath):
    """``model.save("m.keras")``: a Keras 3 archive that Keras 3.15 loads (and rnnkit), written atomically."""
    if not model.built:
        raise ValueError("Cannot save a model that is not built yet: build it or train it first.")
    try:
        entry = to_keras_model(model)
    except _Unsupported as exc:
        raise ValueError(f"Cannot write '{filepath}' as a Keras file: {exc}.") from None
    entry["compile_config"] = _keras_compile_config(model)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": KERAS_VERSION,
                                                 "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}))
        zf.writestr("config.json", json.dumps(entry))
        zf.writestr("model.weights.h5", _write_weights_h5(model))
    atomic_write_bytes(filepath, buffer.getvalue())


_CONFIG_LIMIT = 16 << 20
_MAX_LAYERS = 256  # layers in one config: more than RNN models have; building 256 takes about a second


def check_safe_mode(config, filepath, safe_mode=True):
    """Keras's ``safe_mode``: a config that carries Python code (Keras's serialized ``lambda``, class
    ``__lambda__``) is refused. rnnkit never runs code from a file, so with ``safe_mode=False`` such
    a config is still refused, saying how to pass the function instead. A config of more than
    ``_MAX_LAYERS`` layers is refused too (loading it would take minutes)."""
    stack, layers = [config], 0
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == "__lambda__":
                refused = ("which safe_mode=True (the default) refuses; rnnkit runs no code from a file, not even "
                           "with safe_mode=False" if safe_mode else
                           "and rnnkit runs no code from a file, even with safe_mode=False")
                raise ModelFileError(f"'{filepath}' holds a Lambda layer whose function is serialized Python "
                                     f"bytecode, {refused}: save the model with a named function and pass it as "
                                     "custom_objects={'name': fn} when loading.")
            layers += "class_name" in node and isinstance(node.get("config"), dict) and "name" in node["config"]
            if layers > _MAX_LAYERS:  # said at once: walking a crafted config of 10,000 layers takes a second
                raise ModelFileError(f"'{filepath}': the config describes more than the {_MAX_LAYERS} layers "
                                     "rnnkit loads; the file is damaged or crafted.")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def dry_build(build, filepath):
    """The model ``build()`` makes, built on PyTorch's ``meta`` device (its weights have shapes and
    dtypes but no memory, and no initializer runs), so a config's claims can be checked against
    the weights in the file before the real model is built."""
    try:
        with torch.device("meta"):
            model = build()
    except ModelFileError:
        raise
    except Exception as exc:  # the config is untrusted: whatever its layers make of it is a bad file
        why = str(exc)[:300] if isinstance(exc, ValueError) else f"{type(exc).__name__}: {str(exc)[:300]}"
        raise ModelFileError(f"'{filepath}': its config does not describe a model rnnkit can build ({why}).") \
            from None
    return model


def _weights_bound(model):
    """Bytes an HDF5 file holding ``model``'s weights may take: the data plus generous per-array overhead."""
    return sum(w.numel() * w.element_size() for w in model.weights) + 8192 * len(model.weights) + (1 << 20)


def load_keras(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a Keras 3 ``.keras`` archive (written by Keras or by rnnkit); every fault of the
    file is a ``ModelFileError`` (see ``rnnkit.saving.load_model``)."""
    with open_zip(filepath, ".keras archive") as zf:
        names = zf.namelist()
        if "config.json" not in names or "model.weights.h5" not in names:
            raise ModelFileError(f"'{filepath}' is a zip archive but not a Keras model: it lacks "
                                 f"{'config.json' if 'config.json' not in names else 'model.weights.h5'}.")
        entry = read_json(read_member(zf, "config.json", filepath, _CONFIG_LIMIT), filepath, "config.json")
        check_safe_mode(entry, filepath, safe_mode)
        dry = dry_build(lambda: from_keras_model(entry, custom_objects), filepath)
        values = _h5_values(dry, read_member(zf, "model.weights.h5", filepath, _weights_bound(dry)), filepath)
    model = from_keras_model(entry, custom_objects)
    _assign_values(model, values)
    if compile and isinstance(entry.get("compile_config"), dict):
        _compile_from_keras(model, entry["compile_config"])
    return model


def _compile_from_keras(model, config):
    """Compile as the file says where rnnkit has the same optimizer and loss (else leave it uncompiled)."""
    try:
        opt = config["optimizer"]
        if isinstance(opt, dict):
            cls = {"adam": optimizers.Adam, "adamw": optimizers.AdamW, "rmsprop": optimizers.RMSprop,
                   "sgd": optimizers.SGD}[opt["class_name"].lower()]
            known = cls.__init__.__code__.co_varnames
            opt = cls(**{k: v for k, v in opt.get("config", {}).items() if k in known and v is not None})
        loss = config["loss"]
        losses.get(loss) if not isinstance(loss, (dict, list)) else None
        model.compile(optimizer=opt, loss=loss, metrics=config.get("metrics"),
                      loss_weights=config.get("loss_weights"))
    except Exception as exc:  # a custom loss or optimizer: the model itself loaded fine
        warnings.warn(f"The model loaded but was not compiled ({type(exc).__name__}: {exc}); call compile().",
                      stacklevel=3)


# ----- Keras 2 .h5 models ------------------------------------------------------------------------------
def _is_keras2_h5(data, filepath="the file"):
    if not data.startswith(b"\x89HDF\r\n\x1a\n"):
        return False
    with _h5_file(data, filepath) as f:
        try:
            return "layer_names" in f.attrs or f.id.links.exists(b"model_weights")
        except Exception as exc:  # HDF5 errors in a damaged file
            raise ModelFileError(f"'{filepath}' is not a readable HDF5 weights file ({exc}).") from None


def _keras2_layer(spec):
    """Keras 2's layer config in Keras 3 terms (batch_input_shape on the first layer becomes an Input)."""
    config = dict(spec["config"])
    if spec["class_name"] == "InputLayer":
        config["batch_shape"] = config.pop("batch_input_shape", config.get("batch_shape"))  # Keras 2, or 3
    for key in ("time_major", "implementation"):
        config.pop(key, None)
    for key in ("layer", "backward_layer", "cell"):
        if isinstance(config.get(key), dict):
            config[key] = _keras2_layer(config[key])
    return {**spec, "config": config}


def _from_keras2_config(model_config):
    class_name, config = model_config["class_name"], model_config["config"]
    if class_name == "Sequential":
        layers = config["layers"] if isinstance(config, dict) else config
        specs = [_keras2_layer(spec) for spec in layers]
        first = specs[0]["config"]
        if specs[0]["class_name"] != "InputLayer" and first.get("batch_input_shape"):
            specs.insert(0, {"class_name": "InputLayer",
                             "config": {"batch_shape": first.pop("batch_input_shape"),
                                        "dtype": first.get("dtype") if isinstance(first.get("dtype"), str) else None,
                                        "name": "input_layer"}})
        for spec in specs[1:]:
            spec["config"].pop("batch_input_shape", None)
        return {"class_name": "Sequential", "config": {"name": config.get("name"), "layers": specs}}
    layers = []
    for spec in config["layers"]:
        spec = _keras2_layer(spec)
        nodes = []
        for node in spec.get("inbound_nodes", []):  # Keras 2: [[layer, node, tensor, kwargs], ...] per call
            refs = [{"class_name": "__keras_tensor__", "config": {"keras_history": r[:3]}} for r in node]
            kwargs = dict(node[0][3]) if node and len(node[0]) > 3 else {}
            kwargs = {k: ({"class_name": "__keras_tensor__", "config": {"keras_history": v[:3]}}
                          if isinstance(v, list) and len(v) >= 3 and isinstance(v[0], str) else v)
                      for k, v in kwargs.items()}
            nodes.append({"args": [refs[0] if len(refs) == 1 else refs], "kwargs": kwargs})
        layers.append({**spec, "inbound_nodes": nodes})
    refs_in = [r[:3] for r in config["input_layers"]]
    refs_out = [r[:3] for r in config["output_layers"]]
    return {"class_name": "Functional",
            "config": {"name": config.get("name"), "layers": layers,
                       "input_layers": refs_in[0] if len(refs_in) == 1 else refs_in,
                       "output_layers": refs_out[0] if len(refs_out) == 1 else refs_out}}


def _keras2_values(model, data, filepath):
    """Keras 2 weights for ``model`` (a dry-built one will do): a group per layer (``layer_names``)
    listing its ``weight_names`` in order, each array checked (shape, dtype, storage) before it is read."""
    with _h5_file(data, filepath) as f:
        try:
            group = _h5_node(f, "model_weights", filepath)
            group = f if group is None else group
            if not isinstance(group, h5py.Group):
                raise ModelFileError(f"'{filepath}': 'model_weights' is not a group of layers.")
            paths = []
            for name in _h5_names(group, "layer_names", filepath):
                layer = _h5_node(group, name, filepath)
                if not isinstance(layer, h5py.Group):
                    raise ModelFileError(f"'{filepath}': layer_names lists '{name[:80]}', which is not a group "
                                         "in the file.")
                paths += [f"{name}/{weight_name}" for weight_name in _h5_names(layer, "weight_names", filepath)]
                if len(paths) > len(model.weights):
                    break
            if len(paths) != len(model.weights):
                raise ModelFileError(f"'{filepath}' holds {len(paths)}{'+' if len(paths) > len(model.weights) else ''}"
                                     f" weight arrays, the model has {len(model.weights)}.")
            return _datasets(group, paths, model.weights, filepath, len(data))
        except ModelFileError:
            raise
        except Exception as exc:  # HDF5 errors in a damaged file
            raise ModelFileError(f"'{filepath}': the Keras 2 weights are damaged ({type(exc).__name__}: "
                                 f"{str(exc)[:200]}).") from None


def load_keras2_h5(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a Keras 2 ``.h5`` file (``model_config`` attribute and ``model_weights`` groups)."""
    with open_regular(filepath) as fh:
        data = fh.read()
    with _h5_file(data, filepath) as f:
        try:
            raw = _h5_attribute(f, "model_config", filepath, _CONFIG_LIMIT)
        except ModelFileError:
            raise
        except Exception as exc:  # HDF5 errors in a damaged file
            raise ModelFileError(f"'{filepath}' is not a readable HDF5 file (truncated or corrupt: {exc}).") \
                from None
    if raw is None:
        raise ModelFileError(f"'{filepath}' holds weights only (no model_config): build the model and call "
                             "model.load_weights() instead.")
    if isinstance(raw, np.ndarray) and raw.shape == () and raw.dtype.kind in "SO":
        raw = raw[()]
    if not isinstance(raw, (bytes, str)):
        raise ModelFileError(f"'{filepath}': its model_config attribute must be JSON text, not "
                             f"{type(raw).__name__}{getattr(raw, 'shape', '')}.")
    model_config = read_json(raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogateescape"),
                             filepath, "model_config")
    check_safe_mode(model_config, filepath, safe_mode)
    build = lambda: from_keras_model(_from_keras2_config(model_config), custom_objects)  # noqa: E731
    values = _keras2_values(dry_build(build, filepath), data, filepath)
    model = build()
    _assign_values(model, values)
    return model


def file_format(filepath):
    """'keras', 'h5' or 'rnnkit' by the name, as Keras decides by the extension."""
    name = os.fspath(filepath)
    if name.endswith(".keras"):
        return "keras"
    if name.endswith((".h5", ".hdf5")):
        return "h5"
    return "rnnkit"
