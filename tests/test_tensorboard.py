"""rnnkit.callbacks.TensorBoard: Keras's event files and tags, read back with TensorBoard's own reader."""
import builtins
import math

import numpy as np
import pytest

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

import rnnkit  # noqa: E402
from rnnkit import callbacks  # noqa: E402


def _events(folder):
    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def _scalars(accumulator, tag):
    return [(e.step, e.value) for e in accumulator.Scalars(tag)]


def _steps_values(accumulator, tag):
    pairs = _scalars(accumulator, tag)
    return [s for s, _ in pairs], [v for _, v in pairs]


def _model():
    rnnkit.utils.set_random_seed(0)
    inputs = rnnkit.Input(shape=(5, 2))
    outputs = rnnkit.layers.Dense(1)(rnnkit.layers.GRU(4)(inputs))
    model = rnnkit.Model(inputs, outputs)
    model.compile(optimizer=rnnkit.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    return model


def _data(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5, 2)).astype("float32")
    return x, x.sum(axis=(1, 2))[:, None].astype("float32")


def test_epoch_scalars_match_the_history(tmp_path):
    x, y = _data()
    board = callbacks.TensorBoard(log_dir=tmp_path, histogram_freq=1)
    history = _model().fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0, callbacks=[board])
    train, val = _events(tmp_path / "train"), _events(tmp_path / "validation")
    assert {"epoch_loss", "epoch_mae", "epoch_learning_rate"} <= set(train.Tags()["scalars"])
    assert set(val.Tags()["scalars"]) == {"epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations",
                                          "evaluation_mae_vs_iterations"}
    for name in ("loss", "mae"):
        for events, key in ((train, name), (val, f"val_{name}")):
            steps, values = _steps_values(events, f"epoch_{name}")
            assert steps == [0, 1] and values == pytest.approx(history.history[key], rel=1e-6)  # float32 events
    # 30 training samples in batches of 8: 4 optimizer steps per epoch
    assert [s for s, _ in _scalars(val, "evaluation_loss_vs_iterations")] == [4, 8]
    assert _steps_values(train, "epoch_learning_rate") == ([0, 1], pytest.approx([0.01, 0.01]))
    histograms = train.Tags()["histograms"]
    assert len(histograms) == 5 and all(t.endswith("/histogram") for t in histograms)  # GRU: 3, Dense: 2
    assert not any(t.startswith("batch_") for t in train.Tags()["scalars"])  # update_freq="epoch"


def test_batch_scalars_every_update_freq_batches(tmp_path):
    x, y = _data(40)
    board = callbacks.TensorBoard(log_dir=tmp_path, update_freq=2, write_graph=False)
    _model().fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[board])
    train = _events(tmp_path / "train")
    steps = [s for s, _ in _scalars(train, "batch_loss")]
    assert steps == [2, 4, 6, 8, 10]  # 5 batches per epoch, global batch numbers
    assert all(math.isfinite(v) for _, v in _scalars(train, "batch_mae"))
    assert not (tmp_path / "validation").exists()


def test_the_apps_flag_gives_one_log_folder_per_model(tmp_path):
    import argparse

    from rnnkit.apps._common import add_training_service_arguments, training_callbacks

    parser = argparse.ArgumentParser()
    add_training_service_arguments(parser)
    assert training_callbacks(parser.parse_args([])) == []
    [board] = training_callbacks(parser.parse_args(["--tensorboard", str(tmp_path)]), run="gru")
    assert isinstance(board, callbacks.TensorBoard) and board.log_dir == str(tmp_path / "gru")


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(update_freq="sometimes")
    with pytest.raises(ValueError, match="profile_batch=0"):
        callbacks.TensorBoard(profile_batch=2)


def test_missing_tensorboard_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"pip install \"rnnkit\[tensorboard\]\""):
        callbacks.TensorBoard()


@pytest.mark.parametrize("argv", [["forecast"], ["generate", "train"], ["classify", "train"], ["sentiment", "train"],
                                  ["tsclassify", "train"], ["seq2seq", "train"], ["compare", "stocks"],
                                  ["compare", "texts"]])
def test_every_training_command_takes_tensorboard(argv):
    # authorship trains dozens of small models per fold with its own loop: no --tensorboard there
    from rnnkit.cli import build_parser

    args = build_parser([argv[0]]).parse_args([*argv, "--tensorboard", "logs/tb"])
    assert args.tensorboard == "logs/tb"
