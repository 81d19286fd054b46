"""BuildKit's trace (base64 protobuf in the /build stream) → the same typed events as the classic builder."""

from __future__ import annotations

import base64

import pytest

from jupyter_containerize.backends.buildkit import TRACE_ID, BuildKitStreamParser, decode_trace, fields
from jupyter_containerize.events import BuildLog, BuildStep, LayerCached, PackagesProgress


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


_TS = _field(1, 1_700_000_000) + _field(2, 5)


def _vertex(digest: str, name: str, *, started: bool = False, completed: bool = False, cached: bool = False,
            error: str = "") -> bytes:
    body = _field(1, digest) + _field(2, "sha256:input") + _field(3, name)
    if cached:
        body += _field(4, 1)
    if started:
        body += _field(5, _TS)
    if completed:
        body += _field(6, _TS)
    if error:
        body += _field(7, error)
    return _field(1, body)


def _log(digest: str, text: str) -> bytes:
    return _field(3, _field(1, digest) + _field(2, _TS) + _field(3, 1) + _field(4, text))


def _chunk(*parts: bytes) -> dict[str, object]:
    return {"id": TRACE_ID, "aux": base64.b64encode(b"".join(parts)).decode()}


def test_decoder_reads_vertices_and_logs() -> None:
    vertices, logs = decode_trace(_vertex("sha256:a", "[2/3] RUN true", started=True, cached=True)
                                  + _log("sha256:a", "hello\n"))
    assert [(v.digest, v.name, v.started, v.completed, v.cached) for v in vertices] == [
        ("sha256:a", "[2/3] RUN true", True, False, True)]
    assert [(log.digest, log.text) for log in logs] == [("sha256:a", "hello\n")]
    assert list(fields(_field(1, 300))) == [(1, 300)]


def test_steps_cache_hits_logs_and_uv_counters_become_events() -> None:
    parser = BuildKitStreamParser()
    events = parser.feed(_chunk(
        _vertex("sha256:ctx", "[internal] load remote build context", started=True, completed=True),
        _vertex("sha256:from", "[stage-1 1/3] FROM docker.io/library/python:3.11.7-slim-bookworm"),
        _vertex("sha256:user", "[stage-1 2/3] RUN groupadd jc"),
        _vertex("sha256:uv", "[stage-1 3/3] RUN uv pip install -r /tmp/jc-build/requirements.lock"),
    ))
    assert events == [] and parser.total == 3  # announced, nothing started
    events = parser.feed(_chunk(
        _vertex("sha256:from", "[stage-1 1/3] FROM docker.io/library/python:3.11.7-slim-bookworm",
                started=True, completed=True),
        _vertex("sha256:user", "[stage-1 2/3] RUN groupadd jc", started=True, completed=True, cached=True),
        _vertex("sha256:uv", "[stage-1 3/3] RUN uv pip install -r /tmp/jc-build/requirements.lock", started=True),
        _log("sha256:uv", "Resolved 36 packages in 116ms\nInstalled 3"),
    ))
    events += parser.feed(_chunk(_log("sha256:uv", "6 packages in 522ms\n + numpy==2.4.6\n")))
    events += parser.feed(_chunk(_vertex("sha256:uv", "[stage-1 3/3] RUN uv pip install -r x", started=True,
                                         completed=True)))
    events += parser.finish()
    assert [(e.index, e.total) for e in events if isinstance(e, BuildStep)] == [(1, 3), (2, 3), (3, 3)]
    assert [e.index for e in events if isinstance(e, LayerCached)] == [2]
    progress = [(e.phase, e.count) for e in events if isinstance(e, PackagesProgress)]
    assert progress == [("resolved", 36), ("installed", 36), ("added", 1)]  # a line split across chunks is whole
    assert [e.line for e in events if isinstance(e, BuildLog)][1] == "Installed 36 packages in 522ms"
    assert parser.steps_run == 1 and parser.cached_steps == 1 and parser.installed == 36  # FROM does no work


def test_a_failing_step_names_itself_and_keeps_its_own_output() -> None:
    parser = BuildKitStreamParser()
    parser.feed(_chunk(_vertex("sha256:a", "[uv 2/2] RUN pip install uv", started=True),
                       _vertex("sha256:b", "[stage-1 3/4] RUN uv pip install -r lock", started=True)))
    parser.feed(_chunk(_log("sha256:a", "Collecting uv\n"),
                       _log("sha256:b", "error: No solution found\n  numpy==0.0.1 is not on the index\n")))
    parser.feed(_chunk(_vertex("sha256:b", "[stage-1 3/4] RUN uv pip install -r lock", started=True,
                               completed=True, error="process \"/bin/sh -c uv pip install\" did not complete")))
    parser.feed({"errorDetail": {"message": "x"},
                 "error": "executor failed running [/bin/sh -c export PATH=… && uv pip install -r lock]: exit code: 1"})
    assert parser.instruction == "RUN uv pip install -r lock" and parser.step == 2
    assert list(parser.tail) == ["error: No solution found", "  numpy==0.0.1 is not on the index"]
    assert parser.error == "the command exited with code 1"


@pytest.mark.parametrize("garbage", [b"\x0a\xff", b"\x0f", b"\x80"])
def test_an_unreadable_trace_costs_detail_not_the_build(garbage: bytes) -> None:
    parser = BuildKitStreamParser()
    assert parser.feed({"id": TRACE_ID, "aux": base64.b64encode(garbage).decode()}) == []
    parser.feed({"aux": {"ID": "sha256:abc"}})
    assert parser.image_id == "sha256:abc" and not parser.error
