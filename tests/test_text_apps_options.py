"""``rnnkit sentiment train`` options: seed ensembles, max pooling, spatial dropout, AdamW."""
import json

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.apps import _text_common as common
from rnnkit.cli import main as cli
from rnnkit.datasets import DownloadError
from rnnkit.datasets.text_corpora import rotten_tomatoes

torch.set_num_threads(1)
TEXTS = ["a tedious, overlong film", "A masterpiece of wit and warmth."]




@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    try:
        rotten_tomatoes()
    except DownloadError as exc:
        pytest.skip(str(exc))
    out = tmp_path_factory.mktemp("ensemble")
    rc = cli(["sentiment", "train", "--model", "gru", "--limit", "200", "--epochs", "1", "--embed-dim", "4",
              "--units", "4", "--ensemble", "2", "--pool", "max", "--spatial-dropout", "0.2",
              "--weight-decay", "0.01", "--out", str(out), "--verbose", "0"])
    assert rc == 0
    return out


def test_ensemble_report_files_and_settings(ensemble_run, capsys):
    report = json.loads((ensemble_run / "report.json").read_text())
    settings = report["settings"]
    assert (settings["ensemble"], settings["pool"], settings["spatial_dropout"], settings["weight_decay"]) == \
        (2, "max", 0.2, 0.01)
    entry = report["models"]["gru"]
    assert entry["description"].startswith("2 x [Embedding(4, mask_zero) -> SpatialDropout1D(0.2) -> Dropout(0.5)")
    assert "GlobalMaxPooling1D" in entry["description"]
    files = entry["ensemble"]["model_files"]
    assert files == ["sentiment-gru.rnnkit", "sentiment-gru-copy2.rnnkit"]
    assert [m["seed"] for m in entry["ensemble"]["members"]] == [0, 1]
    assert all((ensemble_run / f).is_file() for f in files)
    assert report["best_model"]["ensemble_files"] == files
    assert report["comparison"].startswith("RNN picked on validation: gru x2 ")
    model = rnnkit.load_model(ensemble_run / "model.rnnkit", compile=False)
    assert model.metadata["ensemble"] == files
    assert [type(layer).__name__ for layer in model.layers] == [
        "Embedding", "SpatialDropout1D", "Dropout", "GRU", "GlobalMaxPooling1D", "Dropout", "Dense"]


def test_predict_averages_the_ensemble_copies(ensemble_run, capsys):
    probs = []
    for name in ("sentiment-gru.rnnkit", "sentiment-gru-copy2.rnnkit"):
        model, vectorizer, _ = common.load_task_model(ensemble_run / name, "sentiment")
        probs.append(common.class_probabilities(model, common.encode(vectorizer, TEXTS), 2))
    expected = np.mean(probs, axis=0)
    assert not np.allclose(probs[0], probs[1])  # the copies differ, so averaging is visible
    capsys.readouterr()
    assert cli(["sentiment", "predict", "--model-file", str(ensemble_run / "model.rnnkit"), *TEXTS]) == 0
    for line, p in zip(capsys.readouterr().out.strip().splitlines(), expected):
        label, prob, _ = line.split("\t")
        assert label == ["rotten", "fresh"][int(p.argmax())]
        assert float(prob) == pytest.approx(p.max(), abs=1e-3)


def test_a_missing_ensemble_copy_is_a_clear_error(ensemble_run, tmp_path, capsys):
    import shutil

    shutil.copy(ensemble_run / "model.rnnkit", tmp_path / "model.rnnkit")
    assert cli(["sentiment", "predict", "--model-file", str(tmp_path / "model.rnnkit"), "fine"]) == 2
    err = capsys.readouterr().err
    assert "ensemble of 2 models" in err and "sentiment-gru-copy2.rnnkit" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("flag, value, message", [
    ("--spatial-dropout", "1", "dropout rate in [0, 1)"),
    ("--dropout", "1.5", "dropout rate in [0, 1)"),
    ("--weight-decay", "-0.1", "number >= 0"),
    ("--ensemble", "0", "positive integer"),
    ("--pool", "min", "invalid choice"),
])
def test_bad_option_values_are_usage_errors(flag, value, message, tmp_path, capsys):
    assert cli(["sentiment", "train", flag, value, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_sentiment_defaults_are_the_chosen_configuration():
    import argparse

    from rnnkit.apps import sentiment

    parser = argparse.ArgumentParser()
    sentiment.add_arguments(parser.add_subparsers())
    args = parser.parse_args(["sentiment", "train"])
    assert (args.model, args.ensemble, args.pool, args.embed_dropout, args.spatial_dropout, args.dropout,
            args.weight_decay, args.learning_rate) == ("bilstm", 4, "last", 0.5, 0.0, 0.3, 0.0, 1e-3)


def test_build_classifier_rejects_an_unknown_pool():
    with pytest.raises(common.UsageError, match="unknown pool"):
        common.build_classifier("gru", 10, 2, pool="median")
