"""Range-checked numbers for argparse: every numeric command-line option declares its range with one of these
``type=`` functions, so a value out of range (``--learning_rate nan``, ``--seed -1``, ``--batch_size 0``)
ends at parse time in argparse's one line ``prog: error: argument --x: ...`` (exit status 2), never in a
traceback or a silently wrong run. tests/test_option_ranges.py walks every entry script's parser and fails on
a numeric option declared with a bare ``int`` or ``float``.

Imports nothing heavy (preprocess.py's parser uses it).
"""
from __future__ import annotations

import argparse
import math
from typing import Callable

RANGE_CHECKED = "_uer_range"  # attribute that marks a type function of this module (the test looks for it)


def _describe(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def int_range(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a plain integer (digits, optional sign; no ``1_0``, no ``1e3``) in [low, high]."""
    bounds = _describe(low, high, False, False)

    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isascii() or not digits.isdigit():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
        value = int(stripped)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be {bounds}")
        return value

    parse.__name__ = f"integer {bounds}"
    setattr(parse, RANGE_CHECKED, bounds)
    return parse


def float_range(low: float | None = None, high: float | None = None, low_open: bool = False,
                high_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in the range (``nan`` and ``inf`` are refused)."""
    bounds = _describe(low, high, low_open, high_open)

    def parse(text: str) -> float:
        try:
            value = float(text.replace("_", "#"))  # float() accepts 1_0; a typo should not become 10
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: must be {bounds}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: must be {bounds}")
        return value

    parse.__name__ = f"number {bounds}"
    setattr(parse, RANGE_CHECKED, bounds)
    return parse


positive_int = int_range(1)
non_negative_int = int_range(0)
seed_int = int_range(0, 2**32 - 1)  # numpy's seed range (torch accepts it too)
port_number = int_range(0, 65535)   # 0: any free port
probability = float_range(0.0, 1.0)
dropout_probability = float_range(0.0, 1.0, high_open=True)
fraction = float_range(0.0, 1.0)
finite_positive_float = float_range(0.0, None, low_open=True)
non_negative_float = float_range(0.0)
finite_float = float_range()
adam_beta = float_range(0.0, 1.0, high_open=True)
# a sequence must hold at least [CLS], one token and [SEP]
sequence_length = int_range(3)


def is_range_checked(type_function: object) -> bool:
    return hasattr(type_function, RANGE_CHECKED)


__all__ = ["adam_beta", "dropout_probability", "finite_float", "finite_positive_float", "float_range", "fraction",
           "int_range", "is_range_checked", "non_negative_float", "non_negative_int", "port_number", "positive_int",
           "probability", "seed_int", "sequence_length"]
