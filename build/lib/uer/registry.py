"""A tiny registry helper: one dict per component family, with duplicate and base-class checks.

Each family (embeddings, encoders, targets) keeps its dict in its package ``__init__.py`` so that
``grep`` finds every name; argparse ``choices=`` are built from the same dicts and never retyped.
"""
from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T", bound=type)


def make_register(registry: dict[str, type], base: type) -> Callable[[str], Callable[[T], T]]:
    """Return a ``register(name)`` class decorator that fills ``registry``."""

    def register(name: str) -> Callable[[T], T]:
        def wrap(cls: T) -> T:
            if name in registry:
                raise ValueError(f"duplicate registration of {name!r}: {registry[name]} and {cls}")
            if not issubclass(cls, base):
                raise TypeError(f"{cls} registered as {name!r} must subclass {base.__name__}")
            registry[name] = cls
            return cls

        return wrap

    return register
