"""Int8 inference on CPU (``--quantize int8``): dynamic quantization of the linear layers.

The weights of the encoder's ``nn.Linear`` layers (attention projections, feed-forward: nearly all of the
inference work) are stored as int8 with one scale per output row (per channel: closer to float32 than one
scale per matrix, at the same speed), the query, key and value projections stacked into one layer (one
quantized product instead of three). Activations are quantized on the fly per batch, and products accumulate
in int32 (fbgemm/oneDNN VNNI kernels). Embeddings, layer norms, attention scores and the task heads stay
float32: a head is a few small products where the decision is made, and quantizing it costs accuracy (a
classifier head's logits moved by ~10% in tests) for no measurable speed. Speed and accuracy against float32
on book_review: benchmarks/RESULTS.md (issue 21; bench_int8.py). Inference only: a quantized model cannot be
trained or saved as a checkpoint. GPUs have no kernels for it: CPU only.

The ONNX export quantizes its own way (onnxruntime's ``quantize_dynamic``, :mod:`uer.serving.onnx_export`).
"""
from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from uer.errors import UsageError
from uer.layers.multi_headed_attn import MultiHeadedAttention
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
    def encoder_linears(module: nn.Module) -> set[str]:
        return {name for name, sub in module.named_modules()
                if isinstance(sub, nn.Linear) and "encoder" in name.split(".")}

    if not encoder_linears(model):
        raise UsageError("--quantize int8 quantizes the encoder's linear layers, and this model's encoder has none "
                         f"({type(model).__name__}); run it without --quantize")
    quantized = copy.deepcopy(model).eval()
    for attention in quantized.modules():
        if isinstance(attention, MultiHeadedAttention):
            attention.stack_projections()  # one quantized product for q, k and v instead of three
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao (not installed here); it works in torch 2.13
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*")
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*deprecated.*")
        qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
        return torch.ao.quantization.quantize_dynamic(quantized, dict.fromkeys(encoder_linears(quantized), qconfig),
                                                      dtype=torch.qint8, inplace=True)


def check_quantize_backend(quantize: str | None, backend: str) -> None:
    """A server's --quantize applies to the PyTorch model (--backend torch); an ONNX model is quantized when it
    is exported (export_onnx.py --quantize int8), so the flag is refused with --backend onnxruntime."""
    if quantize not in (None, "none") and backend != "torch":
        raise UsageError(f"--quantize {quantize} quantizes the PyTorch model (--backend torch); for --backend {backend} "
                         f"export a quantized model instead: export_onnx.py --quantize {quantize}")
