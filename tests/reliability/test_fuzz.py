"""Property-based fuzzing (hypothesis): the option parser and every generated file.

* The parser raises nothing but OptionError (or HelpShown) on any argv or magic line.
* Dockerfile: every logical line starts with a known instruction, and hostile values never
  change the instruction sequence (they cannot add a RUN).
* sbatch: ``bash -n`` accepts the script; run with a fake ``docker``, every env value arrives
  byte-for-byte and nothing injected executes.
* Kubernetes / Compose YAML: ``yaml.safe_load`` gives back the exact values.

Example counts are modest on purpose (CI time); the strategies lean on hostile alphabets.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from jupyter_containerize.backends.base import ImageRef, RunRequest
from jupyter_containerize.backends.kubernetes import job_manifest
from jupyter_containerize.backends.slurm_script import batch_script
from jupyter_containerize.capture.snapshot import EnvironmentSnapshot, PinnedDistribution, PipConfig
from jupyter_containerize.errors import BackendError, ContainerizeError, OptionError
from jupyter_containerize.export import compose_yaml
from jupyter_containerize.jobspec import BuildOptions, JobSpec, VolumeMount
from jupyter_containerize.options import SUBCOMMANDS, HelpShown, build_parser, parse
from jupyter_containerize.render import render_dockerfile

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ_SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SENTINEL_NAME = "jc-fuzz-pwned"
# Text that would execute (or break a line-based format) if it were pasted anywhere unquoted.
HOSTILE = [
    "$(touch {s})", "`touch {s}`", "'; touch {s}; '", '"; touch {s}; "', "\\\"; touch {s} #", "a\nRUN touch {s}",
    "x\r\n#SBATCH --uid=0", "${{HOME}}", "$HOME", "é✓ 日本 \u202e", "--privileged", "-it", "a b\tc", "{{}}: [x]",
    "\\", "\\\\n", "'", '"', "*", "?", "~", "!", "#", "&& touch {s}", "| touch {s}", "> /tmp/{s}",
]
HOSTILE_ALPHABET = st.characters(codec="utf-8", exclude_characters="\x00")


def hostile(sentinel: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([h.format(s=sentinel) for h in HOSTILE]),
        st.text(HOSTILE_ALPHABET, max_size=40),
        st.lists(st.sampled_from([h.format(s=sentinel) for h in HOSTILE]), min_size=1, max_size=4).map("".join),
    )


# -- the option parser --------------------------------------------------------------------------------

FLAGS = sorted({s for a in build_parser()._actions for s in a.option_strings} | {
    s for sp in build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
    for a in sp._actions for s in a.option_strings})
TOKEN = st.one_of(st.sampled_from(FLAGS), st.sampled_from(SUBCOMMANDS), st.text(HOSTILE_ALPHABET, max_size=12),
                  st.sampled_from(["nb.ipynb", "a=1", "./data:/data:ro", "all", "0", "-1", "device=0", "x=1,2",
                                   "/", "~nobody-such-user/x", "1e999", "nan", "--", "-"]))


@FUZZ
@given(argv=st.lists(TOKEN, max_size=10))
@example(argv=["run", "nb.ipynb", "--output", "a\x00b"])
@example(argv=["run", "~no-such-user-xyz/nb.ipynb"])
@example(argv=["run", "nb.ipynb", "-v", "~no-such-user-xyz/d:/d"])
@example(argv=["run", "nb.ipynb", "--cpus", "nan"])
@example(argv=["run", "nb.ipynb", "--cpus", "inf"])
@example(argv=["run", "nb\x00.ipynb"])
def test_parser_raises_only_option_errors(argv: list[str], tmp_path: Path) -> None:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            parse(argv)
    except (OptionError, HelpShown):
        pass
    finally:
        os.chdir(old)


@FUZZ
@given(line=st.text(HOSTILE_ALPHABET, max_size=60))
def test_magic_line_parser_raises_only_option_errors(line: str) -> None:
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            parse("run nb.ipynb " + line)
    except (OptionError, HelpShown):
        pass


# -- Dockerfile ---------------------------------------------------------------------------------------

INSTRUCTIONS = {"FROM", "RUN", "COPY", "ENV", "ARG", "VOLUME", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "LABEL",
                "SHELL", "EXPOSE", "HEALTHCHECK", "STOPSIGNAL", "ONBUILD", "ADD", "MAINTAINER"}


def logical_lines(dockerfile: str) -> list[str]:
    """Dockerfile logical lines: comments and blanks dropped, backslash continuations joined."""
    out: list[str] = []
    current = ""
    for line in dockerfile.split("\n"):
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        out.append(current + line)
        current = ""
    assert current == "", "a continuation runs off the end of the file"
    return out


def _snapshot(nb: Path, **changes: object) -> EnvironmentSnapshot:
    snap = EnvironmentSnapshot(
        notebook=nb, python_version="3.11.7", python_executable="/usr/local/bin/python3", platform="linux",
        machine="x86_64", imports=("numpy",),
        distributions=(PinnedDistribution("numpy", "1.26.4", "numpy==1.26.4"),), ipykernel_version="6.29.5",
    )
    return replace(snap, **changes)  # type: ignore[arg-type]


def _instructions(dockerfile: str) -> list[str]:
    return [line.split(None, 1)[0] for line in logical_lines(dockerfile)]


@FUZZ
@given(name=hostile(SENTINEL_NAME).filter(lambda n: "/" not in n and n not in ("", ".", "..")),
       index=st.one_of(st.none(), hostile(SENTINEL_NAME)), extra=st.one_of(st.none(), hostile(SENTINEL_NAME)),
       host=st.one_of(st.none(), hostile(SENTINEL_NAME)), uid=st.integers(min_value=-5, max_value=2**32))
def test_dockerfile_always_parses_and_keeps_its_shape(name: str, index: str | None, extra: str | None,
                                                      host: str | None, uid: int) -> None:
    nb = Path("/w") / (name + ".ipynb")
    config = PipConfig(index_url=index, extra_index_urls=(extra,) if extra else (),
                       trusted_hosts=(host,) if host else ())
    spec = JobSpec(notebook=nb, build=BuildOptions(uid=uid))
    try:
        text = render_dockerfile(_snapshot(nb, pip_config=config), spec)
    except ContainerizeError:
        return  # refused with a sentence: fine
    lines = logical_lines(text)
    for line in lines:
        assert line.split(None, 1)[0] in INSTRUCTIONS, line
    # The same instructions, in the same order, as for tame values in the same fields: nothing injected.
    tame = PipConfig(index_url="https://i.example/simple" if index else None,
                     extra_index_urls=("https://e.example/simple",) if extra else (),
                     trusted_hosts=("i.example",) if host else ())
    expected = render_dockerfile(_snapshot(Path("/w/nb.ipynb"), pip_config=tame), JobSpec(notebook=Path("/w/nb.ipynb")))
    assert _instructions(text) == _instructions(expected)
    # Exec forms stay valid JSON whatever the notebook is called.
    cmd = next(line for line in lines if line.startswith("CMD "))
    assert json.loads(cmd[4:]) == [f"/work/{nb.name}"]


# -- sbatch -------------------------------------------------------------------------------------------

FAKE_DOCKER = """#!/bin/sh
# records its argv, NUL-separated, one call after another
for a in "$@"; do printf '%s\\0' "$a" >> "$JC_FAKE_LOG"; done
printf '\\n--end--\\0' >> "$JC_FAKE_LOG"
exit 0
"""


@pytest.fixture(scope="module")
def fake_docker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake") / "docker"
    path.write_text(FAKE_DOCKER)
    path.chmod(0o755)
    return path


def _calls(log: Path) -> list[list[str]]:
    calls: list[list[str]] = [[]]
    for item in log.read_bytes().decode("utf-8").split("\0")[:-1]:
        if item == "\n--end--":
            calls.append([])
        else:
            calls[-1].append(item)
    return [c for c in calls if c]


@FUZZ_SLOW
@given(env=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                           hostile(SENTINEL_NAME), max_size=4),
       param=hostile(SENTINEL_NAME), folder=hostile(SENTINEL_NAME), name=hostile(SENTINEL_NAME))
def test_sbatch_parses_round_trips_env_and_executes_nothing(env: dict[str, str], param: str, folder: str, name: str,
                                                             tmp_path: Path, fake_docker: Path) -> None:
    assume(not {"JC_JOB_ID", "JC_OUTPUT_DIR", "JC_PARAMETERS", "JC_FAKE_LOG"} & set(env))
    folder = folder.replace("/", "_").replace("\x00", "") or "f"
    assume(folder not in (".", ".."))
    host_dir = tmp_path / "v"
    host_dir.mkdir(exist_ok=True)
    spec = JobSpec(notebook=tmp_path / "nb.ipynb", env=env, parameters={"p": param},
                   volumes=(VolumeMount(source=str(host_dir / folder), target="/data", read_only=True),))
    request = RunRequest(job_id="fuzz1", image=ImageRef(tag="jc/nb:1", image_id="sha256:1"), spec=spec,
                         output_dir=tmp_path / "out")
    try:
        script = batch_script(request, job_name="jc-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)[:60],
                              docker=str(fake_docker), exit_file=str(tmp_path / "exit code"))
    except BackendError:
        assert any(c in folder for c in "\r\n")  # only line breaks in a path are refused
        return
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True, check=False).returncode == 0, script
    log = tmp_path / "calls"
    log.unlink(missing_ok=True)
    sentinel = Path("/tmp") / SENTINEL_NAME
    proc = subprocess.run(["sh", str(path)], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=30,
                          env={"PATH": os.environ["PATH"], "JC_FAKE_LOG": str(log), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert not sentinel.exists() and not (tmp_path / SENTINEL_NAME).exists()
    run = next(c for c in _calls(log) if c[0] == "run")
    envs = dict(run[i + 1].split("=", 1) for i, a in enumerate(run) if a == "--env")
    assert {k: envs[k] for k in env} == env
    assert json.loads(envs["JC_PARAMETERS"]) == {"p": param}
    mounts = [run[i + 1] for i, a in enumerate(run) if a == "--mount"]
    assert any(str(host_dir / folder) in m or shlex.quote(str(host_dir / folder)) in m or '""' in m for m in mounts)
    assert (tmp_path / "exit code").read_text().strip() == "0"


# -- YAML ---------------------------------------------------------------------------------------------


@FUZZ
@given(env=st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
                           hostile(SENTINEL_NAME), max_size=4),
       param=st.one_of(hostile(SENTINEL_NAME), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()))
def test_kubernetes_and_compose_yaml_round_trip_exact_values(env: dict[str, str], param: object,
                                                             tmp_path: Path) -> None:
    assume(not {"JC_JOB_ID", "JC_OUTPUT_DIR", "JC_PARAMETERS"} & set(env))
    spec = JobSpec(notebook=tmp_path / "nb.ipynb", env=env, parameters={"p": param})
    request = RunRequest(job_id="fuzz1", image=ImageRef(tag="jc/nb:1", image_id="sha256:1"), spec=spec,
                         output_dir=tmp_path / "out", command=("/work/nb.ipynb",))
    manifest = job_manifest(request, "ml")
    loaded = yaml.safe_load(yaml.safe_dump(manifest, sort_keys=False))
    assert loaded == manifest
    (container,) = loaded["spec"]["template"]["spec"]["containers"]
    got = {e["name"]: e["value"] for e in container["env"]}
    assert {k: got[k] for k in env} == env
    assert json.loads(got["JC_PARAMETERS"]) == {"p": param}
    compose = yaml.safe_load(compose_yaml(spec, "jc/nb:1"))
    service = next(iter(compose["services"].values()))
    assert {k: service["environment"][k] for k in env} == env
