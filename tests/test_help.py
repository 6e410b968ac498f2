"""--help of every entry script: each option shows its default, usage examples print as written."""
from __future__ import annotations

import argparse
import importlib
import re
import runpy
import sys

import pytest

from conftest import ROOT, run_script

from uer.finetune.tasks import get_task, task_names

# Every task's training and inference parser (from the registry), pre-training and generation.
PARSERS = ["uer.cli.pretrain"] + [f"finetune:{name}" for name in task_names()] + [
    f"infer:{name}" for name in task_names() if get_task(name).infer_doc]


def _parser(module: str) -> argparse.ArgumentParser:
    if module.startswith(("finetune:", "infer:")):
        command, name = module.split(":")
        if command == "finetune":
            from uer.finetune.commands import build_train_parser

            return build_train_parser(get_task(name))
        return importlib.import_module(f"uer.cli.{command}").build_parser(get_task(name))
    mod = importlib.import_module(module)
    return mod.build_parser("generate.py") if module == "uer.generation" else mod.build_parser()


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and a.help is not argparse.SUPPRESS
            and a.default is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("module", PARSERS + ["uer.generation"])
def test_every_option_shows_its_default(module: str) -> None:
    parser = _parser(module)
    assert isinstance(parser._get_formatter(), argparse.RawDescriptionHelpFormatter)
    for action in _options(parser):
        formatter = parser._get_formatter()
        formatter.add_argument(action)  # the lines --help prints for this option
        entry = re.sub(r"\s+", " ", formatter.format_help())
        assert f"(default: {action.default})".replace("[", "").replace("]", "")[:20] in entry.replace("[", "").replace("]", ""), entry


def test_usage_examples_keep_their_lines_and_config_default() -> None:
    out = run_script("pretrain.py", "--help").stdout
    assert "--vocab_path models/google_zh_vocab.txt \\\n        --config_path" in out
    config_help = re.sub(r"\s+", " ", out.split("--config_path CONFIG_PATH\n", 1)[1].split("--embedding", 1)[0])
    assert "(default: models/bert/base_config.json)" in config_help
    assert "tiny_config" not in config_help
    assert "(default: None)" in re.sub(r"\s+", " ", out.split("--threads THREADS")[-1])
    preprocess = run_script("preprocess.py", "--help").stdout
    assert "--vocab_path models/google_zh_vocab.txt \\\n" in preprocess and "(default: dataset.pt)" in preprocess


ENTRY_SCRIPTS = sorted(["preprocess.py", "pretrain.py"] + [p.name for p in ROOT.glob("run_*.py")]
                       + [f"inference/{p.name}" for p in (ROOT / "inference").glob("*.py")]
                       + [f"scripts/{p.name}" for p in (ROOT / "scripts").glob("*.py")])


def test_every_entry_script_shows_its_defaults(monkeypatch, capsys) -> None:
    """`SCRIPT --help` of every entry script, run in this process: every option of the parser that prints the
    help shows its default, and no option group appears twice (the parsers are recorded as they parse)."""
    parsers: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def recording(self, args=None, namespace=None):
        if self.add_help:
            parsers.append(self)
        return original(self, args, namespace)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", recording)
    missing = []
    for script in ENTRY_SCRIPTS:
        parsers.clear()
        monkeypatch.setattr(sys, "argv", [script, "--help"])
        with pytest.raises(SystemExit) as stop:
            runpy.run_path(str(ROOT / script), run_name="__main__")
        assert stop.value.code == 0, script
        assert "usage:" in capsys.readouterr().out, script
        assert parsers, f"{script}: no parser printed the help"
        parser = parsers[-1]
        titles = [group.title for group in parser._action_groups]
        assert len(titles) == len(set(titles)) and "optimiser and schedule" not in titles, (script, titles)
        for action in _options(parser):
            formatter = parser._get_formatter()
            formatter.add_argument(action)
            if "(default:" not in formatter.format_help():
                missing.append(f"{script} {action.option_strings[0]}")
    assert not missing, "options whose --help shows no default: " + ", ".join(missing)
