"""What the serving entry scripts share: one-line errors and the checks of an exported model's metadata."""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import Iterator

from uer.config import ConfigError
from uer.data.finetune_data import DataError
from uer.model_loader import ModelLoadError
from uer.serving import MissingDependency

logger = logging.getLogger("uer.serving")

# Bad input of the user's: one line, exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, DataError, ModelLoadError, MissingDependency, ValueError, OSError)


@contextlib.contextmanager
def fail(script: str) -> Iterator[None]:
    try:
        yield
    except SystemExit:
        raise
    except USER_ERRORS as err:
        print(f"{script}: error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def check_onnx_metadata(meta: dict[str, str], path: str, kind: str, vocab_size: int, seq_length: int) -> dict[str, str]:
    """The metadata export_onnx.py writes, checked against what the server was given."""
    if meta.get("uer_kind") != kind:
        found = meta.get("uer_kind")
        raise ValueError(f"{path}: {'an export of kind ' + repr(found) if found else 'not written by export_onnx.py'}"
                         f"; this server needs --kind {kind}")
    if int(meta["vocab_size"]) != vocab_size:
        raise ValueError(f"{path}: exported with a vocabulary of {meta['vocab_size']} tokens; the given vocabulary "
                         f"has {vocab_size}")
    if int(meta["max_seq_length"]) and seq_length > int(meta["max_seq_length"]):
        raise ValueError(f"--seq_length {seq_length} exceeds the exported model's max_seq_length {meta['max_seq_length']}")
    return meta
