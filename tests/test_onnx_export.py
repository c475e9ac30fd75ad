"""ONNX export (rnnkit.export.export_onnx, ``rnnkit export``): onnxruntime's outputs equal
``model.predict`` within 1e-5 for every configuration, at two batch sizes and two sequence
lengths, masked (right-padded token ids, empty rows included) and unmasked."""
import json

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import Input, Model
from rnnkit import layers as L

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rnnkit.export import ExportError, export_onnx  # noqa: E402

SHAPES = [(2, 5), (7, 11)]  # (batch, time): two batch sizes x two lengths, all four pairs below
GRID = [(b, t) for b in (2, 7) for t in (5, 11)]
VOCAB = 40
KINDS = {
    "simplernn": lambda **k: L.SimpleRNN(6, **k),
    "lstm": lambda **k: L.LSTM(6, **k),
    "gru": lambda **k: L.GRU(6, **k),
    "gru_reset_before": lambda **k: L.GRU(6, reset_after=False, **k),
}


def _session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _token_ids(rng, batch, steps):
    """Right-padded ids: full, empty and random lengths."""
    x = rng.integers(1, VOCAB, size=(batch, steps))
    lengths = rng.integers(0, steps + 1, size=batch)
    lengths[0], lengths[-1] = steps, 0 if batch > 1 else steps
    for i, n in enumerate(lengths):
        x[i, n:] = 0
    return x


def _floats(rng, batch, steps, features=4):
    return rng.normal(size=(batch, steps, features)).astype("float32")


def _check(model, tmp_path, make_inputs, grid=GRID, seed=0):
    """Export, then compare onnxruntime with model.predict on every (batch, time) of ``grid``."""
    path = tmp_path / "model.onnx"
    info = export_onnx(model, path)
    session = _session(path)
    rng = np.random.default_rng(seed)
    for batch, steps in grid:
        xs = make_inputs(rng, batch, steps)
        xs = xs if isinstance(xs, list) else [xs]
        expected = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        got = session.run(None, {i.name: x for i, x in zip(info.inputs, xs)})
        assert len(got) == len(expected)
        for e, g in zip(expected, got):
            assert g.shape == e.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5, err_msg=f"batch {batch}, time {steps}")
    return info


def _ops(path):
    return {(n.domain, n.op_type) for n in onnx.load(str(path)).graph.node}


# ----- recurrent layers ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forward", "backwards"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_recurrent_layer_matches_predict(tmp_path, kind, masked, go_backwards, return_sequences):
    layer = KINDS[kind](return_sequences=return_sequences, go_backwards=go_backwards)
    if masked:
        model = rnnkit.Sequential([Input(shape=(None,), dtype="int64"), L.Embedding(VOCAB, 5, mask_zero=True), layer,
                                   L.Dense(3)])
        info = _check(model, tmp_path, _token_ids)
    else:
        model = rnnkit.Sequential([Input(shape=(None, 4)), layer, L.Dense(3)])
        info = _check(model, tmp_path, _floats)
    op = {"simplernn": "RNN", "lstm": "LSTM"}.get(kind, "GRU")
    ops = _ops(tmp_path / "model.onnx")
    assert ("", op) in ops and ("", "Loop") not in ops and ("", "Scan") not in ops  # the operator, not unrolled
    how = dict((n, h) for n, _, h in info.layers)[layer.name]
    assert f"ONNX {op} operator, direction={'reverse' if go_backwards else 'forward'}" in how
    if kind.startswith("gru"):
        assert f"linear_before_reset={0 if kind == 'gru_reset_before' else 1}" in how


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("return_sequences,merge_mode", [(False, "concat"), (True, "concat"), (True, "sum"),
                                                         (False, "mul"), (True, "ave")])
def test_bidirectional_matches_predict(tmp_path, kind, masked, return_sequences, merge_mode):
    bi = L.Bidirectional(KINDS[kind](return_sequences=return_sequences), merge_mode=merge_mode)
    if masked:
        model = rnnkit.Sequential([Input(shape=(None,), dtype="int64"), L.Embedding(VOCAB, 5, mask_zero=True), bi])
        info = _check(model, tmp_path, _token_ids)
    else:
        model = rnnkit.Sequential([Input(shape=(None, 4)), bi])
        info = _check(model, tmp_path, _floats)
    assert "direction=bidirectional" in dict((n, h) for n, _, h in info.layers)[bi.name]
    assert sum(op in ("RNN", "LSTM", "GRU") for _, op in _ops(tmp_path / "model.onnx")) == 1


def test_stacked_masked_text_classifier(tmp_path):
    model = rnnkit.Sequential([
        Input(shape=(None,), dtype="int64"), L.Embedding(VOCAB, 8, mask_zero=True), L.SpatialDropout1D(0.2),
        L.LSTM(8, return_sequences=True), L.GRU(7, return_sequences=True, reset_after=False),
        L.Bidirectional(L.LSTM(5, return_sequences=True)), L.TimeDistributed(L.Dense(4, activation="relu")),
        L.GRU(6, return_sequences=True, go_backwards=True), L.GlobalAveragePooling1D(), L.Dropout(0.3),
        L.Dense(3, activation="softmax")])
    _check(model, tmp_path, _token_ids)


def test_functional_seq2seq_initial_and_return_states(tmp_path):
    source, target = Input(shape=(None, 5), name="source"), Input(shape=(None, 3), name="target")
    _, h, c = L.LSTM(8, return_state=True)(source)
    decoded = L.LSTM(8, return_sequences=True)(target, initial_state=[h, c])
    both = L.Bidirectional(L.GRU(4, return_sequences=True, return_state=True), merge_mode=None)(source)
    bi_lstm = L.Bidirectional(L.LSTM(8, return_sequences=True))(target, initial_state=[h, c, c, h])
    model = Model([source, target], [L.Dense(3, activation="softmax")(decoded), *both, bi_lstm])

    def inputs(rng, batch, steps):  # the two inputs differ in length: each has its own time axis
        return [_floats(rng, batch, steps, 5), _floats(rng, batch, max(1, steps - 3), 3)]

    info = _check(model, tmp_path, inputs)
    assert [i.name for i in info.inputs] == ["source", "target"]
    assert info.inputs[0].shape == ("batch", "source_time", 5)


def test_masked_functional_merges_and_initial_state(tmp_path):
    ids = Input(shape=(None,), dtype="int64")
    x = L.Embedding(VOCAB, 6, mask_zero=True)(ids)
    a = L.LSTM(6, return_sequences=True)(x)
    b = L.GRU(6, return_sequences=True, go_backwards=True)(x)
    h0 = L.Dense(5, activation="tanh")(L.GlobalAveragePooling1D()(a))
    merged = L.Concatenate()([L.Add()([a, b]), L.Average()([a, b]), L.Subtract()([a, b]), a])
    out = L.SimpleRNN(5, return_sequences=True)(merged, initial_state=[h0])  # padded rows repeat the last output
    model = Model(ids, [L.GlobalMaxPooling1D()(out), L.SimpleRNN(3)(merged)])
    _check(model, tmp_path, _token_ids)


def test_conv_pooling_norms_and_activations(tmp_path):
    model = rnnkit.Sequential([
        Input(shape=(None, 4)), L.Conv1D(6, 3, padding="causal", activation="relu"),
        L.Conv1D(6, 3, padding="same", dilation_rate=2), L.LayerNormalization(), L.BatchNormalization(),
        L.Activation("gelu"), L.Dense(6, activation="swish"), L.MaxPooling1D(3, strides=2, padding="same"),
        L.Activation("selu"),
        L.LSTM(5, use_bias=False, return_sequences=True), L.GRU(4, use_bias=False), L.RepeatVector(3),
        L.SimpleRNN(4, return_sequences=True), L.Flatten(), L.Dense(2, activation="log_softmax")])
    bn = model.layers[3]
    with torch.no_grad():
        bn.moving_mean.uniform_(-1, 1)
        bn.moving_variance.uniform_(0.5, 2.0)
    _check(model, tmp_path, _floats, grid=[(2, 6), (2, 12), (7, 6), (7, 12)])


@pytest.mark.parametrize("activation,recurrent_activation", [
    ("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("elu", "softsign"), ("softsign", "softplus")])
def test_recurrent_activations_of_the_operators(tmp_path, activation, recurrent_activation):
    def cell(kind, **k):
        if kind is L.SimpleRNN:
            return kind(5, activation=activation, **k)
        return kind(5, activation=activation, recurrent_activation=recurrent_activation, **k)

    model = rnnkit.Sequential([Input(shape=(None, 4)), cell(L.LSTM, return_sequences=True),
                               L.Bidirectional(cell(L.GRU, return_sequences=True)),
                               cell(L.GRU, reset_after=False, return_sequences=True), cell(L.SimpleRNN)])
    _check(model, tmp_path, _floats, grid=[(2, 5), (7, 11)])


def test_masking_layer(tmp_path):
    model = rnnkit.Sequential([Input(shape=(None, 4)), L.Masking(0.0), L.LSTM(5, return_sequences=True),
                               L.Bidirectional(L.GRU(4))])

    def inputs(rng, batch, steps):
        x = _floats(rng, batch, steps)
        for i in range(1, batch):
            x[i, rng.integers(0, steps):] = 0.0
        return x

    _check(model, tmp_path, inputs)


def test_text_vectorization_model_exports_from_token_ids(tmp_path):
    texts = ["the cat sat on the mat", "a dog", "the dog sat", "cats and dogs and mats", "on"]
    vectorize = L.TextVectorization(max_tokens=30)
    vectorize.adapt(texts)
    model = rnnkit.Sequential([Input(shape=(), dtype="string"), vectorize, L.Embedding(30, 6, mask_zero=True),
                               L.LSTM(5), L.Dense(1, activation="sigmoid")])
    info = export_onnx(model, tmp_path / "text.onnx")
    assert len(info.inputs) == 1 and info.inputs[0].dtype == "int64"
    assert any("TextVectorization" in note for note in info.notes)
    ids = np.asarray(vectorize(texts))
    got = _session(tmp_path / "text.onnx").run(None, {info.inputs[0].name: ids})[0]
    np.testing.assert_allclose(got, model.predict(np.array(texts, dtype=object), verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("make", [lambda: L.Attention(), lambda: L.Attention(use_scale=True, score_mode="concat"),
                                  lambda: L.AdditiveAttention()], ids=["dot", "concat", "additive"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_attention_with_masks(tmp_path, make, causal):
    source, target = Input(shape=(None,), dtype="int64"), Input(shape=(None,), dtype="int64")
    encoded = L.LSTM(6, return_sequences=True)(L.Embedding(VOCAB, 4, mask_zero=True)(source))
    decoded = L.GRU(6, return_sequences=True)(L.Embedding(VOCAB, 4, mask_zero=True)(target))
    attention = make()
    context, scores = attention([decoded, encoded], return_attention_scores=True, use_causal_mask=causal)
    with torch.no_grad():
        for weight in attention.parameters():
            weight.uniform_(0.5, 1.5)
    model = Model([source, target], [L.Dense(3)(L.Concatenate()([context, decoded])), scores])
    _check(model, tmp_path, lambda rng, batch, steps: [_token_ids(rng, batch, steps), _token_ids(rng, batch, steps)])


# ----- the Scan path: activations the operators lack, masks that are not right padding ---------------
def _left_or_holes(rng, batch, steps):
    """Masks rnnkit applies step by step: left padding, holes, empty and full rows."""
    x = rng.integers(1, VOCAB, size=(batch, steps))
    for i in range(1, batch):
        if i % 2:
            x[i, :rng.integers(0, steps + 1)] = 0
        else:
            x[i, rng.random(steps) < 0.4] = 0
    return x


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("activation", ["gelu", "selu", "swish"])
def test_activation_without_operator_exports_a_scan_loop(tmp_path, kind, activation):
    source = Input(shape=(None, 4))
    seq = KINDS[kind](activation=activation, return_sequences=True)(source)
    back, *states = KINDS[kind](activation=activation, go_backwards=True, return_state=True)(seq)
    bi = L.Bidirectional(KINDS[kind](activation=activation, return_sequences=True))(seq)
    model = Model(source, [seq, back, *states, bi])
    info = _check(model, tmp_path, _floats)
    paths = [h for _, _, h in info.layers]
    assert sum(h.startswith(f"ONNX Scan loop (activation '{activation}'") for h in paths) == 2
    assert any(h.startswith("two ONNX Scan loops") for h in paths)
    ops = {op for _, op in _ops(tmp_path / "model.onnx")}
    assert "Scan" in ops and not ops & {"RNN", "LSTM", "GRU"}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_masks_any_handles_left_padding_and_holes(tmp_path, kind, return_sequences):
    ids = Input(shape=(None,), dtype="int64")
    x = L.Embedding(VOCAB, 5, mask_zero=True)(ids)
    outs = [KINDS[kind](return_sequences=return_sequences)(x),
            KINDS[kind](return_sequences=return_sequences, go_backwards=True)(x),
            L.Bidirectional(KINDS[kind](return_sequences=return_sequences), merge_mode="sum")(x)]
    model = Model(ids, outs)
    path = tmp_path / "model.onnx"
    info = export_onnx(model, path, masks="any")
    assert all(h.startswith(("ONNX Scan loop (masks='any'", "two ONNX Scan loops")) for _, c, h in info.layers
               if c != "Embedding")
    session, rng = _session(path), np.random.default_rng(3)
    for batch, steps in GRID:
        for make in (_left_or_holes, _token_ids):
            x = make(rng, batch, steps)
            for e, g in zip(model.predict(x, verbose=0), session.run(None, {info.inputs[0].name: x})):
                np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)


def test_opset_18_and_a_nested_model(tmp_path):
    inner_in = Input(shape=(None, 6))
    inner = Model(inner_in, L.GlobalMaxPooling1D()(L.GRU(4, return_sequences=True)(inner_in)), name="inner")
    ids = Input(shape=(None,), dtype="int64")
    x = L.Embedding(VOCAB, 6, mask_zero=True)(ids)
    model = Model(ids, L.Dense(2)(L.Concatenate()([inner(x), L.GlobalAveragePooling1D()(x)])))
    path = tmp_path / "model.onnx"
    info = export_onnx(model, path, opset=18)
    assert {o.version for o in onnx.load(str(path)).opset_import} == {18}
    session, rng = _session(path), np.random.default_rng(4)
    for batch, steps in GRID:
        x = _token_ids(rng, batch, steps)
        np.testing.assert_allclose(session.run(None, {info.inputs[0].name: x})[0], model.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-5)


# ----- what the file holds ---------------------------------------------------------------------------
def test_only_standard_operators_and_the_layer_weights(tmp_path):
    """The native C kernels run predict, but the file holds standard ONNX operators only, built from
    get_weights(): changing the layer's weights after export does not change the file."""
    model = rnnkit.Sequential([Input(shape=(None, 4)), L.GRU(6, return_sequences=True), L.SimpleRNN(5)])
    model.predict(np.zeros((2, 3, 4), "float32"), verbose=0)
    path = tmp_path / "m.onnx"
    export_onnx(model, path)
    proto = onnx.load(str(path))
    assert {n.domain for n in proto.graph.node} == {""}
    assert {o.domain for o in proto.opset_import} == {""}
    assert b"ctypes" not in path.read_bytes() and b"native" not in path.read_bytes()
    gru = model.layers[0]
    kernel, recurrent, bias = gru.get_weights()
    w = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    np.testing.assert_array_equal(w[f"{gru.name}_W"][0], kernel.T)  # z, r, h: Keras's order is ONNX's
    np.testing.assert_array_equal(w[f"{gru.name}_B"][0], np.concatenate([bias[0], bias[1]]))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", f"{proto.graph.input[0].name}_time", 4]


def test_lstm_gate_order_is_converted(tmp_path):
    layer = L.LSTM(3)
    model = rnnkit.Sequential([Input(shape=(None, 2)), layer])
    export_onnx(model, tmp_path / "m.onnx")
    w = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(tmp_path / "m.onnx")).graph.initializer}
    kernel, _, bias = layer.get_weights()
    i, f, c, o = np.split(kernel, 4, axis=1)
    np.testing.assert_array_equal(w[f"{layer.name}_W"][0], np.concatenate([i, o, f, c], axis=1).T)
    bi, bf, bc, bo = np.split(bias, 4)
    np.testing.assert_array_equal(w[f"{layer.name}_B"][0][:12], np.concatenate([bi, bo, bf, bc]))


def test_left_padding_fails_loudly_at_run_time(tmp_path):
    model = rnnkit.Sequential([Input(shape=(None,), dtype="int64"), L.Embedding(VOCAB, 4, mask_zero=True), L.GRU(3)])
    info = export_onnx(model, tmp_path / "m.onnx")
    session = _session(tmp_path / "m.onnx")
    left = np.array([[0, 0, 3, 4], [5, 6, 7, 8]])
    with pytest.raises(Exception, match="rnnkit_mask_must_be_right_padded"):
        session.run(None, {info.inputs[0].name: left})
    holes = np.array([[3, 0, 4, 0], [5, 6, 7, 8]])
    with pytest.raises(Exception, match="rnnkit_mask_must_be_right_padded"):
        session.run(None, {info.inputs[0].name: holes})


# ----- errors ------------------------------------------------------------------------------------------
def _my_gate(x):
    return torch.sigmoid(2 * x)


@pytest.mark.parametrize("make,match", [
    (lambda: [L.Lambda(lambda t: t * 2)], r"Layer 'lambda\w*' \(Lambda\) cannot be exported"),
    (lambda: [L.LSTM(3, activation=lambda t: t)], r"activation='<lambda>' has no ONNX form"),
    (lambda: [L.GRU(3, recurrent_activation=_my_gate)], r"recurrent_activation='_my_gate' has no ONNX form"),
    (lambda: [L.RNN([L.LSTMCell(3), L.GRUCell(3)])], r"StackedRNNCells, which has no ONNX operator"),
    (lambda: [L.LSTM(3, stateful=True)], r"is stateful"),
])
def test_unsupported_layers_raise_a_clear_error(tmp_path, make, match):
    model = rnnkit.Sequential([Input(shape=(None, 4), batch_size=2), *make()])
    with pytest.raises(ExportError, match=match):
        export_onnx(model, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


def test_unbuilt_model_raises():
    with pytest.raises(ExportError, match="not built"):
        export_onnx(rnnkit.Sequential([L.LSTM(3)]), "never.onnx")


# ----- the command and the Model method -------------------------------------------------------------
def test_rnnkit_export_command(tmp_path, capsys):
    from rnnkit.cli import main

    model = rnnkit.Sequential([Input(shape=(None,), dtype="int64"), L.Embedding(VOCAB, 4, mask_zero=True),
                               L.Bidirectional(L.LSTM(3)), L.Dense(1, activation="sigmoid")])
    model.metadata = {"task": "sentiment", "labels": ["neg", "pos"]}
    model.save(tmp_path / "m.rnnkit")
    assert main(["export", "--model-file", str(tmp_path / "m.rnnkit"), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "direction=bidirectional" in capsys.readouterr().out
    session = _session(tmp_path / "m.onnx")
    meta = json.loads(session.get_modelmeta().custom_metadata_map["rnnkit.metadata"])
    assert meta["labels"] == ["neg", "pos"]
    x = _token_ids(np.random.default_rng(1), 5, 9)
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0],
                               model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)

    a, b = Input(shape=(2, 3, 4)), Input(shape=(2, 3, 4))
    bad = Model([a, b], L.Dot(axes=3)([a, b]))  # Dot exports for inputs of rank 2 and 3 only
    bad.save(tmp_path / "bad.rnnkit")
    assert main(["export", "--model-file", str(tmp_path / "bad.rnnkit"), "--out", str(tmp_path / "b.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rnnkit export: error: ") and "(Dot) on inputs of rank 4" in err and "\n" not in err
    assert not (tmp_path / "b.onnx").exists()
    assert main(["export", "--model-file", str(tmp_path / "missing.rnnkit"), "--out", "x.onnx"]) == 2
    assert "no model file" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(Model, "export"), reason="Model.export not added yet")
def test_model_export_method(tmp_path):
    model = rnnkit.Sequential([Input(shape=(None, 4)), L.GRU(3)])
    model.export(str(tmp_path / "m.onnx"), format="onnx")
    x = _floats(np.random.default_rng(2), 3, 6)
    session = _session(tmp_path / "m.onnx")
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="format"):
        model.export(str(tmp_path / "m.pb"), format="tf_saved_model")


@pytest.mark.parametrize("normalize", [False, True])
def test_siamese_dot_of_shared_encoder_codes_and_of_sequences(tmp_path, normalize):
    """Dot on codes (rank 2: the cosine of a siamese encoder), on sequences (rank 3, both axis
    pairs) and between a code and a sequence."""
    a, b = Input(shape=(None, 4)), Input(shape=(None, 4))
    encoder = L.GRU(6, return_sequences=True)
    sa, sb = encoder(a), encoder(b)
    ca, cb = L.GlobalAveragePooling1D()(sa), L.GlobalAveragePooling1D()(sb)
    outputs = [L.Dot(axes=1, normalize=normalize)([ca, cb]),
               L.Dot(axes=(2, 2), normalize=normalize)([sa, sb]),
               L.Dot(axes=(1, 1), normalize=normalize)([sa, sa]),
               L.Dot(axes=(1, 2), normalize=normalize)([ca, sb]),
               L.Dot(axes=(2, 1), normalize=normalize)([sb, ca])]
    model = Model([a, b], outputs)
    info = _check(model, tmp_path, lambda rng, batch, steps: [_floats(rng, batch, steps), _floats(rng, batch, steps)])
    assert all(how.startswith("MatMul") for _, cls, how in info.layers if cls == "Dot")
