"""Models: ``Model`` (training API for any forward pass) and ``Sequential``."""
from .model import Model
from .sequential import Sequential

__all__ = ["Model", "Sequential"]
