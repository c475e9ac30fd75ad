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
import os
import zipfile

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from . import keras_files, registry
from ._io import ModelFileError, atomic_write_bytes
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


def _open(filepath):
    filepath = os.fspath(filepath)
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"No model file at '{filepath}'.")
    try:
        zf = zipfile.ZipFile(filepath)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ModelFileError(f"'{filepath}' is not a readable rnnkit model file (truncated or not a "
                             f"zip archive: {exc}).") from None
    if bad is not None:
        raise ModelFileError(f"'{filepath}' is corrupt: member '{bad}' fails its checksum.")
    try:
        marker = json.loads(zf.read("rnnkit.json"))
    except (KeyError, ValueError):
        if "metadata.json" in zf.namelist():
            raise ModelFileError(f"'{filepath}' is a Keras .keras archive under another name: rename it to end "
                                 "in .keras to load it.") from None
        raise ModelFileError(f"'{filepath}' is a zip archive but not an rnnkit model file.") from None
    if marker.get("format") != FORMAT or marker.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(f"'{filepath}' has format {marker.get('format')!r} version "
                             f"{marker.get('format_version')}; this rnnkit reads {FORMAT} <= {FORMAT_VERSION}.")
    return zf


def load_model(filepath, custom_objects=None, compile=True):
    """Rebuild a model saved by ``model.save`` (or by Keras: ``.keras``, Keras 2 ``.h5``);
    predictions are identical to the saved model's."""
    kind = keras_files.file_format(filepath)
    if not os.path.exists(os.fspath(filepath)):
        raise FileNotFoundError(f"No model file at '{os.fspath(filepath)}'.")
    if kind == "keras":
        if _is_rnnkit_archive(filepath):
            raise ModelFileError(f"'{filepath}' holds an rnnkit model under a Keras name: rename it to end in "
                                 ".rnnkit to load it.")
        return keras_files.load_keras(filepath, custom_objects, compile)
    if kind == "h5":
        return keras_files.load_keras2_h5(filepath, custom_objects, compile)
    with _open(filepath) as zf:
        try:
            config = json.loads(zf.read("config.json"))
            weights = load_safetensors(zf.read("model.safetensors"))
            optimizer_state = zf.read("optimizer.pt") if "optimizer.pt" in zf.namelist() else None
        except (KeyError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"'{filepath}' is missing or has a damaged part: {exc}") from None
    try:
        model = registry.deserialize(config, custom_objects)
    except ValueError as exc:
        raise ModelFileError(f"'{filepath}' cannot be rebuilt: {exc}") from None
    if config.get("build_config"):
        model.build_from_config(config["build_config"])
    _assign(model, weights, filepath)
    model.metadata = config.get("metadata") or {}
    if compile and config.get("compile_config"):
        model.compile_from_config(config["compile_config"])
        if optimizer_state is not None:
            model.optimizer.build(list(model.parameters()))
            model.optimizer.load_state_dict(torch.load(io.BytesIO(optimizer_state), weights_only=True))
    return model


def _build_config(model):
    """What a model that builds lazily (a subclassed one) needs to create its weights on load."""
    if getattr(model, "_graph", None) is not None:
        return None
    return model.get_build_config()


def _assign(model, tensors, filepath):
    mine = model.weights
    if len(tensors) != len(mine):
        raise ModelFileError(f"'{filepath}' holds {len(tensors)} weight tensors but the model it describes "
                             f"has {len(mine)}.")
    ordered = [tensors[k] for k in sorted(tensors)]
    for param, value, key in zip(mine, ordered, sorted(tensors)):
        if tuple(param.shape) != tuple(value.shape):
            raise ModelFileError(f"'{filepath}': weight '{key}' has shape {tuple(value.shape)}, the model "
                                 f"expects {tuple(param.shape)}.")
    with torch.no_grad():
        for param, value in zip(mine, ordered):
            param.copy_(value)


def _is_rnnkit_archive(filepath):
    try:
        with zipfile.ZipFile(filepath) as zf:
            return "rnnkit.json" in zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def save_weights(model, filepath):
    """Weights only, atomically: Keras 3's HDF5 layout for ``.h5`` names (``x.weights.h5``),
    else one safetensors file."""
    if keras_files.file_format(filepath) == "h5":
        return keras_files.save_weights_h5(model, filepath)
    atomic_write_bytes(filepath, save_safetensors(_weight_tensors(model)))


def load_weights(model, filepath):
    if keras_files.file_format(filepath) == "h5":
        return keras_files.load_weights_h5(model, filepath)
    try:
        with open(filepath, "rb") as f:
            tensors = load_safetensors(f.read())
    except FileNotFoundError:
        raise
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelFileError(f"'{filepath}' is not a readable safetensors weights file: {exc}") from None
    _assign(model, tensors, filepath)
