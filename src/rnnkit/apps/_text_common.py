"""What the text applications (sentiment, classify, generate) share: model choices,
the bag-of-words baseline, metrics, reports, plots, loading a task's model file, reading
the texts to predict, the user's own training data (``--data``) and the windows of long
texts (``--chunk``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import UsageError
from ._common import (EXIT_USAGE, argument_type, bounded_int, did_you_mean, dropout_rate, format_table,  # noqa: F401
                      load_model_for, nonnegative_float, nonnegative_int, output_folder, positive_float, positive_int, seed,
                      threads, write_json)
from ._common import add_training_service_arguments, choose_names, training_callbacks  # noqa: F401
from ._common import apply_threads as _apply_thread_count

CLASSIFIER_KINDS = ("simplernn", "lstm", "gru", "bilstm")


# ----- arguments --------------------------------------------------------------------------------


def resolve_models(value, kinds=CLASSIFIER_KINDS):
    """``--model`` value -> list of kinds: one name, a comma-separated list, or ``all``."""
    names = []
    for name in str(value).split(","):
        name = name.strip().lower().replace("_", "").replace("-", "")
        if not name:
            continue
        if name == "all":
            names.extend(k for k in kinds if k not in names)
            continue
        if name not in kinds:
            raise UsageError(f"unknown model '{name}'.{did_you_mean(name, list(kinds) + ['all'])} "
                             f"Choose from {', '.join(kinds)} or all.")
        if name not in names:
            names.append(name)
    if not names:
        raise UsageError(f"--model is empty; choose from {', '.join(kinds)} or all.")
    return names


def run_standalone(module, name, argv=None):
    """``python -m rnnkit.apps.<name> ...``: the same parser and error handling as ``rnnkit <name>``."""
    from ..datasets import DataError
    from ..saving import ModelFileError

    parser = argparse.ArgumentParser(prog="rnnkit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    module.add_arguments(subparsers)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args([name] + argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    import shlex

    args.command_line = " ".join(["rnnkit", name, *(shlex.quote(a) for a in argv)])
    try:
        return int(module.main(args) or 0)
    except (UsageError, DataError, ModelFileError, FileNotFoundError) as exc:
        print(f"rnnkit {name}: error: {str(exc).strip()}".replace("\n", " "), file=sys.stderr, flush=True)
        return EXIT_USAGE
    except FloatingPointError as exc:
        print(f"rnnkit {name}: error: {exc}", file=sys.stderr, flush=True)
        return 1


def add_subcommand_help(parser):
    """Make ``rnnkit <app>`` without an action print its help and exit 2."""
    def missing(args):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    parser.set_defaults(action=missing)


# ----- models -----------------------------------------------------------------------------------
POOLS = ("last", "mean", "max")


def build_classifier(kind, vocab_size, num_classes, embed_dim=64, units=64, dropout=0.3, embed_dropout=0.0,
                     pool="last", spatial_dropout=0.0):
    """Embedding(mask_zero) [-> SpatialDropout1D] [-> Dropout] -> recurrent layer
    [-> GlobalAveragePooling1D | GlobalMaxPooling1D] [-> Dropout] -> Dense.

    ``pool="last"`` classifies from the recurrent layer's final output; ``"mean"`` from the
    mean of its outputs over the (unpadded) steps, ``"max"`` from their element-wise maximum
    over all steps, padded ones included (Keras 3's GlobalMaxPooling1D takes no mask). ``spatial_dropout`` drops whole word-vector channels (the same
    ones at every step of a text), ``embed_dropout`` single entries of the word vectors. The
    head is Dense(1, sigmoid) for two classes, else Dense(num_classes, softmax).
    """
    import rnnkit
    from rnnkit.layers import (GRU, LSTM, Bidirectional, Dense, Dropout, Embedding, GlobalAveragePooling1D,
                               GlobalMaxPooling1D, SimpleRNN, SpatialDropout1D)

    if pool not in POOLS:
        raise UsageError(f"unknown pool '{pool}'; choose from {', '.join(POOLS)}.")
    seq = pool != "last"
    recurrent = {"simplernn": lambda: SimpleRNN(units, return_sequences=seq),
                 "lstm": lambda: LSTM(units, return_sequences=seq),
                 "gru": lambda: GRU(units, return_sequences=seq),
                 "bilstm": lambda: Bidirectional(LSTM(units, return_sequences=seq))}[kind]()
    head = Dense(1, activation="sigmoid") if num_classes == 2 else Dense(num_classes, activation="softmax")
    layers = [Embedding(vocab_size, embed_dim, mask_zero=True)]
    if spatial_dropout:
        layers.append(SpatialDropout1D(spatial_dropout))
    if embed_dropout:
        layers.append(Dropout(embed_dropout))
    layers.append(recurrent)
    if pool == "mean":
        layers.append(GlobalAveragePooling1D())
    elif pool == "max":
        layers.append(GlobalMaxPooling1D())
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(head)
    model = rnnkit.Sequential(layers, name=f"{kind}_classifier")
    model.build((None, None))  # token ids of any length; weights drawn now, in layer order
    return model


def describe_classifier(kind, args):
    recurrent = {"simplernn": "SimpleRNN({})", "lstm": "LSTM({})", "gru": "GRU({})",
                 "bilstm": "Bidirectional(LSTM({}))"}[kind].format(args.units)
    parts = [f"Embedding({args.embed_dim}, mask_zero)"]
    if getattr(args, "spatial_dropout", 0):
        parts.append(f"SpatialDropout1D({args.spatial_dropout:g})")
    if args.embed_dropout:
        parts.append(f"Dropout({args.embed_dropout:g})")
    parts.append(recurrent)
    if args.pool == "mean":
        parts.append("GlobalAveragePooling1D")
    elif args.pool == "max":
        parts.append("GlobalMaxPooling1D")
    if args.dropout:
        parts.append(f"Dropout({args.dropout:g})")
    parts.append("Dense")
    return " -> ".join(parts)


def compile_classifier(model, num_classes, learning_rate=1e-3, weight_decay=0.0):
    """Adam (clipnorm 1), or AdamW with decoupled ``weight_decay`` when it is > 0."""
    import rnnkit

    loss = "binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy"
    if weight_decay:
        optimizer = rnnkit.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=1.0)
    else:
        optimizer = rnnkit.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def encode(vectorizer, texts, length=None):
    """Token ids padded at the end; a text with no tokens reads as one unknown token, so
    no row is all padding (that keeps every batch on the fused packed-sequence kernel)."""
    ids = vectorizer(texts, output_sequence_length=length)
    if ids.shape[1] == 0:
        ids = np.zeros((len(texts), 1), dtype=np.int64)
    empty = ids[:, 0] == 0
    ids[empty, 0] = 1
    return ids


def chunk_ids(sequences, window):
    """Cut each document's token ids into consecutive windows of at most ``window`` ids.

    A document of ``n`` ids gives ``k = ceil(n / window)`` windows of as equal a size as
    possible (``n / k`` rounded, the longer ones first), so that no window is a short tail
    that would count as much as a full one in :func:`pool_documents`; one without ids gives
    one window holding the unknown id 1 (as :func:`encode` does). Returns ``(ids, owner)``:
    ``ids`` (number of windows, ``window``), padded with 0 at the end, and ``owner[w]`` = the
    document window ``w`` comes from. Example: ``chunk_ids([[5, 6, 7, 8, 9], [4]], 4)`` ->
    ``[[5, 6, 7, 0], [8, 9, 0, 0], [4, 0, 0, 0]]``, owners ``[0, 0, 1]``.
    """
    pieces, owner = [], []
    for doc, sequence in enumerate(sequences):
        sequence = list(sequence) or [1]
        k = -(-len(sequence) // window)
        for piece in np.array_split(np.asarray(sequence, dtype=np.int64), k):
            pieces.append(piece)
            owner.append(doc)
    ids = np.zeros((len(pieces), window), dtype=np.int64)
    for row, piece in enumerate(pieces):
        ids[row, :len(piece)] = piece
    return ids, np.asarray(owner, dtype=np.int64)


def pool_documents(window_probs, owner, n_documents):
    """A document's probabilities = the mean of its windows' probabilities:
    ``p(doc) = (1 / |W(doc)|) * sum_{w in W(doc)} p(w)``. Every document needs a window."""
    window_probs = np.asarray(window_probs, dtype=np.float64)
    sums = np.zeros((n_documents, window_probs.shape[1]))
    np.add.at(sums, owner, window_probs)
    counts = np.bincount(owner, minlength=n_documents)
    if (counts == 0).any():
        raise ValueError(f"document(s) {np.flatnonzero(counts == 0).tolist()[:5]} have no window.")
    return sums / counts[:, None]


def encode_documents(vectorizer, texts, chunk=None):
    """``(ids, owner)`` for a model: with ``chunk``, every window of ``chunk`` tokens of every
    text (:func:`chunk_ids`); without, one row per text cut at the vectorizer's length
    (:func:`encode`) and ``owner`` None."""
    if not chunk:
        return encode(vectorizer, texts), None
    return chunk_ids(vectorizer.texts_to_sequences(texts), chunk)


def document_probabilities(model, ids, owner, num_classes, n_documents):
    """(n_documents, num_classes) probabilities: one per row of ``ids`` when ``owner`` is None,
    else pooled over each document's windows (:func:`pool_documents`)."""
    probs = class_probabilities(model, ids, num_classes)
    return probs if owner is None else pool_documents(probs, owner, n_documents)


def class_probabilities(model, ids, num_classes, batch_size=256):
    """(n, num_classes) probabilities from a sigmoid or softmax head."""
    out = model.predict(ids, batch_size=batch_size, verbose=0)
    if num_classes == 2:
        p = out.reshape(-1)
        return np.stack([1 - p, p], axis=1)
    return out


def train_classifier(model, x_train, y_train, x_val, y_val, epochs, batch_size, patience, verbose, callbacks=()):
    """Fit with early stopping on validation loss, best weights restored (and ``callbacks``);
    returns (history, seconds)."""
    import rnnkit

    stop = rnnkit.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    started = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_data=(x_val, y_val),
                        callbacks=[stop, *callbacks], verbose=verbose)
    seconds = time.perf_counter() - started
    logs = history.history
    best = int(np.argmin(logs["val_loss"])) if logs.get("val_loss") else len(logs.get("loss", [])) - 1
    summary = {"epochs_run": len(logs.get("loss", [])), "best_epoch": best + 1,
               "history": {k: [round(float(v), 5) for v in vals] for k, vals in logs.items()}}
    return summary, seconds


# ----- baselines --------------------------------------------------------------------------------
BASELINE_NAME = "bow-logreg"
BASELINES = {
    # the baseline: a plain bag of words
    "bow-logreg": "bag of words (word counts, the RNN's tokens) -> logistic regression, C chosen on the "
                  "validation split",
    # a stronger reference beside it: word pairs too, TF-IDF weighted
    "ngram-tfidf-logreg": "TF-IDF of word unigrams+bigrams (sublinear tf, the RNN's tokens) -> logistic "
                          "regression, C chosen on the validation split",
}
BASELINE_DESCRIPTION = BASELINES[BASELINE_NAME]


def bow_baseline(vectorizer, train, val, test, seed=0, cs=(0.25, 1.0, 4.0, 16.0, 64.0), length=None,
                 name=BASELINE_NAME):
    """A baseline of :data:`BASELINES` on the same split. ``length`` cuts every text to its
    first ``length`` tokens first (to see what the RNN's truncation costs); None keeps all.

    Returns ``(summary, test_probabilities)``.
    """
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    pairs = name == "ngram-tfidf-logreg"

    def analyzer(text):
        tokens = vectorizer.tokenize(text)
        if length is not None:
            tokens = tokens[:length]
        return tokens + ([a + " " + b for a, b in zip(tokens, tokens[1:])] if pairs else [])

    started = time.perf_counter()
    features = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True) if pairs else CountVectorizer(analyzer=analyzer)
    x_train = features.fit_transform(train.texts)
    x_val, x_test = features.transform(val.texts), features.transform(test.texts)
    best = None
    for c in cs:
        clf = LogisticRegression(C=c, solver="newton-cg", max_iter=1000, random_state=seed)
        clf.fit(x_train, train.labels)
        acc = float((clf.predict(x_val) == val.labels).mean())
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    val_acc, c, clf = best
    probs = clf.predict_proba(x_test)
    seconds = time.perf_counter() - started
    import sklearn

    summary = {"description": BASELINES[name], "C": c, "features": int(x_train.shape[1]),
               "val_accuracy": round(val_acc, 5), "train_seconds": round(seconds, 2),
               "scikit_learn": sklearn.__version__}
    if length is not None:
        summary["tokens_per_text"] = length
    return summary, probs


# ----- metrics, tables, files -------------------------------------------------------------------
def classification_metrics(y_true, probs, class_names):
    """Accuracy, per-class precision / recall / F1 / support and the confusion matrix
    (rows: true class, columns: predicted)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(probs).argmax(axis=1)
    k = len(class_names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(class_names):
        tp = int(cm[i, i])
        predicted, actual = int(cm[:, i].sum()), int(cm[i].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                           "support": actual}
    return {"accuracy": round(float((y_pred == y_true).mean()), 5), "per_class": per_class,
            "confusion_matrix": cm.tolist()}


def save_confusion_png(cm, class_names, path, title):
    """Confusion matrix (rows true, columns predicted), cells shaded by share of the true class."""
    from .. import plots

    cm = np.asarray(cm)
    k = len(class_names)
    fig = plots.new_figure(1.1 * k + 3.0, 0.9 * k + 2.2)
    ax = fig.add_subplot(1, 1, 1)
    shares = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=30, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return plots.save_png(fig, path)


def save_history_png(histories, path, title, reference=None):
    """Validation (solid) and training (dashed) accuracy per epoch for each model."""
    from .. import plots

    curves = {name: {"train": h.get("accuracy"), "val": h.get("val_accuracy")} for name, h in histories.items()}
    return plots.training_curves(path, curves, reference=reference, title=title, metric="accuracy")


# ----- model files ------------------------------------------------------------------------------
def task_metadata(task, vectorizer, **extra):
    return {"task": task, "vectorizer": vectorizer.get_config(), **extra}


def load_task_model(path, task):
    """Load a model file and check it was trained for ``task``; returns (model, vectorizer, metadata)."""
    from rnnkit.text import TextVectorizer

    model, metadata = load_model_for(path, task)
    if "vectorizer" not in metadata:
        raise UsageError(f"{path} has no vectorizer in its metadata, so it cannot read raw text.")
    return model, TextVectorizer.from_config(metadata["vectorizer"]), metadata


def read_input_texts(texts, file=None, stdin=None):
    """Texts from arguments, else from ``file`` (one per line; '-' = stdin), else from stdin
    when it is not a terminal. Blank texts are an error."""
    stdin = sys.stdin if stdin is None else stdin
    if texts:
        items = list(texts)
        where = "argument"
    else:
        if file is not None and file != "-":
            try:
                with open(file, encoding="utf-8") as f:
                    items = f.read().splitlines()
            except UnicodeDecodeError:
                raise UsageError(f"{file} is not UTF-8 text.") from None
            where = f"line of {file}"
        elif file == "-" or not stdin.isatty():
            items = stdin.read().splitlines()
            where = "line of standard input"
        else:
            raise UsageError("no text given: pass strings, --file FILE, or pipe lines to standard input.")
        items = [t for t in items if t.strip()]  # blank lines in a file separate nothing
        if not items:
            raise UsageError(f"no text to classify: every {where} is empty.")
    for i, text in enumerate(items, start=1):
        if not text.strip():
            raise UsageError(f"text {i} is empty; give some words to classify.")
    return items


# ----- the shared train / predict flow of sentiment and classify --------------------------------
def add_threads_argument(parser):
    parser.add_argument("--threads", type=threads, default=None,
                        help="CPU threads for PyTorch (default: PyTorch's choice, usually one per core)")


def apply_threads(args):
    return _apply_thread_count(getattr(args, "threads", None))


def add_classifier_train_arguments(parser, *, default_model, default_maxlen, default_epochs, default_out,
                                   default_max_tokens, default_batch_size, default_patience=2,
                                   default_embed_dropout=0.0, default_pool="last", default_spatial_dropout=0.0,
                                   default_dropout=0.3, default_embed_dim=64, default_units=64,
                                   default_learning_rate=1e-3, default_weight_decay=0.0, default_ensemble=1):
    parser.add_argument("--model", default=default_model,
                        help=f"{', '.join(CLASSIFIER_KINDS)}, a comma-separated list, or all "
                             f"(default {default_model})")
    parser.add_argument("--epochs", type=positive_int, default=default_epochs,
                        help=f"most epochs per model; early stopping on validation loss (default {default_epochs})")
    parser.add_argument("--out", default=default_out, help=f"output folder (default {default_out})")
    parser.add_argument("--maxlen", type=positive_int, default=default_maxlen,
                        help=f"tokens kept per text, the rest cut from the end (default {default_maxlen})")
    parser.add_argument("--max-tokens", type=bounded_int(3, 10_000_000, "a vocabulary size (padding, OOV, words)"),
                        default=default_max_tokens,
                        help=f"vocabulary size including padding and OOV (default {default_max_tokens})")
    parser.add_argument("--min-count", type=positive_int, default=2,
                        help="keep words seen at least this often in training (default 2)")
    parser.add_argument("--embed-dim", type=positive_int, default=default_embed_dim,
                        help=f"embedding size (default {default_embed_dim})")
    parser.add_argument("--units", type=positive_int, default=default_units,
                        help=f"recurrent units (per direction for bilstm; default {default_units})")
    parser.add_argument("--dropout", type=dropout_rate, default=default_dropout,
                        help=f"dropout before the output (default {default_dropout:g})")
    parser.add_argument("--embed-dropout", type=dropout_rate, default=default_embed_dropout,
                        help=f"dropout of single entries of the word vectors (default {default_embed_dropout:g})")
    parser.add_argument("--spatial-dropout", type=dropout_rate, default=default_spatial_dropout,
                        help="SpatialDropout1D on the word vectors: drop whole embedding channels, the same ones "
                             f"at every word of a text (default {default_spatial_dropout:g})")
    parser.add_argument("--pool", choices=POOLS, default=default_pool,
                        help="classify from the recurrent layer's last output, or the mean or the maximum of its "
                             f"outputs over the words (the mean leaves padding out, the maximum does not, as in "
                             f"Keras 3; default {default_pool})")
    parser.add_argument("--chunk", type=positive_int, default=None, metavar="WORDS",
                        help="read whole texts: cut each into windows of at most WORDS tokens, of equal size "
                             "(instead of keeping the first --maxlen), train on every window with its text's "
                             "label, and classify a text by the mean of its windows' probabilities (default: off)")
    parser.add_argument("--batch-size", type=positive_int, default=default_batch_size,
                        help=f"(default {default_batch_size})")
    parser.add_argument("--learning-rate", type=positive_float, default=default_learning_rate,
                        help=f"Adam's (default {default_learning_rate:g})")
    parser.add_argument("--weight-decay", type=nonnegative_float, default=default_weight_decay,
                        help="decoupled weight decay: > 0 trains with AdamW instead of Adam "
                             f"(default {default_weight_decay:g})")
    parser.add_argument("--ensemble", type=positive_int, default=default_ensemble,
                        help="train N copies of each model from different initial weights (seeds SEED, SEED+1, "
                             "...) and average their probabilities; every copy is saved and `predict` on "
                             f"model.rnnkit uses them all (default {default_ensemble})")
    parser.add_argument("--patience", type=positive_int, default=default_patience,
                        help=f"epochs without a better validation loss before stopping (default {default_patience})")
    parser.add_argument("--seed", type=seed, default=0, help="data split and weight initialisation (default 0)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="use only the first N texts of each split (quick runs)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the bag-of-words baseline")
    add_threads_argument(parser)
    add_training_service_arguments(parser, distributed=False)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                        help="0 silent, 1 progress bar, 2 one line per epoch (default)")


def add_data_arguments(parser, builtin):
    """``--data``, ``--test-data``, ``--text-column``, ``--label-column``: the user's own texts
    instead of the built-in corpus ``builtin`` (see :mod:`rnnkit.datasets.user_text`)."""
    parser.add_argument("--data", default=None, metavar="DIR|FILE",
                        help=f"your own labelled texts instead of {builtin}: a folder with one sub-folder of .txt "
                             "files per class, or a .csv/.tsv/.jsonl file with a text and a label column")
    parser.add_argument("--test-data", default=None, metavar="DIR|FILE",
                        help="a separate test set in the same layout (default: a stratified split of --data "
                             "for --seed)")
    parser.add_argument("--text-column", default=None,
                        help="with a .csv/.tsv/.jsonl --data: the column holding the texts (default text)")
    parser.add_argument("--label-column", default=None,
                        help="with a .csv/.tsv/.jsonl --data: the column holding the labels (default label)")


def user_splits(args, *, val_fraction, test_fraction):
    """The splits of ``args.data`` (and ``args.test_data``), or None when no ``--data`` was given."""
    from ..datasets.user_text import user_text_splits

    if args.data is None:
        extra = [flag for flag, value in (("--test-data", args.test_data), ("--text-column", args.text_column),
                                          ("--label-column", args.label_column)) if value is not None]
        if extra:
            verb, pronoun = ("go", "them") if len(extra) > 1 else ("goes", "it")
            raise UsageError(f"{', '.join(extra)} {verb} with --data; add --data DIR|FILE or leave {pronoun} out.")
        return None
    if Path(args.data).is_dir() and (args.text_column or args.label_column):
        raise UsageError(f"--text-column and --label-column are for .csv/.tsv/.jsonl files; {args.data} is a "
                         "folder, whose sub-folder names are the labels.")
    return user_text_splits(args.data, args.test_data, text_column=args.text_column,
                            label_column=args.label_column, seed=args.seed, val_fraction=val_fraction,
                            test_fraction=test_fraction)


def add_classifier_predict_arguments(parser, task):
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    parser.add_argument("--model-file", required=True, help=f"a model saved by `rnnkit {task} train`")
    parser.add_argument("--file", default=None, help="read one text per line from this file ('-': stdin)")
    parser.add_argument("--top", type=positive_int, default=1, help="print the N most likely labels (default 1)")


def train_text_classifiers(args, *, task, splits, say=print):
    """Train and compare the classifiers of ``args``; their files land in ``args.out`` only when the
    whole run completes (see ``_common.output_folder``)."""
    with output_folder(args.out) as out:
        return _train_text_classifiers(args, out, task=task, splits=splits, say=say)


def _train_text_classifiers(args, out, *, task, splits, say=print):
    """Train the requested models and the baseline on ``splits``; write models, plots and
    report.json into ``args.out``; return the report."""
    import rnnkit
    from rnnkit.text import TextVectorizer

    started_all = time.perf_counter()
    threads = apply_threads(args)
    kinds = resolve_models(args.model)
    corpus_sizes = splits.sizes()
    if args.limit:
        splits = splits.head(args.limit)
    class_names = list(splits.class_names)
    num_classes = len(class_names)
    for name, part in (("training", splits.train), ("validation", splits.val), ("test", splits.test)):
        if len(part) == 0:
            raise UsageError(f"the {name} split is empty.")
    if len(np.unique(splits.train.labels)) < 2:
        raise UsageError("the training split holds only one class; use a larger --limit.")
    say(f"{splits.info.get('corpus', task)}: {len(splits.train)} train / {len(splits.val)} validation / "
        f"{len(splits.test)} test texts; classes: {', '.join(class_names)}")
    if "split_rule" in splits.info:
        say(f"split for seed {splits.info.get('seed')}: {splits.info['split_rule']}")

    vectorizer = TextVectorizer(max_tokens=args.max_tokens, min_count=args.min_count,
                                output_sequence_length=args.maxlen)
    vectorizer.adapt(splits.train.texts)
    chunk = getattr(args, "chunk", None)
    (x_train, own_train), (x_val, own_val), (x_test, own_test) = (
        encode_documents(vectorizer, s.texts, chunk) for s in (splits.train, splits.val, splits.test))
    y_train, y_val = splits.train.labels, splits.val.labels
    if chunk:  # every window carries its text's label
        y_train, y_val = y_train[own_train], y_val[own_val]
    if num_classes == 2:
        y_train, y_val = y_train.astype("float32"), y_val.astype("float32")
    lengths = {name: vectorizer.lengths(s.texts) for name, s in
               (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    all_lengths = np.concatenate(list(lengths.values()))
    truncation = {
        "maxlen": args.maxlen,
        "tokens_per_text": {"mean": round(float(all_lengths.mean()), 1), "median": float(np.median(all_lengths)),
                            "p90": float(np.percentile(all_lengths, 90)), "max": int(all_lengths.max())},
        "texts_truncated_share": round(float((all_lengths > args.maxlen).mean()), 4),
        "test_texts_over_maxlen": int((lengths["test"] > args.maxlen).sum()),
        "tokens_dropped_share": round(float(np.maximum(all_lengths - args.maxlen, 0).sum() / all_lengths.sum()), 4),
    }
    majority = int(np.bincount(splits.train.labels, minlength=num_classes).argmax())
    report = {
        "task": task, "command": getattr(args, "command_line", None), "corpus": splits.info.get("corpus"),
        "classes": class_names,
        "split_sizes": splits.sizes(), "corpus_split_sizes": corpus_sizes, "data": splits.info,
        "settings": {k: getattr(args, k) for k in ("model", "epochs", "maxlen", "max_tokens", "min_count",
                                                   "embed_dim", "units", "dropout", "embed_dropout", "spatial_dropout",
                                                   "pool", "batch_size", "learning_rate", "weight_decay",
                                                   "ensemble", "patience", "seed", "limit", "chunk")
                     if hasattr(args, k)},
        "vocabulary_size": vectorizer.vocabulary_size(), "truncation": truncation,
        "majority_class": {"label": class_names[majority],
                           "test_accuracy": round(float((splits.test.labels == majority).mean()), 5)},
        "models": {}, "baseline": None,
        "torch_threads": threads,
    }
    if chunk:
        per_text = np.concatenate([np.bincount(own) for own in (own_train, own_val, own_test)])
        report["chunking"] = {
            "window_tokens": chunk, "pooling": "mean of the windows' probabilities per text",
            "windows": {"train": len(x_train), "val": len(x_val), "test": len(x_test)},
            "windows_per_text": {"mean": round(float(per_text.mean()), 2), "max": int(per_text.max())},
            "texts_cut": 0}
        say(f"vocabulary: {vectorizer.vocabulary_size()} ids; whole texts in windows of {chunk} tokens: "
            f"{len(x_train)} training windows from {len(splits.train)} texts ({per_text.mean():.2f} per text, "
            f"at most {per_text.max()}); "
            f"without --chunk, maxlen {args.maxlen} would cut {truncation['texts_truncated_share']:.1%} of texts")
    else:
        say(f"vocabulary: {vectorizer.vocabulary_size()} ids; maxlen {args.maxlen} tokens "
            f"({truncation['texts_truncated_share']:.1%} of texts cut, "
            f"{truncation['tokens_dropped_share']:.1%} of tokens)")

    def accuracy_where(mask, probs):
        """Test accuracy on the texts of ``mask`` (those longer than maxlen: what truncation cuts), or None."""
        hits = probs.argmax(1)[mask] == splits.test.labels[mask]
        return round(float(hits.mean()), 5) if mask.any() else None

    plots_dir = out
    trained = {}
    members = getattr(args, "ensemble", 1) or 1
    for kind in kinds:
        description = describe_classifier(kind, args)
        if members > 1:
            description = f"{members} x [{description}], probabilities averaged"
        say(f"\n== {kind}: {description} ==")
        models, member_rows, val_sum, test_sum, seconds, summary = [], [], 0, 0, 0.0, None
        for i in range(members):
            seed = args.seed + i
            rnnkit.utils.set_random_seed(seed)
            model = build_classifier(kind, vectorizer.vocabulary_size(), num_classes, args.embed_dim, args.units,
                                     args.dropout, args.embed_dropout, args.pool,
                                     getattr(args, "spatial_dropout", 0.0))
            compile_classifier(model, num_classes, args.learning_rate, getattr(args, "weight_decay", 0.0))
            if members > 1:
                say(f"-- {kind} copy {i + 1} of {members} (seed {seed}) --")
            run = kind if members == 1 else f"{kind}-{i + 1}"
            member_summary, member_seconds = train_classifier(model, x_train, y_train, x_val, y_val, args.epochs,
                                                              args.batch_size, args.patience, args.verbose,
                                                              callbacks=training_callbacks(args, run=run))
            val_p = document_probabilities(model, x_val, own_val, num_classes, len(splits.val))
            test_p = document_probabilities(model, x_test, own_test, num_classes, len(splits.test))
            val_sum, test_sum, seconds = val_sum + val_p, test_sum + test_p, seconds + member_seconds
            summary = summary or member_summary
            models.append(model)
            row = {"seed": seed, "val_accuracy": round(float((val_p.argmax(1) == splits.val.labels).mean()), 5),
                   "test_accuracy": round(float((test_p.argmax(1) == splits.test.labels).mean()), 5),
                   "epochs_run": member_summary["epochs_run"], "best_epoch": member_summary["best_epoch"],
                   "train_seconds": round(member_seconds, 2)}
            member_rows.append(row)
            if members > 1:
                say(f"{kind} copy {i + 1}: validation accuracy {row['val_accuracy']:.4f}, test accuracy "
                    f"{row['test_accuracy']:.4f} ({member_seconds:.1f} s, {row['epochs_run']} epochs, "
                    f"best {row['best_epoch']})")
        val_probs, test_probs = val_sum / members, test_sum / members
        test_metrics = classification_metrics(splits.test.labels, test_probs, class_names)
        val_acc = round(float((val_probs.argmax(1) == splits.val.labels).mean()), 5)
        files = [f"{task}-{kind}.rnnkit"] + [f"{task}-{kind}-copy{i + 1}.rnnkit" for i in range(1, members)]
        for i, (model, name) in enumerate(zip(models, files)):
            extra = {"ensemble": files} if i == 0 and members > 1 else {}
            if chunk:
                extra["chunk"] = chunk
            model.metadata = task_metadata(task, vectorizer, labels=class_names, model=kind,
                                           description=description, corpus=report["corpus"],
                                           test_accuracy=test_metrics["accuracy"], val_accuracy=val_acc,
                                           seed=member_rows[i]["seed"], **extra)
            model.save(out / name)
        entry = {"description": description, "params": int(sum(m.count_params() for m in models)),
                 "val_accuracy": val_acc, "test_accuracy": test_metrics["accuracy"], "test": test_metrics,
                 "test_accuracy_texts_over_maxlen": accuracy_where(lengths["test"] > args.maxlen, test_probs),
                 "train_seconds": round(seconds, 2), "model_file": files[0], **summary}
        if members > 1:
            entry["ensemble"] = {"copies": members, "model_files": files, "members": member_rows,
                                 "note": "epochs_run, best_epoch and history are the first copy's"}
        if num_classes > 2:
            png = plots_dir / f"confusion-{kind}.png"
            save_confusion_png(test_metrics["confusion_matrix"], class_names, png,
                               f"{kind} on the test split (accuracy {test_metrics['accuracy']:.3f})")
            entry["confusion_png"] = png.name
        report["models"][kind] = entry
        trained[kind] = models[0]
        say(f"{kind}: validation accuracy {val_acc:.4f}, test accuracy {test_metrics['accuracy']:.4f} "
            f"({seconds:.1f} s, {summary['epochs_run']} epochs, best {summary['best_epoch']}"
            f"{'' if members == 1 else ', first copy'})")

    best = max(kinds, key=lambda k: (report["models"][k]["val_accuracy"], -kinds.index(k)))
    trained[best].save(out / "model.rnnkit")
    report["best_model"] = {"name": best, "chosen_by": "validation accuracy", "model_file": "model.rnnkit"}
    if members > 1:
        report["best_model"]["ensemble_files"] = report["models"][best]["ensemble"]["model_files"]

    if not args.no_baseline:
        report["baselines"] = {}
        for name, description in BASELINES.items():
            say(f"\n== baseline {name}: {description} ==")
            summary, probs = bow_baseline(vectorizer, splits.train, splits.val, splits.test, seed=args.seed,
                                          name=name)
            summary["test"] = classification_metrics(splits.test.labels, probs, class_names)
            summary["test_accuracy"] = summary["test"]["accuracy"]
            summary["test_accuracy_texts_over_maxlen"] = accuracy_where(lengths["test"] > args.maxlen, probs)
            report["baselines"][name] = {"name": name, **summary}
        primary = report["baselines"][BASELINE_NAME]
        if num_classes > 2:
            save_confusion_png(primary["test"]["confusion_matrix"], class_names, out / "confusion-baseline.png",
                               f"{BASELINE_NAME} on the test split (accuracy {primary['test_accuracy']:.3f})")
            primary["confusion_png"] = "confusion-baseline.png"
        if truncation["texts_truncated_share"] > 0:
            cut, cut_probs = bow_baseline(vectorizer, splits.train, splits.val, splits.test, seed=args.seed,
                                          length=args.maxlen)
            cut_acc = classification_metrics(splits.test.labels, cut_probs, class_names)["accuracy"]
            truncation["baseline_test_accuracy_full_text"] = primary["test_accuracy"]
            truncation["baseline_test_accuracy_first_maxlen_tokens"] = cut_acc
            truncation["baseline_accuracy_cost_of_truncation"] = round(primary["test_accuracy"] - cut_acc, 5)
        report["baseline"] = primary

    reference = {f"{BASELINE_NAME} validation": report["baseline"]["val_accuracy"]} if report["baseline"] else None
    save_history_png({k: report["models"][k]["history"] for k in kinds}, out / "history.png",
                     f"{task}: accuracy per epoch", reference)
    report["history_png"] = "history.png"
    report["seconds_total"] = round(time.perf_counter() - started_all, 1)
    def row_name(kind):
        return kind if members == 1 else f"{kind} x{members}"

    rows = []
    for kind in kinds:
        m = report["models"][kind]
        rows.append([row_name(kind), f"{m['test_accuracy']:.4f}", f"{m['val_accuracy']:.4f}", m["epochs_run"],
                     f"{m['params']:,}", f"{m['train_seconds']:.1f}"])
    for name, b in (report.get("baselines") or {}).items():
        role = "baseline" if name == BASELINE_NAME else "reference"
        rows.append([f"{name} ({role})", f"{b['test_accuracy']:.4f}", f"{b['val_accuracy']:.4f}", "-",
                     f"{b['features']:,} feat.", f"{b['train_seconds']:.1f}"])
    rows.append([f"majority class ({report['majority_class']['label']})",
                 f"{report['majority_class']['test_accuracy']:.4f}", "-", "-", "-", "-"])
    table = format_table(["model", "test acc", "val acc", "epochs", "params", "train s"], rows)
    report["table"] = table.splitlines()
    say("\n" + table)
    if report["baseline"]:
        # the RNN picked on validation (model.rnnkit) against each baseline, all on test
        mine = report["models"][best]["test_accuracy"]
        report["comparisons"] = {}
        for name, b in report["baselines"].items():
            diff = mine - b["test_accuracy"]
            verdict = "beats" if diff > 0 else ("ties" if diff == 0 else "does not beat")
            line = (f"RNN picked on validation: {row_name(best)} {mine:.4f} on test {verdict} "
                    f"{name} {b['test_accuracy']:.4f} ({diff * 100:+.2f} points)")
            report["comparisons"][name] = line
            say(line)
        report["comparison"] = report["comparisons"][BASELINE_NAME]
    if "baseline_accuracy_cost_of_truncation" in truncation:
        full = truncation["baseline_test_accuracy_full_text"]
        cut = truncation["baseline_test_accuracy_first_maxlen_tokens"]
        say(f"truncation to {args.maxlen} tokens: the baseline's test accuracy is {full:.4f} on full texts and "
            f"{cut:.4f} on the first {args.maxlen} tokens ({(cut - full) * 100:+.2f} points)")
    if truncation["test_texts_over_maxlen"]:
        scores = [(row_name(k), report["models"][k]["test_accuracy_texts_over_maxlen"]) for k in kinds]
        scores += [(name, b["test_accuracy_texts_over_maxlen"]) for name, b in (report.get("baselines") or {}).items()]
        say(f"test accuracy on the {truncation['test_texts_over_maxlen']} test texts longer than {args.maxlen} "
            f"tokens{' (read whole, in windows)' if chunk else ''}: "
            + ", ".join(f"{name} {acc:.4f}" for name, acc in scores))
    write_json(out / "report.json", report)
    final = Path(args.out)
    say(f"\nwrote {final / 'report.json'}, {final / 'model.rnnkit'} (best: {best}) and plots in {final}")
    return report


def predict_text_classes(args, *, task, out=None):
    """Print, for each text, the most likely label(s) and probability; returns the rows."""
    out = out or sys.stdout
    model, vectorizer, metadata = load_task_model(args.model_file, task)
    labels = metadata.get("labels")
    if not labels:
        raise UsageError(f"{args.model_file} has no class labels in its metadata.")
    texts = read_input_texts(args.texts, args.file)
    ids, owner = encode_documents(vectorizer, texts, metadata.get("chunk"))
    probs = document_probabilities(model, ids, owner, len(labels), len(texts))
    copies = metadata.get("ensemble") or []
    if len(copies) > 1:  # the first listed file is this model's own copy
        folder = Path(args.model_file).parent
        for name in copies[1:]:
            if not (folder / name).is_file():
                raise FileNotFoundError(
                    f"{args.model_file} is the first of an ensemble of {len(copies)} models, but its copy "
                    f"{name} is not beside it (no model file at {folder / name}); keep the files "
                    f"`rnnkit {task} train` wrote together.")
            member, _, _ = load_task_model(folder / name, task)
            probs = probs + document_probabilities(member, ids, owner, len(labels), len(texts))
        probs = probs / len(copies)
    top = min(args.top, len(labels))
    rows = []
    for text, p in zip(texts, probs):
        order = np.argsort(-p, kind="stable")[:top]
        picks = [(labels[i], float(p[i])) for i in order]
        rows.append((text, picks))
        shown = "\t".join(f"{name}\t{prob:.3f}" for name, prob in picks)
        print(f"{shown}\t{text}", file=out, flush=True)
    return rows
