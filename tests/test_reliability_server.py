"""Issue 23, servers: abandoned requests cost no model time, every answer is RFC 8259 JSON, /info names the
model file only, deeply nested JSON is a 422, a port in use or a bad --host is one line (exit 2)."""
from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
import torch

pytest.importorskip("fastapi", reason="serving needs requirements-serve.txt")
pytest.importorskip("uvicorn", reason="serving needs requirements-serve.txt")

from test_serving import (TEXTS, TINY, VOCAB, Gate, encoder_service, files, service_args,  # noqa: E402,F401
                          thread_server)
from uer.api import load_config  # noqa: E402
from uer.cli import encoder_server, prediction_server  # noqa: E402
from uer.model_builder import build_model  # noqa: E402
from uer.model_saver import save_model  # noqa: E402
from uer.serving.app import Limits, create_app  # noqa: E402
from uer.serving.batcher import MicroBatcher  # noqa: E402


def strict_json(raw: bytes):
    """json.loads that refuses NaN / Infinity (not JSON numbers)."""
    def refuse(name: str):
        raise AssertionError(f"not RFC 8259 JSON: {name}")
    return json.loads(raw, parse_constant=refuse)


def post(port: int, route: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{route}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_mrc_empty_context_is_valid_json_info_names_the_file_nested_json_is_422(files, tmp_path):
    from uer.finetune.tasks.mrc import SpanExtractor

    cfg = load_config(TINY, len(VOCAB), dropout=0.0)
    base = build_model(cfg, with_target=False)
    save_model(SpanExtractor(base.embedding, base.encoder, cfg.hidden_size), tmp_path / "mrc.bin")
    args = service_args(prediction_server, "--task", "mrc", "--load_model_path", str(tmp_path / "mrc.bin"),
                        "--vocab_path", files["vocab"], "--config_path", TINY, "--seq_length", "64")
    service = prediction_server.build_service(args)
    with thread_server(create_app(service, MicroBatcher(service.run), Limits())) as port:
        status, raw = post(port, "/predict", json.dumps({"texts": ["天气"], "texts_b": [""]}).encode())
        assert status == 200, raw
        answer = strict_json(raw)["predictions"][0]
        assert answer["text"] == "" and answer["score"] is None  # was -Infinity
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/info", timeout=30) as response:
            info = strict_json(response.read())
        assert info["model"] == "mrc.bin"  # not the absolute path
        status, raw = post(port, "/predict", b"[" * 100_000 + b"]" * 100_000)
        assert status == 422 and b"nested too deeply" in raw, raw
        strict_json(raw)


def test_requests_of_disconnected_clients_are_dropped(files):
    service, _ = encoder_service(files, "--encode_layer", "first")
    gate = service.runner = Gate(service.runner, closed=True)
    batcher = MicroBatcher(service.run, max_batch_size=1, max_wait_ms=0, max_queue=64)
    with thread_server(create_app(service, batcher, Limits())) as port:
        body = json.dumps({"texts": [TEXTS[0]]}).encode()
        head = (f"POST /encode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(head + body)
        assert gate.entered.wait(30)  # the worker is busy with the first request
        abandoned = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        for sock in abandoned:
            sock.sendall(head + body)
        deadline = time.monotonic() + 30
        while batcher.queued < len(abandoned) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher.queued == len(abandoned)
        for sock in abandoned:  # the clients give up
            sock.close()
        time.sleep(1.0)  # the handlers notice (they poll every 0.25 s) and cancel the queued work
        gate.open.set()
        assert b"200 OK" in held.recv(65536)
        held.close()
        status, raw = post(port, "/encode", body)  # a new request is served at once
        assert status == 200, raw
    assert batcher.stats.requests == 2  # the held one and the new one: none of the 10 abandoned was computed


@pytest.mark.parametrize("host_port", ["in_use", "bad_host"])
def test_port_in_use_or_bad_host_is_one_line(files, capsys, host_port: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        where = (["--port", str(taken.getsockname()[1])] if host_port == "in_use"
                 else ["--host", "no.such.host.invalid", "--port", "0"])
        with pytest.raises(SystemExit) as stop:
            encoder_server.main(["--load_model_path", files["model"], "--vocab_path", files["vocab"],
                                 "--config_path", TINY, *where])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err and "Traceback" not in err, err
    assert err.startswith("encoder_server.py: error: cannot listen on"), err
