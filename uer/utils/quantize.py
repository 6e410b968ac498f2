"""Int8 inference on CPU (``--quantize int8``): dynamic quantization of the linear layers.

The weights of the encoder's ``nn.Linear`` layers (attention projections, feed-forward: nearly all of the
inference work) are stored as int8 (per tensor); activations are quantized on the fly per batch, and products
accumulate in int32 (fbgemm/oneDNN VNNI kernels). Embeddings, layer norms, attention scores and the task heads
stay float32: a head is a few small products where the decision is made, and quantizing it costs accuracy
(a classifier head's logits moved by ~10% in tests) for no measurable speed. On this project's 2-core AVX-512 machine this is 1.8-2x faster
than float32 at book_review accuracy within half a point (benchmarks/RESULTS.md, issue 21). Inference only:
a quantized model cannot be trained or saved as a checkpoint. GPUs have no kernels for it: CPU only.

The ONNX export quantizes its own way (onnxruntime's ``quantize_dynamic``, :mod:`uer.serving.onnx_export`).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from uer.errors import UsageError
from uer.opts import QUANTIZE_MODES


def quantize_for_inference(model: nn.Module, mode: str | None, device: str | torch.device = "cpu") -> nn.Module:
    """``model`` for ``--quantize mode``, to run on ``device``: itself for None/"none", a copy (eval mode) whose
    encoder linear layers are dynamically quantized for "int8". Refused (UsageError) for a GPU device, an
    unknown mode or a model without linear layers in an ``encoder`` sub-module."""
    if mode in (None, "none"):
        return model
    if mode not in QUANTIZE_MODES:
        raise UsageError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}, got {mode!r}")
    if torch.device(device).type != "cpu" or {p.device.type for p in model.parameters()} - {"cpu"}:
        raise UsageError("--quantize int8 runs on the CPU only (dynamic int8 has no GPU kernels): add --device cpu")
    encoder_linears = {name for name, module in model.named_modules()
                       if isinstance(module, nn.Linear) and "encoder" in name.split(".")}
    if not encoder_linears:
        raise UsageError("--quantize int8 quantizes the encoder's linear layers, and this model's encoder has none "
                         f"({type(model).__name__}); run it without --quantize")
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not installed here); it works in torch 2.13
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated.*")
        return torch.ao.quantization.quantize_dynamic(model.eval(), encoder_linears, dtype=torch.qint8)


def check_quantize_backend(quantize: str | None, backend: str) -> None:
    """A server's --quantize applies to the PyTorch model (--backend torch); an ONNX model is quantized when it
    is exported (export_onnx.py --quantize int8), so the flag is refused with --backend onnxruntime."""
    if quantize not in (None, "none") and backend != "torch":
        raise UsageError(f"--quantize {quantize} quantizes the PyTorch model (--backend torch); for --backend {backend} "
                         f"export a quantized model instead: export_onnx.py --quantize {quantize}")
