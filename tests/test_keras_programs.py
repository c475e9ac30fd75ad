"""The Keras-program corpus (tests/keras_programs/) run with Keras and with rnnkit.

Each program is written once against a module alias ``K`` (see the interface in
``tests/keras_programs/__init__.py``) and runs with ``K = keras`` (3.x, torch backend) and
``K = rnnkit``. For every program the harness checks:

* it runs end to end on Keras itself (the corpus is real Keras code);
* the models' layers, in order, with their class names and parameter counts, and each
  model's ``count_params()``; per layer, the shapes of ``weights`` in order and which are
  trainable (Keras lists trainable weights first, whatever the creation order);
* ``model.output_shape`` of every model that has one in Keras (functional, Sequential);
* the "Total params" line of ``summary()`` (captured with ``print_fn``);
* that models cut from the main model share its weights: after
  ``rnnkit_main.set_weights(keras_main.get_weights())`` every other model already holds
  Keras's values (``get_weights()`` order and shapes included);
* the predictions of every model, and the program's own inference (decoding loops,
  stateful batches), within float32 tolerance (rtol 1e-4, atol 1e-5);
* for programs with ``training``: losses and weights after a few ``SGD(learning_rate=0.1)``
  steps (``train_on_batch`` or ``fit(shuffle=False)``) from identical weights and data,
  then the trained model's predictions.

Both libraries are seeded, but every comparison starts from weights copied from Keras,
never from equal random initialisation.
"""
import functools
import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this process

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from keras_or_skip import import_keras  # noqa: E402

keras = import_keras()

from keras_programs import PROGRAMS, load  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras's numpy-2 __array__ notices

RTOL, ATOL = 1e-4, 1e-5
LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-6


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_corpus_is_complete():
    assert len(PROGRAMS) >= 16, PROGRAMS
    for name in PROGRAMS:
        program = load(name)
        assert callable(program.build) and callable(program.data), name
        if hasattr(program, "training"):
            assert callable(program.train_data), name


# ----- running a program ---------------------------------------------------------------------------
def _seed(seed=0):
    keras.utils.set_random_seed(seed)
    torch.manual_seed(seed)


def _inputs(program):
    return program.data(np.random.default_rng(0))


def _build(program, K, inputs):
    _seed()
    models = program.build(K)
    assert isinstance(models, dict) and models, "build(K) must return a non-empty dict of models"
    for name, model in models.items():
        if not model.weights and name in inputs:  # subclassed models create weights on first call
            model.predict_on_batch(inputs[name])
    return models


def _model_inputs(inputs, models):
    """(name, inputs) for the entries of ``data`` that name a model (others are for ``run``)."""
    return [(name, x) for name, x in inputs.items() if name in models]


def _perturbed(weights, rng):
    """Keras initialises biases to zeros (and LSTM forget biases to ones): move every weight."""
    return [(w + rng.normal(0.0, 0.2, w.shape)).astype(w.dtype) if np.issubdtype(w.dtype, np.floating) else w
            for w in weights]


def _copy_names(program, models):
    return [next(iter(models))] + [name for name in getattr(program, "COPY", ()) if name in models]


def _rnnkit():
    """Imported here, not at module level: the Keras half of the corpus runs even while rnnkit is broken."""
    import rnnkit

    return rnnkit


class Pair:
    """A program built in both libraries, rnnkit holding (perturbed) Keras weights."""

    def __init__(self, name):
        self.program = load(name)
        self.inputs = _inputs(self.program)
        self.k = _build(self.program, keras, self.inputs)
        self.r = _build(self.program, _rnnkit(), self.inputs)
        assert list(self.r) == list(self.k)
        rng = np.random.default_rng(1)
        for model_name in _copy_names(self.program, self.k):
            self.k[model_name].set_weights(_perturbed(self.k[model_name].get_weights(), rng))
            self.r[model_name].set_weights(self.k[model_name].get_weights())


@functools.lru_cache(maxsize=1)
def _pair(name):
    return Pair(name)


def _structure(value):
    if isinstance(value, dict):
        return {key: _structure(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_structure(item) for item in value]
    return "array"


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key], f"{path}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, np.asarray(value)


def assert_same_outputs(got, expected, what, rtol=RTOL, atol=ATOL):
    assert _structure(got) == _structure(expected), f"{what}: output structure differs"
    for (path, mine), (_, theirs) in zip(_leaves(got), _leaves(expected)):
        assert mine.shape == theirs.shape, f"{what}{path}: shape {mine.shape} != Keras's {theirs.shape}"
        np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=atol, err_msg=f"{what}{path}")


def _shape(value):
    """Normalise output_shape: a shape is a tuple of int/None; lists of shapes stay lists."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, (int, np.integer)) for v in value):
        return tuple(None if v is None else int(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_shape(item) for item in value]
    return value


def _summary_lines(model):
    lines = []
    model.summary(print_fn=lambda *args, **kwargs: lines.extend(str(a) for a in args))
    return [line.strip() for line in "\n".join(lines).splitlines() if line.strip()]


def _total_line(model):
    found = [line for line in _summary_lines(model) if line.startswith("Total params:")]
    assert found, f"no 'Total params:' line in the summary of {model.name}"
    return found[0]


def _train(program, K, model):
    cfg = program.training(K)
    x, y = program.train_data(np.random.default_rng(2))
    model.compile(optimizer=K.optimizers.SGD(learning_rate=0.1), loss=cfg["loss"],
                  loss_weights=cfg.get("loss_weights"))
    if "fit" in cfg:
        history = model.fit(x, y, shuffle=False, verbose=0, **cfg["fit"]).history
        return {key: np.asarray(values, dtype=np.float64) for key, values in history.items()
                if key in ("loss", "val_loss")}
    # the total loss only: Keras's per-output entries depend on its metric naming (two outputs
    # of one layer get one name), which is not what the corpus is about
    return {"loss": np.array([np.atleast_1d(np.asarray(model.train_on_batch(x, y), dtype=np.float64))[0]
                              for _ in range(cfg["steps"])])}


def _train_name(program, models):
    return program.training(keras).get("model", next(iter(models)))


# ----- Keras itself: the corpus must be real, working Keras code ------------------------------------
@pytest.mark.parametrize("name", PROGRAMS)
def test_program_runs_on_keras(name):
    program = load(name)
    inputs = _inputs(program)
    models = _build(program, keras, inputs)
    for model_name, x in _model_inputs(inputs, models):
        for _, out in _leaves(models[model_name].predict_on_batch(x)):
            assert np.all(np.isfinite(out)), model_name
    if hasattr(program, "run"):
        for _, out in _leaves(program.run(models, inputs)):
            assert np.all(np.isfinite(out))
    for model in models.values():
        assert _total_line(model)
    if hasattr(program, "training"):
        losses = _train(program, keras, models[_train_name(program, models)])
        assert all(np.all(np.isfinite(v)) for v in losses.values()), losses


# ----- rnnkit against Keras ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", PROGRAMS)
def test_layers_and_parameter_counts(name):
    pair = _pair(name)
    for model_name, k_model in pair.k.items():
        r_model = pair.r[model_name]
        k_layers = [(type(layer).__name__, layer.count_params()) for layer in k_model.layers]
        r_layers = [(type(layer).__name__, layer.count_params()) for layer in r_model.layers]
        assert r_layers == k_layers, model_name
        assert r_model.count_params() == k_model.count_params(), model_name


def _weight_layout(layer):
    """(shape, trainable) of each of ``layer.weights``, in order (Keras: trainable ones first)."""
    trainable = {id(w) for w in layer.trainable_weights}
    return [(tuple(int(d) for d in w.shape), id(w) in trainable) for w in layer.weights]


@pytest.mark.parametrize("name", PROGRAMS)
def test_weight_order_per_layer(name):
    pair = _pair(name)
    for model_name, k_model in pair.k.items():
        for k_layer, r_layer in zip(k_model.layers, pair.r[model_name].layers):
            assert _weight_layout(r_layer) == _weight_layout(k_layer), f"{model_name}: layer {k_layer.name}"


@pytest.mark.parametrize("name", PROGRAMS)
def test_output_shapes(name):
    pair = _pair(name)
    for model_name, k_model in pair.k.items():
        try:
            expected = _shape(k_model.output_shape)
        except (AttributeError, ValueError):  # subclassed models have none in Keras
            continue
        assert _shape(pair.r[model_name].output_shape) == expected, model_name


@pytest.mark.parametrize("name", PROGRAMS)
def test_summary_total_line(name):
    pair = _pair(name)
    for model_name, k_model in pair.k.items():
        assert _total_line(pair.r[model_name]) == _total_line(k_model), model_name


@pytest.mark.parametrize("name", PROGRAMS)
def test_weights_shared_by_cut_models(name):
    pair = _pair(name)
    for model_name, k_model in pair.k.items():
        expected = k_model.get_weights()
        got = pair.r[model_name].get_weights()
        assert [w.shape for w in got] == [w.shape for w in expected], model_name
        for mine, theirs in zip(got, expected):
            np.testing.assert_array_equal(mine, theirs, err_msg=model_name)


@pytest.mark.parametrize("name", PROGRAMS)
def test_predictions(name):
    pair = _pair(name)
    for model_name, x in _model_inputs(pair.inputs, pair.k):
        assert_same_outputs(pair.r[model_name].predict_on_batch(x), pair.k[model_name].predict_on_batch(x),
                            f"{model_name}.predict_on_batch")
    if hasattr(pair.program, "run"):
        assert_same_outputs(pair.program.run(pair.r, pair.inputs), pair.program.run(pair.k, pair.inputs), "run")


TRAINED = [name for name in PROGRAMS if hasattr(load(name), "training")]


@pytest.mark.parametrize("name", TRAINED)
def test_training_steps(name):
    _pair.cache_clear()
    pair = Pair(name)
    model_name = _train_name(pair.program, pair.k)
    k_model, r_model = pair.k[model_name], pair.r[model_name]
    k_losses = _train(pair.program, keras, k_model)
    r_losses = _train(pair.program, _rnnkit(), r_model)
    assert sorted(r_losses) == sorted(k_losses)
    for key, expected in k_losses.items():
        np.testing.assert_allclose(r_losses[key], expected, rtol=LOSS_RTOL, atol=LOSS_ATOL, err_msg=key)
    for i, (mine, theirs) in enumerate(zip(r_model.get_weights(), k_model.get_weights())):
        np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL, err_msg=f"weight {i} after training")
    if model_name in pair.inputs:
        x = pair.inputs[model_name]
        assert_same_outputs(r_model.predict_on_batch(x), k_model.predict_on_batch(x), "trained predictions")
