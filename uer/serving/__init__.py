"""Serving: an encoder (sentence-vector) server, a prediction server for fine-tuned models, their Python
client, and ONNX export.

- :mod:`uer.serving.batcher`: the micro-batcher. Concurrent requests wait in a bounded queue; one worker
  thread, which owns the model, gathers them into one model batch (up to ``max_batch_size`` texts, waiting at
  most ``max_wait_ms`` for more) and answers each request with its own rows. A full queue is refused (503).
- :mod:`uer.serving.backends`: what runs a batch: the model as a torch module (``(src, seg) -> outputs``) or
  the same module exported to ONNX and run by onnxruntime, plus the services that turn texts into vectors
  or predictions around it.
- :mod:`uer.serving.app`: the FastAPI application (routes, request limits, error answers).
- :mod:`uer.serving.client`: ``EncoderClient`` / ``PredictionClient`` over the standard library's HTTP.
- :mod:`uer.serving.onnx_export`: export with dynamic batch and sequence axes, checked against torch.

The web stack (fastapi, uvicorn) and onnxruntime/onnx are optional: ``pip install -r requirements-serve.txt``.
The client needs neither.
"""
from __future__ import annotations

import importlib
from types import ModuleType

from uer.errors import UserError

SERVE_REQUIREMENTS = "requirements-serve.txt"


class MissingDependency(UserError, ImportError):
    """An optional package that serving or export needs is not installed; the message says what to install."""


def require(module: str, package: str | None = None, purpose: str = "serving") -> ModuleType:
    """Import ``module`` or fail with one line naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{purpose} needs the Python package {package or module!r}, which is not installed: "
            f"pip install -r {SERVE_REQUIREMENTS} (or pip install {package or module})") from None
