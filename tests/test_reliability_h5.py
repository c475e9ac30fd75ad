"""Keras 2 ``.h5`` model files that are not valid models: every one is a ModelFileError naming the file, fast.

The fuzzer makes over 1,000 deterministic copies of a small model saved in tf.keras 2's HDF5
layout (``model_config`` attribute, ``model_weights/<layer>/`` groups with ``weight_names``),
each damaged or crafted in one way: truncations, byte flips, ``model_config`` values of the wrong
type or range, attributes and datasets of the wrong kind, shape, type or size, datasets whose
data is missing, compressed far beyond their stored size, or kept in other files (external
storage, external and soft links, FIFOs), and special files. It accepts two outcomes: a
``ModelFileError`` that names the file, or a load that predicts exactly what the original does.

HDF5 keeps no checksums, so a byte flipped inside a weight array's raw data, or inside the address
of that data (when it still points to bytes within the file that no other weight uses), gives a
valid file with another weight: such a load is counted ("silently different"), and allowed only for
those two kinds of flips. ``pytest -s tests/test_reliability_h5.py`` prints the counts.
"""
import io
import json
import os
import random
import time
from collections import Counter

import h5py
import numpy as np
import pytest
import torch

import rnnkit
from test_reliability_files import CASE_BUDGET_S, _leaves, _run_case, _set, _special_files, _wrong_values

TOTAL_BUDGET_S = 60.0  # as the other fuzzers: wall time on a busy machine

INITIALIZER = {"class_name": "GlorotUniform", "config": {"seed": None}}
CONFIG = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
    {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 5, 3], "dtype": "float32", "sparse": False,
                                            "ragged": False, "name": "lstm_input"}},
    {"class_name": "LSTM", "config": {
        "name": "lstm", "trainable": True, "dtype": "float32", "return_sequences": False, "return_state": False,
        "go_backwards": False, "stateful": False, "unroll": False, "time_major": False, "units": 3,
        "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
        "kernel_initializer": INITIALIZER, "recurrent_initializer": {"class_name": "Orthogonal",
                                                                     "config": {"gain": 1.0, "seed": None}},
        "bias_initializer": {"class_name": "Zeros", "config": {}}, "unit_forget_bias": True,
        "kernel_regularizer": None, "recurrent_regularizer": None, "bias_regularizer": None,
        "activity_regularizer": None, "kernel_constraint": None, "recurrent_constraint": None,
        "bias_constraint": None, "dropout": 0.0, "recurrent_dropout": 0.0, "implementation": 2}},
    {"class_name": "Dense", "config": {
        "name": "dense", "trainable": True, "dtype": "float32", "units": 2, "activation": "linear", "use_bias": True,
        "kernel_initializer": INITIALIZER, "bias_initializer": {"class_name": "Zeros", "config": {}},
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None}}]}}
NAMES = {"lstm": ["lstm/lstm_cell/kernel:0", "lstm/lstm_cell/recurrent_kernel:0", "lstm/lstm_cell/bias:0"],
         "dense": ["dense/kernel:0", "dense/bias:0"]}


def _weights(units=3):
    rng = np.random.default_rng(0)
    shapes = {"lstm": [(3, 4 * units), (units, 4 * units), (4 * units,)], "dense": [(units, 2), (2,)]}
    return {layer: [rng.normal(size=s).astype("float32") for s in sizes] for layer, sizes in shapes.items()}


def keras2_h5(config=CONFIG, weights=None, edit=None, libver=None, **dataset_options):
    """The bytes of a Keras 2 ``.h5`` model as tf.keras 2.x's ``model.save("m.h5")`` writes it; ``edit(f)``
    may change the open file before it is closed (attributes over 64 KB need ``libver="latest"``)."""
    weights = weights or _weights()
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=libver) as f:
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = np.array([b"lstm", b"dense"])
        for layer, names in NAMES.items():
            g = group.create_group(layer)
            g.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, value in zip(names, weights[layer]):
                g.create_dataset(name, data=value, **dataset_options)
        if edit is not None:
            edit(f)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def original():
    """(bytes, x, predictions, raw-data byte ranges) of the small model."""
    data = keras2_h5()
    x = np.random.default_rng(1).random((4, 5, 3), dtype=np.float32)
    model = rnnkit.Sequential([rnnkit.Input((5, 3)), rnnkit.layers.LSTM(3), rnnkit.layers.Dense(2)])
    w = _weights()
    model.set_weights(w["lstm"] + w["dense"])
    with h5py.File(io.BytesIO(data), "r") as f:
        raw = [(f[f"model_weights/{layer}/{n}"].id.get_offset(), f[f"model_weights/{layer}/{n}"].id.get_storage_size())
               for layer, names in NAMES.items() for n in names]
    return data, x, model.predict(x, verbose=0), raw


# ----- the cases -------------------------------------------------------------------------------------
def byte_cases(data):
    """(label, bytes, positions changed) for truncations and byte flips, deterministic."""
    rng = random.Random(1616)
    for n in sorted({0, 1, 8, 16, 100, 512} | set(range(0, len(data), max(1, len(data) // 150)))
                    | {len(data) - k for k in (1, 2, 8, 100)}):
        yield f"truncated to {n} bytes", data[:n], ()
    for _ in range(500):
        position, flip = rng.randrange(len(data)), rng.randrange(1, 256)
        mutated = bytearray(data)
        mutated[position] ^= flip
        yield f"byte {position} xor {flip}", bytes(mutated), (position,)
    for i in range(60):
        mutated, positions = bytearray(data), []
        for _ in range(rng.randrange(2, 9)):
            positions.append(rng.randrange(len(data)))
            mutated[positions[-1]] = rng.randrange(256)
        yield f"random bytes #{i}", bytes(mutated), tuple(positions)
    yield "appended junk", data + b"junk" * 100, ()
    yield "prepended 512 bytes", bytes(512) + data, ()
    yield "not HDF5", b"junk" * 100, ()


def _setattr(path, name, value):
    return lambda f: f[path].attrs.__setitem__(name, value)


def _delete(path):
    def edit(f):
        del f[path]
    return edit


def _replace_dataset(path, value, **options):
    def edit(f):
        del f[path]
        f.create_dataset(path, data=value, **options)
    return edit


def _link(path, link):
    def edit(f):
        del f[path]
        f[path] = link
    return edit


def config_cases():
    """(label, bytes) for every model_config leaf given wrong types and out-of-range values."""
    for path, value in _leaves(CONFIG):
        if path[-1] == "name":
            continue
        for wrong in _wrong_values(value):
            yield f"model_config {'/'.join(map(str, path))}={wrong!r:.30}", keras2_h5(_set(CONFIG, path, wrong))
    for label, text in (("not JSON", b"{nope"), ("a JSON list", b"[]"), ("null", b"null"), ("not UTF-8", b"\xff\xfe{}"),
                        ("NaN", b'{"class_name": NaN}'), ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
                        ("class Nope", json.dumps({**CONFIG, "class_name": "Nope"}).encode()),
                        ("no config", json.dumps({"class_name": "Sequential"}).encode()),
                        ("layers a dict", json.dumps(_set(CONFIG, ("config", "layers"), {"a": 1})).encode()),
                        ("10,000 layers", json.dumps(_set(CONFIG, ("config", "layers"),
                                                          CONFIG["config"]["layers"] * 3_334)).encode()),
                        ("8 MiB of spaces", json.dumps(CONFIG).encode() + b" " * (8 << 20))):
        yield f"model_config {label}", keras2_h5(edit=_setattr("/", "model_config", text))
    lambda_layer = {"class_name": "Lambda", "config": {"name": "evil", "function": {
        "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}}}
    yield "model_config with a Lambda", keras2_h5(_set(CONFIG, ("config", "layers"),
                                                       CONFIG["config"]["layers"] + [lambda_layer]))
    nested = {"class_name": "Dense", "config": {"name": "d", "units": 2}}
    for _ in range(300):
        nested = {"class_name": "Bidirectional", "config": {"name": "b", "layer": nested}}
    yield "model_config 300 nested wrappers", keras2_h5(_set(CONFIG, ("config", "layers", 2), nested))


def structure_cases(tmp_path):
    """(label, bytes) for attributes, groups, links and datasets of the wrong kind, size or place."""
    w = _weights()
    kernel = "model_weights/lstm/lstm/lstm_cell/kernel:0"
    bias = "model_weights/dense/dense/bias:0"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "other.h5").write_bytes(keras2_h5())
    edits = {
        "model_config an int": _setattr("/", "model_config", 7),
        "model_config a float array": _setattr("/", "model_config", np.zeros(1000)),
        "model_config a string array": _setattr("/", "model_config", np.array([b"{}", b"{}"])),
        "model_config deleted": lambda f: f.attrs.__delitem__("model_config"),
        "model_config 2 MiB of zeros": _setattr("/", "model_config", np.zeros(1 << 18)),
        "model_weights deleted": _delete("model_weights"),
        "model_weights an external link to a FIFO": _link("model_weights", h5py.ExternalLink(str(fifo), "/x")),
        "model_weights a soft link to itself": _link("model_weights", h5py.SoftLink("/model_weights")),
        "model_weights a dataset": lambda f: (f.__delitem__("model_weights"),
                                              f.create_dataset("model_weights", data=np.zeros(3))),
        "layer_names deleted": lambda f: f["model_weights"].attrs.__delitem__("layer_names"),
        "layer_names empty": _setattr("model_weights", "layer_names", np.array([], dtype="S1")),
        "layer_names ints": _setattr("model_weights", "layer_names", np.arange(2)),
        "layer_names a scalar": _setattr("model_weights", "layer_names", b"lstm"),
        "layer_names 2-d": _setattr("model_weights", "layer_names", np.array([[b"lstm", b"dense"]])),
        "layer_names reversed": _setattr("model_weights", "layer_names", np.array([b"dense", b"lstm"])),
        "layer_names repeated": _setattr("model_weights", "layer_names", np.array([b"lstm", b"lstm", b"dense"])),
        "layer_names missing group": _setattr("model_weights", "layer_names", np.array([b"lstm", b"nope"])),
        "layer_names 100,000": _setattr("model_weights", "layer_names", np.array([b"lstm"] * 100_000)),
        "layer_names 60 KB long name": _setattr("model_weights", "layer_names", np.array([b"a" * 60_000])),
        "layer_names deep path": _setattr("model_weights", "layer_names", np.array([b"a/" * 20_000 + b"a"])),
        "layer_names '..'": _setattr("model_weights", "layer_names", np.array([b"..", b"dense"])),
        "layer_names '/'": _setattr("model_weights", "layer_names", np.array([b"/", b"dense"])),
        "layer_names not UTF-8": _setattr("model_weights", "layer_names", np.array([b"\xff\xfe", b"dense"])),
        "layer_names variable-length": _setattr("model_weights", "layer_names", np.array(
            ["lstm", "dense"], dtype=h5py.string_dtype())),
        "weight_names deleted": lambda f: f["model_weights/dense"].attrs.__delitem__("weight_names"),
        "weight_names one short": _setattr("model_weights/dense", "weight_names", np.array([b"dense/kernel:0"])),
        "weight_names one more": _setattr("model_weights/dense", "weight_names", np.array(
            [b"dense/kernel:0", b"dense/bias:0", b"dense/bias:0"])),
        "weight_names swapped": _setattr("model_weights/dense", "weight_names", np.array(
            [b"dense/bias:0", b"dense/kernel:0"])),
        "weight_names a group": _setattr("model_weights/dense", "weight_names", np.array([b"dense", b"dense"])),
        "weight_names missing": _setattr("model_weights/dense", "weight_names", np.array([b"x", b"y"])),
        "weight_names floats": _setattr("model_weights/dense", "weight_names", np.zeros(2)),
        "weight_names 100,000": _setattr("model_weights/dense", "weight_names", np.array([b"dense/bias:0"] * 100_000)),
        "kernel deleted": _delete(kernel),
        "kernel float64": _replace_dataset(kernel, w["lstm"][0].astype("float64")),
        "kernel float16": _replace_dataset(kernel, w["lstm"][0].astype("float16")),
        "kernel big-endian": _replace_dataset(kernel, w["lstm"][0].astype(">f4")),
        "kernel int32": _replace_dataset(kernel, w["lstm"][0].astype("int32")),
        "kernel strings": _replace_dataset(kernel, np.array([b"x"] * 12)),
        "kernel variable-length strings": _replace_dataset(kernel, np.array(["x"] * 12, dtype=h5py.string_dtype())),
        "kernel compound": _replace_dataset(kernel, np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])),
        "kernel transposed": _replace_dataset(kernel, w["lstm"][0].T.copy()),
        "kernel flattened": _replace_dataset(kernel, w["lstm"][0].ravel()),
        "kernel a scalar": _replace_dataset(kernel, np.float32(1)),
        "kernel empty": _replace_dataset(kernel, np.zeros((0, 12), "float32")),
        "kernel a group": lambda f: (f.__delitem__(kernel), f.create_group(kernel)),
        "kernel without data (chunked, never written)": lambda f: (
            f.__delitem__(kernel), f.create_dataset(kernel, shape=(3, 12), dtype="f4", chunks=(1, 12))),
        "kernel without data (contiguous, never written)": lambda f: (
            f.__delitem__(kernel), f.create_dataset(kernel, shape=(3, 12), dtype="f4")),
        "kernel with a fill value, never written": lambda f: (
            f.__delitem__(kernel), f.create_dataset(kernel, shape=(3, 12), dtype="f4", fillvalue=7.0)),
        "kernel half written": lambda f: (
            f.__delitem__(kernel), f.create_dataset(kernel, shape=(3, 12), dtype="f4", chunks=(1, 12)),
            f[kernel].__setitem__(0, w["lstm"][0][0])),
        "kernel gzip (valid)": _replace_dataset(kernel, w["lstm"][0], compression="gzip"),
        "kernel shuffle+lzf (valid)": _replace_dataset(kernel, w["lstm"][0], compression="lzf", shuffle=True),
        "kernel chunks of one element (valid)": _replace_dataset(kernel, w["lstm"][0], chunks=(1, 1)),
        "kernel fletcher32 (valid)": _replace_dataset(kernel, w["lstm"][0], fletcher32=True),
        "kernel scale-offset (lossy)": _replace_dataset(kernel, w["lstm"][0], scaleoffset=2),
        "kernel in an external file": _replace_dataset(kernel, None, shape=(3, 12), dtype="f4",
                                                       external=[("/dev/zero", 0, 144)]),
        "kernel in an external FIFO": _replace_dataset(kernel, None, shape=(3, 12), dtype="f4",
                                                       external=[(str(fifo), 0, 144)]),
        "kernel an external link to a FIFO": _link(kernel, h5py.ExternalLink(str(fifo), "/x")),
        "kernel an external link to a real file": _link(kernel, h5py.ExternalLink(str(tmp_path / "other.h5"),
                                                                                  "/" + kernel)),
        "kernel a soft link to itself": _link(kernel, h5py.SoftLink("/" + kernel)),
        "kernel a dangling soft link": _link(kernel, h5py.SoftLink("/nowhere")),
        "kernel a soft link to a copy": lambda f: (f.create_dataset("copy", data=w["lstm"][0]),
                                                   _link(kernel, h5py.SoftLink("/copy"))(f)),
        "layer group an external link": lambda f: (f.__delitem__("model_weights/dense"),
                                                   f["model_weights"].__setitem__(
                                                       "dense", h5py.ExternalLink(str(fifo), "/dense"))),
        "layer group a soft link loop": lambda f: (f.__delitem__("model_weights/dense"),
                                                   f["model_weights"].__setitem__(
                                                       "dense", h5py.SoftLink("/model_weights/dense"))),
        "bias a virtual dataset on /dev/zero": lambda f: (f.__delitem__(bias), f.create_virtual_dataset(
            bias, _virtual_layout("/dev/zero"))),
        "bias 1e9 elements declared": lambda f: (f.__delitem__(bias), f.create_dataset(
            bias, shape=(10 ** 9,), dtype="f4", chunks=(1 << 16,))),
    }
    for label, edit in edits.items():
        big_attribute = any(word in label for word in ("100,000", "60 KB", "deep path", "2 MiB"))
        yield label, keras2_h5(edit=edit, libver="latest" if big_attribute else None)
    # a config and datasets that agree on a large model, with little or no data in the file
    big = _set(CONFIG, ("config", "layers", 1, "config", "units"), 2048)
    shapes = {"lstm": [(3, 8192), (2048, 8192), (8192,)], "dense": [(2048, 2), (2,)]}

    def big_file(**options):
        def edit(f):
            for layer, names in NAMES.items():
                for name, shape in zip(names, shapes[layer]):
                    path = f"model_weights/{layer}/{name}"
                    del f[path]
                    f.create_dataset(path, shape=shape, dtype="f4", **options)
                    if options.get("compression"):
                        f[path][...] = 0
        return keras2_h5(big, edit=edit)

    yield "LSTM(2048) config with unwritten 67 MB datasets", big_file(chunks=True)
    yield "LSTM(2048) config with gzip bombs of zeros", big_file(chunks=True, compression="gzip")


def _virtual_layout(source):
    layout = h5py.VirtualLayout(shape=(2,), dtype="f4")
    layout[:] = h5py.VirtualSource(source, "x", shape=(2,))
    return layout


# ----- the fuzzer --------------------------------------------------------------------------------------
ALLOWED = ("error", "identical", "different: raw data", "different: data address")


def fuzz(named_cases, path, x, expected, raw):
    """Load every case; returns (counts, problems, slowest). A load that predicts other values is
    allowed only when a changed byte lies in raw weight data or moved a weight's data address (HDF5
    has no checksums); anything else but a ModelFileError or an identical load is a problem."""
    counts, problems, slowest = Counter(), [], (0.0, "")
    for label, blob, positions in named_cases:
        outcome, elapsed = _run_case(blob, path, x, expected)
        slowest = max(slowest, (elapsed, label))
        if outcome == "loaded, different":
            if any(start <= p < start + size for p in positions for start, size in raw):
                outcome = "different: raw data"
            elif _data_moved(blob, raw):
                outcome = "different: data address"
        counts[outcome if outcome in ALLOWED else "other"] += 1
        if outcome not in ALLOWED:
            problems.append(f"{label}: {outcome}")
        if elapsed > CASE_BUDGET_S:
            problems.append(f"{label}: took {elapsed:.1f} s")
    return counts, problems, slowest


def _data_moved(blob, raw):
    """Whether a weight array's data address differs from the original's (a flip in an address field:
    version-0 HDF5 object headers have no checksums either)."""
    try:
        with h5py.File(io.BytesIO(blob), "r") as f:
            offsets = [f[f"model_weights/{layer}/{n}"].id.get_offset() for layer, names in NAMES.items()
                       for n in names]
    except (OSError, KeyError):  # the names themselves were changed
        return False
    return offsets != [start for start, _ in raw]


def test_keras2_h5_fuzzer(original, tmp_path):
    torch.set_num_threads(1)
    data, x, expected, raw = original
    named = (list(byte_cases(data))
             + [(label, blob, ()) for label, blob in list(config_cases()) + list(structure_cases(tmp_path))]
             + [(label, path, ()) for label, path in _special_files(tmp_path, ".h5")])
    start, cpu = time.perf_counter(), time.process_time()
    counts, problems, slowest = fuzz(named, tmp_path / "case.h5", x, expected, raw)
    total = time.perf_counter() - start
    print(f"\nKeras 2 .h5 fuzzer: {sum(counts.values())} cases, {counts['error']} ModelFileError, "
          f"{counts['identical']} identical loads, {counts['different: raw data']} silently different by a byte of "
          f"raw weight data, {counts['different: data address']} by a byte of a data address, {counts['other']} "
          f"other; slowest load {slowest[0]:.3f} s ({slowest[1]}); total {total:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU, {torch.get_num_threads()} torch thread")
    assert not problems, "\n".join(problems[:80])
    assert sum(counts.values()) >= 1000
    assert total < TOTAL_BUDGET_S


def _as_keras3_writes_it(f):
    """Keras 3's legacy ``model.save("m.h5")``: variable-length string attributes, a Keras 3 InputLayer."""
    config = _set(CONFIG, ("config", "layers", 0, "config"), {"batch_shape": [None, 5, 3], "dtype": "float32",
                                                              "sparse": False, "name": "input_layer"})
    f.attrs["model_config"] = json.dumps(config)
    f["model_weights"].attrs["layer_names"] = np.array(["lstm", "dense"], dtype=h5py.string_dtype())


def test_valid_variants_load_identically(original, tmp_path):
    """Layouts HDF5 allows for the same arrays (compressed, chunked, checksummed), and the attributes as
    Keras 3 writes them, load as the original."""
    _, x, expected, _ = original
    for i, options in enumerate(({}, {"compression": "gzip"}, {"chunks": True}, {"fletcher32": True},
                                 {"compression": "lzf", "shuffle": True}, {"edit": _as_keras3_writes_it})):
        (tmp_path / f"m{i}.h5").write_bytes(keras2_h5(**options))
        assert np.array_equal(rnnkit.load_model(tmp_path / f"m{i}.h5").predict(x, verbose=0), expected)
