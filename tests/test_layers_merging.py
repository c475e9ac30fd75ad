"""Merge layers (Concatenate, Add, ..., Dot), their lowercase shortcuts, and Lambda, Reshape, Permute,
Masking against Keras 3 itself (torch backend): same inputs, same masks, same outputs and masks.

Keras's merge layers read masks from the tensors (``_keras_mask``), as in a functional model, so the
Keras side gets its masks attached with ``set_keras_mask``; rnnkit gets them as ``mask=[...]``.
"""
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from keras_or_skip import import_keras  # noqa: E402

keras = import_keras()

from keras.src.backend import get_keras_mask, set_keras_mask  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import layers as R  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

RTOL, ATOL = 1e-5, 1e-6
B, T, F = 3, 5, 4


def rng(seed=0):
    return np.random.default_rng(seed)


def arrays(*shapes, seed=0):
    g = rng(seed)
    return [g.normal(size=s).astype("float32") for s in shapes]


def masks_for(*lengths_lists):
    out = []
    for lengths in lengths_lists:
        if lengths is None:
            out.append(None)
        else:
            out.append(np.arange(T)[None, :] < np.asarray(lengths)[:, None])
    return out


def np_(x):
    return keras.ops.convert_to_numpy(x) if not isinstance(x, torch.Tensor) else x.detach().cpu().numpy()


def keras_call(layer, xs, masks=None, **kwargs):
    """Call a Keras layer eagerly with masks attached to its input tensors, as in a functional model."""
    tensors = [torch.tensor(x) for x in xs]
    for t, m in zip(tensors, masks or [None] * len(xs)):
        if m is not None:
            set_keras_mask(t, torch.tensor(m))
    out = layer(tensors, **kwargs)
    mask = get_keras_mask(out)
    return np_(out), (None if mask is None else np_(mask))


def rnnkit_call(layer, xs, masks=None):
    tensors = [torch.tensor(x) for x in xs]
    mask_list = None if masks is None else [None if m is None else torch.tensor(m) for m in masks]
    out = layer(tensors, mask=mask_list) if mask_list is not None else layer(tensors)
    mask = layer.compute_mask(tensors, mask_list)
    return np_(out), (None if mask is None else np_(mask))


def assert_same(k, r):
    k_out, k_mask = k
    r_out, r_mask = r
    assert r_out.shape == k_out.shape
    np.testing.assert_allclose(r_out, k_out, rtol=RTOL, atol=ATOL)
    if k_mask is None:
        assert r_mask is None
    else:
        assert r_mask is not None
        np.testing.assert_array_equal(r_mask, k_mask)


ELEMENTWISE = ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]


# ----- element-wise merges -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("shapes", [[(B, T, F), (B, T, F)], [(B, T, F), (B, 1, F)], [(B, T, F), (B, F)],
                                    [(B, F), (B, T, F)]])
def test_elementwise_merge_matches_keras(name, shapes):
    xs = arrays(*shapes)
    assert_same(keras_call(getattr(keras.layers, name)(), xs), rnnkit_call(getattr(R, name)(), xs))


@pytest.mark.parametrize("name", ["Add", "Multiply", "Average", "Maximum", "Minimum"])
def test_three_inputs_match_keras(name):
    xs = arrays((B, T, F), (B, T, F), (B, T, F), seed=1)
    assert_same(keras_call(getattr(keras.layers, name)(), xs), rnnkit_call(getattr(R, name)(), xs))


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("lengths", [([5, 3, 1], [2, 5, 0]), ([5, 3, 1], None), (None, [2, 5, 0])])
def test_elementwise_merge_masks_match_keras(name, lengths):
    xs = arrays((B, T, F), (B, T, F), seed=2)
    masks = masks_for(*lengths)
    assert_same(keras_call(getattr(keras.layers, name)(), xs, masks),
                rnnkit_call(getattr(R, name)(), xs, masks))


@pytest.mark.parametrize("name", ["Multiply", "Maximum", "Minimum", "Add"])
def test_three_masked_inputs_match_keras(name):
    xs = arrays((B, T, F), (B, T, F), (B, T, F), seed=3)
    for lengths in (([5, 3, 1], [2, 5, 0], [1, 1, 1]), ([5, 3, 1], None, [1, 4, 2]), (None, [2, 5, 0], [4, 1, 0])):
        masks = masks_for(*lengths)
        assert_same(keras_call(getattr(keras.layers, name)(), xs, masks),
                    rnnkit_call(getattr(R, name)(), xs, masks))


def test_masks_in_a_keras_functional_model_give_the_same_merge():
    """The eager-with-attached-masks comparison above is what a functional Keras model computes."""
    ids = np.array([[3, 1, 0, 0, 0], [2, 2, 4, 1, 0], [1, 0, 0, 0, 0]])
    ids2 = np.array([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [2, 3, 4, 1, 2]])
    keras.utils.set_random_seed(0)
    a, b = keras.Input((T,), dtype="int32"), keras.Input((T,), dtype="int32")
    emb_a, emb_b = keras.layers.Embedding(6, F, mask_zero=True), keras.layers.Embedding(6, F, mask_zero=True)
    outputs = [keras.layers.Maximum()([emb_a(a), emb_b(b)]), keras.layers.Multiply()([emb_a(a), emb_b(b)])]
    model = keras.Model([a, b], outputs)
    k_max, k_mul = [np_(o) for o in model([torch.tensor(ids), torch.tensor(ids2)])]
    table_a, table_b = emb_a.get_weights()[0], emb_b.get_weights()[0]
    xs = [table_a[ids], table_b[ids2]]
    masks = [ids != 0, ids2 != 0]
    np.testing.assert_allclose(rnnkit_call(R.Maximum(), xs, masks)[0], k_max, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(rnnkit_call(R.Multiply(), xs, masks)[0], k_mul, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_output_shapes_match_keras(name):
    for shapes in ([(None, T, F), (None, T, F)], [(None, T, F), (None, 1, F)], [(None, T, F), (B, None, F)],
                   [(None, F), (None, T, F)]):
        expected = getattr(keras.layers, name)().compute_output_shape(shapes)
        assert R.__dict__[name]().compute_output_shape(shapes) == tuple(expected)


# ----- Concatenate ---------------------------------------------------------------------------------
@pytest.mark.parametrize("axis,shapes", [(-1, [(B, T, 2), (B, T, 3)]), (1, [(B, 2, F), (B, T, F)]),
                                         (2, [(B, T, 1), (B, T, F), (B, T, 2)]), (-1, [(B, 2), (B, 3)])])
def test_concatenate_matches_keras(axis, shapes):
    xs = arrays(*shapes)
    assert_same(keras_call(keras.layers.Concatenate(axis=axis), xs), rnnkit_call(R.Concatenate(axis=axis), xs))
    none_batch = [(None,) + s[1:] for s in shapes]
    assert R.Concatenate(axis=axis).compute_output_shape(none_batch) == \
        tuple(keras.layers.Concatenate(axis=axis).compute_output_shape(none_batch))


@pytest.mark.parametrize("lengths", [([5, 3, 1], [2, 5, 0]), ([5, 3, 0], None), (None, [2, 5, 0])])
def test_concatenate_masks_match_keras(lengths):
    masks = masks_for(*lengths)
    xs = arrays((B, T, 2), (B, T, 3), seed=4)
    assert_same(keras_call(keras.layers.Concatenate(), xs, masks), rnnkit_call(R.Concatenate(), xs, masks))


def test_concatenate_on_time_concatenates_masks_as_keras():
    xs = arrays((B, T, F), (B, T, F), seed=5)
    masks = masks_for([5, 3, 0], [1, 2, 0])
    assert_same(keras_call(keras.layers.Concatenate(axis=1), xs, masks),
                rnnkit_call(R.Concatenate(axis=1), xs, masks))


# ----- Dot -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axes,shapes", [
    (-1, [(B, F), (B, F)]), (1, [(B, F), (B, F)]), (2, [(B, T, F), (B, 3, F)]), ((1, 1), [(B, T, F), (B, T, 2)]),
    ((2, 1), [(B, T, F), (B, F, 3)]), ((2, 1), [(B, T, F), (B, F)]), ((1, 2), [(B, F), (B, T, F)]),
    ((-1, -2), [(B, 2, 3, F), (B, T, F, 2)])])
@pytest.mark.parametrize("normalize", [False, True])
def test_dot_matches_keras(axes, shapes, normalize):
    xs = arrays(*shapes, seed=6)
    assert_same(keras_call(keras.layers.Dot(axes=axes, normalize=normalize), xs),
                rnnkit_call(R.Dot(axes=axes, normalize=normalize), xs))
    none_batch = [(None,) + s[1:] for s in shapes]
    assert R.Dot(axes=axes).compute_output_shape(none_batch) == \
        tuple(keras.layers.Dot(axes=axes).compute_output_shape(none_batch))


def test_dot_normalize_is_cosine_similarity_and_drops_masks():
    a, b = arrays((B, F), (B, F), seed=7)
    out = R.Dot(axes=1, normalize=True)([torch.tensor(a), torch.tensor(b)]).numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(out[:, 0], cos, rtol=1e-5)
    xs = arrays((B, T, F), (B, T, F))
    masks = masks_for([5, 3, 1], [2, 5, 0])
    assert_same(keras_call(keras.layers.Dot(axes=2), xs, masks), rnnkit_call(R.Dot(axes=2), xs, masks))


# ----- shortcuts, config, errors -------------------------------------------------------------------
@pytest.mark.parametrize("fn,cls,kwargs", [("add", "Add", {}), ("subtract", "Subtract", {}),
                                           ("multiply", "Multiply", {}), ("average", "Average", {}),
                                           ("maximum", "Maximum", {}), ("minimum", "Minimum", {}),
                                           ("concatenate", "Concatenate", {"axis": 1}),
                                           ("dot", "Dot", {"axes": 2})])
def test_functional_shortcuts_match_keras(fn, cls, kwargs):
    xs = arrays((B, T, F), (B, T, F), seed=8)
    expected = np_(getattr(keras.layers, fn)([torch.tensor(x) for x in xs], **kwargs))
    out = getattr(R, fn)([torch.tensor(x) for x in xs], name=f"my_{fn}", **kwargs)
    np.testing.assert_allclose(np_(out), expected, rtol=RTOL, atol=ATOL)
    assert fn in R.__all__ and cls in R.__all__


@pytest.mark.parametrize("layer", [R.Concatenate(axis=1, name="cat"), R.Dot(axes=(1, 2), normalize=True),
                                   R.Add(name="plus"), R.Subtract()])
def test_merge_config_round_trip(layer):
    again = type(layer).from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    assert R.deserialize(R.serialize(layer)).get_config() == layer.get_config()


def test_merge_errors_name_the_layer_and_the_fix():
    a, b, c = (torch.zeros(2, 3, 4) for _ in range(3))
    with pytest.raises(ValueError, match=r"'sub'.*exactly 2"):
        R.Subtract(name="sub")([a, b, c])
    with pytest.raises(ValueError, match=r"list of tensors"):
        R.Add()(a)
    with pytest.raises(ValueError, match=r"incompatible shapes"):
        R.Add()([a, torch.zeros(2, 3, 5)])
    with pytest.raises(ValueError, match=r"different batch sizes"):
        R.Average()([a, torch.zeros(3, 3, 4)])
    with pytest.raises(ValueError, match=r"every axis except the concatenation axis"):
        R.Concatenate(axis=1)([a, torch.zeros(2, 3, 5)])
    with pytest.raises(ValueError, match=r"size 4 .* size 3"):
        R.Dot(axes=2)([a, torch.zeros(2, 4, 3)])
    with pytest.raises(ValueError, match=r"batch axis"):
        R.Dot(axes=0)([a, b])
    with pytest.raises(ValueError, match=r"one mask \(or None\) per input"):
        R.Maximum()([a, b], mask=[None])
    with pytest.raises(ValueError, match=r"axes must be an int or a pair"):
        R.Dot(axes=(1, 2, 3))


# ----- Reshape, Permute ----------------------------------------------------------------------------
@pytest.mark.parametrize("in_shape,target", [((T, F), (F, T)), ((T, F), (-1,)), ((T, F), (-1, 2)),
                                             ((12,), (3, -1)), ((T, F), (2, 10, 1))])
def test_reshape_matches_keras(in_shape, target):
    (x,) = arrays((B,) + in_shape)
    expected = np_(keras.layers.Reshape(target)(torch.tensor(x)))
    layer = R.Reshape(target)
    np.testing.assert_array_equal(np_(layer(torch.tensor(x))), expected)
    for shape in ((None,) + in_shape, (None, None) + in_shape[1:]):
        assert layer.compute_output_shape(shape) == tuple(keras.layers.Reshape(target).compute_output_shape(shape))
    assert layer.compute_mask(torch.tensor(x), torch.ones(B, in_shape[0], dtype=torch.bool)) is None


def test_reshape_errors():
    with pytest.raises(ValueError, match=r"'rs'.*target_shape=\(3, 3\)"):
        R.Reshape((3, 3), name="rs")(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"not divisible"):
        R.Reshape((-1, 3))(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"-1 for one"):
        R.Reshape((-1, -1))


@pytest.mark.parametrize("dims,shape", [((2, 1), (B, T, F)), ((1, 2), (B, T, F)), ((3, 1, 2), (B, 2, 3, F))])
def test_permute_matches_keras(dims, shape):
    (x,) = arrays(shape)
    np.testing.assert_array_equal(np_(R.Permute(dims)(torch.tensor(x))),
                                  np_(keras.layers.Permute(dims)(torch.tensor(x))))
    none_shape = (None,) + shape[1:]
    assert R.Permute(dims).compute_output_shape(none_shape) == \
        tuple(keras.layers.Permute(dims).compute_output_shape(none_shape))
    with pytest.raises(ValueError, match="permutation of 1..2"):
        R.Permute((0, 1))
    with pytest.raises(ValueError, match="rank 3"):
        R.Permute((2, 1))(torch.zeros(2, 3))


# ----- Masking --------------------------------------------------------------------------------------
@pytest.mark.parametrize("mask_value", [0.0, -1.0])
def test_masking_matches_keras(mask_value):
    (x,) = arrays((B, T, F), seed=9)
    x[0, 3:] = mask_value
    x[1, 0] = mask_value
    x[2, :] = mask_value
    x[2, 1, 2] = 5.0  # one feature differs: the step stays
    k_layer, r_layer = keras.layers.Masking(mask_value), R.Masking(mask_value)
    k_out = k_layer(torch.tensor(x))
    r_out = r_layer(torch.tensor(x))
    np.testing.assert_array_equal(np_(r_out), np_(k_out))
    np.testing.assert_array_equal(np_(r_layer.compute_mask(torch.tensor(x))), np_(get_keras_mask(k_out)))
    assert r_layer.compute_output_shape((None, T, F)) == (None, T, F)
    assert R.Masking.from_config(r_layer.get_config()).mask_value == mask_value


def test_masking_feeds_an_lstm_as_keras():
    (x,) = arrays((B, T, F), seed=10)
    x[0, 3:] = 0.0
    x[1, 1:] = 0.0
    keras.utils.set_random_seed(1)
    k_model = keras.Sequential([keras.Input((T, F)), keras.layers.Masking(), keras.layers.LSTM(3)])
    r_model = rnnkit.Sequential([rnnkit.Input(shape=(T, F)), R.Masking(), R.LSTM(3)])
    r_model.set_weights(k_model.get_weights())
    np.testing.assert_allclose(r_model.predict(x, verbose=0), np_(k_model(torch.tensor(x))), rtol=1e-4, atol=1e-5)


# ----- Lambda ----------------------------------------------------------------------------------------
def last_step(x, offset=0.0):
    return x[:, -1] + offset


def keep_mask(inputs, mask):
    return mask


def test_lambda_matches_keras_with_arguments_and_shapes():
    (x,) = arrays((B, T, F), seed=11)
    k_layer = keras.layers.Lambda(last_step, arguments={"offset": 2.0})
    r_layer = R.Lambda(last_step, arguments={"offset": 2.0})
    np.testing.assert_allclose(np_(r_layer(torch.tensor(x))), np_(k_layer(torch.tensor(x))))
    assert R.Lambda(last_step, output_shape=(F,)).compute_output_shape((None, T, F)) == (None, F)
    assert R.Lambda(last_step, output_shape=lambda s: (s[0], s[2])).compute_output_shape((7, T, F)) == (7, F)
    assert R.Lambda(last_step).compute_output_shape((None, T, F)) == (None, F)  # inferred by a dry run
    two = R.Lambda(lambda xs: xs, output_shape=[(T, F), (2,)])
    assert two.compute_output_shape([(None, T, F), (None, 2)]) == [(None, T, F), (None, 2)]


def test_lambda_mask_and_training_as_keras():
    (x,) = arrays((B, T, F), seed=12)
    m = torch.tensor(masks_for([5, 2, 0])[0])

    def masked_sum(inputs, mask=None, training=None):
        return (inputs * mask[..., None].to(inputs.dtype)).sum(1) * (2.0 if training else 1.0)

    for training in (False, True):
        k = np_(keras.layers.Lambda(masked_sum)(torch.tensor(x), mask=m, training=training))
        r = np_(R.Lambda(masked_sum)(torch.tensor(x), mask=m, training=training))
        np.testing.assert_allclose(r, k, rtol=RTOL)
    # no mask argument: the mask stops here (Keras: supports_masking=False); mask=fn: fn decides
    assert R.Lambda(last_step).compute_mask(torch.tensor(x), m) is None
    kept = R.Lambda(lambda t: t, mask=keep_mask).compute_mask(torch.tensor(x), m)
    assert torch.equal(kept, m)
    k_kept = keras.layers.Lambda(lambda t: t, mask=keep_mask).compute_mask(torch.tensor(x), m)
    assert torch.equal(kept, k_kept)


def test_lambda_config_keeps_names_and_resolves_functions():
    layer = R.Lambda(last_step, output_shape=(F,), mask=keep_mask, arguments={"offset": 1.0}, name="lam")
    config = layer.get_config()
    import json
    json.dumps(config)  # JSON-able: function names only, nothing pickled
    assert config["function"] == "last_step" and config["mask"] == "keep_mask"
    again = R.Lambda.from_config(config)  # in memory: the same process still knows the functions
    assert again.function is last_step and again.mask is keep_mask and again.arguments == {"offset": 1.0}
    assert R.deserialize(R.serialize(layer)).function is last_step

    anonymous = R.Lambda(lambda t: t * 3)
    assert R.Lambda.from_config(anonymous.get_config()).function is anonymous.function

    def twice(t):
        return t * 2

    unknown = dict(config, function="not_defined_anywhere")
    with pytest.raises(ValueError, match=r"custom_objects=\{'not_defined_anywhere'"):
        R.Lambda.from_config(unknown)
    rebuilt = R.Lambda.from_config(unknown, custom_objects={"not_defined_anywhere": twice})
    assert rebuilt.function is twice
    with pytest.raises(ValueError, match=r"Python lambda"):
        R.Lambda.from_config(dict(config, function="<lambda>#999"))
    with pytest.raises(ValueError, match="callable"):
        R.Lambda(3)
