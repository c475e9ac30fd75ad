"""One-file model saving: a zip of config JSON, safetensors weights and optimizer state.

Layout of ``model.rnnkit``::

    rnnkit.json            format marker and versions
    config.json            {"class_name": "Sequential", "config": ..., "compile_config": ..., "metadata": ...}
    model.safetensors      weights in Keras order, keys "0000/<layer path>.<weight name>"
    optimizer.pt           optimizer state (torch.save, loaded with weights_only=True), optional

Files are written to a temporary file beside the target and renamed into place, so a
crash never leaves a half-written model where a good one was.
"""
import io
import json
import math
import os
import zipfile

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from . import keras_files, registry
from ._io import (ModelFileError, atomic_write_bytes, check_members, open_member, open_regular, open_zip, read_json,
                  read_member)
from ._version import __version__
from .registry import register_keras_serializable  # noqa: F401  (Keras's path: rnnkit.saving.register_...)

FORMAT = "rnnkit-model"
FORMAT_VERSION = 1


def _weight_tensors(model):
    names = []
    for module_name, module in model.named_modules():
        for weight_name in getattr(module, "_weight_names", []):
            names.append((getattr(module, weight_name), f"{module_name}.{weight_name}".lstrip(".")))
    order = {id(w): i for i, w in enumerate(model.weights)}
    tensors = {}
    for param, name in names:
        if id(param) in order:
            tensors[f"{order[id(param)]:04d}/{name}"] = param.detach().cpu().contiguous()
    return tensors


def save_model(model, filepath, include_optimizer=True):
    """Save ``model`` to one file, atomically: a Keras 3 archive when the name ends in ``.keras``,
    else rnnkit's own format (JSON config + safetensors weights + optimizer state)."""
    kind = keras_files.file_format(filepath)
    if kind == "keras":
        return keras_files.save_keras(model, filepath)
    if kind == "h5":
        raise ValueError(f"rnnkit does not write Keras 2's legacy .h5 models ('{filepath}'); save as .keras "
                         "(Keras 3 and rnnkit read it) or .rnnkit. Keras 2 .h5 files can be loaded.")
    return _save_rnnkit(model, filepath, include_optimizer)


def _save_rnnkit(model, filepath, include_optimizer=True):
    if not model.built:
        raise ValueError("Cannot save a model that is not built yet: build it or train it first.")
    config = {**registry.serialize(model), "compile_config": model.get_compile_config(),
              "build_config": _build_config(model), "metadata": model.metadata}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rnnkit.json", json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                                               "rnnkit_version": __version__,
                                               "torch_version": torch.__version__}))
        zf.writestr("config.json", json.dumps(config, indent=1))
        zf.writestr("model.safetensors", save_safetensors(_weight_tensors(model)))
        if include_optimizer and model.optimizer is not None and model.optimizer.built:
            state = io.BytesIO()
            torch.save(model.optimizer.state_dict(), state)
            zf.writestr("optimizer.pt", state.getvalue())
    atomic_write_bytes(filepath, buffer.getvalue())


# ----- loading: every check before anything is built or allocated --------------------------------
_MEMBERS = ("rnnkit.json", "config.json", "model.safetensors", "optimizer.pt")
_REQUIRED = ("rnnkit.json", "config.json", "model.safetensors")
_CONFIG_KEYS = {"class_name", "config", "compile_config", "build_config", "metadata", "registered_name"}
_MARKER_LIMIT = 64 << 10
_CONFIG_LIMIT = 16 << 20
_HEADER_LIMIT = 16 << 20
_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
                       "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
                       "U8": torch.uint8, "BOOL": torch.bool}


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Rebuild a model saved by ``model.save`` (or by Keras: ``.keras``, Keras 2 ``.h5``);
    predictions are identical to the saved model's.

    Whatever the file holds, a file that is not a valid model gives a ``ModelFileError`` naming the
    file and what is wrong: the archive, its members' sizes, the config and the weights' shapes
    and dtypes are all checked before the model is built (a dry build on PyTorch's ``meta``
    device, which allocates nothing, gives the shapes the config implies). ``safe_mode=True``
    (Keras's default) refuses configs that carry Python code (Keras's serialized ``lambda``s)."""
    kind = keras_files.file_format(filepath)
    path = os.fspath(filepath)
    if kind == "keras":
        if _is_rnnkit_archive(path):
            raise ModelFileError(f"'{path}' holds an rnnkit model under a Keras name: rename it to end in "
                                 ".rnnkit to load it.")
        return keras_files.load_keras(path, custom_objects, compile, safe_mode)
    if kind == "h5":
        return keras_files.load_keras2_h5(path, custom_objects, compile, safe_mode)
    with open_zip(path, "rnnkit model file") as zf:
        config = _read_config(zf, path)
        keras_files.check_safe_mode(config, path, safe_mode)
        dry = keras_files.dry_build(lambda: _rebuild(config, custom_objects), path)
        expected = [(tuple(w.shape), w.dtype) for w in dry.weights]
        weights = _read_weights(zf, path, expected)
        optimizer_state = (_read_optimizer_state(zf, path, expected) if compile and "optimizer.pt" in zf.namelist()
                           else None)
    model = _rebuild(config, custom_objects)
    _assign(model, weights, path)
    model.metadata = config.get("metadata") or {}
    if compile and config.get("compile_config"):
        try:
            model.compile_from_config(config["compile_config"])
        except Exception as exc:  # the config is untrusted: whatever compile makes of it is a bad file
            raise ModelFileError(f"'{path}': config.json's compile_config cannot be used "
                                 f"({type(exc).__name__}: {str(exc)[:300]}).") from None
        if optimizer_state is not None:
            _load_optimizer_state(model, optimizer_state, path)
    return model


def _read_config(zf, path):
    """Members and marker checked; config.json parsed and checked for its top-level layout."""
    names = zf.namelist()
    if "rnnkit.json" not in names:
        raise ModelFileError(f"'{path}' is a Keras .keras archive under another name: rename it to end in .keras "
                             "to load it." if "metadata.json" in names else
                             f"'{path}' is a zip archive but not an rnnkit model file (no rnnkit.json).")
    check_members(zf, path, _MEMBERS, _REQUIRED)
    marker = read_json(read_member(zf, "rnnkit.json", path, _MARKER_LIMIT), path, "rnnkit.json")
    version = marker.get("format_version")
    if marker.get("format") != FORMAT or type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ModelFileError(f"'{path}' has format {marker.get('format')!r:.40} version {version!r:.20}; this "
                             f"rnnkit reads {FORMAT} 1 to {FORMAT_VERSION}.")
    config = read_json(read_member(zf, "config.json", path, _CONFIG_LIMIT), path, "config.json")
    unknown = set(config) - _CONFIG_KEYS
    problem = (f"unknown key(s) {sorted(unknown)!r:.100}" if unknown
               else "no class_name" if not isinstance(config.get("class_name"), str)
               else "its config is not an object" if not isinstance(config.get("config"), dict)
               else next((f"its {key} is not an object" for key in ("compile_config", "build_config", "metadata")
                          if not isinstance(config.get(key), (dict, type(None)))), None))
    if problem:
        raise ModelFileError(f"'{path}': config.json is not an rnnkit model config ({problem}).")
    return config


def _rebuild(config, custom_objects):
    """The model ``config`` describes, built (its constructors check every argument)."""
    model = registry.deserialize(config, custom_objects)
    if config.get("build_config"):
        model.build_from_config(config["build_config"])
    return model


def _read_weights(zf, path, expected):
    """model.safetensors, inflated only after its header matches ``expected`` ([(shape, dtype)] in
    the model's order), which bounds its size: the tensors, in the model's order."""
    info = zf.getinfo("model.safetensors")
    with open_member(zf, "model.safetensors", path) as member:
        header_size, header = _safetensors_header(member, info.file_size, path, "model.safetensors")
    keys = _check_header(header, expected, path)
    for i, key in enumerate(keys):
        if not key.startswith(f"{i:04d}/"):
            raise ModelFileError(f"'{path}': weight '{key[:80]}' is out of order (expected index {i:04d}).")
    return _decode_safetensors(read_member(zf, "model.safetensors", path, info.file_size), keys, path)


def _safetensors_header(stream, total, path, name):
    """(header size, {name: entry}) of the safetensors data in ``stream`` (``total`` bytes long),
    read without reading the tensors, and checked: known dtypes, non-negative shapes, byte ranges
    that tile the data exactly."""
    try:
        size = int.from_bytes(stream.read(8), "little")
        if not 2 <= size <= min(_HEADER_LIMIT, total - 8):
            raise ModelFileError(f"'{path}': {name} declares a {size:,}-byte header in {total:,} bytes.")
        raw = stream.read(size)
    except ModelFileError:
        raise
    except Exception as exc:  # zipfile and zlib errors: a damaged member
        raise ModelFileError(f"'{path}': {name} is corrupt ({exc}).") from None
    header = read_json(raw, path, f"{name}'s header")
    header.pop("__metadata__", None)
    offset = 0
    for key, entry in sorted(header.items(), key=lambda kv: _first_offset(kv[1])):
        problem = _header_entry_problem(entry, offset)
        if problem:
            raise ModelFileError(f"'{path}': {name}'s entry '{key[:80]}' {problem}.")
        offset = entry["data_offsets"][1]
    if 8 + size + offset != total:
        raise ModelFileError(f"'{path}': {name} is {total:,} bytes but its header describes {8 + size + offset:,}.")
    return size, header


def _check_header(header, expected, path):
    """The header's tensors, in sorted-key order, against ``expected`` [(shape, dtype)]; the sorted keys."""
    keys = sorted(header)
    if len(keys) != len(expected):
        raise ModelFileError(f"'{path}' holds {len(keys)} weight tensors but the model "
                             f"has {len(expected)}.")
    for i, (key, (shape, dtype)) in enumerate(zip(keys, expected)):
        entry = header[key]
        if tuple(entry["shape"]) != shape:
            raise ModelFileError(f"'{path}': weight '{key}' has shape {tuple(entry['shape'])}, the model expects "
                                 f"{shape}.")
        if _SAFETENSORS_DTYPES[entry["dtype"]] != dtype:
            raise ModelFileError(f"'{path}': weight '{key}' is stored as {entry['dtype']}, the model expects "
                                 f"{str(dtype).replace('torch.', '')}.")
    return keys


def _decode_safetensors(data, keys, path):
    try:
        tensors = load_safetensors(data)
    except Exception as exc:  # safetensors' own error types: anything it finds wrong is a damaged file
        raise ModelFileError(f"'{path}': the safetensors data is damaged ({exc}).") from None
    return [tensors[k] for k in keys]


def _first_offset(entry):
    """Where an entry's bytes start, for ordering (-1 for a malformed entry, reported in order)."""
    offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
    return offsets[0] if isinstance(offsets, list) and offsets and type(offsets[0]) is int else -1


def _header_entry_problem(entry, offset):
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        return "is not a {dtype, shape, data_offsets} object"
    if entry["dtype"] not in _SAFETENSORS_DTYPES:
        return f"has unknown dtype {entry['dtype']!r:.20}"
    shape, offsets = entry["shape"], entry["data_offsets"]
    if not isinstance(shape, list) or not all(type(d) is int and 0 <= d < 2 ** 40 for d in shape):
        return f"has an invalid shape {shape!r:.60}"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        return f"has invalid data_offsets {offsets!r:.60}"
    nbytes = math.prod(shape) * _SAFETENSORS_DTYPES[entry["dtype"]].itemsize
    if offsets[0] != offset or offsets[1] - offsets[0] != nbytes:
        return f"has data_offsets {offsets} where {[offset, offset + nbytes]} were expected"
    return None


def _data_size(header):
    return sum(e["data_offsets"][1] - e["data_offsets"][0] for e in header.values())


def _read_optimizer_state(zf, path, expected):
    """optimizer.pt, bounded by the weights' size (Adam keeps two slots per weight), unpickled with
    ``weights_only=True`` (tensors and plain containers only: no code runs)."""
    weights_bytes = sum(math.prod(shape) * dtype.itemsize for shape, dtype in expected)
    data = read_member(zf, "optimizer.pt", path, 4 * weights_bytes + (1 << 20))
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # pickle, zip and torch errors alike: a damaged member
        raise ModelFileError(f"'{path}': optimizer.pt is not a readable optimizer state ({str(exc)[:200]}).") \
            from None
    return state


def _load_optimizer_state(model, state, path):
    """Check the saved state against the freshly built optimizer's before loading it."""
    optimizer = model.optimizer
    optimizer.build(list(model.parameters()))
    params = optimizer._params
    problem = _optimizer_state_problem(state, optimizer.state_dict(), params)
    if problem:
        raise ModelFileError(f"'{path}': optimizer.pt does not fit this model's optimizer ({problem}); load "
                             "with compile=False to skip it.")
    try:
        optimizer.load_state_dict(state)
    except (ValueError, TypeError, KeyError, RuntimeError, IndexError) as exc:
        raise ModelFileError(f"'{path}': optimizer.pt cannot be loaded ({exc}).") from None


def _optimizer_state_problem(state, fresh, params):
    """What is wrong with ``state`` as a ``state_dict`` for the optimizer whose fresh one is ``fresh``."""
    if not isinstance(state, dict) or set(state) != set(fresh):
        return f"keys {sorted(state) if isinstance(state, dict) else type(state).__name__}, expected {sorted(fresh)}"
    if type(state["iterations"]) is not int or state["iterations"] < 0:
        return f"iterations {state['iterations']!r:.40}"
    if not isinstance(state["learning_rate"], (int, float)) or isinstance(state["learning_rate"], bool) \
            or not math.isfinite(state["learning_rate"]):
        return f"learning_rate {state['learning_rate']!r:.40}"
    if "optimizer" not in fresh:
        return None
    inner, mine = state["optimizer"], fresh["optimizer"]
    if not isinstance(inner, dict) or set(inner) != {"state", "param_groups"}:
        return "no state and param_groups"
    groups = inner["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(mine["param_groups"]) or any(
            not isinstance(g, dict) or set(g) != set(m) or g["params"] != m["params"]
            or any(type(g[k]) is not type(m[k]) for k in m)
            for g, m in zip(groups, mine["param_groups"])):
        return "param_groups differ from this optimizer's"
    slots = inner["state"]
    if not isinstance(slots, dict) or not set(slots) <= set(range(len(params))):
        return "per-weight state for weights the model does not have"
    for index, slot in slots.items():
        param = params[index]
        if not isinstance(slot, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) and v.dtype == param.dtype
                and tuple(v.shape) in ((), tuple(param.shape)) for k, v in slot.items()):
            return f"the state of weight {index} does not match its shape {tuple(param.shape)} and dtype"
    return None


def _build_config(model):
    """What a model that builds lazily (a subclassed one) needs to create its weights on load."""
    if getattr(model, "_graph", None) is not None:
        return None
    return model.get_build_config()


def _assign(model, values, filepath):
    """Copy ``values`` (tensors in the model's weight order, or a name -> tensor dict whose sorted
    keys give that order) into the model's weights, after checking count, shapes and dtypes."""
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    mine = model.weights
    if len(values) != len(mine):
        raise ModelFileError(f"'{filepath}' holds {len(values)} weight tensors but the model it describes "
                             f"has {len(mine)}.")
    for i, (param, value) in enumerate(zip(mine, values)):
        if tuple(param.shape) != tuple(value.shape) or param.dtype != value.dtype:
            raise ModelFileError(f"'{filepath}': weight {i} is {value.dtype} {tuple(value.shape)}, the model "
                                 f"expects {param.dtype} {tuple(param.shape)}.")
    with torch.no_grad():
        for param, value in zip(mine, values):
            param.copy_(value)


def _is_rnnkit_archive(path):
    try:
        with open_zip(path, "zip archive") as zf:
            return "rnnkit.json" in zf.namelist()
    except ModelFileError:
        return False


def save_weights(model, filepath):
    """Weights only, atomically: Keras 3's HDF5 layout for ``.h5`` names (``x.weights.h5``),
    else one safetensors file."""
    if keras_files.file_format(filepath) == "h5":
        return keras_files.save_weights_h5(model, filepath)
    atomic_write_bytes(filepath, save_safetensors(_weight_tensors(model)))


def load_weights(model, filepath):
    """Weights saved by ``save_weights`` into the built ``model``; the file's header is checked
    against the model's weights (count, shapes, dtypes) before the tensors are read."""
    if keras_files.file_format(filepath) == "h5":
        return keras_files.load_weights_h5(model, filepath)
    path = os.fspath(filepath)
    expected = [(tuple(w.shape), w.dtype) for w in model.weights]
    with open_regular(path) as f:
        total = os.fstat(f.fileno()).st_size
        _, header = _safetensors_header(f, total, path, "the safetensors file")
        keys = _check_header(header, expected, path)
        f.seek(0)
        data = f.read()
    _assign(model, _decode_safetensors(data, keys, path), path)
