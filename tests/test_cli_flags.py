"""Every numeric flag of every command refuses bad values in the argument parser: one usage line and
one error line naming the flag, exit status 2, never a traceback (table-driven over the commands)."""
import pytest

from rnnkit import cli

MODEL = ["--model-file", "m.rnnkit"]
CASES = [
    # (command words, flag, bad value)
    (["forecast"], "--epochs", "0"), (["forecast"], "--patience", "-1"), (["forecast"], "--sequence-length", "0"),
    (["forecast"], "--batch-size", "0"), (["forecast"], "--learning-rate", "-1"), (["forecast"], "--learning-rate", "0"),
    (["forecast"], "--learning-rate", "nan"), (["forecast"], "--seed", "-1"), (["forecast"], "--seed", str(2 ** 40)),
    (["forecast"], "--threads", "-5"), (["forecast"], "--threads", "100000"),
    (["forecast", "predict", *MODEL], "--show", "-1"), (["forecast", "predict", *MODEL], "--threads", "-1"),
    (["sentiment", "train"], "--batch-size", "0"), (["sentiment", "train"], "--seed", "-1"),
    (["sentiment", "train"], "--max-tokens", "1"), (["sentiment", "train"], "--threads", "100000"),
    (["sentiment", "train"], "--epochs", "0"), (["sentiment", "train"], "--dropout", "1.5"),
    (["sentiment", "train"], "--learning-rate", "inf"), (["sentiment", "train"], "--patience", "0"),
    (["classify", "train"], "--batch-size", "-3"), (["classify", "train"], "--seed", "x"),
    (["generate", "train"], "--seq-length", "0"), (["generate", "train"], "--batch-size", "0"),
    (["generate", "train"], "--seed", "-1"), (["generate", "train"], "--minutes", "-2"),
    (["generate", "sample", *MODEL], "--length", "1000000000"), (["generate", "sample", *MODEL], "--length", "-1"),
    (["generate", "sample", *MODEL], "--seed", "-1"), (["generate", "sample", *MODEL], "--temperature", "-1"),
    (["compare", "stocks"], "--epochs", "0"), (["compare", "stocks"], "--seed", "-1"),
    (["compare", "stocks"], "--temperature", "0"), (["compare", "stocks"], "--train-end", "abc"),
    (["export", *MODEL, "--out", "m.onnx"], "--opset", "3"),
    (["seq2seq", "train"], "--epochs", "0"), (["seq2seq", "train"], "--beam-size", "0"),
    (["seq2seq", "train"], "--digits", "12"), (["seq2seq", "train"], "--seed", "-1"),
    (["seq2seq", "train"], "--threads", "100000"), (["seq2seq", "train"], "--length-penalty", "-1"),
    (["seq2seq", "predict", *MODEL], "--beam-size", "-2"),
]


@pytest.mark.parametrize("words,flag,value", CASES, ids=[f"{' '.join(w[:2])} {f} {v}" for w, f, v in CASES])
def test_bad_flag_values_are_refused_by_the_parser(words, flag, value, capsys):
    assert cli.main([*words, flag, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rnnkit") and f"argument {flag}" in err[-1], err
    assert not any("Traceback" in line for line in err)
