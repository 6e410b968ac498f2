"""Every numeric option of every entry script has a range checked at parse time (uer/utils/ranges.py):
the walk below runs each script's real parser (``--help``, in this process) and fails on a numeric option
declared with a bare ``int``/``float`` or none at all; then out-of-range values end in argparse's one line."""
from __future__ import annotations

import argparse
import contextlib
import io
import math

import pytest

from errors_workspace import run_entry
from test_error_matrix import entry_scripts
from uer.utils.ranges import finite_positive_float, int_range, is_range_checked, positive_int, seed_int


def script_parsers(script: str) -> list[argparse.ArgumentParser]:
    """The parsers ``script --help`` builds and parses with (recorded from ArgumentParser.parse_known_args)."""
    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def record(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    argparse.ArgumentParser.parse_known_args = record
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            run_entry(script, "--help")
    finally:
        argparse.ArgumentParser.parse_known_args = original
    return seen


def unchecked_numeric_options(parser: argparse.ArgumentParser) -> list[str]:
    bad = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0 or isinstance(action, argparse._HelpAction):
            continue
        numeric_default = isinstance(action.default, (int, float)) and not isinstance(action.default, bool)
        if action.type in (int, float) or (action.type is None and numeric_default and not action.choices):
            bad.append(action.option_strings[0])
        elif action.type is not None and not is_range_checked(action.type) and numeric_default:
            bad.append(action.option_strings[0])
    return bad


@pytest.mark.parametrize("script", sorted(entry_scripts()))
def test_every_numeric_option_has_a_checked_range(script: str) -> None:
    parsers = script_parsers(script)
    assert parsers, f"{script} --help parsed nothing"
    bad = sorted({name for parser in parsers for name in unchecked_numeric_options(parser)})
    assert bad == [], f"{script}: numeric options without a range-checked type (uer/utils/ranges.py): {bad}"


def test_the_walk_catches_a_bare_int() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rate", default=0.5)
    parser.add_argument("--ok", type=positive_int, default=1)
    assert unchecked_numeric_options(parser) == ["--steps", "--rate"]


@pytest.mark.parametrize("parse,text,accepted", [
    (positive_int, "3", 3), (positive_int, "0", None), (positive_int, "1_0", None), (positive_int, "1e3", None),
    (seed_int, "-1", None), (seed_int, str(2**32), None), (seed_int, "0", 0), (int_range(2), "1", None),
    (finite_positive_float, "nan", None), (finite_positive_float, "inf", None), (finite_positive_float, "-1", None),
    (finite_positive_float, "0", None), (finite_positive_float, "2e-5", 2e-5), (finite_positive_float, "1_0", None),
])
def test_range_types(parse, text: str, accepted) -> None:
    if accepted is None:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    else:
        value = parse(text)
        assert value == accepted and not (isinstance(value, float) and math.isnan(value))


@pytest.mark.parametrize("script,option,value", [
    ("run_classifier.py", "--learning_rate", "nan"), ("run_classifier.py", "--learning_rate", "-1"),
    ("run_classifier.py", "--seed", "-1"), ("run_classifier.py", "--seq_length", "1"),
    ("scripts/generate_lm.py", "--temperature", "nan"), ("pretrain.py", "--total_steps", "0"),
    ("preprocess.py", "--dup_factor", "0"), ("scripts/prediction_server.py", "--port", "70000"),
])
def test_out_of_range_value_is_one_argparse_line(capsys, script: str, option: str, value: str) -> None:
    code = run_entry(script, option, value)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert f"error: argument {option}" in last and value in last, last
