"""rnnkit's benchmark suite: ``python -m benchmarks.rnn --help``."""
