"""Shakespeare loader, ``rnnkit generate`` train / sample, and sampling reproducibility."""
import json
import math

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.apps import _text_common as common
from rnnkit.apps import generate
from rnnkit.cli import main as cli
from rnnkit.datasets import DownloadError
from rnnkit.datasets import text_corpora

torch.set_num_threads(1)




MARKDOWN = """# A Play

## ACT I

### SCENE I. A room.

_Enter ROMEO and
JULIET_

**ROMEO**  
But soft, what light  
through yonder window breaks?

**JULIET**  
_[Aside]_ Ay me!  
'Tis but thy name \\-- &amp; c.

*Exeunt.*
"""


def test_play_to_text_rules():
    assert text_corpora.play_to_text(MARKDOWN) == (
        "ROMEO:\nBut soft, what light\nthrough yonder window breaks?\n\n"
        "JULIET:\nAy me!\n'Tis but thy name -- & c.\n")


@pytest.fixture(scope="module")
def plays():
    try:
        return text_corpora.shakespeare()
    except DownloadError as exc:
        pytest.skip(str(exc))


def test_loader_splits_by_whole_plays(plays):
    info = plays.info
    names = {k: set(v) for k, v in info["plays"].items()}
    assert sum(len(v) for v in names.values()) == 38
    assert not (names["train"] & names["val"] or names["train"] & names["test"] or names["val"] & names["test"])
    assert "tragedies/romeo-and-juliet" in set().union(*names.values())
    total = sum(plays.sizes().values())
    assert total == info["characters"] > 4_500_000
    assert 0.08 < len(plays.val) / total < 0.16 and 0.08 < len(plays.test) / total < 0.16
    assert "**" not in plays.train and "\nROMEO:\n" in plays.train + plays.val + plays.test
    assert len(set(plays.train)) < 90
    again = text_corpora.shakespeare(seed=0)
    assert again.info["plays"] == info["plays"] and again.val == plays.val
    assert text_corpora.shakespeare(seed=1).info["plays"] != info["plays"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("generate")
    rc = cli(["generate", "train", "--limit-chars", "30000", "--epochs", "2", "--steps-per-epoch", "3",
              "--units", "16", "--layers", "2", "--embed-dim", "8", "--seq-length", "32", "--batch-size", "8",
              "--sample-length", "40", "--val-chars", "2000", "--out", str(out), "--verbose", "0"])
    assert rc == 0
    return out


def test_train_report_and_checkpoint(trained, capsys):
    report = json.loads((trained / "report.json").read_text())
    assert report["task"] == "generate" and len(report["epochs"]) == 2
    for row in report["epochs"]:
        assert row["val_bits_per_char"] == pytest.approx(row["val_loss_nats"] / math.log(2), abs=2e-4)
        assert row["sample"].startswith(report["prime"])
    assert report["split_sizes"]["train"] == 30000
    assert report["train_chars"] == 2 * 3 * 8 * 32 and report["train_seconds"] > 0
    assert set(report["final"]) >= {"val", "test"}
    model, vectorizer, metadata = common.load_task_model(trained / "model.rnnkit", "generate")
    assert metadata["val_loss_nats"] == report["final"]["val"]["loss_nats"]
    assert vectorizer.split == "char" and vectorizer.vocabulary_size() == report["vocabulary_size"]


def test_sampling_is_reproducible_per_seed(trained):
    model, vectorizer, _ = common.load_task_model(trained / "model.rnnkit", "generate")
    twin = generate.stateful_twin(model)
    a = generate.generate_text(twin, vectorizer, "THESEUS:", 80, 1.0, seed=7)
    b = generate.generate_text(twin, vectorizer, "THESEUS:", 80, 1.0, seed=7)
    c = generate.generate_text(twin, vectorizer, "THESEUS:", 80, 1.0, seed=8)
    assert a == b and a != c and len(a) == 80
    assert "[UNK]" not in a
    greedy = [generate.generate_text(twin, vectorizer, "THESEUS:", 30, 0, seed=s) for s in (1, 2)]
    assert greedy[0] == greedy[1]
    # the stateful twin equals the whole-sequence model: feeding one character at a time
    # gives the same logits as running the sequence at once
    ids = vectorizer.encode("THESEUS:\nNow")
    for layer in twin.layers:
        if hasattr(layer, "reset_states"):
            layer.reset_states()
    with torch.inference_mode():
        whole = model(torch.as_tensor(ids[None]))[0].numpy()
        steps = np.stack([twin(torch.as_tensor([[i]]))[0, -1].numpy() for i in ids])
    np.testing.assert_allclose(steps, whole, rtol=1e-4, atol=1e-5)


def test_sample_command_streams_and_repeats(trained, capsys):
    args = ["generate", "sample", "--model-file", str(trained / "model.rnnkit"), "--prime", "THESEUS:",
            "--length", "50", "--temperature", "0.8", "--seed", "3"]
    assert cli(args) == 0
    first = capsys.readouterr().out
    assert cli(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("THESEUS:") and len(first) == len("THESEUS:") + 50 + 1


def test_sample_errors(trained, tmp_path, capsys):
    model_file = str(trained / "model.rnnkit")
    assert cli(["generate", "sample", "--model-file", model_file, "--prime", "\u00e9t\u00e9"]) == 2
    captured = capsys.readouterr()
    assert "never saw" in captured.err and captured.out == ""
    assert cli(["generate", "sample", "--model-file", model_file, "--temperature", "-1"]) == 2
    capsys.readouterr()
    model = rnnkit.load_model(model_file)
    model.metadata = {**model.metadata, "task": "sentiment"}
    model.save(tmp_path / "s.rnnkit")
    assert cli(["generate", "sample", "--model-file", str(tmp_path / "s.rnnkit")]) == 2
    assert "'sentiment' model, not a 'generate' model" in capsys.readouterr().err


def test_text_file_and_minutes_budget(tmp_path, capsys):
    text = tmp_path / "tiny.txt"
    text.write_text(("the quick brown fox jumps over the lazy dog.\n" * 200), encoding="utf-8")
    out = tmp_path / "run"
    rc = cli(["generate", "train", "--text", str(text), "--minutes", "0.0001", "--steps-per-epoch", "50",
              "--units", "8", "--layers", "1", "--seq-length", "16", "--batch-size", "4", "--sample-length", "0",
              "--out", str(out), "--verbose", "0"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["corpus"] == "text-file" and report["split_sizes"]["val"] == len(text.read_text()) // 10
    # a 6 ms budget is spent within the first few of the epoch's 50 batches
    assert len(report["epochs"]) == 1 and report["epochs"][0]["steps"] < 50
    assert "test" not in report["final"]
    assert cli(["generate", "train", "--text", str(tmp_path / "missing.txt"), "--out", str(out)]) == 2
    assert "no text file" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    assert cli(["generate", "train", "--text", str(empty), "--out", str(out)]) == 2
    assert "empty" in capsys.readouterr().err
    assert cli(["generate", "train", "--text", str(text), "--dropout", "1", "--out", str(out)]) == 2
    assert "expected a dropout rate in [0, 1)" in capsys.readouterr().err
