import io
import json

import numpy as np
import pytest
import torch

from rnnkit import optimizers

W0 = np.array([0.5, -1.5, 2.0])
GRADS = [np.array([0.1, -0.2, 3.0]), np.array([-0.4, 1e-4, 2.0]), np.array([0.3, 0.3, -1.0])]


def run(opt, grads=GRADS, w0=W0):
    param = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt.build([param])
    for g in grads:
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return param.detach().numpy()


def rmsprop_ref(lr=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    """Keras 3: velocity = rho*v + (1-rho)*g^2; param -= lr*g/sqrt(velocity + epsilon)."""
    w, v, m, a = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for g in GRADS:
        v = rho * v + (1 - rho) * g**2
        if centered:
            a = rho * a + (1 - rho) * g
            increment = lr * g / np.sqrt(v - a**2 + epsilon)
        else:
            increment = lr * g / np.sqrt(v + epsilon)
        if momentum > 0:
            m = momentum * m + increment
            w = w - m
        else:
            w = w - increment
    return w


def adam_ref(lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None):
    """Keras 3 Adam: epsilon is added to sqrt(v), bias correction folded into the step size."""
    w, m, v, v_hat = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for step, g in enumerate(GRADS, start=1):
        if weight_decay:
            w = w - w * weight_decay * lr
        alpha = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        v_hat = np.maximum(v_hat, v)
        w = w - m * alpha / (np.sqrt(v_hat if amsgrad else v) + epsilon)
    return w


def sgd_ref(lr=0.01, momentum=0.0, nesterov=False):
    w, m = W0.copy(), np.zeros(3)
    for g in GRADS:
        if momentum == 0:
            w = w - lr * g
            continue
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


@pytest.mark.parametrize(
    "opt, expected",
    [
        (optimizers.RMSprop(), rmsprop_ref()),
        (optimizers.RMSprop(0.01, rho=0.8, momentum=0.5), rmsprop_ref(0.01, rho=0.8, momentum=0.5)),
        (optimizers.RMSprop(0.01, centered=True), rmsprop_ref(0.01, centered=True)),
        (optimizers.Adam(), adam_ref()),
        (optimizers.Adam(0.01, beta_1=0.8, amsgrad=True), adam_ref(0.01, beta_1=0.8, amsgrad=True)),
        (optimizers.AdamW(0.01), adam_ref(0.01, weight_decay=0.004)),
        (optimizers.SGD(), sgd_ref()),
        (optimizers.SGD(0.1, momentum=0.9), sgd_ref(0.1, momentum=0.9)),
        (optimizers.SGD(0.1, momentum=0.9, nesterov=True), sgd_ref(0.1, momentum=0.9, nesterov=True)),
    ],
    ids=["rmsprop", "rmsprop-momentum", "rmsprop-centered", "adam", "adam-amsgrad", "adamw", "sgd",
         "sgd-momentum", "sgd-nesterov"],
)
def test_updates_match_keras_formulas_in_float64(opt, expected):
    np.testing.assert_allclose(run(opt), expected, rtol=1e-12, atol=1e-15)
    assert opt.iterations == len(GRADS)


def test_rmsprop_keras_docstring_example():
    # keras.optimizers.RMSprop(learning_rate=0.1).minimize(var1**2 / 2) from 10.0 gives 9.683772
    var = torch.nn.Parameter(torch.tensor(10.0))
    opt = optimizers.RMSprop(learning_rate=0.1)
    opt.build([var])
    (var**2 / 2).backward()
    opt.step()
    assert var.item() == pytest.approx(9.683772, abs=1e-6)


def test_keras_defaults():
    assert optimizers.RMSprop().get_config() == {
        "name": "rmsprop", "learning_rate": 0.001, "weight_decay": None, "clipnorm": None,
        "global_clipnorm": None, "clipvalue": None, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7,
        "centered": False,
    }
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon, adam.amsgrad) == (0.001, 0.9, 0.999, 1e-7, False)
    assert optimizers.AdamW().weight_decay == 0.004
    sgd = optimizers.SGD()
    assert (sgd.name, sgd.learning_rate, sgd.momentum, sgd.nesterov) == ("SGD", 0.01, 0.0, False)


@pytest.mark.parametrize(
    "kwargs, grads, expected_step",
    [
        ({"clipnorm": 1.0}, [[3.0, 4.0], [0.5]], [[0.6, 0.8], [0.5]]),
        ({"clipvalue": 0.5}, [[3.0, -0.2], [-4.0]], [[0.5, -0.2], [-0.5]]),
        ({"global_clipnorm": 1.0}, [[3.0, 4.0], [12.0]], [[3 / 13, 4 / 13], [12 / 13]]),
        ({"global_clipnorm": 20.0}, [[3.0, 4.0], [12.0]], [[3.0, 4.0], [12.0]]),
    ],
)
def test_gradient_clipping(kwargs, grads, expected_step):
    params = [torch.nn.Parameter(torch.zeros(len(g), dtype=torch.float64)) for g in grads]
    opt = optimizers.SGD(learning_rate=1.0, **kwargs)
    opt.build(params)
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    for p, step in zip(params, expected_step):
        np.testing.assert_allclose(-p.detach().numpy(), step, rtol=1e-12)


def test_only_one_clipping_option():
    with pytest.raises(ValueError, match="Only one of `clipnorm`, `clipvalue` and `global_clipnorm`"):
        optimizers.Adam(clipnorm=1.0, clipvalue=0.5)


def test_learning_rate_setter_updates_the_running_optimizer():
    param = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = optimizers.SGD(learning_rate=0.1)
    opt.build([param])
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()
    opt.learning_rate = 0.01
    assert opt.learning_rate == 0.01
    opt.step()
    assert param.item() == pytest.approx(1.0 - 0.1 - 0.01, abs=1e-15)


def test_sgd_momentum_carries_lr_scaled_velocity_across_lr_change():
    # Keras: m = momentum*m - lr*g, so past steps keep the old lr after a change.
    param = torch.nn.Parameter(torch.tensor([0.0], dtype=torch.float64))
    opt = optimizers.SGD(learning_rate=1.0, momentum=0.5)
    opt.build([param])
    param.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()  # m = -1, w = -1
    opt.learning_rate = 0.1
    opt.step()  # m = -0.5 - 0.1 = -0.6, w = -1.6
    assert param.item() == pytest.approx(-1.6, abs=1e-15)


def test_build_twice_is_a_no_op_and_new_params_rebuild():
    param = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    opt = optimizers.Adam()
    opt.build([param])
    for g in GRADS:
        opt.build([param])
        param.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(param.detach().numpy(), adam_ref(), rtol=1e-12)
    opt.build([torch.nn.Parameter(torch.zeros(2))])
    assert opt.iterations == 0


def test_step_without_gradients_does_nothing():
    param = torch.nn.Parameter(torch.ones(2))
    opt = optimizers.AdamW()
    opt.build([param])
    opt.step()
    assert opt.iterations == 0
    assert torch.equal(param.detach(), torch.ones(2))


def test_state_dict_round_trip_through_torch_save_resumes_exactly():
    def fresh():
        return torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))

    first, param = optimizers.Adam(learning_rate=0.01), fresh()
    first.build([param])
    for g in GRADS[:2]:
        param.grad = torch.tensor(g, dtype=torch.float64)
        first.step()
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed, param2 = optimizers.Adam(), fresh()
    with torch.no_grad():
        param2.copy_(param)
    resumed.load_state_dict(state)  # before build: applied when built
    resumed.build([param2])
    assert resumed.iterations == 2 and resumed.learning_rate == 0.01
    for p, opt in ((param, first), (param2, resumed)):
        p.grad = torch.tensor(GRADS[2], dtype=torch.float64)
        opt.step()
    np.testing.assert_allclose(param2.detach().numpy(), param.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(param.detach().numpy(), adam_ref(0.01), rtol=1e-12)


def test_get_is_case_insensitive_and_suggests():
    assert type(optimizers.get("RMSprop")) is optimizers.RMSprop
    assert type(optimizers.get("adamw")) is optimizers.AdamW
    assert type(optimizers.get("SGD")) is optimizers.SGD
    opt = optimizers.Adam()
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        optimizers.get("adamm")


@pytest.mark.parametrize("opt", [optimizers.RMSprop(0.01, momentum=0.3, clipnorm=1.0),
                                 optimizers.AdamW(0.002, weight_decay=0.1, amsgrad=True),
                                 optimizers.SGD(0.5, momentum=0.9, nesterov=True, global_clipnorm=2.0)])
def test_config_round_trip(opt):
    config = json.loads(json.dumps(opt.get_config()))
    for restored in (optimizers.deserialize(config), optimizers.deserialize(optimizers.serialize(opt))):
        assert type(restored) is type(opt)
        assert restored.get_config() == opt.get_config()
