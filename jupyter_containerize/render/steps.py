"""What each build step does, in words: the step namer.

A build's progress names its steps for what they do ("install 38 packages (uv)",
"precompile sklearn, pandas", "copy the notebook and its files") instead of printing the
Dockerfile's instruction, cut at 80 characters in the middle of a ``--mount`` option.

:func:`step_plan` reads a rendered Dockerfile the way BuildKit runs it: the steps it reports
(``[stage k/N] INSTRUCTION``: FROM, RUN, COPY, ADD, WORKDIR), stage by stage, a base image
shared by two stages counted once. :func:`name_step` names one instruction; the classic
builder's parser uses it directly. Both read the counts they print (packages in a lock,
modules to precompile, wheels, files) from the build context.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .dockerfile import JC_DIR, MANAGED_PYTHON_DIR, RUNNER_VENV, VENV

BUILDKIT_STEPS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})  # the rest only set image metadata
_PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(\[[^\]]*\])?\s*(==|@)")
_UV_VERSION = re.compile(r"\buv==(\S+)")
_PY_VERSION = re.compile(r"\buv python install (\S+)")
_UID = re.compile(r"--uid (\d+)")
_LOCKS = {"requirements.lock": "", "kernel.lock": "the kernel", "runner.lock": "the notebook runner"}
_SHOWN_MODULES = 3


@dataclass(frozen=True)
class StepFacts:
    """What the build context holds, for the counts a step's name gives."""

    packages: dict[str, int] = field(default_factory=dict)  # lock file name → pinned distributions
    modules: tuple[str, ...] = ()  # precompiled at build time, top-level names, in order
    wheels: int = 0
    work_files: int = 0


def step_facts(context: Path) -> StepFacts:
    """The facts of the build context at ``context``."""
    packages = {}
    for name in _LOCKS:
        try:
            lines = (context / name).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        packages[name] = sum(1 for line in lines if _PIN.match(line.strip()))
    modules: list[str] = []
    try:
        for line in (context / "build" / "modules.txt").read_text(encoding="utf-8").splitlines():
            top = "ipykernel" if line.strip() == ":kernel" else line.strip().partition(".")[0]
            if top and top not in modules:
                modules.append(top)
    except OSError:
        pass
    wheels = len(list((context / "wheels").glob("*.whl"))) if (context / "wheels").is_dir() else 0
    work = context / "work"
    work_files = sum(1 for p in work.rglob("*") if p.is_file()) if work.is_dir() else 0
    return StepFacts(packages=packages, modules=tuple(modules), wheels=wheels, work_files=work_files)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text.replace("\\\n", " "))
    except ValueError:
        return text.split()


def name_step(instruction: str, facts: StepFacts | None = None) -> str:
    """What ``instruction`` (a Dockerfile instruction, continuation lines included) does, in a few words."""
    facts = facts or StepFacts()
    keyword, _, rest = instruction.strip().partition(" ")
    keyword = keyword.upper()
    if keyword == "FROM":
        words = rest.split()
        return f"base image {words[0]}" if words else "base image"
    if keyword == "RUN":
        return _name_run(rest, facts)
    if keyword in ("COPY", "ADD"):
        return _name_copy(rest, facts)
    if keyword == "WORKDIR":
        return f"working folder {rest.strip()}"
    if keyword in ("ENV", "ARG", "LABEL", "USER", "ENTRYPOINT", "CMD", "VOLUME", "EXPOSE", "SHELL"):
        return f"image setting {keyword}"
    return _short(instruction)


def _name_run(rest: str, facts: StepFacts) -> str:
    text = rest.replace("\\\n", " ")
    offline = " offline" if "--no-index" in text else ""
    if "precompile.py" in text and "modules.txt" in text:
        shown = ", ".join(facts.modules[:_SHOWN_MODULES])
        more = len(facts.modules) - _SHOWN_MODULES
        if more > 0:
            shown += f" and {more} more"
        return f"precompile {shown}" if shown else "precompile the notebook's imports"
    locks = [lock for lock in _LOCKS if lock in text and "pip install" in text]
    if locks:
        counts = [facts.packages[lock] for lock in locks if lock in facts.packages]
        counted = _plural(sum(counts), "package") if counts else "packages"
        if "requirements.lock" in locks:  # the kernel's own lock, when there is one, goes in with it
            return f"install {counted} (uv{offline})"
        also = " and precompile it" if "precompile.py" in text else ""
        return f"install {_LOCKS[locks[0]]} ({counted}, uv{offline}){also}"
    if "pip install" in text and "uv==" in text:
        m = _UV_VERSION.search(text)
        return f"get uv {m.group(1)}" if m else "get uv"
    m = _PY_VERSION.search(text)
    if m:
        return f"install Python {m.group(1)} (uv)"
    if "apt-get install" in text:
        words = _words(text)
        words = words[words.index("install") + 1:] if "install" in words else []
        words = words[:words.index("&&")] if "&&" in words else words
        packages = [w for w in words if re.fullmatch(r"[a-z0-9][a-z0-9.+\-]*", w)]
        return f"install system packages: {', '.join(packages)}" if packages else "install system packages"
    if "useradd" in text:
        m = _UID.search(text)
        return f"create the job's user (uid {m.group(1)})" if m else "create the job's user"
    if "chmod" in text and "/uv" in text:
        return "make uv executable"
    return _short("RUN " + text)


def _name_copy(rest: str, facts: StepFacts) -> str:
    words = [w for w in _words(rest) if not w.startswith("--") or w.startswith("--from=")]
    stage = next((w.removeprefix("--from=") for w in words if w.startswith("--from=")), "")
    paths = [w for w in words if not w.startswith("--from=")]
    source = paths[0].rstrip("/") if paths else ""
    if stage:
        what = {VENV: "the environment", RUNNER_VENV: "the notebook runner",
                MANAGED_PYTHON_DIR: "Python"}.get(source, source)
        return f"copy {what} from the {stage} stage"
    if source == "work":
        files = f" ({_plural(facts.work_files, 'file')})" if facts.work_files else ""
        return f"copy the notebook and its files{files}"
    if source == "jc" and len(paths) > 1 and paths[-1].rstrip("/") == JC_DIR:
        return "copy the job runner"
    if source == "wheels":
        return f"copy {_plural(facts.wheels, 'wheel')}" if facts.wheels else "copy the wheels"
    if source.endswith(".lock"):
        return f"copy {source}"
    if source.startswith("certs"):
        return "copy the CA certificate"
    if source == "tools/uv":
        return "copy this machine's uv"
    return _short("COPY " + rest)


def _short(instruction: str, width: int = 70) -> str:
    """An instruction without its ``--mount``/``--chown`` options, on one line, at most ``width`` characters."""
    words = [w for w in instruction.replace("\\\n", " ").split() if not w.startswith("--")]
    text = " ".join(words)
    return text if len(text) <= width else text[:width - 1] + "…"


@dataclass(frozen=True)
class PlannedStep:
    """One step BuildKit reports: its stage (BuildKit's name for it), 1-based position there, and name."""

    stage: str
    position: int
    label: str
    instruction: str


@dataclass(frozen=True)
class StepPlan:
    """The steps of a BuildKit build, in Dockerfile order; ``total`` counts a shared base image once."""

    steps: tuple[PlannedStep, ...] = ()

    @property
    def total(self) -> int:
        bases = [s.instruction.split()[1] for s in self.steps if s.position == 1 and len(s.instruction.split()) > 1]
        return len(self.steps) - (len(bases) - len(set(bases)))

    def label(self, stage: str, position: int, instruction: str) -> str:
        """The name of the step BuildKit calls ``[stage position/N] instruction``."""
        for step in self.steps:
            if step.position == position and (step.stage == stage or (not stage and step.stage == self.last_stage)):
                return step.label
        return name_step(instruction)

    @property
    def last_stage(self) -> str:
        return self.steps[-1].stage if self.steps else ""


def instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, each with its continuation lines joined, comments and blanks left out."""
    out: list[str] = []
    current = ""
    for line in dockerfile.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line + "\n"
        if not line.rstrip().endswith("\\"):
            out.append(current.rstrip("\n"))
            current = ""
    if current:
        out.append(current.rstrip("\n"))
    return out


def step_plan(dockerfile: str, facts: StepFacts | None = None) -> StepPlan:
    """The steps BuildKit will report for ``dockerfile``, named."""
    facts = facts or StepFacts()
    steps: list[PlannedStep] = []
    stage_index = -1
    stage = ""
    position = 0
    for instruction in instructions(dockerfile):
        keyword = instruction.split(maxsplit=1)[0].upper()
        if keyword not in BUILDKIT_STEPS:
            continue
        if keyword == "FROM":
            stage_index += 1
            words = instruction.split()
            stage = words[3] if len(words) >= 4 and words[2].upper() == "AS" else f"stage-{stage_index}"
            position = 0
        position += 1
        steps.append(PlannedStep(stage=stage, position=position, label=name_step(instruction, facts),
                                 instruction=" ".join(instruction.split())))
    return StepPlan(tuple(steps))
