"""SimpleRNN / LSTM / GRU against an explicit float64 step-by-step reference of Keras's equations.

The reference here is written independently of rnnkit.recurrence: one time step at a time,
per-gate slices of Keras-layout weights, masks applied exactly as Keras's RNN loop does.
Both execution paths (fused kernel and step-by-step) are checked, values and gradients.
"""
import itertools

import numpy as np
import pytest
import torch

from rnnkit.layers import GRU, LSTM, SimpleRNN

B, T, F, U = 3, 6, 4, 5
ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "hard_sigmoid":
       lambda x: torch.clamp((x + 3) / 6, 0, 1)}


def keras_step(kind, x_t, h, c, W, Ub, b, act, ract, reset_after, dp, rdp):
    """One Keras time step. Returns (output, h, c)."""
    if dp is not None:
        x_t = x_t * dp
    h_in = h if rdp is None else h * rdp
    if kind == "simple_rnn":
        z = x_t @ W + (b if b is not None else 0) + h_in @ Ub
        h = act(z)
        return h, h, None
    if kind == "lstm":
        z = x_t @ W + h_in @ Ub + (b if b is not None else 0)
        i = ract(z[:, :U])
        f = ract(z[:, U:2 * U])
        g = act(z[:, 2 * U:3 * U])
        o = ract(z[:, 3 * U:])
        c = f * c + i * g
        h = o * act(c)
        return h, h, c
    # GRU
    if b is None:
        bi, br = 0, 0
    elif reset_after:
        bi, br = b[0], b[1]
    else:
        bi, br = b, None
    xz = x_t @ W[:, :U] + (bi[:U] if b is not None else 0)
    xr = x_t @ W[:, U:2 * U] + (bi[U:2 * U] if b is not None else 0)
    xh = x_t @ W[:, 2 * U:] + (bi[2 * U:] if b is not None else 0)
    if reset_after:
        rec = h_in @ Ub + (br if b is not None else 0)
        z = ract(xz + rec[:, :U])
        r = ract(xr + rec[:, U:2 * U])
        hh = act(xh + r * rec[:, 2 * U:])
    else:
        z = ract(xz + h_in @ Ub[:, :U])
        r = ract(xr + h_in @ Ub[:, U:2 * U])
        hh = act(xh + (r * h_in) @ Ub[:, 2 * U:])
    h = z * h + (1 - z) * hh
    return h, h, None


def keras_reference(kind, x, weights, *, mask=None, go_backwards=False, h0=None, c0=None,
                    act="tanh", ract="sigmoid", reset_after=True, dp=None, rdp=None, zero_output_for_mask=False):
    W, Ub = weights[0], weights[1]
    b = weights[2] if len(weights) > 2 else None
    h = torch.zeros(x.shape[0], U, dtype=x.dtype) if h0 is None else h0
    c = torch.zeros(x.shape[0], U, dtype=x.dtype) if c0 is None else c0
    steps = list(range(x.shape[1]))
    if go_backwards:
        steps = steps[::-1]
    outputs, prev = [], torch.zeros(x.shape[0], U, dtype=x.dtype)
    for t in steps:
        out, h_new, c_new = keras_step(kind, x[:, t], h, c, W, Ub, b, ACT[act], ACT[ract], reset_after, dp, rdp)
        if mask is not None:
            m = mask[:, t:t + 1]
            out = torch.where(m, out, torch.zeros_like(out) if zero_output_for_mask else prev)
            h = torch.where(m, h_new, h)
            if c_new is not None:
                c = torch.where(m, c_new, c)
        else:
            h, c = h_new, c_new
        outputs.append(out)
        prev = out
    states = [h, c] if kind == "lstm" else [h]
    return torch.stack(outputs, 1), states


def make_layer(kind, **kw):
    cls = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}[kind]
    layer = cls(U, **kw)
    layer(torch.zeros(1, 1, F))
    with torch.no_grad():  # non-trivial biases so every bias term is exercised
        for w in layer.weights:
            w.copy_(torch.randn_like(w) * 0.5)
    return layer.double()


def masks():
    right = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4], dtype=torch.bool)
    left = right.flip(1)
    arbitrary = torch.tensor([[1, 0, 1, 1, 0, 1], [0, 0, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    return {"none": None, "right": right, "left": left, "arbitrary": arbitrary}


KINDS = [("simple_rnn", {}), ("lstm", {}), ("gru", {"reset_after": True}), ("gru", {"reset_after": False})]


@pytest.mark.parametrize("kind,extra", KINDS)
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_name", ["none", "right", "left", "arbitrary"])
@pytest.mark.parametrize("use_fused", ["auto", False])
def test_matches_keras_equations(kind, extra, use_bias, go_backwards, mask_name, use_fused):
    torch.manual_seed(0)
    layer = make_layer(kind, use_bias=use_bias, go_backwards=go_backwards, return_sequences=True,
                       return_state=True, use_fused=use_fused, **extra)
    x = torch.randn(B, T, F, dtype=torch.float64, requires_grad=True)
    mask = masks()[mask_name]
    out, *states = layer(x, mask=mask)
    weights = [w for w in layer.weights]
    ref_out, ref_states = keras_reference(kind, x, weights, mask=mask, go_backwards=go_backwards,
                                          reset_after=extra.get("reset_after", True))
    torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-10)
    for s, r in zip(states, ref_states):
        torch.testing.assert_close(s, r, rtol=1e-9, atol=1e-10)
    # gradients with respect to inputs and every weight
    probe = torch.randn_like(out)
    grads = torch.autograd.grad((out * probe).sum() + sum(s.sum() for s in states), [x] + weights)
    ref_grads = torch.autograd.grad((ref_out * probe).sum() + sum(s.sum() for s in ref_states), [x] + weights)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-9)
    expected_path = "fused" if (use_fused == "auto" and extra.get("reset_after", True)
                                and mask_name != "arbitrary") else "reference"
    assert layer.execution_path.startswith(expected_path), layer.execution_path


@pytest.mark.parametrize("kind,extra", KINDS)
def test_initial_state_and_last_output(kind, extra):
    torch.manual_seed(1)
    layer = make_layer(kind, return_state=True, **extra)
    x = torch.randn(B, T, F, dtype=torch.float64)
    init = [torch.randn(B, U, dtype=torch.float64) for _ in range(2 if kind == "lstm" else 1)]
    out, *states = layer(x, initial_state=init)
    ref_out, ref_states = keras_reference(kind, x, layer.weights, h0=init[0], c0=init[1] if kind == "lstm" else None,
                                          reset_after=extra.get("reset_after", True))
    torch.testing.assert_close(out, ref_out[:, -1])
    assert out.shape == (B, U)
    for s, r in zip(states, ref_states):
        torch.testing.assert_close(s, r)


@pytest.mark.parametrize("kind,act,ract", [("simple_rnn", "relu", "sigmoid"), ("lstm", "relu", "hard_sigmoid"),
                                           ("gru", "tanh", "hard_sigmoid")])
def test_non_default_activations(kind, act, ract):
    torch.manual_seed(2)
    kw = {"activation": act} if kind == "simple_rnn" else {"activation": act, "recurrent_activation": ract}
    layer = make_layer(kind, return_sequences=True, **kw)
    x = torch.randn(B, T, F, dtype=torch.float64)
    out = layer(x)
    ref, _ = keras_reference(kind, x, layer.weights, act=act, ract=ract)
    torch.testing.assert_close(out, ref)
    fused_ok = kind == "simple_rnn"
    assert layer.execution_path.startswith("fused" if fused_ok else "reference")


@pytest.mark.parametrize("kind,extra", KINDS)
def test_dropout_masks_reused_every_step(kind, extra, monkeypatch):
    """dropout / recurrent_dropout: one mask per sequence, applied as in Keras's cells."""
    torch.manual_seed(3)
    layer = make_layer(kind, dropout=0.3, recurrent_dropout=0.4, return_sequences=True, **extra)
    made = {}

    def fixed_mask(batch, width, rate, like):
        m = (torch.rand(batch, width, dtype=like.dtype) > rate).to(like.dtype) / (1 - rate)
        made[width] = m
        return m

    monkeypatch.setattr(layer, "_dropout_mask", fixed_mask)
    layer.train()
    x = torch.randn(B, T, F, dtype=torch.float64)
    out = layer(x)
    assert layer.execution_path.startswith("reference")
    ref, _ = keras_reference(kind, x, layer.weights, dp=made[F], rdp=made[U],
                             reset_after=extra.get("reset_after", True))
    torch.testing.assert_close(out, ref)
    layer.eval()
    torch.testing.assert_close(layer(x), keras_reference(kind, x, layer.weights,
                                                         reset_after=extra.get("reset_after", True))[0])


def test_parameter_shapes_and_counts_match_keras():
    shapes = {}
    for cls, kw in [(SimpleRNN, {}), (LSTM, {}), (GRU, {}), (GRU, {"reset_after": False})]:
        layer = cls(7, **kw)
        layer(torch.zeros(2, 3, 4))
        shapes[(cls.__name__, kw.get("reset_after", True))] = [tuple(w.shape) for w in layer.weights]
    assert shapes[("SimpleRNN", True)] == [(4, 7), (7, 7), (7,)]
    assert shapes[("LSTM", True)] == [(4, 28), (7, 28), (28,)]
    assert shapes[("GRU", True)] == [(4, 21), (7, 21), (2, 21)]
    assert shapes[("GRU", False)] == [(4, 21), (7, 21), (21,)]


def test_default_initialisers_are_keras():
    torch.manual_seed(4)
    layer = LSTM(16)
    layer(torch.zeros(1, 1, 8))
    kernel, rec, bias = layer.get_weights()
    limit = np.sqrt(6 / (8 + 64))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.8 * limit
    np.testing.assert_allclose(rec @ rec.T, np.eye(16), atol=1e-5)  # orthogonal rows
    np.testing.assert_array_equal(bias, np.r_[np.zeros(16), np.ones(16), np.zeros(32)])


def test_stateful_carries_state_between_batches_and_resets():
    torch.manual_seed(5)
    layer = make_layer("gru", stateful=True)
    layer.reset_states()
    x = torch.randn(B, T, F, dtype=torch.float64)
    first = layer(x[:, :3])
    second = layer(x[:, 3:])
    whole = keras_reference("gru", x, layer.weights)[0]
    torch.testing.assert_close(first, whole[:, 2])
    torch.testing.assert_close(second, whole[:, -1])
    layer.reset_states()
    torch.testing.assert_close(layer(x[:, :3]), first)


def test_variable_time_length_between_calls():
    layer = LSTM(4, return_sequences=True)
    assert layer(torch.randn(2, 5, 3)).shape == (2, 5, 4)
    assert layer(torch.randn(2, 9, 3)).shape == (2, 9, 4)


@pytest.mark.parametrize("bad,message", [
    (torch.randn(2, 3), "3-D input"),
    (torch.randn(2, 5, 7), "last dimension 3"),
    (torch.randn(2, 0, 3), "no time steps"),
])
def test_bad_input_shapes_name_layer_and_shapes(bad, message):
    layer = SimpleRNN(4, name="my_rnn")
    layer(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match=message) as info:
        layer(bad)
    assert "my_rnn" in str(info.value) and str(tuple(bad.shape)) in str(info.value)


def test_unknown_argument_suggests_the_right_one():
    with pytest.raises(TypeError, match="(?i)did you mean 'return_sequences'"):
        SimpleRNN(32, return_sequence=True)
    with pytest.raises(TypeError, match="'reset_after'"):
        GRU(3, reset_afer=False)


def test_forcing_fused_on_unsupported_config_is_an_error():
    layer = GRU(3, reset_after=False, use_fused=True)
    with pytest.raises(ValueError, match="reset_after=False"):
        layer(torch.randn(2, 4, 3))


def test_every_combination_listed_runs_both_paths_equal_in_float32():
    torch.manual_seed(6)
    for kind, extra in KINDS:
        for rs, gb in itertools.product([True, False], [True, False]):
            fast = make_layer(kind, return_sequences=rs, go_backwards=gb, **extra).float()
            slow = make_layer(kind, return_sequences=rs, go_backwards=gb, use_fused=False, **extra).float()
            slow.set_weights(fast.get_weights())
            x = torch.randn(8, 30, F)
            torch.testing.assert_close(fast(x), slow(x), rtol=1e-5, atol=1e-5)
