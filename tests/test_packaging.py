"""Packaging: pyproject's console commands point at real functions, the installed ones run, no sys.path edits."""
from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import tomllib

import pytest

from conftest import ROOT, subprocess_env

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
SCRIPTS = PROJECT["project"]["scripts"]


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_console_command_targets_exist(command):
    module, _, function = SCRIPTS[command].partition(":")
    assert callable(getattr(importlib.import_module(module), function)), SCRIPTS[command]


def test_version_and_licence():
    import uer

    assert re.fullmatch(r"\d+\.\d+\.\d+", uer.__version__)
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert f"## {uer.__version__}" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_installed_commands_run():
    found = [command for command in ("uer-preprocess", "uer-pretrain", "uer-run-classifier") if shutil.which(command)]
    if not found:
        pytest.skip("the package is not installed (pip install -e .): no uer-* commands on PATH")
    for command in found:
        proc = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120, env=subprocess_env(),
                              cwd=ROOT.parent)
        assert proc.returncode == 0 and "--" in proc.stdout, (command, proc.stderr[-500:])


# tests/doc_forkserver.py runs a script in a forked interpreter and sets up sys.path as `python3 SCRIPT` does
SYS_PATH_EMULATORS = {"test_packaging.py", "doc_forkserver.py"}


def test_no_sys_path_edits():
    offenders = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
                 if ".git" not in path.parts and "sys.path.insert" in path.read_text(encoding="utf-8")
                 and path.name not in SYS_PATH_EMULATORS]
    assert offenders == []
