"""The registry of serialisable classes: what ``{"class_name": ..., "config": ...}`` rebuilds from.

Every rnnkit layer and model class registers itself when it is defined (``Layer.__init_subclass__``),
so saving and loading depend on this registry, not on the modules that define the classes.
User classes join with ``@register_keras_serializable()`` (Keras's decorator, same arguments) or
per call through ``custom_objects={"Name": cls}``.

    @rnnkit.saving.register_keras_serializable(package="my_package")
    class Scale(rnnkit.layers.Layer):
        ...
"""
import inspect

from ._naming import suggest

_BUILT_IN = {}
_CUSTOM = {}


def register_built_in(cls):
    """Called for rnnkit's own classes (by ``Layer.__init_subclass__``); user classes are not, nor
    private bases (``_Merge``...)."""
    if not cls.__name__.startswith("_"):
        _BUILT_IN.setdefault(cls.__name__, cls)
    return cls


def register_keras_serializable(package="Custom", name=None):
    """Decorator that makes a user class loadable by name, as Keras's decorator of the same name.

    Arguments:
        package: a namespace for the class (``"package>Name"`` is its registered key).
        name: the name to register under (default: the class name).
    """

    def decorator(cls):
        key = name or cls.__name__
        _CUSTOM[f"{package}>{key}"] = cls
        _CUSTOM[key] = cls
        cls._registered_name = f"{package}>{key}"
        return cls

    return decorator


def get_registered_name(cls):
    return getattr(cls, "_registered_name", None) if "_registered_name" in vars(cls) else cls.__name__


def lookup(class_name, custom_objects=None, what="layer"):
    """The class registered as ``class_name`` (custom_objects first), or a clear ValueError."""
    for table in (custom_objects or {}, _CUSTOM, _BUILT_IN):
        if class_name in table:
            return table[class_name]
    short = str(class_name).split(">")[-1]
    for table in (custom_objects or {}, _CUSTOM, _BUILT_IN):
        if short in table:
            return table[short]
    known = {**_BUILT_IN, **_CUSTOM, **(custom_objects or {})}
    raise ValueError(f"Unknown {what} class '{class_name}'.{suggest(str(class_name), known)} For your own "
                     "classes pass custom_objects={'Name': cls} or decorate the class with "
                     "@rnnkit.saving.register_keras_serializable().")


def serialize(obj):
    return {"class_name": get_registered_name(type(obj)), "config": obj.get_config()}


def deserialize(spec, custom_objects=None):
    """Rebuild an object from ``{"class_name": ..., "config": ...}``."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"Expected a {{'class_name': ..., 'config': ...}} dict, got {spec!r:.200}.")
    cls = lookup(spec["class_name"], custom_objects)
    config = dict(spec.get("config") or {})
    if "custom_objects" in inspect.signature(cls.from_config).parameters:
        return cls.from_config(config, custom_objects=custom_objects)
    return cls.from_config(config)
