"""A corpus of short Keras RNN programs, each written once against a module alias ``K``.

Every module here (except this one) is one program in the style of the official Keras
examples (lstm_seq2seq, addition_rnn, bidirectional_lstm_imdb, timeseries forecasting, the
functional-API and RNN guides). ``tests/test_keras_programs.py`` runs each program twice,
with ``K = keras`` and with ``K = rnnkit``, and compares the two runs. A program uses only
``K.Input``, ``K.Model``, ``K.Sequential``, ``K.layers.*``, ``K.activations.*`` and
``K.losses.*`` (``K.ops`` only where a Keras user has no other way, e.g. the MaLSTM distance),
so "switching the imports" is literally passing another module.

The interface of a program module
---------------------------------
``build(K) -> dict[str, model]`` (required)
    Builds every model of the program, in one call so that models cut from the main model
    share its layers. The FIRST entry is the main model: the harness perturbs its Keras
    weights (so zero-initialised biases matter), then gives rnnkit's copy the same values
    with ``rnnkit_model.set_weights(keras_model.get_weights())``. Every other model must
    then already hold the same weights in both libraries (it shares the main model's
    layers), unless it is listed in ``COPY``.

``data(rng) -> dict[str, inputs]`` (required)
    Inputs for ``predict_on_batch`` of each named model (a subset of ``build``'s names;
    other keys are data for ``run``).
    ``inputs`` is an array, a list of arrays or a dict keyed by input names, exactly as a
    Keras user passes them. ``rng`` is a ``numpy.random.Generator``; the harness calls
    ``data`` once and gives the same arrays to both libraries.

``run(models, inputs) -> dict[str, array]`` (optional)
    Extra inference written as a user would (greedy decoding loops with ``predict``,
    stateful batches with ``reset_states``...). ``inputs`` is ``data``'s dict. Called after
    the per-model predictions; every returned array is compared too.

``training(K) -> dict`` (optional; without it the program is not trained)
    ``compile`` arguments other than the optimizer (``loss``, optionally ``loss_weights``),
    plus either ``steps`` (that many ``train_on_batch`` calls on ``train_data``) or ``fit``
    (keyword arguments for ``model.fit``; the harness adds ``shuffle=False, verbose=0``),
    and optionally ``model``: the name of the model to train (default: the main one).
    The harness compiles with ``K.optimizers.SGD(learning_rate=0.1)``.

``train_data(rng) -> (x, y)`` (required with ``training``)

``COPY = ("name", ...)`` (optional)
    Models that do not share the main model's layers: the harness copies (perturbed)
    Keras weights into them as well.

The harness seeds both libraries (``keras.utils.set_random_seed(0)``, ``torch.manual_seed(0)``)
before each ``build``, but compares only from copied weights.

Models whose weights do not exist before their first call (subclassed ``K.Model``) are
built by one ``predict_on_batch`` on their ``data`` before weights are read.

Sizes are small (units 4-16, vocabularies 30-50, batches 4-8, 5-9 time steps) so a whole
program runs in well under a second in each library.
"""
import importlib
import pkgutil

PROGRAMS = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name):
    return importlib.import_module(f"{__name__}.{name}")
