"""rnnkit.ops against NumPy (Keras 3's ops follow NumPy's semantics), plus rnnkit.backend/random."""
import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import ops

RNG = np.random.default_rng(0)
A = RNG.normal(size=(2, 3, 4)).astype(np.float32)
B = RNG.normal(size=(4, 5)).astype(np.float32)
I = np.array([[3, 1, 4], [1, 5, 9]])


def close(x, expected):
    x = ops.convert_to_numpy(x)
    assert x.shape == np.shape(expected), (x.shape, np.shape(expected))
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (None, True), (1, False), (-1, True), ((0, 2), False)])
def test_reductions(name, axis, keepdims):
    close(getattr(ops, name)(A, axis=axis, keepdims=keepdims), getattr(np, name)(A, axis=axis, keepdims=keepdims))


def test_reductions_on_integers_and_initial():
    close(ops.mean(I), np.mean(I))
    assert ops.mean(I).dtype == torch.float32
    close(ops.max(I, axis=1, initial=6), np.max(I, axis=1, initial=6))
    close(ops.min(I, axis=0, initial=2), np.min(I, axis=0, initial=2))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis", [None, 0, -1])
def test_argmax_argmin(name, axis):
    out = getattr(ops, name)(A, axis=axis)
    assert out.dtype == torch.int32
    close(out, getattr(np, name)(A, axis=axis))
    close(getattr(ops, name)(A, axis=1, keepdims=True), getattr(np, name)(A, axis=1, keepdims=True))
    close(ops.argmax(np.array([[False, True], [True, False]]), axis=1), [1, 0])


def test_all_any_and_logic():
    x = np.array([[True, False], [True, True]])
    for axis in (None, 0, 1):
        close(ops.all(x, axis=axis), np.all(x, axis=axis))
        close(ops.any(x, axis=axis), np.any(x, axis=axis))
    close(ops.all(x, axis=1, keepdims=True), np.all(x, axis=1, keepdims=True))
    y = np.array([[False, False], [True, False]])
    close(ops.logical_and(x, y), np.logical_and(x, y))
    close(ops.logical_or(x, y), np.logical_or(x, y))
    close(ops.logical_not(x), np.logical_not(x))
    for name in ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal"):
        close(getattr(ops, name)(I, 3), getattr(np, name)(I, 3))
        close(getattr(ops, name)(A, A[:, :, :1]), getattr(np, name)(A, A[:, :, :1]))


def test_shapes():
    close(ops.concatenate([A, A], axis=1), np.concatenate([A, A], axis=1))
    close(ops.stack([B, B], axis=1), np.stack([B, B], axis=1))
    close(ops.expand_dims(B, -1), np.expand_dims(B, -1))
    close(ops.expand_dims(B, (0, 3)), np.expand_dims(B, (0, 3)))
    close(ops.squeeze(A[:, :1]), np.squeeze(A[:, :1]))
    close(ops.squeeze(A[:1, :1], axis=1), np.squeeze(A[:1, :1], axis=1))
    with pytest.raises(ValueError, match="size is not 1"):
        ops.squeeze(A, axis=0)
    close(ops.reshape(A, (6, -1)), A.reshape(6, -1))
    close(ops.transpose(A), np.transpose(A))
    close(ops.transpose(A, (0, 2, 1)), np.transpose(A, (0, 2, 1)))
    assert ops.shape(A) == (2, 3, 4)
    for parts in (2, [1, 3]):
        got = ops.split(A, parts, axis=2)
        expected = np.split(A, parts, axis=2)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            close(g, e)
    with pytest.raises(ValueError, match="equal parts"):
        ops.split(A, 3, axis=2)


def test_take_and_cumsum():
    close(ops.take(I, [2, 0]), np.take(I, [2, 0]))
    close(ops.take(I, [2, 0], axis=1), np.take(I, [2, 0], axis=1))
    close(ops.take(A, np.array([[0, 1], [1, 0]]), axis=0), np.take(A, np.array([[0, 1], [1, 0]]), axis=0))
    close(ops.cumsum(I), np.cumsum(I))
    close(ops.cumsum(I, axis=1), np.cumsum(I, axis=1))


def test_linear_algebra():
    close(ops.matmul(A, B), np.matmul(A, B))
    close(ops.dot(B[:, 0], B[:, 1]), np.dot(B[:, 0], B[:, 1]))
    close(ops.dot(A, B), np.dot(A, B))
    close(ops.dot(A, B[:, 0]), np.dot(A, B[:, 0]))
    close(ops.dot(2.0, B), np.dot(2.0, B))
    close(ops.einsum("btf,fu->btu", A, B), np.einsum("btf,fu->btu", A, B))
    for ord_, axis in ((None, None), (1, -1), (2, 0), ("fro", (1, 2)), (np.inf, -1)):
        close(ops.norm(A, ord=ord_, axis=axis), np.linalg.norm(A, ord=ord_, axis=axis))
    close(ops.norm(A, axis=-1, keepdims=True), np.linalg.norm(A, axis=-1, keepdims=True))


def test_elementwise():
    x = np.abs(A) + 0.1
    for name in ("exp", "log", "sqrt", "square", "abs", "tanh"):
        close(getattr(ops, name)(x), getattr(np, name)(x))
    close(ops.sigmoid(A), 1 / (1 + np.exp(-A)))
    close(ops.relu(A), np.maximum(A, 0))
    close(ops.maximum(A, 0.2), np.maximum(A, 0.2))
    close(ops.minimum(A, A[::-1]), np.minimum(A, A[::-1]))
    close(ops.clip(A, -0.5, 0.5), np.clip(A, -0.5, 0.5))
    e = np.exp(A - A.max(axis=-1, keepdims=True))
    close(ops.softmax(A), e / e.sum(axis=-1, keepdims=True))
    e1 = np.exp(A - A.max(axis=1, keepdims=True))
    close(ops.softmax(A, axis=1), e1 / e1.sum(axis=1, keepdims=True))
    assert ops.maximum(torch.tensor([1, 5]), 3).dtype == torch.int64      # a Python number keeps the tensor's kind


def test_where():
    cond = A > 0
    close(ops.where(cond, A, 0.0), np.where(cond, A, 0.0))
    close(ops.where(cond, 1, -1), np.where(cond, 1, -1))
    for got, expected in zip(ops.where(I > 3), np.where(I > 3)):
        close(got, expected)
    with pytest.raises(ValueError, match="condition"):
        ops.where(cond, A)


def test_one_hot():
    close(ops.one_hot(np.array([0, 2, -1]), 3), [[1, 0, 0], [0, 0, 1], [0, 0, 0]])
    out = ops.one_hot(np.array([[1, 0]]), 2, axis=0)
    assert out.shape == (2, 1, 2) and out.dtype == torch.float32
    close(out[:, 0, :], [[0, 1], [1, 0]])


def test_creation_cast_and_conversion():
    assert ops.zeros((2, 3)).dtype == torch.float32 and ops.ones(3, dtype="int32").dtype == torch.int32
    close(ops.zeros_like(I), np.zeros_like(I))
    assert ops.ones_like(I, dtype="float32").dtype == torch.float32
    close(ops.arange(5), np.arange(5))
    assert ops.arange(5).dtype == torch.int32 and ops.arange(0, 1, 0.25).dtype == torch.float32
    close(ops.arange(2, 11, 3), np.arange(2, 11, 3))
    assert ops.cast(np.array([1.7, -0.2]), "int32").tolist() == [1, 0]
    assert ops.cast(A, np.float64).dtype == torch.float64
    assert ops.convert_to_tensor([1.0, 2.0]).dtype == torch.float32
    assert ops.convert_to_tensor([1, 2]).dtype == torch.int32
    assert ops.convert_to_tensor(np.arange(3)).dtype == torch.int64       # arrays keep their dtype
    assert ops.convert_to_tensor([1, 2], dtype="float32").dtype == torch.float32
    t = torch.ones(2, requires_grad=True) * 2
    assert isinstance(ops.convert_to_numpy(t), np.ndarray)
    with pytest.raises(TypeError, match="numbers"):
        ops.convert_to_tensor(np.array(["a"]))
    with pytest.raises(ValueError, match="Unknown dtype"):
        ops.cast(A, "float13")


def test_ops_are_differentiable():
    w = torch.ones(3, requires_grad=True)
    ops.sum(ops.square(ops.matmul(torch.eye(3), w))).backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


def test_backend_helpers():
    assert rnnkit.backend.floatx() == "float32" and rnnkit.backend.epsilon() == 1e-7
    assert rnnkit.backend.image_data_format() == "channels_last" and rnnkit.backend.backend() == "torch"
    rnnkit.backend.clear_session()
    first = rnnkit.layers.Dense(2).name
    rnnkit.backend.clear_session()
    assert rnnkit.layers.Dense(2).name == first == "dense"


def test_random_seeds_and_draws():
    rnnkit.utils.set_random_seed(5)
    assert rnnkit.random.get_random_seed() == 5
    a = (np.random.rand(), torch.rand(1).item(), __import__("random").random())
    rnnkit.utils.set_random_seed(5)
    assert (np.random.rand(), torch.rand(1).item(), __import__("random").random()) == a
    with pytest.raises(ValueError, match="integer"):
        rnnkit.utils.set_random_seed(1.5)
    assert torch.equal(rnnkit.random.normal((3,), seed=1), rnnkit.random.normal((3,), seed=1))
    u = rnnkit.random.uniform((1000,), minval=2.0, maxval=3.0, seed=0)
    assert 2.0 <= u.min() and u.max() < 3.0
    r = rnnkit.random.randint((1000,), 0, 4, seed=0)
    assert r.dtype == torch.int32 and set(r.tolist()) == {0, 1, 2, 3}
    assert rnnkit.random.truncated_normal((1000,), stddev=0.1, seed=0).abs().max() <= 0.2
    d = rnnkit.random.dropout(torch.ones(1000), 0.5, seed=0)
    assert set(d.unique().tolist()) == {0.0, 2.0}
    assert sorted(rnnkit.random.shuffle(torch.arange(5), seed=0).tolist()) == [0, 1, 2, 3, 4]
    draws = rnnkit.random.categorical(torch.log(torch.tensor([[0.0, 1.0]])), 5, seed=0)
    assert draws.shape == (1, 5) and draws.tolist() == [[1] * 5]
