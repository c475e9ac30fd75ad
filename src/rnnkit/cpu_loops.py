"""SimpleRNN on the CPU in torch ops: whole sequences with back-propagation through time written out.

ATen has no fused CPU kernel for this cell (oneDNN serves the LSTM): it runs it as a loop
of autograd-recorded ops, and for layers of tens of units that bookkeeping, not arithmetic,
is the cost. Here one ``autograd.Function`` runs the forward loop without recording
anything (two in-place ops per step), keeps the outputs, and computes the gradients in a
second loop. The input projection and the weight gradients are single matrix products
over all steps. Same weight layout and results as ``torch.rnn_tanh`` / ``torch.rnn_relu``,
checked against the step-by-step reference in ``rnnkit.recurrence`` and by
``torch.autograd.gradcheck``.

The fused path uses it for float64, and where rnnkit's native kernels
(``rnnkit.cpu_kernels``, faster still) could not be built.
"""
import torch

def simple_rnn(x, hx, params, has_bias, num_layers, dropout, train, bidirectional, batch_first, relu=False):
    """``torch.rnn_tanh``'s call (one layer, batch first) over :class:`_SimpleRNNLoop`."""
    def one_direction(x, h0, w_ih, w_hh, b_ih, b_hh):
        return _SimpleRNNLoop.apply(x, h0, w_ih, w_hh, None if b_ih is None else b_ih + b_hh, relu)

    return by_direction(one_direction, x, hx, params, has_bias, bidirectional)


def by_direction(one_direction, x, hx, params, has_bias, bidirectional):
    """A ``torch.rnn_tanh``-style call (one layer, batch first) as one call per direction.

    ``one_direction(x, h0, w_ih, w_hh, b_ih, b_hh)`` returns (outputs, final h); the reverse
    direction gets the sequence flipped in time and its outputs are flipped back. Returns
    the outputs (batch, time, directions * units) and the final states (directions, batch, units).
    """
    directions = 2 if bidirectional else 1
    per_direction = len(params) // directions
    outs, finals = [], []
    for d in range(directions):
        w_ih, w_hh, *biases = params[d * per_direction:(d + 1) * per_direction]
        b_ih, b_hh = biases if has_bias else (None, None)
        out, h = one_direction(x if d == 0 else x.flip(1), hx[d], w_ih, w_hh, b_ih, b_hh)
        outs.append(out if d == 0 else out.flip(1))
        finals.append(h)
    out = outs[0] if directions == 1 else torch.cat(outs, dim=-1)
    return out, torch.stack(finals)


def _project(x, w_ih, b_ih):
    """x (batch, time, features) -> (x time-major, x_t W_ih^T + b for every step at once)."""
    x_tm = x.transpose(0, 1).contiguous()
    projected = torch.matmul(x_tm, w_ih.t())
    if b_ih is not None:
        projected += b_ih
    return x_tm, projected


def _input_weight_grad(da, x_tm):
    """sum_t da_t^T x_t as one matrix product over all steps."""
    steps, batch, width = da.shape
    return da.view(steps * batch, width).t().mm(x_tm.view(steps * batch, -1))


def _recurrent_weight_grad(da, h0, hs):
    """sum_t da_t^T h_{t-1} (h_{-1} = h0) as two matrix products."""
    grad = da[0].t().mm(h0)
    if da.shape[0] > 1:
        grad += da[1:].reshape(-1, da.shape[-1]).t().mm(hs[:-1].reshape(-1, hs.shape[-1]))
    return grad


class _SimpleRNNLoop(torch.autograd.Function):
    """h_t = act(x_t W_ih^T + b + h_{t-1} W_hh^T), and through time backwards:

        da_t = (dout_t + dh_t) * act'(a_t)      dh_{t-1} = da_t W_hh
        dW_hh = sum_t da_t^T h_{t-1}            dW_ih = sum_t da_t^T x_t      db = sum_t da_t
    """

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, bias, relu):
        x_tm, hs = _project(x, w_ih, bias)  # a_t without the recurrent term; the loop adds it in place
        activate = torch.relu_ if relu else torch.tanh_
        w_hh_t, h = w_hh.t(), h0
        for a_t in hs.unbind(0):
            h = activate(a_t.addmm_(h, w_hh_t))
        ctx.set_materialize_grads(False)
        ctx.relu, ctx.has_bias = relu, bias is not None
        ctx.save_for_backward(x_tm, h0, w_ih, w_hh, hs)
        return hs.transpose(0, 1), h.clone()

    @staticmethod
    def backward(ctx, d_out, d_last):
        x_tm, h0, w_ih, w_hh, hs = ctx.saved_tensors
        steps, batch, units = hs.shape
        # act'(a_t) for every step at once: relu' = [h > 0], tanh' = 1 - h^2
        slope = (hs > 0).to(hs.dtype) if ctx.relu else torch.addcmul(torch.ones_like(hs), hs, hs, value=-1)
        dh = d_last if d_last is not None else hs.new_zeros(batch, units)
        # da_t = dout_t * slope_t + dh_t * slope_t, dh_{t-1} = da_t W_hh: two ops per step
        if d_out is None:
            da = torch.zeros_like(hs)
        else:
            da = torch.mul(slope, d_out.transpose(0, 1), out=torch.empty_like(hs))
        for da_t, slope_t in zip(reversed(da.unbind(0)), reversed(slope.unbind(0))):
            dh = da_t.addcmul_(dh, slope_t).mm(w_hh)
        d_w_ih, d_w_hh = _input_weight_grad(da, x_tm), _recurrent_weight_grad(da, h0, hs)
        d_bias = da.sum((0, 1)) if ctx.has_bias else None
        d_x = da.matmul(w_ih).transpose(0, 1) if ctx.needs_input_grad[0] else None
        return d_x, dh, d_w_ih, d_w_hh, d_bias, None
