"""REST options (JSON) → the same argv the CLI takes, parsed by THE option parser.

The sidebar sends ``{"path": ..., "options": {...}}``; each option key is a CLI
flag with ``_`` for ``-`` (``base_image`` → ``--base-image``). Lists repeat the flag,
``true`` sets a switch, and ``env``/``parameters`` may also be objects. No second
validator: :func:`jupyter_containerize.options.parse` checks every value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import OptionError
from ..jobspec import JobSpec
from ..options import ParsedCommand, parse

# Set by the server itself (the kernel's interpreter) or meaningless over REST; or, for
# allow_dangerous_mounts, not for a web client: it would let a page mount the host's system folders.
_REFUSED = {
    "python": "The server uses the notebook's kernel interpreter; leave it out.",
    "detach": "The server always runs jobs detached; leave it out.",
    "wait": "The server always runs jobs detached; leave it out.",
    "notebook": "Name the notebook with 'path'.",
    "output_dir": "Use 'output' (a folder under the Jupyter root).",
    "dest": "Leave it out.",
    "allow_dangerous_mounts": "Mount only folders under the Jupyter root over the REST API; "
                              "use the CLI for anything else.",
}
_ALIASES = {"volumes": "volume", "parameters": "parameter", "params": "parameter", "envs": "env"}


def options_argv(options: Mapping[str, Any]) -> list[str]:
    """Flags for ``options`` in ``--name=value`` form (so values may start with '-')."""
    argv: list[str] = []
    for raw_key in sorted(options):
        value = options[raw_key]
        key = _ALIASES.get(raw_key, raw_key)
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise OptionError(f"The option {raw_key!r} is not an option name", "Use the CLI flag names, e.g. base_image.")
        if key in _REFUSED:
            raise OptionError(f"The option {raw_key!r} cannot be set over the REST API", _REFUSED[key])
        flag = "--" + key.replace("_", "-")
        if value is None or value is False or value == "" or value == [] or value == {}:
            continue
        if value is True:
            argv.append(flag)
            continue
        if key in ("parameter", "env") and isinstance(value, Mapping):
            value = [f"{k}={_literal(v) if key == 'parameter' else v}" for k, v in value.items()]
        if key == "sweep" and isinstance(value, Mapping):
            value = [f"{k}={','.join(_literal(x) for x in v)}" for k, v in value.items()]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, (dict, list)):
                raise OptionError(f"The option {raw_key!r} has a nested value", "Give strings, numbers or lists of them.")
            argv.append(f"{flag}={item if isinstance(item, str) else json.dumps(item)}")
    return argv


def _literal(value: Any) -> str:
    """A parameter value as text the parser reads back (strings as typed, others as Python literals)."""
    if isinstance(value, str):
        return value
    return repr(value)


def spec_from_payload(command: str, notebook: Path, options: Mapping[str, Any], python: str | None,
                      root: Path) -> JobSpec:
    """Parse ``options`` exactly as ``jupyter containerize <command> NOTEBOOK …`` would; the host
    folders it names (``output``, bind mounts) must lie under the Jupyter ``root``."""
    if not isinstance(options, Mapping):
        raise OptionError("'options' must be a JSON object", "Send {\"path\": ..., \"options\": {...}}.")
    argv = [command, str(notebook), *options_argv(options)]
    if python:
        argv.append(f"--python={python}")
    parsed = parse(argv)
    if parsed.spec is None:  # pragma: no cover - run/dockerfile always carry a spec
        raise OptionError(f"'{command}' needs a notebook")
    return _under_root(parsed.spec, root)


def _under_root(spec: JobSpec, root: Path) -> JobSpec:
    """``spec`` when every host folder it names is under ``root``; else one sentence saying which is not.

    A web client reaches only what the Jupyter server serves: its job may not write to, nor
    mount, the rest of the machine (the CLI, run by the machine's user, may).
    """
    named = [("output", spec.output_dir)] if spec.output_dir else []
    named += [(f"volume {v.describe()!r}", Path(v.source)) for v in spec.volumes if v.kind == "bind"]
    top = root.resolve()
    for what, path in named:
        assert path is not None
        if not path.resolve().is_relative_to(top):
            raise OptionError(f"The {what} names {path}, outside the Jupyter root {top}",
                              "Over the REST API, use folders under the root (or the CLI for others).")
    return spec


def schedule_from_payload(notebook: Path, data: Mapping[str, Any], python: str | None, root: Path) -> ParsedCommand:
    """``{"path", "options", "cron", "tz"}`` parsed exactly as ``jupyter containerize schedule NOTEBOOK
    --cron CRON [--tz TZ] [options]`` would be (``cron``/``tz`` may also sit in ``options``)."""
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise OptionError("'options' must be a JSON object", "Send {\"path\": ..., \"cron\": ..., \"options\": {...}}.")
    merged = dict(options)
    for key in ("cron", "tz"):
        value = data.get(key)
        if value not in (None, ""):
            if not isinstance(value, str):
                raise OptionError(f"'{key}' must be a string", "Send it like \"cron\": \"0 3 * * *\".")
            merged[key] = value
    argv = ["schedule", str(notebook), *options_argv(merged)]
    if python:
        argv.append(f"--python={python}")
    parsed = parse(argv)
    if parsed.spec is not None:
        _under_root(parsed.spec, root)
    return parsed
