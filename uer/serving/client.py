"""Python clients of the encoder and prediction servers (standard library only: no web stack needed).

    from uer.serving.client import EncoderClient
    client = EncoderClient("127.0.0.1", 8866)
    vectors = client(["今天天气很好", "这本书很好看"])          # numpy float32 [2 x hidden_size]
    pair_vectors = client(["问题一", "问题二"], ["回答一", "回答二"])

Each thread keeps one keep-alive connection to the server. Errors: :class:`ServerUnavailable` when nothing
answers at the address (or it does not answer in time), :class:`ServerError` with the server's message and
HTTP status when it answers with an error (413/422: the request; 503: overloaded, retry; 500: the model).
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from typing import Any, Sequence

import numpy as np

__all__ = ["EncoderClient", "PredictionClient", "ServerError", "ServerUnavailable", "ServingError"]


class ServingError(RuntimeError):
    """Base class of the clients' errors."""


class ServerUnavailable(ServingError):
    """Nothing answers at the server's address, or the answer did not come in time."""


class ServerError(ServingError):
    """The server answered with an error; ``status`` is the HTTP status, the message the server's."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class _Client:
    def __init__(self, host: str = "127.0.0.1", port: int = 8866, timeout: float = 60.0) -> None:
        self.host = host
        self.port = int(port)
        self.timeout = timeout
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> "_Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def info(self) -> dict[str, Any]:
        """What the server serves: kind, model, dim / labels_num, max_length, limits, backend."""
        return self._request("GET", "/info")

    def _request(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        # A kept-alive connection the server has closed in the meantime fails on first use: retry once on a
        # new one (the requests are idempotent).
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            fresh = conn is None
            if fresh:
                conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self.close()
                if fresh or attempt == 1:
                    raise ServerUnavailable(f"{self.url}: the connection was closed ({err})") from None
            except socket.timeout:
                self.close()
                raise ServerUnavailable(f"{self.url}{path}: no answer within {self.timeout:g} s") from None
            except OSError as err:  # refused, unreachable, name not known
                self.close()
                raise ServerUnavailable(f"no server answers at {self.url} ({err.strerror or err}); is it running? "
                                        "(scripts/encoder_server.py / scripts/prediction_server.py)") from None
        if response.status != 200:
            try:
                detail = json.loads(data).get("detail", data.decode(errors="replace"))
            except (ValueError, AttributeError):
                detail = data.decode(errors="replace")[:500]
            raise ServerError(f"{self.url}{path}: HTTP {response.status}: {detail}", response.status)
        try:
            return json.loads(data)
        except ValueError:
            raise ServingError(f"{self.url}{path}: the answer is not JSON: {data[:200]!r}") from None

    @staticmethod
    def _body(texts: Sequence[str], texts_b: Sequence[str] | None) -> dict[str, Any]:
        if isinstance(texts, str):
            raise TypeError("give a list of texts, not one string: client([\"...\"])")
        body: dict[str, Any] = {"texts": list(texts)}
        if texts_b is not None:
            if isinstance(texts_b, str):
                raise TypeError("texts_b must be a list of texts, one per text of texts")
            if len(texts_b) != len(texts):
                raise ValueError(f"texts_b has {len(texts_b)} texts for {len(texts)} texts")
            body["texts_b"] = list(texts_b)
        return body


class EncoderClient(_Client):
    """``client(texts)`` / ``client(texts_a, texts_b)`` -> numpy float32 [n x dim] (scripts/encoder_server.py)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8866, timeout: float = 60.0) -> None:
        super().__init__(host, port, timeout)

    def __call__(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        return self.encode(texts, texts_b)

    def encode(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        body = self._body(texts, texts_b)
        body["format"] = "base64"  # exact float32 values, ~10x less to send than JSON numbers
        answer = self._request("POST", "/encode", body)
        try:
            data = np.frombuffer(base64.b64decode(answer["vectors_b64"]), dtype="<f4")
            return data.reshape(answer["shape"]).astype(np.float32)
        except (KeyError, ValueError, TypeError) as err:
            raise ServingError(f"{self.url}/encode: unexpected answer ({err}); is this an encoder server?") from None


class PredictionClient(_Client):
    """``client(texts)`` / ``client(texts_a, texts_b)`` -> one prediction per text (scripts/prediction_server.py).

    A classifier's prediction is ``{"label": int, "probabilities": [...], "logits": [...]}``; use
    :meth:`probabilities` for a numpy matrix.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8867, timeout: float = 60.0) -> None:
        super().__init__(host, port, timeout)

    def __call__(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> list[dict[str, Any]]:
        answer = self._request("POST", "/predict", self._body(texts, texts_b))
        try:
            return answer["predictions"]
        except (KeyError, TypeError):
            raise ServingError(f"{self.url}/predict: unexpected answer; is this a prediction server?") from None

    def labels(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        """Predicted labels, int64 [n] (classifier)."""
        return np.array([p["label"] for p in self(texts, texts_b)], dtype=np.int64)

    def probabilities(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities, float64 [n x labels_num] (classifier)."""
        predictions = self(texts, texts_b)
        return np.array([p["probabilities"] for p in predictions], dtype=np.float64).reshape(len(predictions), -1)
