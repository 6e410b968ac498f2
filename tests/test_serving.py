"""Serving: the micro-batcher, the encoder and prediction servers over real HTTP on 127.0.0.1, their client,
request limits, overload, failure isolation, clean shutdown, and the ONNX export with the onnxruntime backend.

Every server listens on 127.0.0.1 on a free port and is stopped at the end of its test; every request loop is
bounded in count and time.
"""
from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")
uvicorn = pytest.importorskip("uvicorn", reason="serving needs requirements-serve.txt")

from conftest import (ROOT, TINY_CONFIG, TINY_TEXTS, TINY_VOCAB, free_port, run_script, subprocess_env,  # noqa: E402
                      tiny_classifier_files)
from uer.api import TextEncoder, load_config  # noqa: E402
from uer.cli import encoder_server, export_onnx, prediction_server  # noqa: E402
from uer.config import parse_args_with_config  # noqa: E402
from uer.model_builder import build_model  # noqa: E402
from uer.model_loader import ModelLoadError  # noqa: E402
from uer.model_saver import save_model  # noqa: E402
from uer.serving.app import Limits, create_app  # noqa: E402
from uer.serving.batcher import MicroBatcher, Overloaded  # noqa: E402
from uer.serving.client import EncoderClient, PredictionClient, ServerError, ServerUnavailable  # noqa: E402
from uer.serving.server import bind  # noqa: E402

VOCAB, TINY, TEXTS = TINY_VOCAB, TINY_CONFIG, TINY_TEXTS
POST_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A vocabulary, a tiny pre-trained model (random weights, BERT heads), a 3-label classifier and an MLM-only
    model."""
    files, _ = tiny_classifier_files(tmp_path_factory.mktemp("serving"))
    root = files["root"]
    mlm_only = build_model(load_config(TINY, len(VOCAB), target=["mlm"]))
    save_model(mlm_only, root / "mlm_only.bin")
    return {**files, "mlm_only": str(root / "mlm_only.bin")}


@pytest.fixture(scope="module")
def text_encoder(files):
    return TextEncoder.from_pretrained(files["model"], vocab_path=files["vocab"], config_path=TINY, device="cpu")


# -- helpers ----------------------------------------------------------------------------------------------

def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict]:
    """A plain urllib request; returns (status, JSON answer) for successes and HTTP errors alike."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextlib.contextmanager
def script_server(script: str, *args: str):
    """Start an entry script on a free port; yields (port, process); SIGTERM at the end must stop it cleanly."""
    cmd = [sys.executable, str(ROOT / script), "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env())
    lines: list[str] = []
    port = None
    try:
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line)
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port is not None, "the server did not start:\n" + "".join(lines)
        yield port, proc
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
        assert proc.returncode == 0, "".join(lines)
        assert "stopped (SIGTERM)" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


@contextlib.contextmanager
def thread_server(app):
    """Serve ``app`` with uvicorn on a thread of this process (free port); stopped and joined at the end."""
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the in-process server did not start"
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
        assert not thread.is_alive(), "the in-process server did not stop"


def service_args(module, *argv: str):
    from uer.finetune.tasks import task_from_argv

    task = task_from_argv(argv) or "classifier"
    parser = module.build_parser(task) if module is prediction_server else module.build_parser()
    return parse_args_with_config(parser, list(argv))


def encoder_service(files, *extra: str):
    args = service_args(encoder_server, "--load_model_path", files["model"], "--vocab_path", files["vocab"],
                        "--config_path", TINY, *extra)
    return encoder_server.build_service(args), args


class Gate:
    """Wraps a runner: blocks every batch until opened, or fails the batches holding ``poison``."""

    def __init__(self, runner, poison: int | None = None, closed: bool = False) -> None:
        self.runner, self.poison = runner, poison
        self.backend = runner.backend
        self.open = threading.Event()
        if not closed:
            self.open.set()
        self.entered = threading.Event()

    def __call__(self, src, seg):
        self.entered.set()
        assert self.open.wait(30), "gate never opened"
        if self.poison is not None and (src == self.poison).any():
            raise RuntimeError("poisoned input")
        return self.runner(src, seg)


# -- the micro-batcher ------------------------------------------------------------------------------------

def test_batcher_gathers_concurrent_requests_into_batches():
    sizes: list[int] = []

    def run(payloads):
        sizes.append(sum(len(p) for p in payloads))
        time.sleep(0.02)  # a model's time: requests arriving meanwhile form the next batch
        return [[x * 2 for x in p] for p in payloads]

    with MicroBatcher(run, max_batch_size=8, max_wait_ms=5, max_queue=64) as batcher:
        with ThreadPoolExecutor(16) as pool:
            futures = list(pool.map(lambda i: batcher.submit([i], 1), range(40)))
        results = [f.result(timeout=30) for f in futures]
        big = batcher.submit(list(range(20)), 20).result(timeout=30)  # more than a batch: runs alone
    assert results == [[2 * i] for i in range(40)]
    assert big == [2 * i for i in range(20)]
    assert max(sizes[:-1]) <= 8 and sizes[-1] == 20
    assert len(sizes) - 1 < 40 / 2, f"requests were not batched: {sizes}"  # 40 requests in well under 20 batches
    assert batcher.stats.requests == 41 and batcher.stats.texts == 60
    with pytest.raises(Overloaded, match="shutting down"):
        batcher.submit([1], 1)


def test_batcher_full_queue_refuses_and_failures_stay_with_their_request():
    gate = threading.Event()

    def run(payloads):
        assert gate.wait(30)
        if any(p == "bad" for p in payloads):
            raise ValueError("bad payload")
        return [p.upper() for p in payloads]

    with MicroBatcher(run, max_batch_size=8, max_wait_ms=50, max_queue=3) as batcher:
        first = batcher.submit("a")
        time.sleep(0.2)  # the worker holds "a" (waiting for more within 50 ms, then blocked in run)
        queued = [batcher.submit(p) for p in ("b", "bad", "c")]
        with pytest.raises(Overloaded, match="queue is full"):
            batcher.submit("d")
        gate.set()
        assert first.result(timeout=30) == "A"
        assert queued[0].result(timeout=30) == "B" and queued[2].result(timeout=30) == "C"
        with pytest.raises(ValueError, match="bad payload"):
            queued[1].result(timeout=30)
        assert batcher.submit("e").result(timeout=30) == "E"  # recovered
    assert batcher.stats.failed_requests == 1 and batcher.stats.refused_requests == 1


# -- vectors ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["first", "mean", "max", "last"])
def test_served_vectors_equal_text_encoder_embed(files, text_encoder, layer):
    service, _ = encoder_service(files, "--encode_layer", layer, "--normalize", "--max_batch_size", "3")
    from uer.serving.backends import TextPairs

    got = service.run([TextPairs(TEXTS[:5]), TextPairs(TEXTS[5:], ["好书"] * 3)])
    np.testing.assert_allclose(got[0], text_encoder.embed(TEXTS[:5], pooling=layer, normalize=True), atol=1e-5)
    np.testing.assert_allclose(got[1], text_encoder.embed(TEXTS[5:], ["好书"] * 3, pooling=layer, normalize=True),
                               atol=1e-5)


def test_served_vectors_equal_extract_features_output(files, tmp_path):
    """scripts/extract_features.py's sentence vectors (the tools' file output) for the same texts."""
    from uer.serving.backends import TextPairs
    from uer.tools import features

    lines = tmp_path / "texts.txt"
    lines.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    features.main(["--load_model_path", files["model"], "--vocab_path", files["vocab"], "--config_path", TINY,
                   "--test_path", str(lines), "--prediction_path", str(tmp_path / "vectors.npy"), "--pooling", "max",
                   "--normalize", "--device", "cpu"], prog="extract_features.py", default_pooling="first")
    service, _ = encoder_service(files, "--encode_layer", "max", "--normalize")
    np.testing.assert_allclose(service.run([TextPairs(TEXTS)])[0], np.load(tmp_path / "vectors.npy"), atol=1e-5)


def test_pooler_is_the_sp_heads_first_layer(files, text_encoder):
    service, _ = encoder_service(files, "--encode_layer", "pooler")
    from uer.serving.backends import TextPairs

    got = service.run([TextPairs(TEXTS)])[0]
    sp = torch.load(files["model"], weights_only=True)
    cls = torch.from_numpy(text_encoder.embed(TEXTS, pooling="first"))
    expected = torch.tanh(cls @ sp["target.sp.linear_1.weight"].T + sp["target.sp.linear_1.bias"]).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(ModelLoadError, match="pooler.*use --encode_layer first"):
        encoder_service({**files, "model": files["mlm_only"]}, "--encode_layer", "pooler")


def readme_serving_example(files) -> tuple[list[str], str]:
    """The guide's serving example (docs/inference-and-serving.md): the encoder server's flags (model, vocabulary
    and port replaced by the test's) and the three lines of Python."""
    guide = (ROOT / "docs" / "inference-and-serving.md").read_text(encoding="utf-8")
    section = guide[guide.index("## Serving"):]
    bash = section[section.index("```bash\n") + 8:section.index("```\n", section.index("```bash"))]
    python = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python"))]
    argv = shlex.split(bash.replace("\\\n", " "))
    assert argv[:2] == ["python3", "scripts/encoder_server.py"], argv
    flags = argv[2:]
    for flag, value in (("--load_model_path", files["model"]), ("--vocab_path", files["vocab"]), ("--port", "0")):
        flags[flags.index(flag) + 1] = value
    return flags, python


def test_encoder_server_script_end_to_end(files, text_encoder):
    """The entry script as the guide starts it, queried with the guide's Python: health, info, the client
    and plain HTTP, limits, malformed requests, concurrency, clean shutdown."""
    flags, python = readme_serving_example(files)
    with script_server("scripts/encoder_server.py", *flags, "--max_texts", "8", "--max_text_chars", "40",
                       "--threads", "1") as (port, _):
        namespace: dict = {}
        exec(compile(python.replace("8866", str(port)), "docs/inference-and-serving.md", "exec"), namespace)
        np.testing.assert_allclose(namespace["vectors"], text_encoder.embed(["这本书很好看", "酒店的服务太差了"],
                                                                            pooling="mean"), atol=1e-5)
        url = f"http://127.0.0.1:{port}"
        assert http("GET", url + "/health") == (200, {"status": "ok", "queued": 0})
        status, info = http("GET", url + "/info")
        assert status == 200 and (info["kind"], info["dim"], info["max_length"], info["encode_layer"]) == \
            ("encoder", 128, 128, "mean")
        client = EncoderClient("127.0.0.1", port)
        expected = text_encoder.embed(TEXTS, pooling="mean")
        vectors = client(TEXTS)
        assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.shape == (8, 128)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        np.testing.assert_allclose(client(TEXTS[:3], ["好书", "天气", "我们"]),
                                   text_encoder.embed(TEXTS[:3], ["好书", "天气", "我们"], pooling="mean"), atol=1e-5)
        status, answer = http("POST", url + "/encode", json.dumps({"texts": TEXTS[:2]}).encode())
        assert status == 200
        np.testing.assert_allclose(np.array(answer["vectors"]), expected[:2], atol=1e-5)
        # limits and malformed requests
        assert http("POST", url + "/encode", json.dumps({"texts": ["好"] * 9}).encode())[0] == 413
        status, answer = http("POST", url + "/encode", b" " * (Limits(8, 40).max_body_bytes + 1))
        assert status == 413 and "exceeds the limit" in answer["detail"]
        status, answer = http("POST", url + "/encode", json.dumps({"texts": ["好" * 41]}).encode())
        assert status == 413 and "41 characters" in answer["detail"]
        assert http("POST", url + "/encode", b"{not json")[0] == 422
        assert http("POST", url + "/encode", json.dumps({"texts": [1, 2]}).encode())[0] == 422
        assert http("POST", url + "/encode", json.dumps({"text": ["a"]}).encode())[0] == 422
        with pytest.raises(ServerError, match="texts_b has 1 texts for 2") as err:  # the server's own check
            client._request("POST", "/encode", {"texts": TEXTS[:2], "texts_b": ["x"]})
        assert err.value.status == 422
        # concurrent clients: 8 threads x 4 requests, every answer its own
        def one(i: int) -> float:
            texts = [TEXTS[i % 8], TEXTS[(i + 3) % 8]]
            return float(np.abs(client(texts) - expected[[i % 8, (i + 3) % 8]]).max())

        with ThreadPoolExecutor(8) as pool:
            worst = max(pool.map(one, range(32), timeout=120))
        assert worst < 1e-5
        assert http("GET", url + "/health")[0] == 200
    with pytest.raises(ServerUnavailable, match="no server answers"):
        EncoderClient("127.0.0.1", port, timeout=5)(["天气"])


# -- predictions ------------------------------------------------------------------------------------------

def classifier_flags(files) -> list[str]:
    return ["--load_model_path", files["classifier"], "--vocab_path", files["vocab"], "--config_path", TINY,
            "--labels_num", "3", "--embedding", "word_pos_seg", "--encoder", "transformer", "--mask", "fully_visible"]


@pytest.mark.slow
def test_prediction_server_equals_the_inference_script(files):
    prediction = files["root"] / "prediction.tsv"
    run_script("inference/run_classifier_infer.py", *classifier_flags(files), "--test_path", files["tsv"],
               "--prediction_path", str(prediction), "--output_logits", "--output_prob", "--device", "cpu")
    rows = [line.split("\t") for line in prediction.read_text(encoding="utf-8").splitlines()[1:]]
    labels = np.array([int(r[0]) for r in rows])
    probs = np.array([[float(v) for v in r[2].split()] for r in rows])
    assert len(set(labels)) > 1, "a test whose model predicts one label cannot tell labels apart"
    with script_server("scripts/prediction_server.py", *classifier_flags(files), "--threads", "1") as (port, _):
        client = PredictionClient("127.0.0.1", port)
        assert client.info()["labels_num"] == 3
        predictions = client(TEXTS)
        assert [p["label"] for p in predictions] == labels.tolist()
        np.testing.assert_allclose(client.probabilities(TEXTS), probs, rtol=1e-5, atol=1e-6)
        status, answer = http("POST", f"http://127.0.0.1:{port}/predict", json.dumps({"texts": TEXTS[:2]}).encode())
        assert status == 200 and [p["label"] for p in answer["predictions"]] == labels[:2].tolist()
        assert client([]) == []


# -- overload, failures, client errors (servers on a thread of the test process) --------------------------

def test_overload_answers_503_then_recovers(files, text_encoder):
    service, args = encoder_service(files, "--encode_layer", "first")
    gate = service.runner = Gate(service.runner, closed=True)
    batcher = MicroBatcher(service.run, max_batch_size=1, max_wait_ms=0, max_queue=2)
    with thread_server(create_app(service, batcher, Limits())) as port:
        client = EncoderClient("127.0.0.1", port, timeout=POST_TIMEOUT)
        with ThreadPoolExecutor(3) as pool:
            held = pool.submit(client, [TEXTS[0]])
            assert gate.entered.wait(30)  # the worker is busy with the first request
            queued = [pool.submit(client, [TEXTS[i]]) for i in (1, 2)]
            deadline = time.monotonic() + 30
            while batcher.queued < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(ServerError, match="queue is full") as err:
                client([TEXTS[3]])
            assert err.value.status == 503
            gate.open.set()
            results = [held.result(timeout=60)] + [q.result(timeout=60) for q in queued]
        np.testing.assert_allclose(np.concatenate(results), text_encoder.embed(TEXTS[:3]), atol=1e-5)
        np.testing.assert_allclose(client([TEXTS[3]]), text_encoder.embed([TEXTS[3]]), atol=1e-5)  # recovered
        assert client.health()["status"] == "ok"
    assert batcher.stats.refused_requests == 1


def test_a_request_that_breaks_the_model_fails_alone(files, text_encoder):
    service, _ = encoder_service(files, "--encode_layer", "first")
    gate = service.runner = Gate(service.runner, poison=VOCAB.index("差"), closed=True)
    batcher = MicroBatcher(service.run, max_batch_size=32, max_wait_ms=0, max_queue=32)
    good = [t for t in TEXTS if "差" not in t]
    with thread_server(create_app(service, batcher, Limits())) as port:
        client = EncoderClient("127.0.0.1", port, timeout=POST_TIMEOUT)
        with ThreadPoolExecutor(9) as pool:
            first = pool.submit(client, [TEXTS[0]])
            assert gate.entered.wait(30)  # the worker is held in a first batch ...
            futures = [pool.submit(client, [t]) for t in good] + [pool.submit(client, ["很差"])]
            deadline = time.monotonic() + 30
            while batcher.queued < len(futures) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert batcher.queued == len(futures)
            gate.open.set()  # ... so that every other request, the poisoned one too, lands in the second batch
            answers = [f.result(timeout=60) for f in futures[:-1]]
            with pytest.raises(ServerError, match="the model failed on this request.*poisoned") as err:
                futures[-1].result(timeout=60)
            first.result(timeout=60)
        assert err.value.status == 500
        assert batcher.stats.batches == 2 and batcher.stats.largest_batch == len(futures)
        np.testing.assert_allclose(np.concatenate(answers), text_encoder.embed(good), atol=1e-5)
        assert client.health()["status"] == "ok"
        np.testing.assert_allclose(client(good[:2]), text_encoder.embed(good[:2]), atol=1e-5)
    assert batcher.stats.failed_requests == 1


def test_client_errors_are_clear():
    port = free_port()  # nothing listens here
    with pytest.raises(ServerUnavailable, match=f"127.0.0.1:{port}.*is it running"):
        EncoderClient("127.0.0.1", port, timeout=5)(["天气"])
    with pytest.raises(TypeError, match="list of texts"):
        EncoderClient("127.0.0.1", port)("天气")
    with pytest.raises(ValueError, match="texts_b has 1 texts for 2"):
        PredictionClient("127.0.0.1", port)(["a", "b"], ["c"])


def test_bad_server_options_are_one_line_errors(files, capsys):
    for argv, message in (
            (["--backend", "onnxruntime"], "encoder_server.py: error: --backend onnxruntime needs --onnx_path"),
            (["--load_model_path", files["mlm_only"], "--encode_layer", "pooler"], "this file does not have"),
            (["--load_model_path", files["model"], "--seq_length", "1000"], "exceeds the model's max_seq_length")):
        with pytest.raises(SystemExit) as exit_info:
            encoder_server.main(["--vocab_path", files["vocab"], "--config_path", TINY, "--port", "0", *argv])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err, err
        assert err.strip().count("\n") == 0, err


# -- ONNX -------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_onnx_exports_equal_torch_and_serve(files, text_encoder, tmp_path, capfd):
    pytest.importorskip("onnxruntime", reason="ONNX export needs requirements-serve.txt")
    pytest.importorskip("onnxscript", reason="ONNX export needs requirements-serve.txt")
    from uer.serving.backends import TextPairs

    # an encoder (mean, normalised), exported by the script's code, served by onnxruntime
    encoder_onnx = tmp_path / "encoder.onnx"
    export_onnx.main(["--kind", "encoder", "--load_model_path", files["model"], "--vocab_path", files["vocab"],
                      "--config_path", TINY, "--encode_layer", "mean", "--normalize", "--output_path", str(encoder_onnx)])
    # one line per step; the exporter's and optimiser's own lines (~100) only at --log_level DEBUG
    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if line.strip()]
    assert len(lines) <= 4 and "exporting" in lines[-3] and "checking onnxruntime" in lines[-2] and \
        "wrote" in lines[-1], lines
    onnx_flags = ["--vocab_path", files["vocab"], "--backend", "onnxruntime", "--onnx_path", str(encoder_onnx),
                  "--threads", "1"]
    service = encoder_server.build_service(service_args(encoder_server, *onnx_flags))
    assert (service.info["backend"], service.info["encode_layer"], service.info["normalize"]) == \
        ("onnxruntime", "mean", True)
    got = service.run([TextPairs(TEXTS), TextPairs(TEXTS[:2], ["好书", "天气"])])
    np.testing.assert_allclose(got[0], text_encoder.embed(TEXTS, pooling="mean", normalize=True), atol=1e-4)
    np.testing.assert_allclose(got[1], text_encoder.embed(TEXTS[:2], ["好书", "天气"], pooling="mean", normalize=True),
                               atol=1e-4)
    with pytest.raises(ValueError, match="exported with encode_layer=mean"):
        encoder_server.build_service(service_args(encoder_server, *onnx_flags, "--encode_layer", "first"))

    # a classifier, exported the same way, served over HTTP by onnxruntime: the torch server's answers
    classifier_onnx = tmp_path / "classifier.onnx"
    export_onnx.main(["--kind", "classifier", *classifier_flags(files), "--output_path", str(classifier_onnx)])
    torch_service = prediction_server.build_service(service_args(prediction_server, *classifier_flags(files)))
    expected = torch_service.run([TextPairs(TEXTS)])[0]
    args = service_args(prediction_server, "--vocab_path", files["vocab"], "--backend", "onnxruntime",
                        "--onnx_path", str(classifier_onnx), "--threads", "1")
    service = prediction_server.build_service(args)
    with thread_server(create_app(service, MicroBatcher(service.run), Limits())) as port:
        predictions = PredictionClient("127.0.0.1", port)(TEXTS)
    assert [p["label"] for p in predictions] == [p["label"] for p in expected]
    np.testing.assert_allclose([p["logits"] for p in predictions], [p["logits"] for p in expected], atol=1e-4)
    with pytest.raises(ValueError, match="an export of kind 'classifier'; this server needs --kind encoder"):
        encoder_server.build_service(service_args(encoder_server, "--vocab_path", files["vocab"], "--backend",
                                                  "onnxruntime", "--onnx_path", str(classifier_onnx)))


# -- NER and reading comprehension (run_ner.py / run_cmrc.py models) --------------------------------------

@pytest.mark.slow
def test_prediction_server_ner_and_mrc_equal_their_inference_scripts(files, tmp_path):
    from uer.finetune.tasks.mrc import SpanExtractor
    from uer.finetune.tasks.ner import Tagger

    cfg = load_config(TINY, len(VOCAB), dropout=0.0)
    torch.manual_seed(3)
    base = build_model(cfg, with_target=False)
    tagger = Tagger(base.embedding, base.encoder, cfg.hidden_size, 3)
    torch.nn.init.normal_(tagger.output_layer.weight, std=1.0)  # random tags, entities among them
    save_model(tagger, tmp_path / "ner.bin")
    (tmp_path / "label2id.json").write_text(json.dumps({"O": 0, "B-LOC": 1, "I-LOC": 2}), encoding="utf-8")
    texts = ["今天 天气很好", "这本书不错了", "我们看书", "是一本好书了"]
    (tmp_path / "ner.tsv").write_text("text_a\n" + "\n".join(" ".join(t.replace(" ", "")) for t in texts) + "\n",
                                      encoding="utf-8")
    ner_flags = ["--load_model_path", str(tmp_path / "ner.bin"), "--vocab_path", files["vocab"], "--config_path", TINY,
                 "--label2id_path", str(tmp_path / "label2id.json")]
    run_script("inference/run_ner_infer.py", *ner_flags, "--test_path", str(tmp_path / "ner.tsv"),
               "--prediction_path", str(tmp_path / "ner_pred.tsv"))
    expected = [line.split() for line in (tmp_path / "ner_pred.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    service = prediction_server.build_service(service_args(prediction_server, "--task", "ner", *ner_flags))
    with thread_server(create_app(service, MicroBatcher(service.run), Limits())) as port:
        client = PredictionClient("127.0.0.1", port)
        predictions = client(texts)
        with pytest.raises(ServerError, match="single texts") as err:
            client(texts[:1], texts[:1])
        assert err.value.status == 422
    assert [p["tags"] for p in predictions] == expected
    entities = [e for p in predictions for e in p["entities"]]
    assert entities, "random tags should contain entities"
    for text, p in zip(texts, predictions):
        assert all(text[e["start"]:e["end"]] == e["text"] and e["type"] == "LOC" for e in p["entities"])

    span = SpanExtractor(base.embedding, base.encoder, cfg.hidden_size)
    torch.nn.init.normal_(span.output_layer.weight, std=1.0)
    save_model(span, tmp_path / "mrc.bin")
    questions, contexts = ["天气很好吗", "这是什么书"], ["今天天气很好，我们看书。", "这是一本好书，不错的书。"]
    squad = {"data": [{"paragraphs": [{"context": c, "qas": [{"id": f"q{i}", "question": q, "answers": []}]}]}
                      for i, (q, c) in enumerate(zip(questions, contexts))]}
    (tmp_path / "mrc.json").write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    mrc_flags = ["--load_model_path", str(tmp_path / "mrc.bin"), "--vocab_path", files["vocab"], "--config_path", TINY,
                 "--seq_length", "64"]
    run_script("inference/run_cmrc_infer.py", *mrc_flags, "--test_path", str(tmp_path / "mrc.json"),
               "--prediction_path", str(tmp_path / "mrc_pred.json"))
    expected = json.loads((tmp_path / "mrc_pred.json").read_text(encoding="utf-8"))
    service = prediction_server.build_service(service_args(prediction_server, "--task", "mrc", *mrc_flags))
    with thread_server(create_app(service, MicroBatcher(service.run), Limits())) as port:
        client = PredictionClient("127.0.0.1", port)
        answers = client(questions, contexts)
        with pytest.raises(ServerError, match="texts_b") as err:
            client(questions)
        assert err.value.status == 422
    assert [a["text"] for a in answers] == [expected[f"q{i}"] for i in range(len(questions))]
    for context, a in zip(contexts, answers):
        assert context[a["start"]:a["end"]] == a["text"] and a["text"]
