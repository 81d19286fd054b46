"""The step namer: every step of a rendered build context named for what it does, numbered in start order."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from jupyter_containerize.backends.buildkit import TRACE_ID, BuildKitStreamParser
from jupyter_containerize.backends.buildlog import BuildStreamParser
from jupyter_containerize.events import BuildStep
from jupyter_containerize.render import render_context
from jupyter_containerize.render.steps import BUILDKIT_STEPS, instructions, name_step, step_facts, step_plan
from tests.support.render import RUNNER_PINS, make_snapshot, spec_for
from tests.unit.test_buildkit_trace import _vertex

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"


def _render(tmp_path: Path, buildkit: bool) -> tuple[Path, str]:
    nb = tmp_path / "project" / "train.ipynb"
    nb.parent.mkdir()
    nb.write_bytes((FIXTURES / "parameters.ipynb").read_bytes())
    snap = make_snapshot(nb, system_packages=("libgomp1", "libsndfile1"))
    ctx = render_context(snap, spec_for(nb, uid=1234), tmp_path / "ctx", runner_pins=RUNNER_PINS, buildkit=buildkit)
    return ctx.path, ctx.dockerfile


@pytest.mark.parametrize("buildkit", [True, False], ids=["buildkit", "classic"])
def test_every_step_of_a_rendered_context_has_a_name_not_its_instruction(tmp_path: Path, buildkit: bool) -> None:
    path, dockerfile = _render(tmp_path, buildkit)
    facts = step_facts(path)
    assert facts.packages["requirements.lock"] == 3 and facts.packages["runner.lock"] == len(RUNNER_PINS)
    named = [name_step(i, facts) for i in instructions(dockerfile)]
    assert not [n for n in named if "--mount" in n or "&&" in n or len(n) > 80], named
    assert "install 4 packages (uv)" in named or "install the kernel (1 package, uv)" in named  # 3 and ipykernel
    assert f"install the notebook runner ({len(RUNNER_PINS)} packages, uv)" in " ".join(named)
    assert "create the job's user (uid 1234)" in named
    assert "install system packages: libgomp1, libsndfile1" in named
    assert "copy the job runner" in named and "working folder /work" in named
    assert any(n.startswith("copy the notebook and its files (") for n in named)
    assert ("install 3 packages (uv)" in named) is not buildkit  # BuildKit installs ipykernel in the same step
    if buildkit:
        assert "precompile ipykernel" in named
        assert any(n.startswith("get uv ") for n in named)


def test_the_plan_counts_what_buildkit_reports_and_a_shared_base_once(tmp_path: Path) -> None:
    path, dockerfile = _render(tmp_path, buildkit=True)
    plan = step_plan(dockerfile, step_facts(path))
    runs = [i for i in instructions(dockerfile) if i.split()[0] in BUILDKIT_STEPS]
    bases = [i.split()[1] for i in runs if i.startswith("FROM")]
    assert len(plan.steps) == len(runs) and plan.total == len(runs) - (len(bases) - len(set(bases)))
    stages = [s.stage for s in plan.steps if s.position == 1]
    assert stages[0] == "uv" and stages[-1] == f"stage-{len(stages) - 1}"
    final = [s for s in plan.steps if s.stage == stages[-1]]
    assert [s.position for s in final] == list(range(1, len(final) + 1))
    assert plan.label(stages[-1], 2, "RUN whatever") == final[1].label


def _chunk(*parts: bytes) -> dict[str, object]:
    return {"id": TRACE_ID, "aux": base64.b64encode(b"".join(parts)).decode()}


def test_buildkit_steps_are_numbered_as_they_start_and_named_by_the_plan() -> None:
    dockerfile = ("FROM python:3.12.1-slim AS uv\nRUN python3 -m pip install --target /opt/jc-build/uv uv==0.13.9\n\n"
                  "FROM python:3.12.1-slim\nRUN groupadd --gid 1000 jc \\\n && useradd --uid 1000 jc\n"
                  "RUN --mount=type=bind,source=requirements.lock,target=/tmp/r.lock \\\n"
                  "    uv pip install --python /opt/venv/bin/python --no-deps -r /tmp/r.lock\n"
                  "COPY --chown=1000:1000 work/ /work/\n")
    parser = BuildKitStreamParser(plan=step_plan(dockerfile))
    assert parser.plan.total == 5  # the shared base counted once
    names = ["[uv 1/2] FROM docker.io/library/python:3.12.1-slim", "[uv 2/2] RUN python3 -m pip install …",
             "[stage-1 2/4] RUN groupadd --gid 1000 jc  && useradd …", "[stage-1 3/4] RUN --mount=type=bind,source=…",
             "[stage-1 4/4] COPY --chown=1000:1000 work/ /work/"]
    events = parser.feed(_chunk(*(_vertex(f"sha256:{i}", n) for i, n in enumerate(names))))  # announced
    for i in (0, 2, 1, 3, 4):  # BuildKit runs the two stages side by side: the user's step starts before uv's
        events += parser.feed(_chunk(_vertex(f"sha256:{i}", names[i], started=True, cached=i == 0)))
    steps = [e for e in events if isinstance(e, BuildStep)]
    assert [(s.index, s.total) for s in steps] == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert [s.label for s in steps] == ["base image python:3.12.1-slim", "create the job's user (uid 1000)",
                                        "get uv 0.13.9", "install packages (uv)", "copy the notebook and its files"]
    assert [s.cached for s in steps] == [True, False, False, False, False]


def test_the_classic_builder_names_its_steps_too() -> None:
    parser = BuildStreamParser()
    events = parser.feed({"stream": "Step 2/5 : RUN apt-get update && apt-get install -y --no-install-recommends "
                                    "git && rm -rf /var/lib/apt/lists/*\n"})
    assert [(e.index, e.total, e.label) for e in events if isinstance(e, BuildStep)] == [
        (2, 5, "install system packages: git")]
    assert parser.label == "install system packages: git"


@pytest.mark.parametrize(("instruction", "name"), [
    ("RUN uv pip install --python /opt/venv/bin/python --no-index --no-deps -r /tmp/jc-build/requirements.lock",
     "install packages (uv offline)"),
    ("RUN uv python install 3.12.4", "install Python 3.12.4 (uv)"),
    ("COPY --from=builder /opt/venv /opt/venv", "copy the environment from the builder stage"),
    ("COPY --from=builder /opt/jc-runner /opt/jc-runner", "copy the notebook runner from the builder stage"),
    ("COPY tools/uv /opt/jc-build/uv/bin/uv", "copy this machine's uv"),
    ("COPY certs/ca.crt /tmp/jc-build/ca.crt", "copy the CA certificate"),
    ("ENV PATH=/opt/venv/bin:$PATH", "image setting ENV"),
    ("RUN make -j4 " + "x" * 100, "RUN make -j4 " + "x" * 56 + "…"),
])
def test_names_of_single_instructions(instruction: str, name: str) -> None:
    assert name_step(instruction) == name
