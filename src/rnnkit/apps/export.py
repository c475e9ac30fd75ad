"""``rnnkit export``: write a saved model as an ONNX file for onnxruntime and other runtimes.

    rnnkit export --model-file runs/forecast/model.rnnkit --out forecast.onnx
    rnnkit export --model-file runs/sentiment/model.rnnkit --out sentiment.onnx [--masks any]

Reads any model file ``rnnkit.load_model`` reads (``.rnnkit``, ``.keras``, ``.h5``) and writes
it with :func:`rnnkit.export.export_onnx`: recurrent layers become ONNX's own LSTM / GRU / RNN
operators, masks become ``sequence_lens`` (right-padded token ids), batch and time axes are
dynamic. It prints the file's inputs and outputs and how each layer was exported. The model's
metadata (for a text model: its vectorizer's vocabulary and labels) is stored as JSON in the
ONNX file's metadata (key ``rnnkit.metadata``): text models export from the token ids on, so
texts are vectorised before the ONNX model runs. Of a seed ensemble (``--ensemble K``) only
the given file is exported.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import UsageError, _common


def add_arguments(subparsers):
    parser = subparsers.add_parser("export", help="write a saved model as an ONNX file (onnxruntime)",
                                   description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[2])
    parser.add_argument("--model-file", required=True, metavar="M.rnnkit",
                        help="the model to export (.rnnkit, .keras or .h5)")
    parser.add_argument("--out", required=True, metavar="M.onnx", help="the ONNX file to write")
    parser.add_argument("--format", default="onnx", choices=["onnx"], help="the export format (onnx)")
    parser.add_argument("--opset", type=_common.bounded_int(17, 23, "an ONNX opset"), default=None,
                        help="ONNX opset (default 17)")
    parser.add_argument("--masks", default="right_padding", choices=["right_padding", "any"],
                        help="right_padding (default): masked recurrent layers use ONNX's LSTM/GRU/RNN operators "
                             "with sequence_lens, for right-padded token ids (other masks fail at run time); "
                             "any: masked recurrent layers run as ONNX Scan loops that apply any mask step by "
                             "step (left padding, holes), without the fused kernels")
    return parser


def main(args):
    import rnnkit
    from rnnkit import compare  # noqa: F401  (registers the functions that compare models' Lambdas name)
    from rnnkit.export import ExportError, export_onnx
    from rnnkit.export.onnx import OPSET

    source, out = Path(args.model_file), Path(args.out)
    if not source.is_file():
        raise FileNotFoundError(f"no model file at {source}")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the .onnx file to write.")
    if not out.parent.is_dir():
        raise UsageError(f"--out: the folder {out.parent} does not exist.")
    opset = OPSET if args.opset is None else args.opset
    model = rnnkit.load_model(source, compile=False)
    metadata = getattr(model, "metadata", None) or {}
    props = {"rnnkit.source": source.name}
    if metadata:
        props["rnnkit.metadata"] = json.dumps(metadata, default=str)
    try:
        info = export_onnx(model, out, opset=opset, masks=args.masks, metadata=props)
    except ExportError as exc:
        raise UsageError(f"{source} cannot be exported: {exc}") from None
    print(info)
    if "vectorizer" in metadata:
        print("note: this text model reads token ids; its vectorizer (vocabulary, standardisation) is in the "
              "ONNX metadata under 'rnnkit.metadata'.")
    if metadata.get("ensemble"):
        print(f"note: {source.name} is the first of a seed ensemble ({len(metadata['ensemble'])} files); only it "
              "was exported.")
    return 0


if __name__ == "__main__":
    import sys

    from ._text_common import run_standalone

    sys.exit(run_standalone(sys.modules[__name__], "export"))
