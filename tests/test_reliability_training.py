"""Training faults: a non-finite loss stops fit cleanly, divergence and an inf validation loss are reported."""
import math
import warnings

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit import callbacks
from rnnkit.layers import Dense, Input

X = np.linspace(-1, 1, 16, dtype=np.float32).reshape(16, 1)
Y = 2 * X


def _model():
    torch.manual_seed(0)
    model = rnnkit.Sequential([Input((1,)), Dense(1)])
    model.compile(rnnkit.optimizers.SGD(0.01), "mse")
    return model


def _blow_up_after_first_epoch(model):
    """Kernel 1e30 after epoch 1: the next step's loss overflows to inf."""
    def blow_up(epoch, logs):
        if epoch == 0:
            model.layers[0].kernel.data.fill_(1e30)
    return callbacks.LambdaCallback(on_epoch_end=blow_up)


def test_a_non_finite_loss_raises_with_the_history_and_runs_on_train_end(tmp_path):
    model = _model()
    log = callbacks.CSVLogger(tmp_path / "log.csv")
    with pytest.raises(FloatingPointError, match="The loss became inf") as info:
        model.fit(X, Y, batch_size=4, epochs=5, verbose=0, callbacks=[_blow_up_after_first_epoch(model), log])
    history = info.value.history
    assert history is model.history and len(history.history["loss"]) == 1  # the one completed epoch
    assert log.csv_file.closed
    assert (tmp_path / "log.csv").read_text().splitlines()[0] == "epoch,loss"
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 2
    assert torch.isfinite(model.layers[0].kernel).all()  # the non-finite step never updated the weights


def test_terminate_on_nan_stops_and_returns_the_history(tmp_path, capsys):
    model = _model()
    log = callbacks.CSVLogger(tmp_path / "log.csv")
    history = model.fit(X, Y, batch_size=4, epochs=5, verbose=0,
                        callbacks=[_blow_up_after_first_epoch(model), callbacks.TerminateOnNaN(), log])
    losses = history.history["loss"]
    assert len(losses) == 2 and math.isfinite(losses[0]) and math.isinf(losses[1])
    assert "Batch 0: Invalid loss, terminating training" in capsys.readouterr().out
    assert log.csv_file.closed and len((tmp_path / "log.csv").read_text().splitlines()) == 3
    assert torch.isfinite(model.layers[0].kernel).all()


def test_a_diverging_loss_is_warned_about_once():
    model = _model()
    grow = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: model.layers[0].kernel.data.mul_(100))
    with pytest.warns(RuntimeWarning, match="more than 1000-fold: training is diverging") as record:
        model.fit(X, Y, batch_size=16, epochs=5, verbose=0, callbacks=[grow])
    assert sum("diverging" in str(w.message) for w in record) == 1


def test_normal_training_warns_about_nothing():
    model = _model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(X, Y, batch_size=4, epochs=3, verbose=0, validation_data=(X, Y))


def test_an_inf_validation_loss_is_reported():
    model = _model()
    huge = np.full((4, 1), 1e20, dtype=np.float32)
    with torch.no_grad():
        model.layers[0].kernel.fill_(1.0)
    with pytest.warns(RuntimeWarning, match="Epoch 1: the validation loss is inf"):
        history = model.fit(X, Y, batch_size=16, epochs=1, verbose=0, validation_data=(huge, huge * 0))
    assert math.isinf(history.history["val_loss"][0])
    with pytest.warns(RuntimeWarning, match=r"evaluate\(\): the loss is inf"):
        model.evaluate(huge, huge * 0, verbose=0)


def test_a_spike_from_a_near_zero_loss_back_below_the_first_epoch_is_not_divergence():
    from rnnkit.models.model import _LossWatch

    watch = _LossWatch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for epoch, loss in enumerate([1.1, 0.01, 3.5e-6, 0.27, 0.02]):  # a 77,000-fold spike, still below 1.1
            watch.check(epoch, {"loss": loss})
    with pytest.warns(RuntimeWarning, match="diverging"):
        watch.check(5, {"loss": 50.0})
