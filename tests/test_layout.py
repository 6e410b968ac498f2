"""The layout's promises: the option module imports no torch, every choice list is its registry's, and the
link from a target to the dataset kinds it trains on is the one the instance builders declare."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, subprocess_env
from uer import names, opts
from uer.config import normalize_target
from uer.data.pretrain_instances import str2instances
from uer.embeddings import str2embedding
from uer.encoders import str2encoder
from uer.encoders.transformer_encoder import TransformerEncoder
from uer.layers.layer_norm import build_layer_norm
from uer.model_config import ModelConfig
from uer.registry import check_complete, make_register
from uer.targets import str2target
from uer.finetune.tasks.classifier import add_classifier_options
from uer.layers.pooling import pool
from uer.text.segment import SEGMENTERS, Segmenter
from uer.text.tokenizers import str2tokenizer


def test_options_and_preprocess_parser_import_no_torch():
    code = ("import argparse, sys\n"
            "import uer.opts\n"
            "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'uer.opts pulled torch or numpy'\n"
            "uer.opts.add_preprocess_options(argparse.ArgumentParser())\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith(('uer.targets', "
            "'uer.finetune', 'uer.encoders')))\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_no_command_imports_another_command():
    """uer/cli/ holds one module per command; what two commands share lives in the package below them."""
    import ast

    commands = {p.stem for p in (ROOT / "uer" / "cli").glob("*.py")} - {"__init__", "common"}
    for path in sorted((ROOT / "uer" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module == "uer.cli":
                names = [f"uer.cli.{a.name}" for a in node.names]
            for name in names:
                if name.startswith("uer.cli."):
                    assert name.split(".")[2] not in commands, f"{path.name} imports the command {name}"


def choices(parser: argparse.ArgumentParser, flag: str) -> list[str]:
    return list(next(a for a in parser._actions if flag in a.option_strings).choices)


def test_every_choice_list_is_its_registry():
    parser = argparse.ArgumentParser()
    opts.add_model_options(parser)
    opts.add_tokenizer_options(parser)
    add_classifier_options(parser)
    assert set(choices(parser, "--encoder")) == set(str2encoder) | set(names.ENCODER_ALIASES)
    assert set(choices(parser, "--tokenizer")) == set(str2tokenizer)
    assert set(names.EMBEDDINGS) == set(str2embedding) and set(names.TARGETS) == set(str2target)
    preprocess = argparse.ArgumentParser()
    opts.add_preprocess_options(preprocess)
    assert set(choices(preprocess, "--target")) == set(str2instances)
    assert set(choices(preprocess, "--segmenter")) == set(SEGMENTERS)
    Segmenter("space")  # (jieba is optional: its constructor needs the package)
    with pytest.raises(ValueError, match="segmenter"):
        Segmenter("stanza")
    # The lists without a registry dict of their own are the ones the components accept, each one working.
    hidden, seg = torch.randn(2, 5, 8), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    for pooling in choices(parser, "--pooling"):
        assert pool(hidden, seg, pooling).shape == (2, 8)
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, seg, "median")
    def encoder(mask: str) -> TransformerEncoder:
        return TransformerEncoder.from_config(ModelConfig(vocab_size=10, emb_size=8, hidden_size=8, heads_num=2,
                                                          feedforward_size=16, layers_num=1, mask=mask))

    assert {encoder(mask).causal for mask in choices(parser, "--mask")} == {False, True}
    with pytest.raises(ValueError, match="mask"):
        encoder("banded")
    variants = {type(build_layer_norm(8, v)).__name__ for v in choices(parser, "--layernorm_variant")}
    assert variants == {"LayerNorm", "UerLayerNorm"}
    for alias, (encoder, mask) in names.ENCODER_ALIASES.items():
        assert encoder in str2encoder and mask in names.MASKS, alias
    assert all(set(parts) <= set(str2embedding) for parts in names.EMBEDDING_ALIASES.values())


def test_a_registry_accepts_only_declared_names_and_all_of_them():
    registry: dict[str, type] = {}
    register = make_register(registry, object, ("a", "b"))
    register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="not declared in uer/names.py"):
        register("c")(type("C", (), {}))
    with pytest.raises(ImportError, match="b declared in uer/names.py but never registered"):
        check_complete(registry, ("a", "b"), "test family")


@pytest.mark.parametrize("spelling, data_processor, objectives, kind", [
    ("bert", None, ("mlm", "sp"), "bert"),
    ("albert", None, ("mlm", "sp"), "albert"),
    (["mlm", "sp"], None, ("mlm", "sp"), "bert"),  # UER-py's default data processor
    (["mlm", "sp"], "albert", ("mlm", "sp"), "albert"),  # current UER-py config: target list + data_processor
    (["mlm"], None, ("mlm",), "mlm"),
    ("lm", None, ("lm",), "lm"),
    (["bilm"], "bilm", ("bilm",), "bilm"),
    ("cls", None, ("cls",), "cls"),
    ("sd", None, ("sd",), "sd"),  # an objective's name is that objective alone, on its kind's data
    (["mlm", "sr"], None, ("mlm", "sr"), "sr"),
])
def test_target_spellings_resolve_through_the_declared_kinds(spelling, data_processor, objectives, kind):
    assert normalize_target(spelling, data_processor) == (objectives, kind)


def test_target_to_dataset_link():
    readable = {kind: set(builder.trains_on) for kind, builder in str2instances.items()}
    ernie2 = ("cap", "tdr", "dr", "ir", "dlm")  # ERNIE 2.0's kinds (uer.data.instances_ernie)
    assert readable == {"bert": {"bert"}, "albert": {"albert"}, "mlm": {"mlm", "bert", "albert", "sd", "sr", *ernie2},
                        "lm": {"lm", "bilm"}, "bilm": {"bilm", "lm"}, "cls": {"cls"}, "sd": {"sd"}, "sr": {"sr"},
                        **{kind: {kind} for kind in ernie2}}
    # Every objective is trained by some kind, and a kind that serves another's run yields the batch keys
    # that run's objectives read (same layout; mlm needs no sentence-pair labels).
    assert {o for b in str2instances.values() for o in b.objectives} == set(str2target)
    for kind, builder in str2instances.items():
        assert {str2instances[other].batch_layout for other in builder.trains_on} == {builder.batch_layout}, kind
