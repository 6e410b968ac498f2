"""A tiny registry helper: one dict per component family, with name, duplicate and base-class checks.

Each family (embeddings, encoders, targets) keeps its dict in its package so that ``grep`` finds every
implementation; the names themselves are declared in :mod:`uer.names` (importable without torch, for argparse
``choices=``), and ``register`` / :func:`check_complete` keep the dict and that tuple equal.
"""
from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T", bound=type)


def make_register(registry: dict[str, type], base: type,
                  names: Sequence[str] | None = None) -> Callable[[str], Callable[[T], T]]:
    """Return a ``register(name)`` class decorator that fills ``registry``; with ``names``, only those."""

    def register(name: str) -> Callable[[T], T]:
        def wrap(cls: T) -> T:
            if names is not None and name not in names:
                raise ValueError(f"{cls.__name__} registered as {name!r}, which is not declared in uer/names.py "
                                 f"(declared: {', '.join(names)}): add the name there")
            if name in registry:
                raise ValueError(f"duplicate registration of {name!r}: {registry[name]} and {cls}")
            if not issubclass(cls, base):
                raise TypeError(f"{cls} registered as {name!r} must subclass {base.__name__}")
            registry[name] = cls
            return cls

        return wrap

    return register


def check_complete(registry: dict[str, type], names: Sequence[str], family: str) -> None:
    """Raise when a name declared in :mod:`uer.names` has no registered implementation."""
    missing = [name for name in names if name not in registry]
    if missing:
        raise ImportError(f"{family}: {', '.join(missing)} declared in uer/names.py but never registered "
                          "(missing import line in the package's __init__.py?)")
