"""Model files that are not valid models: every one is a ModelFileError naming the file, fast.

The fuzzer below makes well over 1,000 deterministic copies of a small saved model, each
damaged or crafted in one way (truncations, byte flips, members removed or replaced, config
values of the wrong type or range, safetensors headers that lie, optimizer states that do not
fit, inflation bombs, special files), loads each and accepts only two outcomes: a
``ModelFileError`` that names the file, or a load that predicts exactly what the original does.
``pytest -s tests/test_reliability_files.py`` prints the counts and the slowest load.
"""
import io
import json
import os
import random
import struct
import time
import zipfile
from collections import Counter

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.layers import GRU, LSTM, Dense, Input
from rnnkit.saving import ModelFileError

CASE_BUDGET_S = 2.0  # "a load of a file under 10 MB never takes more than a couple of seconds"
TOTAL_BUDGET_S = 60.0


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A small trained model saved with its optimizer state: (path, bytes, members, x, predictions)."""
    torch.manual_seed(0)
    model = rnnkit.Sequential([Input((None, 3)), LSTM(4, return_sequences=True), GRU(3), Dense(2)])
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = rng.random((6, 5, 3), dtype=np.float32)
    model.fit(x, rng.random((6, 2), dtype=np.float32), epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("base") / "model.rnnkit"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    data = _zip(members)  # the same archive with fixed timestamps: the mutations are the same every run
    path.write_bytes(data)
    return path, data, members, x, model.predict(x, verbose=0)


# ----- building mutated archives -------------------------------------------------------------------
def _zip(members, compression=zipfile.ZIP_DEFLATED):
    """An archive of ``members`` with fixed timestamps, so the same members give the same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return buffer.getvalue()


def _with(members, **changes):
    """A copy of ``members`` with some replaced (bytes), removed (None) or added."""
    out = dict(members)
    for name, data in changes.items():
        name = name.replace("__", ".")
        if data is None:
            out.pop(name, None)
        else:
            out[name] = data
    return out


def _declare_size(data, member, size):
    """The archive with ``member``'s uncompressed size in both headers claimed as ``size``."""
    data = bytearray(data)
    name = member.encode()
    for signature, size_at, name_len_at, name_at in ((b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            n = struct.unpack_from("<H", data, start + name_len_at)[0]
            if data[start + name_at:start + name_at + n] == name:
                struct.pack_into("<I", data, start + size_at, size)
            start += 4
    return bytes(data)


def _safetensors(header, payload):
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + payload


def _split_safetensors(data):
    n = struct.unpack_from("<Q", data)[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def _leaves(value, path=()):
    """(path, value) of every leaf of a JSON structure."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            yield from _leaves(item, path + (i,))
    else:
        yield path, value


def _set(config, path, value):
    config = json.loads(json.dumps(config))
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


def _wrong_values(original):
    """Values of the wrong type or out of range for a config entry holding ``original`` (never a valid
    alternative, which would be a different but valid model)."""
    common = [[], {}, {"class_name": "__lambda__", "config": {"code": "ZZZ"}}]
    if isinstance(original, bool):
        return common + ["no", "false", 0, 1, None, 1.5]
    if isinstance(original, int):
        return common + ["4", float(original), -1, 0, 5000, 12000, 2 ** 40, 2 ** 70, True, None]
    if isinstance(original, float):
        return common + ["no", -1.0, 1.0, 7, True, None]
    if isinstance(original, str):
        return common + ["no_such_thing", 5, 2.5, ""]
    if original is None:
        return common + ["no_such_thing", 1.5, True]
    if isinstance(original, list):
        return common + ["x", [None], [None, None, "3"], [None, None, -3], [None, None, 0], [None, None, 2 ** 40]]
    return common


def _optimizer_states(members):
    state = torch.load(io.BytesIO(members["optimizer.pt"]), weights_only=True)

    def saved(value):
        buffer = io.BytesIO()
        torch.save(value, buffer)
        return buffer.getvalue()

    def edited(edit):
        copy = {**state, "optimizer": {"state": {k: dict(v) for k, v in state["optimizer"]["state"].items()},
                                       "param_groups": [dict(g) for g in state["optimizer"]["param_groups"]]}}
        edit(copy)
        return saved(copy)

    class Exploit:  # a pickle that would run code if unpickled without weights_only
        def __reduce__(self):
            return (os.system, ("touch /tmp/rnnkit_pwned",))

    first = next(iter(state["optimizer"]["state"]))
    slot = next(iter(state["optimizer"]["state"][first]))
    import pickle
    yield "optimizer: exploit pickle", pickle.dumps(Exploit())
    yield "optimizer: garbage", b"\x80\x04garbage"
    yield "optimizer: a list", saved([1, 2, 3])
    yield "optimizer: empty dict", saved({})
    for key, value in (("iterations", "x"), ("iterations", -1), ("iterations", 1.5), ("iterations", True),
                       ("learning_rate", "x"), ("learning_rate", float("nan")), ("learning_rate", None)):
        yield f"optimizer: {key}={value!r}", edited(lambda s, k=key, v=value: s.__setitem__(k, v))
    yield "optimizer: no optimizer", edited(lambda s: s.pop("optimizer"))
    yield "optimizer: extra key", edited(lambda s: s.__setitem__("extra", 1))
    yield "optimizer: slot wrong shape", edited(lambda s: s["optimizer"]["state"][first].__setitem__(
        slot, torch.zeros(7, 7)))
    yield "optimizer: slot int dtype", edited(lambda s: s["optimizer"]["state"][first].__setitem__(
        slot, s["optimizer"]["state"][first][slot].to(torch.int32)))
    yield "optimizer: slot not a tensor", edited(lambda s: s["optimizer"]["state"][first].__setitem__(slot, "x"))
    yield "optimizer: state for weight 99", edited(lambda s: s["optimizer"]["state"].__setitem__(
        99, s["optimizer"]["state"][first]))
    yield "optimizer: params renumbered", edited(lambda s: s["optimizer"]["param_groups"][0].__setitem__(
        "params", [0, 1]))
    yield "optimizer: lr a string", edited(lambda s: s["optimizer"]["param_groups"][0].__setitem__("lr", "x"))
    yield "optimizer: no param_groups", edited(lambda s: s["optimizer"].pop("param_groups"))
    yield "optimizer: huge tensor", edited(lambda s: s["optimizer"]["state"][first].__setitem__(
        slot, torch.zeros(2_000_000)))


def cases(data, members):
    """(description, file bytes) for every mutation of an rnnkit file, deterministic."""
    yield from _archive_cases(data, members, "model.safetensors")
    # rnnkit.json
    marker = json.loads(members["rnnkit.json"])
    for key, value in (("format", "other"), ("format", None), ("format_version", 2), ("format_version", "1"),
                       ("format_version", True), ("format_version", 0), ("format_version", 1.0),
                       ("format_version", 2 ** 70)):
        yield f"rnnkit.json {key}={value!r}", _zip({**members, "rnnkit.json": json.dumps({**marker, key: value})
                                                    .encode()})
    config = json.loads(members["config.json"])
    lstm = config["config"]["layers"][0]
    deep = [{**lstm, "config": {**lstm["config"], "name": f"lstm_{i}"}} for i in range(250)]
    yield "config of 250 LSTMs (allowed, weights missing)", _zip({**members, "config.json": json.dumps(
        _set(config, ("config", "layers"), deep)).encode()})
    # safetensors headers that lie
    header, payload = _split_safetensors(members["model.safetensors"])
    names = sorted(k for k in header if k != "__metadata__")
    for key in names:
        for label, edit in (("I32", {"dtype": "I32"}), ("F16", {"dtype": "F16"}), ("BF16", {"dtype": "BF16"}),
                            ("F64", {"dtype": "F64"}), ("XX", {"dtype": "XX"}), ("shape +1", {
                                "shape": [d + 1 for d in header[key]["shape"]]}),
                            ("shape transposed", {"shape": header[key]["shape"][::-1]}),
                            ("shape negative", {"shape": [-1]}), ("offsets past end", {"data_offsets": [0, 10 ** 12]}),
                            ("no dtype", {"dtype": None})):
            yield f"safetensors {key} {label}", _zip({**members, "model.safetensors": _safetensors(
                {**header, key: {**header[key], **edit}}, payload)})
        yield f"safetensors without {key}", _zip({**members, "model.safetensors": _safetensors(
            {k: v for k, v in header.items() if k != key}, payload)})
    yield "safetensors renamed keys", _zip({**members, "model.safetensors": _safetensors(
        {("9" + k if k != "__metadata__" else k): v for k, v in header.items()}, payload)})
    yield "safetensors header length huge", _zip({**members, "model.safetensors":
                                                  struct.pack("<Q", 2 ** 60) + members["model.safetensors"][8:]})
    yield "safetensors header length 0", _zip({**members, "model.safetensors":
                                               struct.pack("<Q", 0) + members["model.safetensors"][8:]})
    yield "safetensors extra payload", _zip({**members, "model.safetensors": members["model.safetensors"] + b"\0" * 64})
    # the optimizer state
    for label, blob in _optimizer_states(members):
        yield label, _zip({**members, "optimizer.pt": blob})


def _archive_cases(data, members, weights_name):
    """Mutations of any model archive (rnnkit's or Keras's): bytes, members, config values, bombs."""
    rng = random.Random(1234)
    for n in sorted({0, 1, 2, 3, 4, 21, 22, 30, 100} | set(range(0, len(data), max(1, len(data) // 150)))
                    | {len(data) - k for k in (1, 2, 22, 23, 46)}):
        yield f"truncated to {n} bytes", data[:n]
    for i in range(320):
        position, flip = rng.randrange(len(data)), rng.randrange(1, 256)
        mutated = bytearray(data)
        mutated[position] ^= flip
        yield f"byte {position} xor {flip}", bytes(mutated)
    for i in range(40):  # several bytes at once
        mutated = bytearray(data)
        for _ in range(rng.randrange(2, 9)):
            mutated[rng.randrange(len(data))] = rng.randrange(256)
        yield f"random bytes #{i}", bytes(mutated)
    yield "appended junk", data + b"junk" * 100
    yield "prepended junk", b"junk" * 100 + data
    for name in members:
        yield f"without {name}", _zip(_with(members, **{name.replace(".", "__"): None}))
        for label, junk in (("empty", b""), ("garbage", bytes(range(256)) * 4), ("json null", b"null"),
                            ("json list", b"[]"), ("json object", b"{}")):
            yield f"{name} replaced by {label}", _zip({**members, name: junk})
        for other in members:
            if other != name:
                yield f"{name} replaced by {other}", _zip({**members, name: members[other]})
    yield "stored, not deflated", _zip(members, zipfile.ZIP_STORED)
    yield "extra member", _zip({**members, "evil.py": b"print(1)"})
    yield "path traversal member", _zip({**members, "../../evil": b"x"})
    yield "duplicate member", _duplicate(members)
    yield "keras members", _zip({"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": b""})
    yield "zip of nothing", _zip({})
    # config.json: every leaf given wrong types and out-of-range values
    config = json.loads(members["config.json"])
    for path, original in _leaves(config):
        if path[-1] in ("name",) or path[:1] == ("metadata",):
            continue
        for value in _wrong_values(original):
            yield (f"config {'/'.join(map(str, path))}={value!r:.30}",
                   _zip({**members, "config.json": json.dumps(_set(config, path, value)).encode()}))
    for key in ("class_name", "config"):
        yield f"config without {key}", _zip({**members, "config.json": json.dumps(
            {k: v for k, v in config.items() if k != key}).encode()})
    for label, text in (("NaN", b'{"class_name": NaN}'), ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
                        ("not utf-8", b"\xff\xfe{}"), ("unknown key", json.dumps({**config, "x": 1}).encode()),
                        ("class Nope", json.dumps({**config, "class_name": "Nope"}).encode()),
                        ("class Lambda", json.dumps({**config, "class_name": "Lambda"}).encode()),
                        ("metadata a list", json.dumps({**config, "metadata": []}).encode()),
                        ("many layers", json.dumps(_set(config, ("config", "layers"),
                                                        config["config"]["layers"] * 10_000)).encode())):
        yield f"config {label}", _zip({**members, "config.json": text})
    # inflation bombs: real ones and size lies
    yield "weights bomb 64 MiB of zeros", _zip({**members, weights_name: members[weights_name] + bytes(64 << 20)})
    yield "config bomb 32 MiB of spaces", _zip({**members, "config.json": members["config.json"] + b" " * (32 << 20)})
    for name in members:
        for size in (2 ** 32 - 1, 3 << 30, 1 << 20, 0):
            yield f"{name} declares {size} bytes", _declare_size(data, name, size)


def _duplicate(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, blob in members.items():
            zf.writestr(name, blob)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            zf.writestr("config.json", b"{}")
    return buffer.getvalue()


def _special_files(tmp_path, suffix=".rnnkit"):
    """(description, path) of things that are not regular model files, named ``*<suffix>``."""
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    loop = tmp_path / f"loop{suffix}"
    os.symlink(loop, loop)
    (tmp_path / f"dir{suffix}").mkdir()
    os.symlink("/dev/zero", tmp_path / f"zero{suffix}")
    os.symlink("/dev/null", tmp_path / f"null{suffix}")
    return [("a FIFO", fifo), ("a symlink loop", loop), ("a directory", tmp_path / f"dir{suffix}"),
            ("/dev/zero", tmp_path / f"zero{suffix}"), ("/dev/null", tmp_path / f"null{suffix}")]


def _outcome(path, x, expected):
    """'error' (a ModelFileError naming the file), 'identical', or a description of anything else."""
    try:
        model = rnnkit.load_model(path)
    except ModelFileError as exc:
        return "error" if str(path) in str(exc) else f"ModelFileError without the path: {exc}"
    except Exception as exc:  # noqa: BLE001  (what the fuzzer exists to catch)
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    got = model.predict(x, verbose=0)
    return "identical" if got.shape == expected.shape and np.array_equal(got, expected) else "loaded, different"


def _run_case(blob, path, x, expected):
    """Load one case: bytes are written to ``path`` first, a special-file case is its own path.
    Returns (outcome of :func:`_outcome`, seconds the load took)."""
    if isinstance(blob, bytes):
        path.write_bytes(blob)
    start = time.perf_counter()
    outcome = _outcome(path if isinstance(blob, bytes) else blob, x, expected)
    return outcome, time.perf_counter() - start


def _fuzz(what, named_cases, path, x, expected):
    """Load every case; fail on any outcome but a ModelFileError or an identical load, or a slow load."""
    counts, others, slowest = Counter(), [], (0.0, "")
    start = time.perf_counter()
    for label, blob in named_cases:
        outcome, elapsed = _run_case(blob, path, x, expected)
        slowest = max(slowest, (elapsed, label))
        counts[outcome if outcome in ("error", "identical") else "other"] += 1
        if outcome not in ("error", "identical"):
            others.append(f"{label}: {outcome}")
        if elapsed > CASE_BUDGET_S:
            others.append(f"{label}: took {elapsed:.1f} s")
    total = time.perf_counter() - start
    print(f"\n{what} fuzzer: {sum(counts.values())} cases, {counts['error']} ModelFileError, "
          f"{counts['identical']} identical loads, {counts['other']} other; slowest load {slowest[0]:.3f} s "
          f"({slowest[1]}); total {total:.1f} s")
    assert not others, "\n".join(others[:40])
    assert total < TOTAL_BUDGET_S
    return sum(counts.values())


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_model_file_fuzzer(saved, tmp_path):
    torch.set_num_threads(1)
    _, data, members, x, expected = saved
    named = list(cases(data, members)) + _special_files(tmp_path)
    assert _fuzz("rnnkit model-file", named, tmp_path / "case.rnnkit", x, expected) >= 1000
    assert not os.path.exists("/tmp/rnnkit_pwned")


@pytest.mark.filterwarnings("ignore:The model loaded but was not compiled")
def test_keras_file_fuzzer(saved, tmp_path):
    """The same archive-level mutations of the model saved as a Keras 3 ``.keras`` file."""
    torch.set_num_threads(1)
    path, _, _, x, expected = saved
    model = rnnkit.load_model(path)
    model.save(tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    members["metadata.json"] = b'{"keras_version": "3.15.1", "date_saved": "2020-01-01@00:00:00"}'
    data = _zip(members)
    named = list(_archive_cases(data, members, "model.weights.h5"))
    assert _fuzz("Keras .keras file", named, tmp_path / "case.keras", x, expected) >= 1000


def test_the_original_loads_identically(saved):
    path, _, _, x, expected = saved
    assert np.array_equal(rnnkit.load_model(path).predict(x, verbose=0), expected)


def test_safe_mode_refuses_serialized_code(saved, tmp_path):
    _, _, members, _, _ = saved
    config = json.loads(members["config.json"])
    config["config"]["layers"].append({"class_name": "Lambda", "config": {
        "name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA"}}}})
    path = tmp_path / "lambda.rnnkit"
    path.write_bytes(_zip({**members, "config.json": json.dumps(config).encode()}))
    with pytest.raises(ModelFileError, match=r"bytecode, which safe_mode=True \(the default\) refuses"):
        rnnkit.load_model(path)
    with pytest.raises(ModelFileError, match="rnnkit runs no code from a file, even with safe_mode=False"):
        rnnkit.load_model(path, safe_mode=False)


def test_units_5000_config_is_refused_before_building(saved, tmp_path):
    _, _, members, _, _ = saved
    config = json.loads(members["config.json"])
    config["config"]["layers"][0]["config"]["units"] = 12000
    path = tmp_path / "big.rnnkit"
    path.write_bytes(_zip({**members, "config.json": json.dumps(config).encode()}))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"shape \(3, 16\), the model expects \(3, 48000\)"):
        rnnkit.load_model(path)
    assert time.perf_counter() - start < 1.0


def test_weights_labelled_with_another_dtype_are_refused(saved, tmp_path):
    _, _, members, _, _ = saved
    header, payload = _split_safetensors(members["model.safetensors"])
    key = sorted(k for k in header if k != "__metadata__")[0]
    header[key]["dtype"] = "I32"
    path = tmp_path / "i32.rnnkit"
    path.write_bytes(_zip({**members, "model.safetensors": _safetensors(header, payload)}))
    with pytest.raises(ModelFileError, match="is stored as I32, the model expects float32"):
        rnnkit.load_model(path)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "m.rnnkit"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        rnnkit.load_model(fifo)
    with pytest.raises(ModelFileError, match="not a regular file|cannot be opened"):
        rnnkit.load_model(tmp_path)  # a directory


def test_keras_files_get_the_same_checks(tmp_path):
    model = rnnkit.Sequential([Input((None, 3)), LSTM(4), Dense(2)])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["return_sequences"] = "no"
    (tmp_path / "bad.keras").write_bytes(_zip({**members, "config.json": json.dumps(config).encode()}))
    with pytest.raises(ModelFileError, match="return_sequences must be True or False"):
        rnnkit.load_model(tmp_path / "bad.keras")
    config["config"]["layers"][1]["config"]["return_sequences"] = False
    config["config"]["layers"][1]["config"]["units"] = 5000
    (tmp_path / "big.keras").write_bytes(_zip({**members, "config.json": json.dumps(config).encode()}))
    with pytest.raises(ModelFileError, match="shape"):
        rnnkit.load_model(tmp_path / "big.keras")
    (tmp_path / "bomb.keras").write_bytes(_zip({**members, "model.weights.h5": bytes(64 << 20)}))
    with pytest.raises(ModelFileError, match="zip bomb|more than"):
        rnnkit.load_model(tmp_path / "bomb.keras")
    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        rnnkit.load_model(fifo)


def test_load_weights_checks_the_file_against_the_model(tmp_path):
    model = rnnkit.Sequential([Input((None, 3)), LSTM(4), Dense(2)])
    model.save_weights(tmp_path / "w.safetensors")
    model.save_weights(tmp_path / "w.weights.h5")
    other = rnnkit.Sequential([Input((None, 3)), LSTM(5), Dense(2)])
    with pytest.raises(ModelFileError, match="shape"):
        other.load_weights(tmp_path / "w.safetensors")
    with pytest.raises(ModelFileError, match="shape"):
        other.load_weights(tmp_path / "w.weights.h5")
    data = (tmp_path / "w.safetensors").read_bytes()
    for i, damaged in enumerate([data[:40], data[:-4], b"\xff" * 8 + data[8:], bytes(100)]):
        (tmp_path / f"bad{i}.safetensors").write_bytes(damaged)
        with pytest.raises(ModelFileError, match=f"bad{i}.safetensors"):
            model.load_weights(tmp_path / f"bad{i}.safetensors")
    (tmp_path / "bad.weights.h5").write_bytes((tmp_path / "w.weights.h5").read_bytes()[:500])
    with pytest.raises(ModelFileError, match="bad.weights.h5"):
        model.load_weights(tmp_path / "bad.weights.h5")
