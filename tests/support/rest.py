"""Calls of the REST API under /containerize/ through pytest_jupyter's ``jp_fetch``, and a local webhook."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError


async def call(fetch: Any, *parts: str, **kwargs: Any) -> Any:
    """``/containerize/PARTS`` answered with JSON (a body that is not a string is sent as JSON)."""
    if "body" in kwargs and not isinstance(kwargs["body"], str):
        kwargs["body"] = json.dumps(kwargs["body"])
    response = await fetch("containerize", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def refused(fetch: Any, *parts: str, **kwargs: Any) -> tuple[int, str]:
    """The status code and the ``error`` sentence of a call that must fail."""
    with pytest.raises(HTTPClientError) as info:
        await call(fetch, *parts, **kwargs)
    body = info.value.response.body if info.value.response is not None else b"{}"
    return info.value.code, json.loads(body or b"{}").get("error", "")


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP server: its URL, and the JSON bodies POSTed to it (with their Content-Type as ``_type``)."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append({**body, "_type": self.headers["Content-Type"]})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        thread.join()
