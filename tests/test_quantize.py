"""--quantize int8: dynamic int8 linear layers in the inference scripts, uer.api, both servers, and onnxruntime's
quantization in the ONNX export; each close to float32 and each refusing what it cannot do."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from conftest import TINY_CONFIG, TINY_TEXTS, TINY_VOCAB, tiny_classifier_files
from uer.api import TextEncoder
from uer.errors import UsageError
from uer.layers.multi_headed_attn import FIRST_POSITION, FoldedProjection, MultiHeadedAttention
from uer.utils.quantize import quantize_for_inference

VOCAB, TINY, TEXTS = TINY_VOCAB, TINY_CONFIG, TINY_TEXTS


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A vocabulary, a tiny pre-trained model (random weights) and a 3-label classifier."""
    paths, classifier = tiny_classifier_files(tmp_path_factory.mktemp("quantize"))
    return {**paths, "classifier_module": classifier}


def classifier_flags(files) -> list[str]:
    return ["--load_model_path", files["classifier"], "--vocab_path", files["vocab"], "--config_path", TINY,
            "--labels_num", "3", "--encoder", "transformer", "--mask", "fully_visible"]


def test_int8_quantizes_every_linear_layer_and_stays_close(files):
    model = files["classifier_module"].eval()
    linears = sum(isinstance(m, nn.Linear) for m in model.encoder.modules())
    quantized = quantize_for_inference(model, "int8")
    assert linears == 12 and not any(isinstance(m, nn.Linear) for m in quantized.encoder.modules())
    # every linear layer, plus each attention's stacked q+k+v and k+v projections, less its folded k and v (2 layers)
    assert sum(type(m).__name__ == "Linear" and "quantized" in type(m).__module__
               for m in quantized.encoder.modules()) == linears + 2 * 2 - 2 * 2
    assert sum(isinstance(m, FoldedProjection) for m in quantized.encoder.modules()) == 2 * 2
    assert all(type(m.stacked_qkv).__name__ == "Linear" for m in quantized.modules()
               if isinstance(m, MultiHeadedAttention))
    assert all(m.stacked_qkv is None for m in model.modules() if isinstance(m, MultiHeadedAttention))  # a copy
    assert isinstance(quantized.output_layer_1, nn.Linear)  # the head stays float32
    src = torch.randint(5, len(VOCAB), (4, 20))
    seg = torch.ones_like(src)
    seg[1, 12:] = 0
    with torch.inference_mode():
        expected, got = (m.logits({"src": src, "seg": seg}) for m in (model, quantized))
    assert not torch.equal(expected, got)  # int8 really ran
    torch.testing.assert_close(got, expected, atol=0.05 * expected.abs().max().item(), rtol=0)
    assert quantize_for_inference(model, "none") is model and quantize_for_inference(model, None) is model
    with pytest.raises(UsageError, match="CPU only.*--device cpu"):
        quantize_for_inference(model, "int8", torch.device("cuda", 0))
    with pytest.raises(UsageError, match="--quantize must be one of none, int8"):
        quantize_for_inference(model, "int4")
    with pytest.raises(UsageError, match="encoder has none"):
        quantize_for_inference(nn.Sequential(nn.Linear(2, 2)), "int8")


def test_stacked_projections_compute_what_the_separate_ones_do():
    """stack_projections() (done before quantizing) changes how q, k and v are computed, not what: in float32 the
    stacked layers give the separate layers' outputs, for all queries, the first position and an index of them."""
    torch.manual_seed(0)
    attention = MultiHeadedAttention(32, 4, 8, 0.0).eval()
    hidden = torch.randn(3, 10, 32)
    mask = torch.zeros(3, 1, 1, 10)
    mask[1, ..., 6:] = -10000.0
    with torch.inference_mode():
        some = torch.tensor([[0, 3], [5, 5], [9, 1]])
        separate = [attention(hidden, mask, queries=q) for q in (None, FIRST_POSITION, some)]
        attention.stack_projections()
        stacked = [attention(hidden, mask, queries=q) for q in (None, FIRST_POSITION, some)]
    for a, b in zip(separate, stacked):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=1e-5)
    assert attention.stacked_qkv.weight.shape == (96, 32) and attention.stacked_kv.weight.shape == (64, 32)
    with pytest.raises(RuntimeError, match="folded"):  # the separate key projection holds no weights any more
        attention.linear_layers[1](hidden)


def read_logits(path) -> np.ndarray:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return np.array([[float(v) for v in r[1].split()] for r in rows])


def test_inference_script_api_and_servers_take_int8(files):
    from uer.cli.infer import task_main

    root = files["root"]
    for mode in ("none", "int8"):
        task_main("classifier")([*classifier_flags(files), "--test_path", files["tsv"], "--prediction_path",
                                   str(root / f"{mode}.tsv"), "--output_logits", "--device", "cpu",
                                   "--quantize", mode])
    fp32, int8 = read_logits(root / "none.tsv"), read_logits(root / "int8.tsv")
    error = np.abs(fp32 - int8).max()
    assert 0 < error < 0.05 * np.abs(fp32).max()
    top2 = np.sort(fp32, -1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * error  # labels whose margin the int8 error cannot flip
    assert clear.sum() >= 4 and (fp32.argmax(-1) == int8.argmax(-1))[clear].all()

    plain = TextEncoder.from_pretrained(files["model"], vocab_path=files["vocab"], config_path=TINY, device="cpu")
    small = TextEncoder.from_pretrained(files["model"], vocab_path=files["vocab"], config_path=TINY, device="cpu",
                                        quantize="int8")
    a, b = plain.embed(TEXTS, normalize=True), small.embed(TEXTS, normalize=True)
    assert not np.array_equal(a, b) and (a * b).sum(-1).min() > 0.99  # cosine of each text's two vectors

    pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")
    from uer.cli import encoder_server, prediction_server
    from uer.config import parse_args_with_config
    from uer.serving.backends import TextPairs

    def service(module, *argv: str):
        return module.build_service(parse_args_with_config(module.build_parser(), list(argv)))

    encoder = service(encoder_server, "--load_model_path", files["model"], "--vocab_path", files["vocab"],
                      "--config_path", TINY, "--device", "cpu", "--quantize", "int8", "--normalize")
    # activations are quantized per batch, and the server batches its own way: close, not equal, to the API's
    served = encoder.run([TextPairs(TEXTS)])[0]
    assert (served * a).sum(-1).min() > 0.99 and np.abs(served - b).max() < 5e-3
    assert "quantized" in type(encoder.runner.module.encoder.transformer[0].feed_forward.linear_1).__module__
    predictor = service(prediction_server, *classifier_flags(files), "--device", "cpu", "--quantize", "int8")
    logits = np.array([p["logits"] for p in predictor.run([TextPairs(TEXTS)])[0]])
    assert 0 < np.abs(logits - fp32).max() < 0.05 * np.abs(fp32).max()
    assert "quantized" in type(predictor.runner.module.classifier.encoder.transformer[0].feed_forward.linear_1).__module__
    with pytest.raises(UsageError, match="export a quantized model instead: export_onnx.py --quantize int8"):
        service(prediction_server, "--vocab_path", files["vocab"], "--backend", "onnxruntime", "--onnx_path",
                str(root / "none.onnx"), "--quantize", "int8")


def test_onnx_export_with_int8_weights(files, tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs requirements-serve.txt")
    pytest.importorskip("onnxruntime", reason="ONNX export needs requirements-serve.txt")
    pytest.importorskip("onnxscript", reason="ONNX export needs requirements-serve.txt")
    from uer.cli import export_onnx
    from uer.serving.backends import OnnxRunner

    paths = {mode: tmp_path / f"{mode}.onnx" for mode in ("none", "int8")}
    for mode, path in paths.items():
        export_onnx.main(["--kind", "encoder", "--load_model_path", files["model"], "--vocab_path", files["vocab"],
                          "--config_path", TINY, "--output_path", str(path), "--quantize", mode])
    graph = onnx.load(str(paths["int8"]))
    assert {p.key: p.value for p in graph.metadata_props}["quantize"] == "int8"
    assert "MatMulInteger" in {node.op_type for node in graph.graph.node}
    assert paths["int8"].stat().st_size < 0.7 * paths["none"].stat().st_size
    src = np.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 9, 10, 11, 12, 13, 14, 3]], dtype=np.int64)
    seg = (src > 0).astype(np.int64)
    fp32, int8 = OnnxRunner(str(paths["none"]), 1)(src, seg)[0], OnnxRunner(str(paths["int8"]), 1)(src, seg)[0]
    assert 0 < np.abs(fp32 - int8).max() < 0.05 * np.abs(fp32).max()
