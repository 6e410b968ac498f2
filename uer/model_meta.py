"""What a fine-tuned model file remembers: the options that define its inputs and outputs.

A fine-tuning run writes ``MODEL.json`` next to the model it keeps (``models/classifier.bin`` ->
``models/classifier.bin.json``; ``.safetensors`` files alike): the task, the model config's values, the tokenizer,
the vocabulary's fingerprint, ``--seq_length``, ``--no_closing_sep``, ``--pooling`` and the task's outputs (the
number of labels, the tag names). Inference, the prediction server, the converters and :mod:`uer.api` read it
(:func:`apply`): an option the user did not give takes the recorded value, and one that contradicts it is an error
naming both values. Model files without a record (UER-py's, older ones) work as before: every option is the user's.

The record is plain JSON::

    {"format": "uer-next model record", "version": 1, "task": "classifier",
     "options": {"seq_length": 64, "no_closing_sep": true, "pooling": "mean", "labels_num": 2, "tokenizer": "bert",
                 "emb_size": 128, "hidden_size": 128, "layers_num": 2, ...},
     "config_keys": ["emb_size", "hidden_size", ...], "vocab_sha256": "..."}

``config_keys`` are the options that came from the JSON config: they are checked against a --config_path the
user gives, and set from the record when --config_path is omitted.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import Any, Sequence

from uer.errors import DataError, UsageError

FORMAT = "uer-next model record"
VERSION = 1
SUFFIX = ".json"
# Options that define what a model reads and writes (those present in a command's args are recorded). Paths are
# not recorded: files move; the vocabulary is recorded by its fingerprint instead.
INPUT_OPTIONS = ("tokenizer", "do_lower_case", "seq_length", "no_closing_sep", "pooling", "labels_num",
                 "labels_num_list", "crf_target", "embedding", "encoder", "mask", "layernorm_variant",
                 "factorized_embedding_parameterization", "parameter_sharing", "bidirectional")
# Config keys that only matter while training (or to pre-training heads): not recorded, never a contradiction.
TRAINING_ONLY = {"dropout", "target", "data_processor", "tie_weights"}


def record_path(model_path: str | os.PathLike) -> str:
    """``models/x.bin`` -> ``models/x.bin.json``."""
    return os.fspath(model_path) + SUFFIX


def _config_keys(args: argparse.Namespace) -> list[str]:
    from uer.config import load_json_config

    config_path = getattr(args, "config_path", None)
    if not config_path:
        return []
    return [key for key in load_json_config(config_path) if hasattr(args, key) and key not in TRAINING_ONLY]


def build_record(args: argparse.Namespace, task: str | None, vocab_fingerprint: str | None = None,
                 outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a model trained with ``args``: the input options and config values it has, plus the task's
    ``outputs`` (e.g. ``{"labels_num": 2}``, which win over ``args``)."""
    config_keys = _config_keys(args)
    names = list(dict.fromkeys([*config_keys, *INPUT_OPTIONS]))
    options = {name: getattr(args, name) for name in names if hasattr(args, name)}
    options.update(outputs or {})
    return {"format": FORMAT, "version": VERSION, "task": task, "options": _jsonable(options),
            "config_keys": config_keys, "vocab_sha256": vocab_fingerprint}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write(model_path: str | os.PathLike, record: dict[str, Any]) -> str:
    """Write ``record`` next to ``model_path`` (atomically); returns the record's path."""
    from uer.utils.io import atomic_write_text

    path = record_path(model_path)
    atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True) + "\n")
    return path


def read(model_path: str | os.PathLike) -> dict[str, Any] | None:
    """The record next to ``model_path``, or None when there is none (UER-py's files, older ones)."""
    path = record_path(model_path)
    if not os.path.isfile(path):
        return None
    try:
        record = json.loads(open(path, encoding="utf-8").read())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"not a model record (JSON): {err}", path) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("options"), dict):
        raise DataError(f"not a model record of this project (expected \"format\": \"{FORMAT}\")", path)
    if record.get("version", 0) > VERSION:
        raise DataError(f"a model record of version {record['version']}; this version reads up to {VERSION}", path)
    return record


def _canonical(name: str, value: Any) -> Any:
    """Spellings of one value compare equal: lists and tuples, ints and floats, embedding aliases."""
    if name == "embedding" and value is not None:
        from uer.config import normalize_embedding

        value = normalize_embedding(value)
    if isinstance(value, (list, tuple)):
        return [_canonical("", v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value


def _flag(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"--{name}" if value else f"no --{name}"
    if isinstance(value, (list, tuple)):
        value = " ".join(map(str, value))
    return f"--{name} {value}"


def apply(args: argparse.Namespace, model_path: str | os.PathLike,
          tasks: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Complete ``args`` from the record next to ``model_path``: options the user did not give take the recorded
    values; a given one that differs is a UsageError naming both (one line). ``args.explicit`` (set by
    :func:`uer.config.parse_args_with_config`) says which options were given; options that came from a
    --config_path the user gave count as given. ``tasks``: the tasks whose models this command reads; the record
    of another task's model is not applied (loading the model then fails as for any model of another kind).
    Returns the record applied, or None."""
    record = read(model_path)
    if record is None or (tasks is not None and record.get("task") not in tasks):
        return None
    path = record_path(model_path)
    explicit = set(getattr(args, "explicit", ()))
    user_config = set(_config_keys(args)) if "config_path" in explicit else set()
    for name, recorded in record["options"].items():
        if not hasattr(args, name):
            continue  # an option this command does not have
        given = name in explicit or name in user_config
        if not given:
            setattr(args, name, recorded)
        elif _canonical(name, getattr(args, name)) != _canonical(name, recorded):
            source = "" if name in explicit else f" (from --config_path {args.config_path})"
            raise UsageError(f"{_flag(name, getattr(args, name))}{source} contradicts the model, which was trained "
                             f"with {_flag(name, recorded)} ({path}); drop the option or give the recorded value")
    return record


def check_vocabulary(record: dict[str, Any] | None, vocab, model_path: str | os.PathLike) -> None:
    """The vocabulary must be the one the model was trained with (same tokens in the same order)."""
    recorded = (record or {}).get("vocab_sha256")
    if recorded and recorded != vocab.fingerprint():
        raise UsageError(f"the vocabulary {getattr(vocab, 'path', None) or ''} is not the one the model was trained "
                         f"with (its tokens or their order differ; {record_path(model_path)})")


def resolve(record: dict[str, Any] | None, name: str, given: Any, default: Any, where: str) -> Any:
    """One option of a Python call (:mod:`uer.api`): ``given`` (None: not given) against the record; without a
    record or a recorded value, ``given`` or ``default``."""
    recorded = (record or {}).get("options", {}).get(name)
    if recorded is None:
        return default if given is None else given
    if given is None:
        return recorded
    if _canonical(name, given) != _canonical(name, recorded):
        raise UsageError(f"{name}={given!r} contradicts the model, which was trained with {name}={recorded!r} "
                         f"({where})")
    return given


def recorded_config(record: dict[str, Any] | None, config_path: str | os.PathLike | None,
                    overrides: dict[str, Any], where: str) -> dict[str, Any]:
    """The model options a Python call (:mod:`uer.api`) builds with: without ``config_path``, the record's config
    values under ``overrides``; with it, its values must agree with the record. ``overrides`` must agree too."""
    if not record:
        return dict(overrides)
    options = record["options"]
    config = {key: options[key] for key in record.get("config_keys", []) if key in options}
    if config_path:
        from uer.config import load_json_config

        given = {key: value for key, value in load_json_config(os.fspath(config_path)).items() if key in config}
    else:
        given = {}
    given.update(overrides)
    for key, value in given.items():
        if key in options and _canonical(key, value) != _canonical(key, options[key]):
            raise UsageError(f"{key}={value!r} contradicts the model, which was trained with {key}={options[key]!r} "
                             f"({where})")
    return dict(overrides) if config_path else {**config, **overrides}
