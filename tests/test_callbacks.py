import csv
import os
import types

import numpy as np
import pytest

from rnnkit import callbacks


class FakeModel:
    """Minimal stand-in for rnnkit.Model: one weight array set to the epoch number by `fit`."""

    def __init__(self, learning_rate=0.1):
        self.stop_training = False
        self.weights = [np.zeros(2)]
        self.optimizer = types.SimpleNamespace(learning_rate=learning_rate)
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        self.saved.append(("model", path))
        with open(path, "w") as f:
            f.write("model")

    def save_weights(self, path):
        self.saved.append(("weights", path))
        with open(path, "w") as f:
            f.write("weights")


def fit(model, cbs, epoch_logs, steps=1):
    """Drive callbacks like Model.fit; epoch e sets the weights to e. Returns epochs run."""
    cb_list = callbacks.CallbackList(cbs, model=model, epochs=len(epoch_logs), steps=steps)
    model.stop_training = False
    cb_list.on_train_begin()
    run = 0
    for epoch, logs in enumerate(epoch_logs):
        cb_list.on_epoch_begin(epoch)
        for batch in range(steps):
            cb_list.on_train_batch_begin(batch)
            cb_list.on_train_batch_end(batch, {"loss": logs.get("loss", 0.0)})
        model.weights = [np.full(2, float(epoch))]
        cb_list.on_epoch_end(epoch, dict(logs))
        run += 1
        if model.stop_training:
            break
    cb_list.on_train_end()
    return run


def val_losses(*values):
    return [{"loss": 1.0, "val_loss": v} for v in values]


def test_early_stopping_patience():
    es = callbacks.EarlyStopping(patience=2)
    assert fit(FakeModel(), [es], val_losses(1.0, 0.9, 0.95, 0.91, 0.8)) == 4
    assert (es.stopped_epoch, es.best, es.best_epoch, es.wait) == (3, 0.9, 1, 2)


def test_early_stopping_patience_zero_never_stops_on_first_epoch():
    es = callbacks.EarlyStopping(monitor="loss")
    assert fit(FakeModel(), [es], [{"loss": 1.0}, {"loss": 1.0}, {"loss": 0.5}]) == 2
    assert es.stopped_epoch == 1


def test_early_stopping_min_delta():
    es = callbacks.EarlyStopping(min_delta=0.1, patience=1)
    assert fit(FakeModel(), [es], val_losses(1.0, 0.95, 0.5)) == 2
    assert es.best == 1.0


def test_early_stopping_auto_mode_maximizes_accuracy():
    logs = [{"val_accuracy": a} for a in (0.5, 0.7, 0.6, 0.65)]
    es = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    assert fit(FakeModel(), [es], logs) == 3
    assert es.best == 0.7
    es_min = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, mode="min")
    assert fit(FakeModel(), [es_min], logs) == 2


def test_early_stopping_restores_best_weights_when_stopped():
    model = FakeModel()
    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    fit(model, [es], val_losses(1.0, 0.5, 0.7, 0.8, 0.1))
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_early_stopping_restores_best_weights_at_end_even_without_stopping():
    model = FakeModel()
    fit(model, [callbacks.EarlyStopping(patience=5, restore_best_weights=True)], val_losses(1.0, 0.5, 0.7))
    np.testing.assert_array_equal(model.weights[0], [1.0, 1.0])


def test_early_stopping_baseline_only_resets_patience_when_beaten():
    # Improvements that do not beat the baseline leave `wait` counting up.
    with_baseline = callbacks.EarlyStopping(patience=2, baseline=0.5)
    assert fit(FakeModel(), [with_baseline], val_losses(0.9, 0.8, 0.7, 0.75, 0.6)) == 4
    assert with_baseline.stopped_epoch == 3
    without = callbacks.EarlyStopping(patience=2)
    assert fit(FakeModel(), [without], val_losses(0.9, 0.8, 0.7, 0.75, 0.6)) == 5


def test_early_stopping_start_from_epoch_ignores_warm_up():
    es = callbacks.EarlyStopping(monitor="loss", patience=0, start_from_epoch=2)
    logs = [{"loss": v} for v in (0.1, 0.5, 0.9, 0.95, 0.8)]
    assert fit(FakeModel(), [es], logs) == 4
    assert es.best == 0.9


def test_early_stopping_instance_is_reusable():
    es = callbacks.EarlyStopping(patience=1)
    fit(FakeModel(), [es], val_losses(0.1, 0.2))
    assert fit(FakeModel(), [es], val_losses(5.0, 4.0, 3.0)) == 3
    assert es.stopped_epoch == 0 and es.best == 3.0


def test_missing_monitor_warns_with_available_keys():
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available metrics are: loss,mae"):
        callbacks.EarlyStopping().on_epoch_end(0, {"loss": 1.0, "mae": 0.5})
    rlr = callbacks.ReduceLROnPlateau()
    rlr.set_model(FakeModel())
    with pytest.warns(UserWarning, match="Available metrics are: loss,learning_rate"):
        rlr.on_epoch_end(0, {"loss": 1.0})


def test_model_checkpoint_formats_filepath_with_one_based_epoch(tmp_path):
    model = FakeModel()
    path = os.path.join(tmp_path, "ckpt", "m-{epoch:02d}-{val_loss:.4f}.rnnkit")
    fit(model, [callbacks.ModelCheckpoint(path)], val_losses(0.5, 0.25))
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["m-01-0.5000.rnnkit", "m-02-0.2500.rnnkit"]
    assert [kind for kind, _ in model.saved] == ["model", "model"]


def test_model_checkpoint_save_best_only(tmp_path):
    model = FakeModel()
    path = str(tmp_path / "best.weights")
    cp = callbacks.ModelCheckpoint(path, save_best_only=True, save_weights_only=True)
    fit(model, [cp], val_losses(1.0, 1.2, 0.8, 0.8))
    assert model.saved == [("weights", path), ("weights", path)]
    assert cp.best == 0.8


def test_model_checkpoint_auto_mode_maximizes_accuracy(tmp_path):
    model = FakeModel()
    cp = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}.rnnkit"), monitor="val_acc", save_best_only=True)
    fit(model, [cp], [{"val_acc": a} for a in (0.6, 0.5, 0.9)])
    assert [os.path.basename(p) for _, p in model.saved] == ["e1.rnnkit", "e3.rnnkit"]


def test_model_checkpoint_missing_monitor_warns_and_saves(tmp_path):
    model = FakeModel()
    cp = callbacks.ModelCheckpoint(str(tmp_path / "m.rnnkit"), save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss available"):
        fit(model, [cp], [{"loss": 1.0}])
    assert len(model.saved) == 1


def test_model_checkpoint_integer_save_freq(tmp_path):
    model = FakeModel()
    cp = callbacks.ModelCheckpoint(str(tmp_path / "e{epoch}b{batch}.rnnkit"), save_freq=2)
    fit(model, [cp], [{"loss": 1.0}, {"loss": 0.5}], steps=3)
    assert [os.path.basename(p) for _, p in model.saved] == ["e1b2.rnnkit", "e2b1.rnnkit", "e2b3.rnnkit"]


def test_reduce_lr_on_plateau_logs_lr_and_reduces():
    model = FakeModel(learning_rate=0.1)
    history = callbacks.History()
    rlr = callbacks.ReduceLROnPlateau(factor=0.5, patience=1)
    fit(model, [rlr, history], val_losses(1.0, 1.0, 1.0, 0.5, 0.5))
    np.testing.assert_allclose(history.history["learning_rate"], [0.1, 0.1, 0.05, 0.025, 0.025])
    assert model.optimizer.learning_rate == pytest.approx(0.0125)


def test_reduce_lr_on_plateau_cooldown_min_lr_and_min_delta():
    model = FakeModel(learning_rate=1.0)
    fit(model, [callbacks.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)], val_losses(*[1.0] * 4))
    assert model.optimizer.learning_rate == 0.25  # reduced after epochs 1 and 3
    model = FakeModel(learning_rate=0.1)
    fit(model, [callbacks.ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05)], val_losses(*[1.0] * 5))
    assert model.optimizer.learning_rate == 0.05
    model = FakeModel(learning_rate=0.1)
    fit(model, [callbacks.ReduceLROnPlateau(patience=1)], val_losses(1.0, 0.99995))
    assert model.optimizer.learning_rate == pytest.approx(0.01)


def test_reduce_lr_on_plateau_rejects_factor_at_least_one():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)


def test_csv_logger_writes_and_flushes_each_epoch(tmp_path):
    path = str(tmp_path / "log.csv")
    logger = callbacks.CSVLogger(path, separator=";")
    logger.set_model(FakeModel())
    logger.on_train_begin()
    logger.on_epoch_end(0, {"val_loss": 0.5, "loss": 0.25})
    with open(path) as f:
        assert f.read() == "epoch;loss;val_loss\n0;0.25;0.5\n"
    logger.on_epoch_end(1, {"loss": 0.125})
    logger.on_train_end()
    with open(path) as f:
        assert list(csv.reader(f, delimiter=";"))[-1] == ["1", "0.125", "NA"]


def test_csv_logger_append_keeps_a_single_header(tmp_path):
    path = str(tmp_path / "log.csv")
    fit(FakeModel(), [callbacks.CSVLogger(path)], val_losses(0.5))
    fit(FakeModel(), [callbacks.CSVLogger(path, append=True)], val_losses(0.25))
    with open(path) as f:
        rows = list(csv.reader(f))
    assert rows == [["epoch", "loss", "val_loss"], ["0", "1.0", "0.5"], ["0", "1.0", "0.25"]]


def test_history_records_logs_and_sets_model_history():
    model = FakeModel()
    history = callbacks.History()
    fit(model, [history], val_losses(0.5, 0.25))
    assert history.history == {"loss": [1.0, 1.0], "val_loss": [0.5, 0.25]}
    assert history.epoch == [0, 1]
    assert model.history is history


def test_callback_list_add_history_and_params():
    cb_list = callbacks.CallbackList([], add_history=True, model=FakeModel(), epochs=3, verbose=0)
    assert isinstance(cb_list.history, callbacks.History)
    assert cb_list.history.params == {"epochs": 3, "verbose": 0}


def test_lambda_callback_and_legacy_batch_alias():
    calls = []
    lam = callbacks.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, logs["val_loss"])),
        on_train_batch_end=lambda batch, logs: calls.append(("batch_end", batch)),
        on_train_end=lambda logs: calls.append("train_end"),
    )

    class Legacy(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            calls.append(("legacy", batch))

    fit(FakeModel(), [lam, Legacy()], val_losses(0.5), steps=2)
    assert calls == ["train_begin", ("batch_end", 0), ("legacy", 0), ("batch_end", 1), ("legacy", 1),
                     ("epoch_end", 0, 0.5), "train_end"]
    with pytest.raises(ValueError, match="Unknown callback hooks"):
        callbacks.LambdaCallback(on_epoch_ends=print)
