"""Configuration: JSON config + command line, legacy spellings, validation — all in this one module.

Precedence: argparse defaults < JSON config (--config_path) < flags given explicitly on the command line.
Both config generations load: the 2020 style (``"embedding": "word_pos_seg"``, ``--encoder bert``,
``--target bert``) and the current UER-py style (``"embedding": ["word", "pos", "seg"]``,
``"target": ["mlm", "sp"]``). Components only ever see the canonical names of :class:`ModelConfig`.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import logging
import re
from pathlib import Path
from typing import Any, Sequence

from uer.data.pretrain_instances import str2instances
from uer.model_config import ConfigError, ModelConfig
from uer.names import EMBEDDING_ALIASES, ENCODER_ALIASES, TARGETS

REPO_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger(__name__)

# Flat config names of UER-py's 2020 layout that the family/name rule below cannot derive.
FLAT_CONFIG_NAMES = {
    "rnn_config.json": "rnn/lstm_config.json",
    "birnn_config.json": "rnn/bilstm_config.json",
    "gatedcnn_9_config.json": "cnn/gatedcnn_9_config.json",
    "gatedcnn_13_config.json": "cnn/gatedcnn_13_config.json",
    "gpt2_config.json": "gpt2/config.json",
}

# JSON keys of UER-py configs whose non-default values select features we do not implement yet.
UNSUPPORTED_VALUES = {
    "layernorm_positioning": ("post", "pre"),
    "layernorm": ("normal",),
    "feed_forward": ("dense",),
    "relative_position_embedding": (False,),
    "has_residual_attention": (False,),
}


# Keys of UER-py configs for models this project does not build (dual encoders, encoder-decoders, ...):
# known, so no "did you mean", but reported as not used.
UERPY_UNUSED_KEYS = {"stream_0", "stream_1", "decoder", "decoder_layers_num", "tgt_embedding", "share_embedding",
                     "remove_attention_scale", "relative_attention_buckets_num", "tgt_vocab_path",
                     "tgt_spm_model_path", "tgt_seq_length", "tgt_tokenizer", "attention", "encoder_layers_num"}
# JSON spellings that map onto ModelConfig fields under another name.
JSON_FIELD_TYPES = {"remove_transformer_bias": bool, "seq_length": int, "data_processor": str, "vocab_path": str,
                    "spm_model_path": str, "tokenizer": str, "layernorm": str, "feed_forward": str,
                    "relative_position_embedding": bool, "has_residual_attention": bool}
_ANNOTATION_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "tuple[str, ...]": "names",
                     "float | None": "optional float", "int | None": "optional int"}
_JSON_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               "names": "a string or a list of strings", "optional float": "a number or null",
               "optional int": "an integer or null"}


def _json_type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def _matches(value: Any, expected: Any) -> bool:
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "optional float":
        return value is None or _matches(value, float)
    if expected == "optional int":
        return value is None or _matches(value, int)
    if expected == "names":
        return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
    if expected is str:
        return isinstance(value, str)
    return True


def _option_types(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """dest -> the JSON type a config value for that option must have."""
    out: dict[str, Any] = {}
    for action in parser._actions:
        if action.dest in ("help", argparse.SUPPRESS):
            continue
        if action.nargs == 0 and isinstance(action.const, bool):
            out[action.dest] = bool
        elif action.nargs in ("+", "*"):
            out[action.dest] = "names" if action.type in (None, str) else None
        elif action.type in (int, float, str) or action.type is None:
            out[action.dest] = action.type or str
        else:
            out[action.dest] = None  # a custom type: argparse-only
    return out


def known_config_keys(parser: argparse.ArgumentParser | None) -> dict[str, Any]:
    """Every key a JSON config may hold, with the type its value must have (None: any)."""
    known: dict[str, Any] = {f.name: _ANNOTATION_TYPES.get(str(f.type)) for f in dataclasses.fields(ModelConfig)}
    known.update(JSON_FIELD_TYPES)
    known.update({key: None for key in UNSUPPORTED_VALUES if key not in known})
    known.update({key: None for key in UERPY_UNUSED_KEYS})
    for dest, expected in (_option_types(parser) if parser is not None else {}).items():
        known.setdefault(dest, expected)
        if known[dest] is None:
            known[dest] = expected
    return known


def _key_line(text: str, key: str) -> int | None:
    match = re.search(r'"%s"\s*:' % re.escape(key), text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def check_config_keys(path: str, data: dict[str, Any], parser: argparse.ArgumentParser | None) -> None:
    """Warn for every key nobody reads (with the closest known key); a value of the wrong type is an error."""
    known = known_config_keys(parser)
    try:
        text = resolve_config_path(path).read_text(encoding="utf-8")
    except (OSError, ConfigError):
        text = ""

    def where(key: str) -> str:
        line = _key_line(text, key)
        return f"{path}:{line}" if line else path

    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, [k for k in known if k not in UERPY_UNUSED_KEYS], n=1, cutoff=0.6)
            hint = f" (did you mean \"{close[0]}\"?)" if close else ""
            logger.warning("%s: warning: unknown key \"%s\"%s is ignored", where(key), key, hint)
        elif key in UERPY_UNUSED_KEYS and key not in getattr(parser, "config_sections", ()):
            # config_sections: keys a command reads itself (the siamese task's stream_0/stream_1 towers)
            logger.warning("%s: warning: \"%s\" describes a UER-py model this project does not build; it is ignored",
                           where(key), key)
        elif known[key] is not None and not _matches(value, known[key]):
            raise ConfigError(f"{where(key)}: \"{key}\" must be {_JSON_NAMES[known[key]]}, "
                              f"got {_json_type_name(value)} ({json.dumps(value)})")


def resolve_config_path(path: str) -> Path:
    """Find a config file: as given, relative to the repository, or by its flat legacy name.

    ``models/bert_base_config.json`` (UER-py 2020 layout) resolves to ``models/bert/base_config.json``;
    names the rule cannot derive (``models/rnn_config.json``, ``models/gatedcnn_9_config.json``) come
    from ``FLAT_CONFIG_NAMES``.
    """
    candidates = [Path(path), REPO_ROOT / path]
    head, _, name = path.replace("\\", "/").rpartition("/")
    if name in FLAT_CONFIG_NAMES:
        for base in (Path(head or "."), REPO_ROOT / (head or ".")):
            candidates.append(base / FLAT_CONFIG_NAMES[name])
    flat = re.match(r"^(?P<dir>.*?)(?P<family>[a-z0-9]+)_(?P<name>[a-z0-9_]+_config\.json)$", path)
    if flat:
        for base in (Path(flat["dir"] or "."), REPO_ROOT / (flat["dir"] or ".")):
            candidates.append(base / flat["family"] / flat["name"])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"config file not found: {path} (looked in: {', '.join(str(c) for c in candidates)})")


def load_json_config(path: str) -> dict[str, Any]:
    resolved = resolve_config_path(path)
    raw = resolved.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Windows editors)
        raw = raw[3:]
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise ConfigError(f"invalid UTF-8 at byte offset {err.start}: a config must be UTF-8 JSON", resolved, line) from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"invalid JSON ({err.msg}, column {err.colno})", resolved, err.lineno) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{resolved}: a config must be a JSON object")
    from uer.hf_folder import is_hf_config, uer_config_from_hf

    if is_hf_config(data):  # an HF config.json: its keys mapped onto ours (uer/hf_folder.py)
        return uer_config_from_hf(data, str(resolved))
    return data


def explicit_options(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> set[str]:
    """Names of the options given on the command line (a defaults-suppressed re-parse, not argv scanning)."""
    quiet = copy.deepcopy(parser)
    quiet._defaults = {}  # set_defaults() values (a task's defaults) are defaults, not given options
    for action in quiet._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    namespace, _ = quiet.parse_known_args(argv)
    return set(vars(namespace))


def parse_args_with_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line and merge the JSON config under it (defaults < JSON < explicit flags)."""
    args = parser.parse_args(argv)
    return apply_json_config(args, explicit_options(parser, argv), parser)


def apply_json_config(args: argparse.Namespace, explicit: set[str],
                      parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Merge the JSON config named by ``args.config_path`` under the options in ``explicit`` (which win);
    records ``explicit`` on ``args`` for the alias rules of :func:`model_config_from_args`. Keys are checked
    (:func:`check_config_keys`) against ``parser``'s options and the model's fields."""
    args.explicit = set(explicit)
    _apply_hf_folder(args)
    config_path = getattr(args, "config_path", None)
    if config_path:
        data = load_json_config(config_path)
        check_config_keys(config_path, data, parser)
        for key, value in data.items():
            if key in UNSUPPORTED_VALUES and value not in UNSUPPORTED_VALUES[key]:
                raise ConfigError(f"{config_path}: {key}={value!r} is not supported yet "
                                  f"(supported: {', '.join(map(repr, UNSUPPORTED_VALUES[key]))})")
            if key not in args.explicit:
                setattr(args, key, value)
    return args


# Options naming the model a command starts from; an HF model folder there supplies config and tokenizer.
MODEL_PATH_OPTIONS = ("pretrained_model_path", "load_model_path")
# Folder values an explicit flag may not contradict (the folder's weights have these sizes).
_FOLDER_CHECKED = ("emb_size", "hidden_size", "feedforward_size", "heads_num", "layers_num", "max_seq_length",
                   "hidden_act", "layernorm_eps", "mask", "layernorm_positioning",
                   "factorized_embedding_parameterization", "parameter_sharing", "remove_embedding_layernorm")


def _apply_hf_folder(args: argparse.Namespace) -> None:
    """An HF model folder as the model path: its config.json is the JSON config unless --config_path is given, and
    its tokenizer files give --tokenizer / --vocab_path / --merges_path / --spm_model_path / --do_lower_case unless
    given. An explicit flag (or --config_path value) that contradicts the folder's sizes is an error."""
    from uer.hf_folder import HFFolder, is_hf_folder

    option = next((name for name in MODEL_PATH_OPTIONS if is_hf_folder(getattr(args, name, None))), None)
    if option is None:
        return
    folder = HFFolder(getattr(args, option))
    values = folder.uer_config()
    given = {}
    if "config_path" in args.explicit and args.config_path:
        given = load_json_config(args.config_path)
    for key in _FOLDER_CHECKED:
        if key not in values:
            continue
        if key in args.explicit and getattr(args, key, None) != values[key]:
            raise ConfigError(f"--{key} {getattr(args, key)} contradicts the HF model folder {folder.path} "
                              f"({key} {values[key]!r} in its config.json); leave it out")
        if key in given and given[key] != values[key]:
            raise ConfigError(f"{args.config_path}: {key} {given[key]!r} contradicts the HF model folder {folder.path} "
                              f"({key} {values[key]!r} in its config.json); leave --config_path out")
    if not given:
        args.config_path = str(folder.path / "config.json")  # merged below as the JSON config
    for key, value in folder.tokenizer_options().items():
        if key == "do_lower_case" and getattr(args, key, None) is not None:
            continue
        if key not in args.explicit and hasattr(args, key):
            setattr(args, key, value)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def normalize_embedding(value: Any) -> tuple[str, ...]:
    parts = _as_list(value)
    if len(parts) == 1 and parts[0] in EMBEDDING_ALIASES:
        return EMBEDDING_ALIASES[parts[0]]
    return tuple(parts)


def normalize_target(value: Any, data_processor: str | None = None) -> tuple[tuple[str, ...], str]:
    """Objectives and the data processor (the dataset kind) from a target spelling of either generation.

    A single name that is a dataset kind but no objective (``bert``, ``albert``) means that kind's declared
    objectives (``InstanceBuilder.objectives``: mlm + sp). Otherwise the names are the objectives; without a
    config ``data_processor`` they train on the first kind declaring exactly them (``["mlm", "sp"]`` -> bert, as
    UER-py's default data processor; ``["mlm", "sd"]`` -> sd), else on the kind named by joining them (``sd``
    alone -> sd; an unknown kind is reported by pretrain.py).
    """
    names = _as_list(value)
    if len(names) == 1 and names[0] in str2instances and names[0] not in TARGETS:
        return str2instances[names[0]].objectives, names[0]
    objectives = tuple(names)
    if data_processor is None:
        kinds = [kind for kind, builder in str2instances.items() if builder.objectives == objectives]
        data_processor = kinds[0] if kinds else "_".join(objectives)
    return objectives, data_processor


def config_from_dict(data: dict[str, Any], vocab_size: int | None, explicit: set[str] | None = None,
                     with_target: bool = True) -> ModelConfig:
    """The one place where merged values (JSON spellings of either generation, command-line values) become a
    validated :class:`ModelConfig`. Unset fields keep their declared defaults (uer/model_config.py).

    ``explicit``: the names the user gave on the command line (None: every key of ``data`` counts as given).
    An encoder alias (``bert``, ``gpt``) brings its mask unless the mask was given, and ``--encoder bert`` its
    embedding unless the embedding was given, as UER-py's flags did.
    """
    explicit = set(data) if explicit is None else explicit
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    values = {key: value for key, value in data.items() if key in known and value is not None}
    if "remove_transformer_bias" in data:  # UER-py's spelling of the opposite
        values["has_bias"] = not bool(data["remove_transformer_bias"])
    encoder = values.get("encoder", "transformer")
    if encoder in ENCODER_ALIASES:
        values["encoder"], alias_mask = ENCODER_ALIASES[encoder]
        if "mask" not in explicit:
            values["mask"] = alias_mask
        if encoder == "bert" and "embedding" not in explicit:
            values["embedding"] = EMBEDDING_ALIASES["word_pos_seg"]
    if "embedding" in values:
        values["embedding"] = normalize_embedding(values["embedding"])
    target: tuple[str, ...] = ()
    if with_target and "target" in values:
        processor = data.get("data_processor")
        if "target" in explicit and "data_processor" not in explicit:
            processor = None  # the config's data_processor belongs to the config's target
        target, _ = normalize_target(values["target"], processor)
    values["target"] = target
    for name in ("factorized_embedding_parameterization", "parameter_sharing", "tie_weights", "bidirectional",
                 "remove_embedding_layernorm", "has_lmtarget_bias", "has_bias"):
        if name in values:
            values[name] = bool(values[name])
    if vocab_size is not None:
        values["vocab_size"] = vocab_size
    if "vocab_size" not in values:
        raise ConfigError("the model config needs vocab_size (the number of tokens of the model's vocabulary)")
    from uer.model_builder import validate_model_config  # the registries; imports torch

    return validate_model_config(ModelConfig(**values))


def model_config_from_args(args: argparse.Namespace, vocab_size: int, with_target: bool = True) -> ModelConfig:
    """The merged command line (defaults < JSON < explicit flags) as a validated :class:`ModelConfig`."""
    data = {key: value for key, value in vars(args).items() if key != "explicit"}
    if not with_target or not hasattr(args, "target"):
        data.pop("target", None)
    if getattr(args, "task_embedding", False):  # ERNIE 2.0: one task vector per dataset of --dataset_path_list
        data["tasks_num"] = len(getattr(args, "dataset_path_list", None) or [None])
    return config_from_dict(data, vocab_size, getattr(args, "explicit", set()), with_target=with_target)


def data_processor_from_args(args: argparse.Namespace) -> str:
    """Which dataset kind the target needs: 'bert', 'albert', 'mlm', ..."""
    _, data = normalize_target(args.target, _data_processor(args))
    return data


def _data_processor(args: argparse.Namespace) -> str | None:
    """The config's ``data_processor`` belongs to the config's ``target``: an explicit --target overrides both."""
    explicit = getattr(args, "explicit", set())
    if "target" in explicit and "data_processor" not in explicit:
        return None
    return getattr(args, "data_processor", None)


def optim_options_from_args(args: argparse.Namespace) -> dict:
    """The optimisation fields (:class:`uer.training.engine.OptimConfig`) the command line sets, same names as
    the options, for a TrainConfig or FinetuneConfig; fields without an option keep their defaults. Options that
    only one schedule reads are an error with the others (never silently ignored)."""
    from uer.errors import UsageError
    from uer.training.engine import OptimConfig

    explicit = getattr(args, "explicit", set())
    if "lr_decay" in explicit and args.scheduler != "tri_stage":
        raise UsageError(f"--lr_decay applies to --scheduler tri_stage only (this run: {args.scheduler})")
    if "num_cycles" in explicit and args.scheduler != "cosine_with_restarts":
        raise UsageError(f"--num_cycles applies to --scheduler cosine_with_restarts only (this run: {args.scheduler})")
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(OptimConfig) if hasattr(args, f.name)}

