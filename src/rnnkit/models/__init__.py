"""Models: ``Model`` (functional, subclassed), ``Sequential``, and Keras's ``models.load_model`` path."""
from ..saving import load_model, save_model
from .model import Functional, Model
from .sequential import Sequential

__all__ = ["Functional", "Model", "Sequential", "load_model", "save_model"]
