"""The lecture's programs in examples/ run and print the lecture's numbers."""
import runpy
from pathlib import Path

import pytest

import rnnkit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("script,expected", [
    ("lecture_simple_rnn.py", ["320,000", "2,080", "Total params: 322,080"]),
    ("lecture_stacked_rnn.py", ["Total params: 322,080", "simple_rnn_5 (SimpleRNN)", "Total params: 330,400"]),
    ("lecture_lstm.py", ["(None, 5, 1)", "Total params: 24"]),
    ("hello_char_rnn.py", ["input 'hell' -> predicted 'ello'"]),
])
def test_example_prints_lecture_numbers(script, expected, capsys):
    rnnkit.utils.clear_session()
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    out = capsys.readouterr().out
    for text in expected:
        assert text in out
