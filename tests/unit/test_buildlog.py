"""Classic-builder output becomes typed build events."""

from __future__ import annotations

from typing import Any

from jupyter_containerize.backends.buildlog import BuildStreamParser
from jupyter_containerize.events import BuildStep, LayerCached, PackagesProgress
from jupyter_containerize.textview import TextProgress


def test_steps_cache_and_packages() -> None:
    p = BuildStreamParser()
    chunks: list[dict[str, Any]] = [
        {"stream": "Step 1/3 : FROM python:3.11.7-slim-bookworm\n"},
        {"stream": " ---> 1234\n"},
        {"stream": "Step 2/3 : COPY requirements.lock /tmp/\n ---> Using cache\n"},
        {"stream": "Step 3/3 : RUN uv pip install -r req"},
        {"stream": "uirements.lock\n"},
        {"stream": "\x1b[91mResolved 12 packages in 1.20s\n\x1b[0m"},
        {"stream": "Installed 12 packages in 300ms\n + numpy==2.1.0\n"},
        {"aux": {"ID": "sha256:abc"}},
    ]
    events = [e for c in chunks for e in p.feed(c)]
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [(s.index, s.total) for s in steps] == [(1, 3), (2, 3), (3, 3)]
    assert steps[2].instruction == "RUN uv pip install -r requirements.lock"
    assert [e.index for e in events if isinstance(e, LayerCached)] == [2]
    phases = [(e.phase, e.count) for e in events if isinstance(e, PackagesProgress)]
    assert ("resolved", 12) in phases and ("installed", 12) in phases and ("added", 1) in phases
    assert p.image_id == "sha256:abc" and p.steps_run == 1 and p.cached_steps == 1  # FROM is no work


def test_error_is_kept_with_the_tail() -> None:
    p = BuildStreamParser()
    p.feed({"stream": "Step 1/1 : RUN false\n"})
    p.feed({"stream": "some output\n"})
    p.feed({"error": "The command '/bin/sh -c false' returned a non-zero code: 1"})
    assert "non-zero" in p.error and list(p.tail)[-1] == "some output"


def test_text_progress_rate_limits_package_noise() -> None:
    import io

    out = io.StringIO()
    now = [0.0]
    view = TextProgress(out, clock=lambda: now[0])
    for _ in range(50):
        view(PackagesProgress(phase="downloading", count=1, detail="x"))
    now[0] = 1.0
    view(PackagesProgress(phase="downloading", count=1, detail="y"))
    for name in "abc":
        view(PackagesProgress(phase="added", count=1, detail=f"{name}==1"))  # the bar counts them, no line each
    view(PackagesProgress(phase="installed", count=12, detail="in 1.35s"))
    view(PackagesProgress(phase="precompiled", count=1, detail="sklearn (3.2 s)"))
    lines = out.getvalue().splitlines()
    assert lines == ["  downloading x", "  downloading y", "  installed 12 packages in 1.35s",
                     "  precompiled sklearn (3.2 s)"]
    assert view.progress.packages == {"downloading": 1, "added": 3, "installed": 12, "precompiled": 1}


def test_the_last_layer_of_each_earlier_stage_is_kept() -> None:
    p = BuildStreamParser()
    for text in ["Step 1/4 : FROM base AS builder\n", " ---> 111111111111\n", "Step 2/4 : RUN make\n",
                 " ---> Running in 999999999999\n", " ---> 222222222222\n", "Step 3/4 : FROM base\n",
                 " ---> 111111111111\n", "Step 4/4 : COPY --from=builder /a /a\n", " ---> 333333333333\n"]:
        p.feed({"stream": text})
    assert p.stage_images == ["222222222222"]
