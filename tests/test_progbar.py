import io
import re

from rnnkit.utils.progbar import Progbar, format_epoch_line, format_value


class TTY(io.StringIO):
    def isatty(self):
        return True


FINAL = re.compile(r"^10/10 \[={30}\] - \d+s \d+(us|ms|s)/step - loss: 0\.1235 - mae: 4\.5600e-04\n$")


def test_non_tty_prints_only_the_final_line():
    out = io.StringIO()
    bar = Progbar(10, interval=0, file=out)
    for step in range(1, 10):
        bar.update(step, [("loss", 0.5), ("mae", 0.1)], finalize=False)
    assert out.getvalue() == ""
    bar.update(10, [("loss", 0.123456), ("mae", 0.000456)])
    assert FINAL.match(out.getvalue()), out.getvalue()


def test_tty_redraws_in_place_with_eta():
    out = TTY()
    bar = Progbar(10, interval=0, file=out)
    bar.update(3, [("loss", 1.5)])
    first = out.getvalue()
    assert first.startswith("\r 3/10 [" + "=" * 8 + ">" + "." * 21 + "] - ETA: ")
    assert first.endswith(" - loss: 1.5000") and "\n" not in first
    bar.update(10, [("loss", 0.123456), ("mae", 0.000456)], finalize=False)
    bar.update(10, [("loss", 0.123456), ("mae", 0.000456)], finalize=True)
    lines = out.getvalue().split("\r")[1:]
    assert len(lines) == 3
    assert FINAL.match(lines[-1]), lines[-1]


def test_shorter_line_pads_over_the_previous_one():
    out = TTY()
    bar = Progbar(4, interval=0, file=out)
    bar.update(1, [("loss", 123.0), ("very_long_metric_name", 1.0)])
    bar.update(2, [("loss", 1.0)])
    previous, latest = out.getvalue().split("\r")[1:]
    assert len(latest) >= len(previous)


def test_unknown_target_shows_the_count():
    out = TTY()
    bar = Progbar(None, interval=0, file=out)
    bar.update(5, [("loss", 2.0)])
    assert re.match(r"^\r      5/Unknown - \d+s \d+(us|ms|s)/step - loss: 2\.0000$", out.getvalue())


def test_verbose_0_and_2_print_nothing():
    for verbose in (0, 2):
        out = TTY()
        bar = Progbar(3, verbose=verbose, interval=0, file=out)
        for step in (1, 2, 3):
            bar.update(step, [("loss", 1.0)])
        assert out.getvalue() == ""


def test_add_and_stateful_metrics_averaging():
    out = io.StringIO()
    bar = Progbar(2, stateful_metrics=["acc"], file=out)
    bar.add(1, [("loss", 1.0), ("acc", 0.5)])
    bar.add(1, [("loss", 3.0), ("acc", 0.75)])
    assert out.getvalue().endswith(" - loss: 2.0000 - acc: 0.7500\n")


def test_format_value_and_epoch_line():
    assert format_value(0.123456) == "0.1235"
    assert format_value(-0.5) == "-0.5000"
    assert format_value(0.0001) == "1.0000e-04"
    assert format_value(0.0) == "0.0000e+00"
    line = format_epoch_line(2.0, 100, {"loss": 0.123456, "val_loss": 0.0001})
    assert line == "2s - 20ms/step - loss: 0.1235 - val_loss: 1.0000e-04"
    assert format_epoch_line(0.05, 100, {"loss": 1.0}) == "0s - 500us/step - loss: 1.0000"
