"""ONNX export of a serving module (:mod:`uer.serving.modules`), checked against torch before it is written.

The graph has inputs ``src`` and ``seg`` (int64 [batch x sequence], segment 0 = padding) with both axes
dynamic (the sequence up to the model's ``max_seq_length``) and one output (``vectors`` or ``logits``).
torch's exporter (torch.export + onnxscript) traces the module; the two places where the encoder branches on
the data or on the shape for speed take their general path while exporting (``torch.compiler.is_exporting``),
which computes the same values. The file carries metadata (``uer_kind``, ``vocab_size``,
``max_seq_length``, ``dim`` / ``labels_num``, ``encode_layer``, ``normalize``) that the servers check
against their flags. Before the file is moved into place, onnxruntime runs it on padded batches of several
shapes and its outputs must equal torch's to ``tolerance``.

``quantize="int8"``: the graph's matrix products get int8 weights (onnxruntime's ``quantize_dynamic``, the
counterpart of ``--quantize int8`` in PyTorch; metadata ``quantize``). Int8 cannot equal float32 to 1e-4: the
check then bounds the difference by ``INT8_RELATIVE_TOLERANCE`` of the outputs' largest magnitude (a wrong
graph is off by 100%), and the log gives the difference found.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import Iterator

import numpy as np
import torch
from torch import nn

from uer.errors import UserError
from uer.utils.io import atomic_write
from uer.serving import require
from uer.serving.backends import ONNX_INPUTS, OnnxRunner

logger = logging.getLogger("uer.serving")


# Loggers of torch's exporter and of onnxscript's optimiser: ~100 lines (each folded constant, removed node, reused
# initializer, missing torchvision kernel) for one tiny model.
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir", "onnx", "torch.onnx")


@contextlib.contextmanager
def exporter_chatter_at_debug() -> Iterator[None]:
    """While exporting, the exporter's and optimiser's INFO and WARNING records become DEBUG records (shown with
    --log_level DEBUG or in a DEBUG log file); torch's own logger, which prints through its own handler, is
    silenced below ERROR unless DEBUG is on."""
    previous = logging.getLogRecordFactory()

    def factory(name, level, *args, **kwargs):
        if level < logging.ERROR and any(name == p or name.startswith(p + ".") for p in EXPORTER_LOGGERS):
            level = logging.DEBUG
        return previous(name, level, *args, **kwargs)

    torch_onnx = logging.getLogger("torch.onnx")
    torch_level = torch_onnx.level
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    logging.setLogRecordFactory(factory)
    if not debug:
        torch_onnx.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)
        torch_onnx.setLevel(torch_level)


class ExportMismatch(UserError):
    """onnxruntime's outputs differ from torch's by more than the tolerance (nothing is written)."""


def check_inputs(vocab_size: int, cls_id: int, longest: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Batches to compare the export on: several batch sizes and lengths, pairs (segment 2) and padding."""
    rng = np.random.default_rng(seed)
    batches = []
    for batch_size, length in ((1, 1), (1, 7), (3, 13), (5, max(2, longest))):
        src = rng.integers(min(5, vocab_size - 1), vocab_size, size=(batch_size, length), dtype=np.int64)
        src[:, 0] = cls_id
        seg = np.ones((batch_size, length), dtype=np.int64)
        lengths = rng.integers(1, length + 1, size=batch_size)
        lengths[0] = length  # the longest row has no padding, as in a real batch
        for row, n in enumerate(lengths):
            seg[row, n // 2 + 1:n] = 2 if row % 2 else 1
            seg[row, n:] = 0
            src[row, n:] = 0
        batches.append((src, seg))
    return batches


INT8_RELATIVE_TOLERANCE = 0.1


def export_onnx(module: nn.Module, path: str | os.PathLike, metadata: dict[str, str], output_name: str,
                max_seq_length: int | None, vocab_size: int, cls_id: int, check_length: int = 128,
                opset_version: int = 18, tolerance: float = 1e-4, quantize: str = "none") -> float:
    """Export ``module`` (``(src, seg) -> [batch x ...]``) to ``path``; returns the largest difference to torch.

    Raises :class:`ExportMismatch` (and writes nothing) when onnxruntime disagrees with torch.
    """
    onnx = require("onnx", purpose="ONNX export")
    require("onnxscript", purpose="ONNX export")  # torch's exporter builds the graph with it
    require("onnxruntime", purpose="checking the ONNX export")
    module = module.eval().cpu()
    example = check_inputs(vocab_size, cls_id, 16, seed=1)[2]  # batch 3 x 13 with padding: no size-1 axis
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    sequence = torch.export.Dim("sequence", min=1, max=max_seq_length or (1 << 16))
    shapes = {name: {0: batch, 1: sequence} for name in ONNX_INPUTS}
    logger.info("exporting the model with torch.onnx (opset %d)", opset_version)
    with warnings.catch_warnings(), exporter_chatter_at_debug():
        warnings.simplefilter("ignore")  # the exporter's notes on renamed axes and deprecated options
        program = torch.onnx.export(module, tuple(torch.from_numpy(x) for x in example), dynamo=True,
                                    input_names=list(ONNX_INPUTS), output_names=[output_name],
                                    dynamic_shapes=shapes, opset_version=opset_version, external_data=False,
                                    verbose=False)
    proto = program.model_proto
    if quantize not in ("none", "int8"):
        raise UserError(f"--quantize must be none or int8, got {quantize!r}")
    metadata = {**metadata, "vocab_size": str(vocab_size), "max_seq_length": str(max_seq_length or 0)}
    if quantize != "none":
        metadata["quantize"] = quantize
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    worst = [0.0]

    def write_checked(tmp: str) -> None:
        if quantize == "int8":
            quantize_onnx_int8(onnx, proto, tmp)
        else:
            onnx.save(proto, tmp)
        runner = OnnxRunner(tmp, threads=1)
        batches = check_inputs(vocab_size, cls_id, min(check_length, max_seq_length or check_length))
        logger.info("checking onnxruntime against PyTorch on %d padded batches (%s)", len(batches),
                    ", ".join("x".join(map(str, src.shape)) for src, _ in batches))
        for src, seg in batches:
            with torch.inference_mode():
                expected = module(torch.from_numpy(src), torch.from_numpy(seg)).float().numpy()
            got = runner(src, seg)[0]
            if got.shape != expected.shape:
                raise ExportMismatch(f"the export gives shape {got.shape} for input {src.shape}; torch {expected.shape}")
            diff = float(np.abs(got - expected).max()) if got.size else 0.0
            worst[0] = max(worst[0], diff)
            allowed = tolerance
            if quantize == "int8" and got.size:
                allowed = max(tolerance, INT8_RELATIVE_TOLERANCE * float(np.abs(expected).max()))
            if not diff <= allowed:
                raise ExportMismatch(f"onnxruntime differs from torch by {diff:.3g} (> {allowed:g}) on a batch of "
                                     f"shape {src.shape}; nothing written")

    atomic_write(path, write_checked)
    return worst[0]


def quantize_onnx_int8(onnx, proto, path: str) -> None:
    """Write ``proto`` to ``path`` with int8 weights in its matrix products (onnxruntime's dynamic quantization,
    which reads and writes files: the float32 graph goes to a temporary file beside ``path`` first)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = f"{path}.fp32.onnx"
    root = logging.getLogger()
    level = root.level
    try:
        onnx.save(proto, fp32)
        root.setLevel(logging.WARNING)  # the quantizer logs every tensor it leaves alone at INFO
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "please run pre-processing" advice: the exporter's graph is shaped
            # MatMul only: the encoder's products with constant weights; the task heads are Gemm nodes and stay
            # float32, as with --quantize int8 in PyTorch (uer.utils.quantize)
            quantize_dynamic(fp32, path, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
        if os.path.exists(fp32):
            os.remove(fp32)
    quantized = onnx.load(path)
    if {p.key for p in quantized.metadata_props} != {p.key for p in proto.metadata_props}:
        del quantized.metadata_props[:]
        quantized.metadata_props.extend(proto.metadata_props)
        onnx.save(quantized, path)
