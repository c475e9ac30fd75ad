"""The fused fast path (``rnnkit.fused``) against the step-by-step reference (``rnnkit.recurrence``).

For every configuration the fast path accepts, the same layer run both ways must give the
same outputs, final states and gradients (inputs, initial states and every weight) within
float32 tolerance. Also: which path is chosen and why (``execution_path``), the converted-
weight cache (in-place optimizer steps, ``set_weights``, ``load_state_dict``), Bidirectional
checked against its two directions run through the reference functions, and masked
(right-padded) batches against each sequence run alone without padding.
"""
import numpy as np
import pytest
import torch

from rnnkit import Sequential, fused
from rnnkit.layers import GRU, LSTM, Bidirectional, Dense, SimpleRNN
from rnnkit.recurrence import SEQUENCE_FUNCTIONS, SequenceOptions

B, T, F, U = 4, 7, 3, 5
LENGTHS = [7, 5, 1, 3]  # one full row, one of length 1
TOL = dict(rtol=1e-4, atol=2e-5)
GRAD_TOL = dict(rtol=1e-4, atol=1e-4)

CELLS = {
    "simple_rnn_tanh": (SimpleRNN, {}),
    "simple_rnn_relu": (SimpleRNN, {"activation": "relu"}),
    "lstm": (LSTM, {}),
    "gru": (GRU, {"reset_after": True}),
}
STATE_COUNT = {"simple_rnn_tanh": 1, "simple_rnn_relu": 1, "lstm": 2, "gru": 1}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a shared machine OpenMP's spinning
    makes them 10-20x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----- helpers -------------------------------------------------------------------------------------
def right_mask(lengths=LENGTHS, steps=T):
    """Padding after the tokens (pad_sequences(padding='post'))."""
    return torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]


def left_mask(lengths=LENGTHS, steps=T):
    """Padding before the tokens (pad_sequences' default, padding='pre')."""
    return right_mask(lengths, steps).flip(1)


MASKS = {"none": lambda: None, "right": right_mask, "left": left_mask}


def inputs(seed=0, mask=None):
    """(B, T, F) inputs; masked steps hold large values that must not matter."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    if mask is not None:
        x = torch.where(mask.unsqueeze(-1), x, 50 * torch.randn(B, T, F, generator=g))
    return x


def randomize(layer, seed=0):
    """Non-trivial values in every weight, biases included."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for w in layer.weights:
            w.copy_(torch.randn(w.shape, generator=g) * 0.4)


def build(layer, features=F):
    layer(torch.zeros(1, 1, features))
    return layer


def layer_pair(cell, seed=0, **kwargs):
    """The same layer (same weights) with the automatic choice and forced onto the reference."""
    cls, extra = CELLS[cell]
    fast = build(cls(U, **extra, **kwargs))
    slow = build(cls(U, use_fused=False, **extra, **kwargs))
    randomize(fast, seed)
    slow.set_weights(fast.get_weights())
    return fast, slow


def initial_states(count, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(B, U, generator=g) * 0.5).requires_grad_(True) for _ in range(count)]


def run_with_grads(layer, x, probe_seed=7, initial_state=None, **call):
    """Outputs (as a list) and d(sum(outputs * probes))/d(x, initial states, weights)."""
    x = x.clone().requires_grad_(True)
    states = None if initial_state is None else [s.detach().clone().requires_grad_(True) for s in initial_state]
    out = layer(x, initial_state=states, **call) if states is not None else layer(x, **call)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    g = torch.Generator().manual_seed(probe_seed)
    loss = sum((o * torch.randn(o.shape, generator=g)).sum() for o in outs)
    wrt = [x] + (states or []) + list(layer.trainable_weights)
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(wrt, grads)]
    return [o.detach() for o in outs], grads


def assert_same(fast_result, slow_result):
    (fast_out, fast_grads), (slow_out, slow_grads) = fast_result, slow_result
    assert len(fast_out) == len(slow_out)
    for a, b in zip(fast_out, slow_out):
        torch.testing.assert_close(a, b, **TOL)
    assert len(fast_grads) == len(slow_grads)
    for i, (a, b) in enumerate(zip(fast_grads, slow_grads)):
        torch.testing.assert_close(a, b, **GRAD_TOL, msg=lambda m: f"gradient {i}: {m}")


# ----- single layers: every accepted configuration --------------------------------------------------
RETURNS = {"last": (False, False), "sequences": (True, False), "last+state": (False, True),
           "sequences+state": (True, True)}


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("returns", list(RETURNS))
@pytest.mark.parametrize("with_initial_state", [False, True])
def test_fused_equals_reference(cell, use_bias, go_backwards, mask_name, returns, with_initial_state):
    return_sequences, return_state = RETURNS[returns]
    fast, slow = layer_pair(cell, seed=3, use_bias=use_bias, go_backwards=go_backwards,
                            return_sequences=return_sequences, return_state=return_state)
    mask = MASKS[mask_name]()
    x = inputs(seed=4, mask=mask)
    init = initial_states(STATE_COUNT[cell]) if with_initial_state else None
    call = {} if mask is None else {"mask": mask}
    fast_result = run_with_grads(fast, x, initial_state=init, **call)
    slow_result = run_with_grads(slow, x, initial_state=init, **call)
    assert fast.execution_path.startswith("fused: "), fast.execution_path
    assert slow.execution_path == "reference: use_fused=False"
    assert_same(fast_result, slow_result)
    out = fast_result[0][0]
    assert out.shape == ((B, T, U) if return_sequences else (B, U))
    assert len(fast_result[0]) == 1 + (STATE_COUNT[cell] if return_state else 0)


@pytest.mark.parametrize("cell", list(CELLS))
def test_input_dropout_in_training_stays_fused_and_equal(cell, monkeypatch):
    """dropout (not recurrent_dropout) is one mask per sequence, applied before the kernel."""
    fast, slow = layer_pair(cell, seed=5, dropout=0.4, return_sequences=True)
    keep = (torch.rand(B, F, generator=torch.Generator().manual_seed(9)) > 0.4).float() / 0.6
    for layer in (fast, slow):
        monkeypatch.setattr(layer, "_dropout_mask", lambda batch, width, rate, like: keep)
    x = inputs(seed=6)
    fast_result = run_with_grads(fast, x, training=True)
    slow_result = run_with_grads(slow, x, training=True)
    assert fast.execution_path.startswith("fused: ")
    assert_same(fast_result, slow_result)
    without = run_with_grads(slow, x, training=False)
    assert not torch.allclose(without[0][0], slow_result[0][0])  # the mask did something


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("mask_name", ["right", "left"])
def test_zero_output_for_mask(cell, mask_name):
    fast, slow = layer_pair(cell, seed=8, return_sequences=True, zero_output_for_mask=True)
    mask = MASKS[mask_name]()
    x = inputs(seed=2, mask=mask)
    fast_result = run_with_grads(fast, x, mask=mask)
    slow_result = run_with_grads(slow, x, mask=mask)
    assert fast.execution_path.startswith("fused: ")
    assert_same(fast_result, slow_result)
    assert torch.all(fast_result[0][0][~mask] == 0)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("mask_name", ["right", "left"])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_masked_inference_equals_reference(cell, mask_name, return_sequences):
    """Without autograd the masked fast path may pick another kernel (unpacked or packed)."""
    fast, slow = layer_pair(cell, seed=13, return_sequences=return_sequences, return_state=True)
    mask = MASKS[mask_name]()
    x = inputs(seed=14, mask=mask)
    with torch.inference_mode():
        fast_out, slow_out = fast(x, mask=mask), slow(x, mask=mask)
    assert fast.execution_path.startswith("fused: ")
    for a, b in zip(fast_out, slow_out):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("cell", ["simple_rnn_tanh", "gru", "lstm"])
def test_bf16_autocast_on_cpu_keeps_gru_and_simple_rnn_in_float32(cell):
    """ATen's GRU and SimpleRNN loops are slower in bf16 on the CPU: they run float32 under
    autocast (same values as without it); the LSTM runs oneDNN's bf16 kernel where this CPU has one,
    else float32 too."""
    fast, _ = layer_pair(cell, seed=15, return_sequences=True)
    x = inputs(seed=16)
    probe = torch.randn(B, T, U, generator=torch.Generator().manual_seed(17))

    def forward_backward(autocast):
        x_ = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = fast(x_)
        grads = torch.autograd.grad((out.float() * probe).sum(), [x_, *fast.trainable_weights])  # as fit() does
        return out, grads

    plain, plain_grads = forward_backward(False)
    mixed, mixed_grads = forward_backward(True)
    if cell == "lstm" and fused.cpu_bf16_lstm():
        assert mixed.dtype == torch.bfloat16
        torch.testing.assert_close(mixed.float(), plain, rtol=0, atol=0.05)
    else:
        assert mixed.dtype == torch.float32
        torch.testing.assert_close(mixed, plain, rtol=0, atol=0)
        for a, b in zip(mixed_grads, plain_grads):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_longer_sequences_and_wider_layers():
    """Beyond toy sizes: 60 steps, 32 units, batch 16, masked and not."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(16, 60, 8, generator=g)
    lengths = torch.randint(1, 61, (16,), generator=g)
    mask = torch.arange(60)[None, :] < lengths[:, None]
    for cls, kwargs in [(LSTM, {}), (GRU, {}), (SimpleRNN, {}), (LSTM, {"go_backwards": True})]:
        fast = build(cls(32, return_sequences=True, **kwargs), 8)
        slow = build(cls(32, return_sequences=True, use_fused=False, **kwargs), 8)
        randomize(fast, 12)
        with torch.no_grad():  # keep activations in range
            for w in fast.weights:
                w.mul_(0.5)
        slow.set_weights(fast.get_weights())
        for m in (None, mask, mask.flip(1)):
            fast_result = run_with_grads(fast, x, mask=m)
            slow_result = run_with_grads(slow, x, mask=m)
            assert fast.execution_path.startswith("fused: ")
            assert_same(fast_result, slow_result)


# ----- Bidirectional ---------------------------------------------------------------------------------
BI_CELLS = ["simple_rnn_tanh", "lstm", "gru"]


def bidirectional_pair(cell, merge_mode, seed=0, **kwargs):
    cls, extra = CELLS[cell]
    fast = build(Bidirectional(cls(U, **extra, **kwargs), merge_mode=merge_mode))
    slow = build(Bidirectional(cls(U, use_fused=False, **extra, **kwargs), merge_mode=merge_mode))
    randomize(fast, seed)
    slow.set_weights(fast.get_weights())
    return fast, slow


def run_direction(layer, x, mask, states, backwards, zero_output_for_mask):
    """One direction through ``rnnkit.recurrence`` directly (not through the layer classes)."""
    weights = list(layer.weights)
    weights = tuple(weights) if len(weights) == 3 else (weights[0], weights[1], None)
    if states is None:
        states = [torch.zeros(x.shape[0], layer.units) for _ in range(2 if layer.kind == "lstm" else 1)]
    options = SequenceOptions(activation=layer.activation, recurrent_activation=layer.recurrent_activation,
                              mask=mask, go_backwards=backwards, zero_output_for_mask=zero_output_for_mask,
                              reset_after=getattr(layer, "reset_after", True))
    return SEQUENCE_FUNCTIONS[layer.kind](x, tuple(states), weights, options)


def manual_bidirectional(bi, x, mask=None, initial_state=None, return_sequences=False, merge_mode="concat"):
    """Keras's Bidirectional by hand: forward and go_backwards runs, backward outputs re-aligned."""
    half = None if initial_state is None else len(initial_state) // 2
    fw_states = None if initial_state is None else initial_state[:half]
    bw_states = None if initial_state is None else initial_state[half:]
    fw_seq, fw_final = run_direction(bi.forward_layer, x, mask, fw_states, False, return_sequences)
    bw_seq, bw_final = run_direction(bi.backward_layer, x, mask, bw_states, True, return_sequences)
    if return_sequences:
        fw, bw = fw_seq, bw_seq.flip(1)
    else:
        fw, bw = fw_seq[:, -1], bw_seq[:, -1]
    merged = {"concat": lambda: [torch.cat([fw, bw], -1)], "sum": lambda: [fw + bw], "mul": lambda: [fw * bw],
              "ave": lambda: [(fw + bw) / 2], None: lambda: [fw, bw]}[merge_mode]()
    return merged, list(fw_final) + list(bw_final)


@pytest.mark.parametrize("cell", BI_CELLS)
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_bidirectional_fused_equals_two_reference_directions(cell, merge_mode, return_sequences, mask_name):
    fast, slow = bidirectional_pair(cell, merge_mode, seed=13, return_sequences=return_sequences)
    mask = MASKS[mask_name]()
    x = inputs(seed=14, mask=mask)
    call = {} if mask is None else {"mask": mask}
    fast_result = run_with_grads(fast, x, **call)
    slow_result = run_with_grads(slow, x, **call)
    assert fast.execution_path.startswith("fused: ") and fast.execution_path.endswith(", both directions in one call"), \
        fast.execution_path
    assert slow.execution_path == "per direction: use_fused=False", slow.execution_path
    assert_same(fast_result, slow_result)
    expected, _ = manual_bidirectional(fast, x, mask, return_sequences=return_sequences, merge_mode=merge_mode)
    assert len(fast_result[0]) == len(expected)
    for got, want in zip(fast_result[0], expected):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("cell", BI_CELLS)
@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_bidirectional_states_and_initial_state(cell, mask_name, return_sequences):
    fast, slow = bidirectional_pair(cell, "concat", seed=15, return_sequences=return_sequences, return_state=True)
    mask = MASKS[mask_name]()
    x = inputs(seed=16, mask=mask)
    call = {} if mask is None else {"mask": mask}
    init = initial_states(2 * STATE_COUNT[cell], seed=17)
    fast_result = run_with_grads(fast, x, initial_state=init, **call)
    slow_result = run_with_grads(slow, x, initial_state=init, **call)
    assert fast.execution_path.startswith("fused"), fast.execution_path
    assert_same(fast_result, slow_result)
    merged, finals = manual_bidirectional(fast, x, mask, [s.detach() for s in init],
                                          return_sequences=return_sequences)
    got = fast_result[0]
    assert len(got) == 1 + 2 * STATE_COUNT[cell]
    for a, b in zip(got, merged + finals):
        torch.testing.assert_close(a, b, **TOL)


# ----- masked fast path vs each sequence alone ------------------------------------------------------
def _valid_span(mask_name, n):
    """Where the n tokens of a row sit, and where its padding sits."""
    return (slice(0, n), slice(n, T)) if mask_name == "right" else (slice(T - n, T), slice(0, T - n))


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_name", ["right", "left"])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_masked_fused_equals_unpadded_runs(cell, return_sequences, mask_name, go_backwards):
    fast, _ = layer_pair(cell, seed=21, return_sequences=return_sequences, return_state=True,
                         go_backwards=go_backwards)
    mask = MASKS[mask_name]()
    x = inputs(seed=22, mask=mask)
    with torch.no_grad():
        out, *states = fast(x, mask=mask)
        assert fast.execution_path.startswith("fused: ")
        for i, n in enumerate(LENGTHS):
            tokens, padding = _valid_span(mask_name, n)
            alone, *alone_states = fast(x[i:i + 1, tokens])
            for s, s_alone in zip(states, alone_states):
                torch.testing.assert_close(s[i], s_alone[0], **TOL)
            if not return_sequences:
                torch.testing.assert_close(out[i], alone[0], **TOL)
                continue
            # outputs are in processing order; Keras's masked step repeats the previous output
            # (zeros before the first token)
            processed = mask[i].flip(0) if go_backwards else mask[i]
            first = int(processed.float().argmax())
            valid = out[i][processed]
            torch.testing.assert_close(valid, alone[0], **TOL)
            torch.testing.assert_close(out[i, :first], torch.zeros(first, U))
            torch.testing.assert_close(out[i, first + n:], alone[0, -1].expand(T - first - n, U), **TOL)


@pytest.mark.parametrize("cell", BI_CELLS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("mask_name", ["right", "left"])
def test_masked_bidirectional_equals_unpadded_runs(cell, return_sequences, mask_name):
    fast, _ = bidirectional_pair(cell, "concat", seed=23, return_sequences=return_sequences)
    mask = MASKS[mask_name]()
    x = inputs(seed=24, mask=mask)
    with torch.no_grad():
        out = fast(x, mask=mask)
        assert fast.execution_path.startswith("fused")
        for i, n in enumerate(LENGTHS):
            tokens, padding = _valid_span(mask_name, n)
            alone = fast(x[i:i + 1, tokens])
            if return_sequences:
                torch.testing.assert_close(out[i, tokens], alone[0], **TOL)
                assert torch.all(out[i, padding] == 0)  # Bidirectional zeroes masked outputs (Keras)
            else:
                torch.testing.assert_close(out[i], alone[0], **TOL)


@pytest.mark.parametrize("mask_name", ["right", "left"])
def test_masked_batch_gradients_equal_unpadded_gradients(mask_name):
    """Weight gradients of a padded, masked batch = the sum over its sequences run alone."""
    fast, _ = layer_pair("lstm", seed=25)
    mask = MASKS[mask_name]()
    x = inputs(seed=26, mask=mask)
    out = fast(x, mask=mask)
    batch_grads = torch.autograd.grad(out.sum(), fast.trainable_weights)
    alone_grads = [torch.zeros_like(w) for w in fast.trainable_weights]
    for i, n in enumerate(LENGTHS):
        tokens, _ = _valid_span(mask_name, n)
        grads = torch.autograd.grad(fast(x[i:i + 1, tokens]).sum(), fast.trainable_weights)
        alone_grads = [a + g for a, g in zip(alone_grads, grads)]
    for a, b in zip(batch_grads, alone_grads):
        torch.testing.assert_close(a, b, **GRAD_TOL)


# ----- which path runs, and why ----------------------------------------------------------------------
def _with_hole():
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[1, 2] = False
    return mask


def _with_empty_row():
    mask = right_mask()
    mask[2] = False
    return mask


def _both_sides():
    mask = torch.ones(B, T, dtype=torch.bool)
    mask[0, 0] = mask[0, -1] = False
    return mask


REFERENCE_CASES = {
    "recurrent_dropout": (lambda: LSTM(U, recurrent_dropout=0.3), {"training": True},
                          "recurrent_dropout in training"),
    "gru_reset_before": (lambda: GRU(U, reset_after=False), {}, "reset_after=False has no native kernel"),
    "lstm_relu": (lambda: LSTM(U, activation="relu"), {}, "activation 'relu'"),
    "lstm_hard_sigmoid": (lambda: LSTM(U, recurrent_activation="hard_sigmoid"), {},
                          "recurrent_activation 'hard_sigmoid'"),
    "gru_sigmoid": (lambda: GRU(U, activation="sigmoid"), {}, "activation 'sigmoid'"),
    "simple_rnn_sigmoid": (lambda: SimpleRNN(U, activation="sigmoid"), {}, "activation 'sigmoid'"),
    "mask_with_hole": (lambda: GRU(U), {"mask": _with_hole()}, "neither right- nor left-padded"),
    "mask_padded_both_sides": (lambda: LSTM(U), {"mask": _both_sides()}, "neither right- nor left-padded"),
    "all_padding_row": (lambda: SimpleRNN(U), {"mask": _with_empty_row()}, "all-padding sequence"),
    "forced": (lambda: GRU(U, use_fused=False), {}, "use_fused=False"),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES))
def test_reference_path_is_chosen_and_explained(case):
    make, call, reason = REFERENCE_CASES[case]
    layer = build(make())
    layer(inputs(seed=31), **call)
    path = layer.execution_path
    assert path.startswith("reference: ") and reason in path, path


@pytest.mark.parametrize("case", ["recurrent_dropout", "gru_reset_before", "lstm_relu", "mask_with_hole",
                                  "all_padding_row"])
def test_forcing_fused_on_a_reference_case_is_an_error(case):
    make, call, reason = REFERENCE_CASES[case]
    layer = make()
    forced = type(layer).from_config({**layer.get_config(), "use_fused": True, "name": layer.name + "_f"})
    with pytest.raises(ValueError, match="cannot use the fused kernel") as info:
        forced(inputs(seed=31), **call)
    assert reason in str(info.value)


@pytest.mark.parametrize("make,call", [
    (lambda: SimpleRNN(U, activation="relu"), {}),
    (lambda: LSTM(U, recurrent_dropout=0.3), {"training": False}),  # no recurrent dropout at inference
    (lambda: GRU(U, dropout=0.3), {"training": True}),
    (lambda: LSTM(U), {"mask": right_mask()}),
    (lambda: LSTM(U), {"mask": left_mask()}),
    (lambda: LSTM(U, go_backwards=True), {"mask": right_mask()}),
    (lambda: LSTM(U), {"mask": torch.ones(B, T, dtype=torch.bool)}),
    (lambda: GRU(U, use_fused=True), {}),
])
def test_fused_path_is_chosen(make, call):
    layer = build(make())
    layer(inputs(seed=32), **call)
    assert layer.execution_path.startswith("fused: ")


@pytest.mark.parametrize("inner,call,reason", [
    (lambda: LSTM(U), {"mask": _with_hole()}, "neither right- nor left-padded"),
    (lambda: LSTM(U), {"mask": _with_empty_row()}, "all-padding sequence"),
    (lambda: GRU(U, reset_after=False), {}, "reset_after=False"),
    (lambda: LSTM(U, dropout=0.2), {"training": True}, "input dropout differs per direction in training"),
    (lambda: LSTM(U, recurrent_dropout=0.2), {"training": True}, "recurrent_dropout in training"),
    (lambda: LSTM(U, use_fused=False), {}, "use_fused=False"),
])
def test_bidirectional_path_selection(inner, call, reason):
    bi = build(Bidirectional(inner()))
    bi(inputs(seed=33), **call)
    assert bi.execution_path.startswith("per direction: ") and reason in bi.execution_path, bi.execution_path


def test_bidirectional_fallback_still_matches_manual_directions():
    """An arbitrary mask goes per direction through the reference; the result is still Keras's."""
    bi = build(Bidirectional(LSTM(U, return_sequences=True)))
    randomize(bi, 34)
    x, mask = inputs(seed=35), _with_hole()
    with torch.no_grad():
        out = bi(x, mask=mask)
        expected, _ = manual_bidirectional(bi, x, mask, return_sequences=True)
    assert bi.execution_path.startswith("per direction")
    torch.testing.assert_close(out, expected[0], **TOL)


# ----- the converted-weight cache --------------------------------------------------------------------
def test_cache_reused_while_weights_unchanged():
    layer, _ = layer_pair("gru", seed=41)
    x = inputs(seed=42)
    with torch.no_grad():
        layer(x)
        converted = layer._fused_cache.get("weights")
        layer(x)
        assert converted is not None and layer._fused_cache["weights"] is converted
    with torch.inference_mode():
        layer(x)
        assert layer._fused_cache["weights"] is converted


@pytest.mark.parametrize("cell", list(CELLS))
def test_cache_sees_optimizer_steps(cell):
    fast, slow = layer_pair(cell, seed=43, return_sequences=True)
    x = inputs(seed=44)
    opt = torch.optim.Adam(fast.trainable_weights, lr=0.05)
    with torch.no_grad():
        before = fast(x)
    for _ in range(2):  # in-place updates; the second one starts from a cached state too
        opt.zero_grad()
        fast(x).square().sum().backward()
        opt.step()
        with torch.no_grad():
            after = fast(x)
        slow.set_weights(fast.get_weights())
        with torch.no_grad():
            expected = slow(x)
        assert not torch.allclose(before, after)
        torch.testing.assert_close(after, expected, **TOL)
        before = after


def test_cache_sees_set_weights_and_load_state_dict():
    fast, slow = layer_pair("lstm", seed=45)
    x = inputs(seed=46)
    with torch.inference_mode():
        first = fast(x)
    other, _ = layer_pair("lstm", seed=47)
    fast.set_weights(other.get_weights())
    slow.set_weights(other.get_weights())
    with torch.inference_mode():
        second = fast(x)
        torch.testing.assert_close(second, slow(x), **TOL)
    assert not torch.allclose(first, second)
    third, _ = layer_pair("lstm", seed=48)
    fast.load_state_dict(third.state_dict())
    with torch.inference_mode():
        torch.testing.assert_close(fast(x), third(x), **TOL)


def test_cache_sees_bidirectional_updates():
    fast, slow = bidirectional_pair("lstm", "concat", seed=49)
    x = inputs(seed=50)
    with torch.no_grad():
        before = fast(x)
        for w in fast.backward_layer.weights:  # only the backward direction changes
            w.add_(0.1)
        after = fast(x)
    slow.set_weights(fast.get_weights())
    with torch.no_grad():
        torch.testing.assert_close(after, slow(x), **TOL)
    assert torch.allclose(before[:, :U], after[:, :U]) and not torch.allclose(before[:, U:], after[:, U:])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_model_predictions_follow_train_on_batch(bidirectional):
    """What users see: predict (cached weights), train_on_batch (in-place update), predict again."""
    def model(use_fused):
        rnn = LSTM(U, use_fused=use_fused)
        layers = [Bidirectional(rnn, input_shape=(T, F)) if bidirectional else LSTM(U, input_shape=(T, F),
                                                                                       use_fused=use_fused),
                  Dense(1)]
        m = Sequential(layers)
        m.compile(optimizer="adam", loss="mse")
        return m

    torch.manual_seed(51)
    fast, slow = model("auto"), model(False)
    slow.set_weights(fast.get_weights())
    x = inputs(seed=52).numpy()
    y = np.random.default_rng(53).standard_normal((B, 1)).astype(np.float32)
    before = fast.predict_on_batch(x)
    np.testing.assert_allclose(before, slow.predict_on_batch(x), rtol=1e-4, atol=1e-5)
    fast.train_on_batch(x, y)
    slow.train_on_batch(x, y)
    after = fast.predict_on_batch(x)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, slow.predict_on_batch(x), rtol=1e-4, atol=1e-5)
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    first = fast.layers[0]
    path = first.execution_path
    assert path.startswith("fused"), path



def test_cudnn_flat_buffer_views_follow_the_layout_and_pass_gradients():
    """The CUDA flat-buffer views (checked on the GPU by benchmarks/cuda_check.py) hold each
    weight at its layout offset, in any order and with gaps, and gradients reach the weights."""
    from rnnkit import fused

    params = [torch.randn(8, 3, requires_grad=True), torch.randn(8, 2, requires_grad=True),
              torch.randn(8, requires_grad=True), torch.randn(8, requires_grad=True)]
    offsets = [20, 0, 48, 60]  # w_hh first, a gap of 4 before w_ih, another of 4 after it, 2 spare at the end
    key = ("lstm", "tanh", 3, tuple(p.shape for p in params), False, torch.float32, torch.device("cpu"))
    fused._CUDNN_LAYOUTS[key] = (offsets, 70)
    try:
        flat = fused._cudnn_flat("lstm", "tanh", params, 3, False)
    finally:
        del fused._CUDNN_LAYOUTS[key]
    base = flat[0].untyped_storage().data_ptr()
    for view, param, offset in zip(flat, params, offsets):
        assert view.untyped_storage().data_ptr() == base and view.storage_offset() == offset
        assert view.is_contiguous()
        torch.testing.assert_close(view, param, rtol=0, atol=0)
    assert flat[0].untyped_storage().nbytes() == 70 * 4
    probes = [torch.randn_like(p) for p in params]
    sum((v * g).sum() for v, g in zip(flat, probes)).backward()
    for param, probe in zip(params, probes):
        torch.testing.assert_close(param.grad, probe, rtol=0, atol=0)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("use_bias", [True, False])
def test_simple_rnn_cpu_loop_gradients_are_exact(relu, use_bias):
    """The CPU SimpleRNN loop's hand-written back-propagation through time against autograd's
    numerical check (float64), through both the outputs and the final state."""
    from rnnkit.cpu_loops import _SimpleRNNLoop

    g = torch.Generator().manual_seed(3)

    def make(*shape):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * 0.5).requires_grad_(True)

    x, h0, w_ih, w_hh = make(3, 5, 4), make(3, 6), make(6, 4), make(6, 6)
    bias = make(6) if use_bias else None

    def fn(x, h0, w_ih, w_hh, bias):
        out, h = _SimpleRNNLoop.apply(x, h0, w_ih, w_hh, bias, relu)
        return out, h

    assert torch.autograd.gradcheck(fn, (x, h0, w_ih, w_hh, bias))

    def last_only(x, h0, w_ih, w_hh, bias):  # the output sequence unused: no gradient arrives for it
        return _SimpleRNNLoop.apply(x, h0, w_ih, w_hh, bias, relu)[1]

    assert torch.autograd.gradcheck(last_only, (x, h0, w_ih, w_hh, bias))

