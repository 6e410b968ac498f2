"""BERT between our key names and Google's original TensorFlow checkpoints (google-research/bert).

Google's variable names are HuggingFace's with ``/`` for ``.`` (HF's BERT was itself converted from
them), so this module maps Google <-> HF names and lets :mod:`uer.converters.bert` do the rest:

- ``bert/encoder/layer_3/attention/self/query/kernel`` <-> ``bert.encoder.layer.3.attention.self.query.weight``,
  transposed: a TF dense kernel is [in x out], a torch Linear weight [out x in];
- ``.../LayerNorm/gamma|beta`` <-> ``.../LayerNorm.weight|bias``;
- ``bert/embeddings/*_embeddings`` <-> ``bert.embeddings.*_embeddings.weight``;
- ``cls/predictions/output_bias`` <-> ``cls.predictions.bias``; the MLM output layer is the word embedding;
- ``cls/seq_relationship/output_weights`` <-> ``cls.seq_relationship.weight``, *not* transposed (Google
  multiplies by it with ``transpose_b=True``, so it is stored [2 x hidden] like a torch weight).

Optimizer slots (``*/adam_m``, ``*/adam_v``) and ``global_step`` are skipped. TensorFlow is imported
only inside :func:`read_tf_checkpoint` / :func:`write_tf_checkpoint`, i.e. only by the Google converters.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from uer.converters import bert
from uer.converters.common import ConversionError, report_unused
from uer.utils.io import move_into_place, temp_path_for

logger = logging.getLogger(__name__)

GOOGLE_KINDS = ("bert", "mlm")
_SPECIAL = {
    "bert.embeddings.word_embeddings.weight": "bert/embeddings/word_embeddings",
    "bert.embeddings.position_embeddings.weight": "bert/embeddings/position_embeddings",
    "bert.embeddings.token_type_embeddings.weight": "bert/embeddings/token_type_embeddings",
    "cls.predictions.bias": "cls/predictions/output_bias",
    "cls.seq_relationship.weight": "cls/seq_relationship/output_weights",
    "cls.seq_relationship.bias": "cls/seq_relationship/output_bias",
}
_SPECIAL_BACK = {google: hf for hf, google in _SPECIAL.items()}
_OPTIMIZER_SLOTS = ("/adam_m", "/adam_v")


def hf_to_google_name(key: str) -> tuple[str, bool] | None:
    """Google's variable name for a HF key and whether to transpose; None for keys Google does not store."""
    if key in _SPECIAL:
        return _SPECIAL[key], False
    if key.startswith("cls.predictions.decoder."):
        return None  # tied to the word embedding / output bias in Google's graph
    name = re.sub(r"\.layer\.(\d+)\.", r".layer_\1.", key)
    if ".LayerNorm." in name:
        return name.replace(".LayerNorm.weight", ".LayerNorm.gamma").replace(".LayerNorm.bias", ".LayerNorm.beta") \
            .replace(".", "/"), False
    if name.endswith(".weight"):
        return name[: -len(".weight")].replace(".", "/") + "/kernel", True
    return name.replace(".", "/"), False


def google_to_hf_name(name: str) -> tuple[str, bool] | None:
    """The HF key of a Google variable and whether to transpose; None for variables that are not BERT weights."""
    if name in _SPECIAL_BACK:
        return _SPECIAL_BACK[name], False
    if not name.startswith(("bert/", "cls/")) or name.endswith(_OPTIMIZER_SLOTS):
        return None
    key = re.sub(r"/layer_(\d+)/", r"/layer/\1/", name).replace("/", ".")
    if key.endswith(".LayerNorm.gamma"):
        return key[: -len("gamma")] + "weight", False
    if key.endswith(".LayerNorm.beta"):
        return key[: -len("beta")] + "bias", False
    if key.endswith(".kernel"):
        return key[: -len("kernel")] + "weight", True
    return key, False


def google_to_hf_state(variables: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """HF-keyed tensors from Google's variables; optimizer slots skipped, anything else unknown reported."""
    if "bert/embeddings/word_embeddings" not in variables:
        raise ConversionError("no bert/embeddings/word_embeddings: not a Google BERT checkpoint")
    hf_state, skipped = {}, []
    for name, array in variables.items():
        mapped = google_to_hf_name(name)
        if mapped is None:
            if not name.endswith(_OPTIMIZER_SLOTS) and name != "global_step":
                skipped.append(name)
            continue
        key, transpose = mapped
        hf_state[key] = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))
    report_unused(skipped, "Google")
    return hf_state


def hf_state_to_google(hf_state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Google's variables (name -> float32 array) from HF-keyed tensors."""
    if not bert.mlm_weights_tied(hf_state):
        logger.warning("the MLM output weights differ from the word embedding (trained without --tie_weights); "
                       "Google's format ties them, so its MLM head uses the word embedding")
    out = {}
    for key, tensor in hf_state.items():
        mapped = hf_to_google_name(key)
        if mapped is not None:
            name, transpose = mapped
            array = tensor.detach().to(torch.float32).numpy()
            out[name] = np.ascontiguousarray(array.T if transpose else array)
    return out


def _check_kind(kind: str) -> None:
    if kind not in GOOGLE_KINDS:
        raise ConversionError(f"Google checkpoints convert as {' or '.join(GOOGLE_KINDS)}, not {kind!r}")


def google_to_uer(variables: dict[str, np.ndarray], kind: str = "bert",
                  layers_num: int | None = None) -> dict[str, torch.Tensor]:
    """Our state dict from Google's variables (name -> array)."""
    _check_kind(kind)
    return bert.hf_to_uer(google_to_hf_state(variables), kind, layers_num)


# The fields of google-research/bert's bert_config.json (a subset of HF's config.json, same names).
GOOGLE_CONFIG_KEYS = ("attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size",
                      "initializer_range", "intermediate_size", "max_position_embeddings", "num_attention_heads",
                      "num_hidden_layers", "type_vocab_size", "vocab_size")


def google_config(hf_config: dict) -> dict:
    """bert_config.json from the config.json :func:`uer.converters.bert.hf_config` makes."""
    return {key: hf_config[key] for key in GOOGLE_CONFIG_KEYS}


def _tensorflow() -> ModuleType:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up banner would bury our messages
    try:
        import tensorflow as tf  # only the Google converters need it (TensorFlow is an optional stack: requirements-convert.txt)
    except ImportError:
        raise ConversionError("reading or writing Google's TensorFlow checkpoints needs TensorFlow: "
                              "pip install tensorflow-cpu  (or: pip install -r requirements-convert.txt)") from None
    return tf


def read_tf_checkpoint(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All variables of a TF checkpoint (the prefix ``.../bert_model.ckpt``, or its folder)."""
    if not (Path(f"{path}.index").is_file() or Path(path).is_dir()):  # checked before TensorFlow's slow import
        raise ConversionError(f"no TensorFlow checkpoint here: neither {path}.index nor a folder of that name; give "
                              "the prefix, e.g. models/bert_model.ckpt")
    tf = _tensorflow()
    try:
        reader = tf.train.load_checkpoint(str(path))
    except (ValueError, tf.errors.OpError) as err:
        raise ConversionError(f"{path}: not a readable TensorFlow checkpoint ({str(err).splitlines()[0]}); "
                              "give the prefix, e.g. models/bert_model.ckpt") from None
    from uer.utils.progress import progress_iter

    names = list(reader.get_variable_to_shape_map())
    return {name: reader.get_tensor(name) for name in progress_iter(names, f"reading {path}", unit="variable")}


def write_tf_checkpoint(variables: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write ``variables`` under their exact names as a TF1-style checkpoint (what Google's BERT code loads)."""
    tf = _tensorflow()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # TF writes several files (PREFIX.index, PREFIX.data-*): they go to a hidden folder beside the target,
    # then each is renamed into place, the index last (uer.utils.io's rule: nothing half-written under a
    # final name).
    staging = temp_path_for(target)
    staging.mkdir()
    try:
        _save_tf_variables(tf, variables, staging / target.name)
        produced = sorted(staging.iterdir(), key=lambda p: p.name.endswith(".index"))
        for file in produced:
            move_into_place(file, target.parent / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d variables to %s", len(variables), path)


def _save_tf_variables(tf: ModuleType, variables: dict[str, np.ndarray], path: Path) -> None:
    with tf.Graph().as_default():
        # Initialised from placeholders, not constants: the graph stays small whatever the model size
        # (a GraphDef over 2 GB cannot be serialised).
        feeds, var_list = {}, {}
        for name, array in variables.items():
            holder = tf.compat.v1.placeholder(tf.as_dtype(array.dtype), shape=array.shape)
            var_list[name] = tf.compat.v1.Variable(holder, name=name)
            feeds[holder] = array
        saver = tf.compat.v1.train.Saver(var_list=var_list)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.variables_initializer(list(var_list.values())), feed_dict=feeds)
            saver.save(session, str(path), write_meta_graph=False, write_state=False)
