"""Cells and ``RNN(cell)``: the built-in cells, StackedRNNCells, user cells, and how each call is planned.

* ``RNN(LSTMCell(n))`` takes the same path as ``LSTM(n)`` and gives the same outputs, states
  and gradients (GRU with both reset_after variants, SimpleRNN too).
* ``rnnkit.fused.plan``: the path and its reason for every fallback.
* The cells' ``call`` against an independent float64 step-by-step reference (values and gradients).
* Against Keras 3 itself (skipped without it): each cell in ``RNN``, a user cell with nested
  states, StackedRNNCells, with masks, go_backwards, initial_state and return_state.
* ``get_config`` / ``from_config`` round trips; Bidirectional over RNN(cell); output shapes and masks.
"""
import json
import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before keras is imported anywhere in this process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from rnnkit import fused, registry  # noqa: E402
from rnnkit.layers import (GRU, LSTM, RNN, Bidirectional, GRUCell, Layer, LSTMCell, SimpleRNN,  # noqa: E402
                           SimpleRNNCell, StackedRNNCells)
from rnnkit.recurrence import SequenceOptions  # noqa: E402

try:
    import keras
except ImportError:  # pragma: no cover - keras is optional
    keras = None
KERAS_SKIP = None
if keras is None:
    KERAS_SKIP = "needs keras"
elif not keras.__version__.startswith("3."):
    KERAS_SKIP = f"needs Keras 3, found {keras.__version__}"
elif keras.backend.backend() != "torch":
    KERAS_SKIP = f"keras was already imported with the {keras.backend.backend()} backend"
needs_keras = pytest.mark.skipif(KERAS_SKIP is not None, reason=str(KERAS_SKIP))
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras's numpy-2 __array__ notices

B, T, F, U = 4, 6, 3, 5
LENGTHS = [6, 4, 1, 3]
TOL = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def right_mask():
    return torch.arange(T)[None, :] < torch.tensor(LENGTHS)[:, None]


def holes_mask():
    mask = right_mask()
    mask[0, 2] = False
    return mask


MASKS = {"none": lambda: None, "right": right_mask, "left": lambda: right_mask().flip(1), "holes": holes_mask}


def inputs(seed=0, dtype=torch.float32):
    return torch.randn(B, T, F, generator=torch.Generator().manual_seed(seed)).to(dtype)


def randomize(layer, seed=0, scale=0.4):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in layer.weights:
            w.copy_(torch.randn(w.shape, generator=g) * scale)
    return layer


def built(layer, features=F):
    layer(torch.zeros(1, 1, features))
    return layer


def as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def flat(structure):
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flat(item)]
    return [structure]


def outputs_and_grads(layer, x, **call):
    """Every output tensor and d(sum of outputs * probes)/d(x, weights)."""
    x = x.clone().requires_grad_(True)
    outs = flat(layer(x, **call))
    g = torch.Generator().manual_seed(11)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=o.dtype)).sum() for o in outs)
    grads = torch.autograd.grad(loss, [x, *layer.trainable_weights])
    return [o.detach() for o in outs], grads


# ----- user cells ------------------------------------------------------------------------------------
class MinimalRNNCell(Layer):
    """Keras's documentation example: h_t = x_t W + h_{t-1} U."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "orthogonal")

    def call(self, inputs, states):
        output = inputs @ self.kernel + states[0] @ self.recurrent_kernel
        return output, [output]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class NestedCell(Layer):
    """States [h, [a, b]]: a nested state structure, as Keras allows."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, [units, 2]]
        self.output_size = units

    def build(self, input_shape):
        self.add_weight("kernel", (input_shape[-1], self.units), "glorot_uniform")
        self.add_weight("recurrent_kernel", (self.units, self.units), "orthogonal")

    def call(self, inputs, states):
        h, (a, b) = states
        h = torch.tanh(inputs @ self.kernel + h @ self.recurrent_kernel + a)
        a = 0.5 * a + h
        b = 0.9 * b + h.sum(-1, keepdim=True)
        return h, [h, [a, b]]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class PeepholeLSTMCell(LSTMCell):
    """A built-in cell subclass that changes the step: it must not run the fused LSTM."""

    def call(self, inputs, states, training=None):
        h, (_, c) = super().call(inputs, states, training)
        return h * 0.5, [h * 0.5, c]


# ----- RNN(cell) is the matching layer -------------------------------------------------------------------
PAIRS = {
    "simple_rnn_tanh": (SimpleRNN, SimpleRNNCell, {}),
    "simple_rnn_relu": (SimpleRNN, SimpleRNNCell, {"activation": "relu"}),
    "lstm": (LSTM, LSTMCell, {}),
    "gru_reset_after": (GRU, GRUCell, {"reset_after": True}),
    "gru_reset_before": (GRU, GRUCell, {"reset_after": False}),
}


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("mask_name", ["none", "right", "left", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_rnn_of_a_built_in_cell_is_the_matching_layer(name, mask_name, go_backwards, return_state):
    layer_class, cell_class, extra = PAIRS[name]
    options = dict(return_sequences=True, return_state=return_state, go_backwards=go_backwards)
    layer = randomize(built(layer_class(U, **extra, **options)), seed=1)
    rnn = built(RNN(cell_class(U, **extra), **options))
    rnn.set_weights(layer.get_weights())
    mask = MASKS[mask_name]()
    call = {} if mask is None else {"mask": mask}
    x = inputs(seed=2)
    got, want = outputs_and_grads(rnn, x, **call), outputs_and_grads(layer, x, **call)
    assert rnn.execution_path == layer.execution_path
    assert rnn.execution_plan is layer.execution_plan
    for a, b in zip(got[0] + list(got[1]), want[0] + list(want[1])):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_layer_weights_attributes_and_config_are_keras():
    layer = built(LSTM(U, use_bias=True))
    assert [tuple(w.shape) for w in layer.weights] == [(F, 4 * U), (U, 4 * U), (4 * U,)]
    assert layer.kernel is layer.cell.kernel and layer.recurrent_kernel is layer.cell.recurrent_kernel
    assert layer.bias is layer.cell.bias and layer.units == U and layer.unit_forget_bias
    assert built(GRU(U, use_bias=False)).bias is None
    assert built(GRU(U)).reset_after and tuple(built(GRU(U)).bias.shape) == (2, 3 * U)
    config = LSTM(U, dropout=0.25, return_sequences=True, name="lstm_x").get_config()
    assert "cell" not in config and config["units"] == U and config["dropout"] == 0.25
    assert config["return_sequences"] is True and config["name"] == "lstm_x"
    assert LSTM.from_config(config).get_config() == config


def test_cells_take_keras_regularizers_and_constraints():
    layer = built(GRU(U, kernel_regularizer="l2", recurrent_regularizer="l1", bias_constraint="non_neg"))
    kernel, recurrent = layer.cell.kernel, layer.cell.recurrent_kernel
    penalties = sorted(float(p) for p in layer.losses)
    assert penalties == pytest.approx(sorted([0.01 * float(kernel.square().sum()), 0.01 * float(recurrent.abs().sum())]))
    config = layer.get_config()
    assert config["kernel_regularizer"]["class_name"] == "L2" and config["bias_constraint"]["class_name"] == "NonNeg"
    assert "recurrent_constraint" not in config  # unset ones stay out, as Keras
    assert GRU.from_config(config).get_config() == config


def test_one_argument_list_for_the_layers():
    import inspect

    params = inspect.signature(GRU).parameters
    for name in ("units", "reset_after", "recurrent_dropout", "seed", "return_sequences", "stateful", "use_fused"):
        assert name in params, name
    assert "unit_forget_bias" not in params and "recurrent_activation" not in inspect.signature(SimpleRNN).parameters
    with pytest.raises(TypeError, match="(?i)did you mean 'unit_forget_bias'"):
        LSTM(3, unit_forget_bais=False)
    with pytest.raises(TypeError, match="(?i)did you mean 'go_backwards'"):
        GRU(3, go_backward=True)


# ----- the plan: one function, one reason ----------------------------------------------------------------
def _hole_mask():
    return holes_mask()


def _empty_row_mask():
    mask = right_mask()
    mask[1] = False
    return mask


FALLBACKS = {
    "forced": (lambda: RNN(GRUCell(U), use_fused=False), {}, "use_fused=False"),
    "user_cell": (lambda: RNN(MinimalRNNCell(U)), {}, "MinimalRNNCell has no fused kernel"),
    "stacked": (lambda: RNN([GRUCell(U), GRUCell(U)]), {}, "StackedRNNCells has no fused kernel"),
    "subclass_changes_call": (lambda: RNN(PeepholeLSTMCell(U)), {}, "PeepholeLSTMCell has no fused kernel"),
    "lstm_relu": (lambda: RNN(LSTMCell(U, activation="relu")), {}, "activation 'relu' (fused kernels use tanh)"),
    "gru_hard_sigmoid": (lambda: RNN(GRUCell(U, recurrent_activation="hard_sigmoid")), {},
                         "recurrent_activation 'hard_sigmoid' (fused kernels use sigmoid)"),
    "simple_rnn_sigmoid": (lambda: RNN(SimpleRNNCell(U, activation="sigmoid")), {},
                           "activation 'sigmoid' (fused SimpleRNN supports tanh and relu)"),
    "gru_reset_before": (lambda: RNN(GRUCell(U, reset_after=False)), {}, "reset_after=False has no native kernel"),
    "recurrent_dropout": (lambda: RNN(LSTMCell(U, recurrent_dropout=0.3)), {"training": True},
                          "recurrent_dropout in training"),
    "mask_with_hole": (lambda: RNN(LSTMCell(U)), {"mask": _hole_mask()}, "mask is neither right- nor left-padded"),
    "all_padding_row": (lambda: RNN(SimpleRNNCell(U)), {"mask": _empty_row_mask()}, "mask has an all-padding sequence"),
}


@pytest.mark.parametrize("case", list(FALLBACKS))
def test_each_fallback_has_its_reason(case):
    make, call, reason = FALLBACKS[case]
    layer = built(make())
    layer(inputs(seed=3), **call)
    assert layer.execution_path == f"reference: {reason}"
    assert layer.execution_plan.reason == reason and not layer.execution_plan.fused


@pytest.mark.parametrize("case", ["user_cell", "lstm_relu", "recurrent_dropout", "mask_with_hole"])
def test_use_fused_true_on_a_fallback_says_why(case):
    make, call, reason = FALLBACKS[case]
    layer = make()
    layer.use_fused = True
    with pytest.raises(ValueError, match="cannot use the fused kernel") as info:
        built(layer)(inputs(seed=3), **call)
    assert reason in str(info.value)


def test_fused_paths_name_the_kernel():
    x = inputs(seed=4)
    lstm = built(RNN(LSTMCell(U)))
    lstm(x)
    if torch.backends.mkldnn.is_available():
        assert lstm.execution_path == "fused: aten lstm (oneDNN)"
    assert lstm.execution_plan.reason == "LSTM on the CPU"
    gru64 = built(RNN(GRUCell(U))).double()
    gru64(x.double())
    assert gru64.execution_path == "fused: aten gru" and gru64.execution_plan.reason == "no native kernel for torch.float64"
    rnn64 = built(RNN(SimpleRNNCell(U))).double()
    rnn64(x.double())
    assert rnn64.execution_path == "fused: torch-loop simple_rnn"
    lstm_state = built(RNN(LSTMCell(U), return_state=True))
    lstm_state(x, mask=right_mask())
    assert lstm_state.execution_path == "fused: aten lstm packed"
    assert lstm_state.execution_plan.reason.endswith("right-padded mask: packed (the LSTM's final cell state is read)")
    from rnnkit import cpu_kernels

    if cpu_kernels.available():
        gru = built(RNN(GRUCell(U)))
        gru(x)
        assert gru.execution_path == "fused: native-c gru"
        gru(x.requires_grad_(True), mask=right_mask().flip(1))
        assert gru.execution_path == "fused: native-c gru unpacked"
        assert "left-padded mask: unpacked" in gru.execution_plan.reason


def test_plan_directly_and_per_configuration_cached():
    cell = LSTMCell(U)
    cell._ensure_built((None, F))
    first = fused.plan(cell, SequenceOptions(), inputs(seed=5))
    assert first.fused and first.kind == "lstm" and first.path.startswith("fused: aten lstm")
    assert fused.plan(cell, SequenceOptions(), inputs(seed=6)) is first  # one Plan object per configuration
    assert fused.plan(cell, SequenceOptions(), inputs(seed=5), use_fused=False).path == "reference: use_fused=False"
    assert fused.plan(MinimalRNNCell(U), SequenceOptions(), inputs(seed=5)).reason == \
        "MinimalRNNCell has no fused kernel"


# ----- the cells' call against an independent float64 step ------------------------------------------------
def reference_step(kind, x, h, c, W, Uk, b, reset_after=True):
    """One Keras step, gate by gate, written independently of rnnkit.recurrence."""
    s = torch.sigmoid
    if kind == "simple_rnn":
        h = torch.tanh(x @ W + h @ Uk + (0 if b is None else b))
        return h, [h]
    if kind == "lstm":
        z = x @ W + h @ Uk + (0 if b is None else b)
        i, f, g, o = s(z[:, :U]), s(z[:, U:2 * U]), torch.tanh(z[:, 2 * U:3 * U]), s(z[:, 3 * U:])
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, [h, c]
    bi, br = (b[0], b[1]) if reset_after else (b, torch.zeros(3 * U, dtype=x.dtype))
    xz, xr, xh = x @ W[:, :U] + bi[:U], x @ W[:, U:2 * U] + bi[U:2 * U], x @ W[:, 2 * U:] + bi[2 * U:]
    z = s(xz + h @ Uk[:, :U] + br[:U])
    r = s(xr + h @ Uk[:, U:2 * U] + br[U:2 * U])
    hh = torch.tanh(xh + r * (h @ Uk[:, 2 * U:] + br[2 * U:])) if reset_after else torch.tanh(xh + (r * h) @ Uk[:, 2 * U:])
    h = z * h + (1 - z) * hh
    return h, [h]


CELLS = {"simple_rnn": (SimpleRNNCell, {}), "lstm": (LSTMCell, {}), "gru_after": (GRUCell, {"reset_after": True}),
         "gru_before": (GRUCell, {"reset_after": False})}


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_steps_match_the_float64_reference_values_and_gradients(name):
    cls, extra = CELLS[name]
    kind = cls.kind
    cell = cls(U, **extra)
    cell._ensure_built((None, F))
    cell = randomize(cell, seed=7).double()
    g = torch.Generator().manual_seed(8)
    x = torch.randn(B, T, F, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = (torch.randn(B, U, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
    c0 = (torch.randn(B, U, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)
    states = [h0, c0] if kind == "lstm" else [h0]
    ref_states = list(states)
    outs, ref_outs = [], []
    for t in range(T):
        out, states = cell(x[:, t], states)
        ref_out, ref_states = reference_step(kind, x[:, t], ref_states[0], ref_states[-1], cell.kernel,
                                             cell.recurrent_kernel, cell.bias, extra.get("reset_after", True))
        assert isinstance(states, list) and len(states) == len(ref_states)
        outs.append(out)
        ref_outs.append(ref_out)
    got, want = torch.stack(outs, 1), torch.stack(ref_outs, 1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    probe = torch.randn(got.shape, generator=g, dtype=torch.float64)
    leaves = [x, h0, c0, *cell.weights] if kind == "lstm" else [x, h0, *cell.weights]
    grads = torch.autograd.grad((got * probe).sum() + sum(s.sum() for s in states), leaves)
    ref_grads = torch.autograd.grad((want * probe).sum() + sum(s.sum() for s in ref_states), leaves)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CELLS))
def test_rnn_of_a_cell_equals_its_steps(name):
    """The whole-sequence paths (fused and reference) equal stepping through the cell's call."""
    cls, extra = CELLS[name]
    rnn = randomize(built(RNN(cls(U, **extra), return_sequences=True, return_state=True)), seed=9).double()
    x = inputs(seed=10, dtype=torch.float64)
    out, *final = rnn(x)
    states = rnn.get_initial_state(B, like=x)
    for t in range(T):
        step, states = rnn.cell(x[:, t], states)
        torch.testing.assert_close(out[:, t], step)
    for a, b in zip(final, states):
        torch.testing.assert_close(a, b)


def test_cell_dropout_keeps_one_mask_per_sequence(monkeypatch):
    """Inside StackedRNNCells (step by step) each cell makes its masks once per sequence, then forgets them."""
    from rnnkit.layers import rnn_cells

    made = []
    original = rnn_cells.dropout_mask
    monkeypatch.setattr(rnn_cells, "dropout_mask", lambda *a, **k: made.append(a[1]) or original(*a, **k))
    cells = [GRUCell(U, dropout=0.3, recurrent_dropout=0.2, seed=1), LSTMCell(4, dropout=0.1, seed=2)]
    rnn = built(RNN(cells, return_sequences=True))
    rnn.train()
    made.clear()
    rnn(inputs(seed=12))
    assert sorted(made) == sorted([F, U, U])  # GRU: input + recurrent; LSTM: input (its features are U)
    assert all(cell._dropout_masks is None for cell in rnn.cell.cells)
    rnn.eval()
    made.clear()
    rnn(inputs(seed=12))
    assert made == []


# ----- user cells, stacks, states ------------------------------------------------------------------------
@pytest.mark.parametrize("mask_name", ["none", "right", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_user_cell_with_nested_states_runs_keras_loop(mask_name, go_backwards):
    rnn = randomize(built(RNN(NestedCell(U), return_sequences=True, return_state=True, go_backwards=go_backwards)),
                    seed=13)
    mask = MASKS[mask_name]()
    x = inputs(seed=14)
    out, h, (a, b) = rnn(x, **({} if mask is None else {"mask": mask}))
    assert rnn.execution_path == "reference: NestedCell has no fused kernel"
    assert out.shape == (B, T, U) and h.shape == (B, U) and a.shape == (B, U) and b.shape == (B, 2)
    # by hand: Keras's loop
    states = [torch.zeros(B, U), [torch.zeros(B, U), torch.zeros(B, 2)]]
    prev = torch.zeros(B, U)
    order = range(T - 1, -1, -1) if go_backwards else range(T)
    expected = []
    for t in order:
        o, new = rnn.cell.call(x[:, t], states)
        if mask is not None:
            keep = mask[:, t:t + 1]
            o = torch.where(keep, o, prev)
            new = [torch.where(keep, new[0], states[0]),
                   [torch.where(keep, n, s) for n, s in zip(new[1], states[1])]]
        expected.append(o)
        prev, states = o, new
    torch.testing.assert_close(out, torch.stack(expected, 1))
    torch.testing.assert_close(h, states[0])
    torch.testing.assert_close(a, states[1][0])
    torch.testing.assert_close(b, states[1][1])


def test_user_cell_initial_state_stateful_and_errors():
    rnn = randomize(built(RNN(MinimalRNNCell(U), stateful=True, return_state=True)), seed=15, scale=0.2)
    x = inputs(seed=16)
    init = torch.randn(B, U)
    whole, h_whole = RNN(rnn.cell, return_state=True)(x, initial_state=[init])
    first, _ = rnn(x[:, :3], initial_state=init)
    second, h = rnn(x[:, 3:])
    torch.testing.assert_close(second, whole)
    torch.testing.assert_close(h, h_whole)
    rnn.reset_states()
    assert rnn.states is None
    with pytest.raises(ValueError, match="has 1 state"):
        rnn(x, initial_state=[init, init])
    with pytest.raises(ValueError, match=r"initial_state must have shape \(4, 5\)"):
        rnn(x, initial_state=[torch.zeros(B, U + 1)])
    with pytest.raises(ValueError, match="state_size"):
        RNN(type("NoStateSize", (Layer,), {"call": lambda self, inputs, states: (inputs, states)})())
    with pytest.raises(ValueError, match="call"):
        RNN(type("NoCall", (), {"state_size": 3})())


def test_stacked_cells_weights_states_and_outputs():
    cells = [LSTMCell(U), GRUCell(4)]
    rnn = randomize(built(RNN(cells, return_sequences=True, return_state=True)), seed=17)
    assert [tuple(w.shape) for w in rnn.weights] == [(F, 4 * U), (U, 4 * U), (4 * U,), (U, 12), (4, 12), (2, 12)]
    assert rnn.state_size == [[U, U], 4]
    x = inputs(seed=18)
    out, (h1, c1), (h2,) = rnn(x, mask=right_mask())
    lstm = built(LSTM(U, return_sequences=True))
    gru = built(GRU(4, return_sequences=True, return_state=True), U)
    lstm.set_weights(rnn.get_weights()[:3])
    gru.set_weights(rnn.get_weights()[3:])
    want, h_want = gru(lstm(x, mask=right_mask()), mask=right_mask())
    torch.testing.assert_close(out, want, **TOL)
    torch.testing.assert_close(h2, h_want, **TOL)
    assert rnn.compute_output_shape((None, T, F)) == [(None, T, 4), [(None, U), (None, U)], (None, 4)]


# ----- shapes and masks for the functional API -------------------------------------------------------------
def test_output_shapes_and_masks_with_return_state():
    lstm = LSTM(U, return_sequences=True, return_state=True)
    assert lstm.compute_output_shape((None, T, F)) == [(None, T, U), (None, U), (None, U)]
    mask = right_mask()
    assert lstm.compute_mask(None, mask)[0] is mask and lstm.compute_mask(None, mask)[1:] == [None, None]
    assert GRU(U).compute_output_shape((2, T, F)) == (2, U) and GRU(U).compute_mask(None, mask) is None
    bi = Bidirectional(LSTM(U, return_state=True))
    assert bi.compute_output_shape((None, T, F)) == [(None, 2 * U)] + [(None, U)] * 4
    assert bi.compute_mask(None, mask) == [None] * 5
    bi_none = Bidirectional(GRU(U, return_sequences=True, return_state=True), merge_mode=None)
    assert bi_none.compute_output_shape((None, T, F)) == [(None, T, U), (None, T, U), (None, U), (None, U)]
    masks = bi_none.compute_mask(None, mask)
    assert masks[0] is mask and masks[1] is mask and masks[2:] == [None, None]
    assert Bidirectional(GRU(U)).compute_output_shape((None, T, F)) == (None, 2 * U)
    bi_out = built(bi)(inputs(seed=19))
    assert [tuple(t.shape) for t in bi_out] == [(B, 2 * U)] + [(B, U)] * 4


# ----- Bidirectional over RNN(cell) -------------------------------------------------------------------------
def test_bidirectional_over_rnn_of_a_built_in_cell_is_one_kernel_call():
    bi = randomize(built(Bidirectional(RNN(LSTMCell(U), return_sequences=True, return_state=True))), seed=20)
    same = built(Bidirectional(LSTM(U, return_sequences=True, return_state=True)))
    same.set_weights(bi.get_weights())
    x, mask = inputs(seed=21), right_mask()
    init = [torch.randn(B, U) * 0.3 for _ in range(4)]
    got = bi(x, mask=mask, initial_state=init)
    want = same(x, mask=mask, initial_state=init)
    assert bi.execution_path == same.execution_path
    assert bi.execution_path.endswith(", both directions in one call")
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bidirectional_over_a_user_cell_runs_each_direction_step_by_step():
    bi = randomize(built(Bidirectional(RNN(NestedCell(U), return_sequences=True))), seed=22)
    x, mask = inputs(seed=23), right_mask()
    init = [torch.randn(B, U), [torch.zeros(B, U), torch.zeros(B, 2)]] * 2
    out = bi(x, mask=mask, initial_state=init)
    assert bi.execution_path == "per direction: NestedCell has no fused kernel"
    fw = bi.forward_layer(x, mask=mask, initial_state=init[:2])
    bw = bi.backward_layer(x, mask=mask, initial_state=init[2:])
    torch.testing.assert_close(out, torch.cat([fw, bw.flip(1)], -1))
    with pytest.raises(ValueError, match="even number"):
        bi(x, initial_state=init[:3])


# ----- config round trips -----------------------------------------------------------------------------------
def round_trip(layer, custom_objects=None):
    spec = json.loads(json.dumps(registry.serialize(layer)))  # JSON-able
    return registry.deserialize(spec, custom_objects)


@pytest.mark.parametrize("make", [
    lambda: RNN(LSTMCell(U, unit_forget_bias=False, dropout=0.1), return_sequences=True, go_backwards=True),
    lambda: RNN(GRUCell(U, reset_after=False), return_state=True, zero_output_for_mask=True),
    lambda: RNN([SimpleRNNCell(U, activation="relu"), LSTMCell(4)], stateful=True),
    lambda: RNN(StackedRNNCells([GRUCell(U), GRUCell(3)])),
    lambda: Bidirectional(RNN(GRUCell(U), return_sequences=True), merge_mode="sum"),
    lambda: Bidirectional(LSTM(U), backward_layer=LSTM(U, go_backwards=True, name="back")),
    lambda: RNN(MinimalRNNCell(U), return_sequences=True),
    lambda: Bidirectional(RNN(NestedCell(U))),
])
def test_config_round_trip(make):
    layer = make()
    custom = {"MinimalRNNCell": MinimalRNNCell, "NestedCell": NestedCell}
    again = round_trip(layer, custom)
    assert type(again) is type(layer)
    assert registry.serialize(again) == registry.serialize(layer)
    built(layer)
    randomize(layer, seed=24)
    built(again).set_weights(layer.get_weights())
    for one in (layer, again):
        one.eval()
        one.reset_states()  # building ran a batch of one through the stateful layer
    for a, b in zip(as_list(layer(inputs(seed=25))), as_list(again(inputs(seed=25)))):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rnn_config_nests_the_cell_as_keras():
    config = RNN(LSTMCell(U, name="my_cell"), return_sequences=True).get_config()
    assert config["cell"]["class_name"] == "LSTMCell"
    assert config["cell"]["config"]["units"] == U and config["cell"]["config"]["name"] == "my_cell"
    stacked = RNN([GRUCell(U), GRUCell(3)]).get_config()["cell"]
    assert stacked["class_name"] == "StackedRNNCells"
    assert [c["class_name"] for c in stacked["config"]["cells"]] == ["GRUCell", "GRUCell"]
    with pytest.raises(ValueError, match="Unknown layer class 'MinimalRNNCell'"):
        round_trip(RNN(MinimalRNNCell(U)))


# ----- against Keras 3 ---------------------------------------------------------------------------------------
def keras_pair(k_layer, r_layer, features=F, seed=26):
    """Both built, rnnkit holding Keras's (perturbed) weights."""
    k_layer(np.zeros((1, 2, features), "float32"))
    built(r_layer, features)
    rng = np.random.default_rng(seed)
    weights = [(w + rng.normal(0, 0.3, w.shape)).astype("float32") for w in k_layer.get_weights()]
    k_layer.set_weights(weights)
    assert [w.shape for w in r_layer.get_weights()] == [w.shape for w in weights]
    r_layer.set_weights(weights)
    return k_layer, r_layer


def assert_agree(k_out, r_out):
    k_flat, r_flat = flat(k_out), flat(r_out)
    assert len(k_flat) == len(r_flat)
    for k, r in zip(k_flat, r_flat):
        np.testing.assert_allclose(r.detach().numpy(), keras.ops.convert_to_numpy(k), rtol=1e-4, atol=1e-5)


KERAS_CELLS = {
    "simple_rnn": ("SimpleRNNCell", SimpleRNNCell, {}),
    "simple_rnn_relu": ("SimpleRNNCell", SimpleRNNCell, {"activation": "relu"}),
    "lstm": ("LSTMCell", LSTMCell, {}),
    "lstm_hard_sigmoid": ("LSTMCell", LSTMCell, {"recurrent_activation": "hard_sigmoid"}),
    "gru_after": ("GRUCell", GRUCell, {}),
    "gru_before": ("GRUCell", GRUCell, {"reset_after": False}),
}


@needs_keras
@pytest.mark.parametrize("name", list(KERAS_CELLS))
@pytest.mark.parametrize("mask_name", ["none", "right", "left", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_each_cell_in_rnn_agrees_with_keras(name, mask_name, go_backwards):
    keras_name, cls, extra = KERAS_CELLS[name]
    options = dict(return_sequences=True, return_state=True, go_backwards=go_backwards)
    k_rnn, r_rnn = keras_pair(keras.layers.RNN(getattr(keras.layers, keras_name)(U, **extra), **options),
                              RNN(cls(U, **extra), **options))
    x = inputs(seed=27).numpy()
    mask = MASKS[mask_name]()
    states = [np.random.default_rng(28).normal(0, 0.5, (B, U)).astype("float32")] * len(r_rnn.state_size)
    call = {"initial_state": [torch.as_tensor(s) for s in states]} | ({} if mask is None else {"mask": mask})
    assert_agree(k_rnn(torch.as_tensor(x), **call), r_rnn(torch.as_tensor(x), **call))


class KerasNestedCell(keras.layers.Layer if keras is not None else object):
    """NestedCell in Keras."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.state_size, self.output_size = units, [units, [units, 2]], units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        ops = keras.ops
        h, (a, b) = states
        h = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel) + a)
        return h, [h, [0.5 * a + h, 0.9 * b + ops.sum(h, axis=-1, keepdims=True)]]

    def get_initial_state(self, batch_size=None):
        zeros = keras.ops.zeros
        return [zeros((batch_size, self.units)), [zeros((batch_size, self.units)), zeros((batch_size, 2))]]


@needs_keras
@pytest.mark.parametrize("mask_name", ["none", "right", "holes"])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_user_cell_with_nested_states_agrees_with_keras(mask_name, go_backwards, return_sequences):
    options = dict(return_sequences=return_sequences, return_state=True, go_backwards=go_backwards)
    k_rnn, r_rnn = keras_pair(keras.layers.RNN(KerasNestedCell(U), **options), RNN(NestedCell(U), **options))
    x, mask = inputs(seed=29), MASKS[mask_name]()
    k_out = k_rnn(x, **({} if mask is None else {"mask": mask}))
    r_out = r_rnn(x, **({} if mask is None else {"mask": mask}))
    assert_agree(k_out, r_out)
    assert r_rnn.compute_output_shape((B, T, F)) == list(k_rnn.compute_output_shape((B, T, F)))


@needs_keras
@pytest.mark.parametrize("mask_name", ["none", "right", "holes"])
def test_stacked_cells_agree_with_keras(mask_name):
    options = dict(return_sequences=True, return_state=True, go_backwards=True)
    k_rnn, r_rnn = keras_pair(
        keras.layers.RNN([keras.layers.LSTMCell(U), keras.layers.GRUCell(4), keras.layers.SimpleRNNCell(3)], **options),
        RNN([LSTMCell(U), GRUCell(4), SimpleRNNCell(3)], **options))
    assert [w.path.split("/")[-1] for w in k_rnn.weights] == ["kernel", "recurrent_kernel", "bias"] * 3
    x, mask = inputs(seed=30), MASKS[mask_name]()
    k_out = k_rnn(x, **({} if mask is None else {"mask": mask}))
    r_out = r_rnn(x, **({} if mask is None else {"mask": mask}))
    assert len(k_out) == len(r_out) == 4 and len(r_out[1]) == 2  # output, [h1, c1], [h2], [h3]
    assert_agree(k_out, r_out)
    assert r_rnn.compute_output_shape((B, T, F)) == list(k_rnn.compute_output_shape((B, T, F)))


@needs_keras
def test_bidirectional_rnn_of_a_cell_agrees_with_keras():
    k_bi, r_bi = keras_pair(
        keras.layers.Bidirectional(keras.layers.RNN(keras.layers.GRUCell(U), return_sequences=True,
                                                    return_state=True)),
        Bidirectional(RNN(GRUCell(U), return_sequences=True, return_state=True)))
    x, mask = inputs(seed=31), right_mask()
    assert_agree(k_bi(x, mask=mask), r_bi(x, mask=mask))
    assert r_bi.compute_output_shape((B, T, F)) == list(k_bi.compute_output_shape((B, T, F)))
