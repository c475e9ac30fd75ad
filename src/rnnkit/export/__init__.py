"""Exporting rnnkit models to other runtimes: :func:`export_onnx` (an ONNX file for onnxruntime & co)."""
from .onnx import ExportError, ExportInfo, export_onnx

__all__ = ["ExportError", "ExportInfo", "export_onnx"]
