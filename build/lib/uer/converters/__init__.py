"""Checkpoint converters between our (UER-py) key names and other tools' formats.

- :mod:`uer.converters.common`: errors, layer-count inference, file I/O shared by every converter.
- :mod:`uer.converters.bert`: BERT <-> HuggingFace (pre-training, MLM, sequence and token classification).
- :mod:`uer.converters.google`: BERT <-> Google's original TensorFlow checkpoints (TensorFlow imported lazily,
  only when such a checkpoint is read or written).
- :mod:`uer.converters.cli`: the command lines of ``scripts/convert_*.py`` (the scripts are thin wrappers).

Nothing here imports transformers: HuggingFace files are plain state dicts, and the config.json we write
is plain JSON, so converting needs only torch (and TensorFlow for Google's format).
"""
