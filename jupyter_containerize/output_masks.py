"""What legitimately differs between two runs of one notebook, masked before outputs are compared.

One home for the rule, used by ``verify`` and by the reproduction corpus (``bench/corpus.py``):

- where things are installed: any ``…/site-packages/`` (or ``dist-packages``) folder reads
  ``<site-packages>/``, the standard library's ``…/lib/pythonX.Y/`` reads ``<stdlib>/``, and the
  absolute paths a caller names (the kernel's venv prefix and ``/opt/venv``, the working folder and
  ``/work``) read as the caller's placeholders (``<venv>``, ``<cwd>``);
- ipykernel's per-process cell files: ``/tmp/ipykernel_<pid>/`` reads ``<ipykernel>/``, and the
  execution count in a traceback's ``Cell In[7], line 2`` reads ``<n>``;
- clocks: date-times, dates, times of day and Unix time stamps;
- elapsed times and rates: ``Wall time: 1.2 ms``, ``took 0.53s``, ``12.3it/s``, and timeit's
  adaptive ``1,000 loops each``;
- memory addresses (``0x7f…``);
- the interleaving of stdout and stderr: a cell's stream text is compared per stream name,
  concatenated, streams first and in name order; the other outputs keep their order.

Execution counts, ``transient`` and output metadata are dropped; binary images are kept as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

BINARY_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "application/pdf"})

# Path characters: anything but whitespace, separators and the quotes/brackets that end a path in text.
_SEGMENT = r"[^\s/'\"<>()\[\]{},;:]+"
_PATH_START = r"(?<![\w.~-])"


def _compiled(*pairs: tuple[str, str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    return tuple((re.compile(pattern), placeholder) for pattern, placeholder in pairs)


# Where things are installed: masked before a caller's own paths, which may contain them.
_INSTALL_MASKS = _compiled(
    (_PATH_START + rf"~?(?:/{_SEGMENT})*?/(?:site|dist)-packages/", "<site-packages>/"),
    (_PATH_START + rf"~?(?:/{_SEGMENT})*?/lib/python3\.\d+/", "<stdlib>/"),
    (_PATH_START + rf"(?:/{_SEGMENT})*?/ipykernel_\d+/", "<ipykernel>/"),
)
_RUN_MASKS = _compiled(
    (r"\bIn\[\d+\], line\b", "In[<n>], line"),  # a traceback's "Cell In[7], line 2": the execution count
    (r"<ipython-input-\d+-[0-9a-f]+>", "<ipython-input>"),
    # clocks
    (r"\bdatetime\.datetime\(\d{4}, [^()]*(?:\([^()]*(?:\([^()]*\))?[^()]*\)[^()]*)*\)",
     "datetime.datetime(<datetime>)"),
    (r"\bdatetime\.date\(\d{4}, \d{1,2}, \d{1,2}\)", "datetime.date(<date>)"),
    (r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}\b)?", "<datetime>"),
    ((r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d "
      r"\d{2}:\d{2}:\d{2} \d{4}\b"), "<datetime>"),
    (r"\b\d{4}-\d{2}-\d{2}\b", "<date>"),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<time>"),
    (r"(?<![\d.])1[5-9]\d{8}(?:\.\d+)?(?![\d.])", "<timestamp>"),  # time.time(), 2017 to 2033
    # elapsed times and rates
    (r"\b\d+(?:\.\d+)?\s?(?:it|s|B|kB|MB|GB)/(?:s|it)\b", "<rate>"),
    (r"\b\d{1,2}:\d{2}<\d{1,2}:\d{2}\b", "<elapsed><<elapsed>"),  # tqdm's [00:01<00:02]
    (r"(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?\s?(?:ns|µs|μs|us|ms|s|sec|secs|seconds?|mins?|minutes?|h|hrs?|hours?)\b",
     "<elapsed>"),
    (r"\b\d[\d,]* loops? each\b", "<n> loops each"),
    # memory addresses
    (r"\b0x[0-9a-fA-F]{6,}\b", "0x…"),
)


def _path_pattern(path: str) -> re.Pattern[str]:
    return re.compile(_PATH_START + re.escape(path.rstrip("/")) + r"(?![\w.-])")


def mask_text(text: str, paths: Mapping[str, str] | None = None) -> str:
    """``text`` with what legitimately differs between runs replaced by placeholders.

    Args:
        text: any output text (a stream, a ``text/plain`` value, a traceback line).
        paths: absolute paths of the run's side and their placeholders, e.g. ``{"/opt/venv": "<venv>",
            "/work": "<cwd>"}``; longest first, after the install locations are masked.
    """
    for pattern, placeholder in _INSTALL_MASKS:
        text = pattern.sub(placeholder, text)
    for path, placeholder in sorted((paths or {}).items(), key=lambda kv: -len(kv[0])):
        if path.rstrip("/"):
            text = _path_pattern(path).sub(placeholder.replace("\\", "\\\\"), text)
    for pattern, placeholder in _RUN_MASKS:
        text = pattern.sub(placeholder, text)
    return text


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _is_text(value: Any) -> bool:
    """A string, or nbformat's list of lines (not a JSON value such as ``application/json``'s)."""
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def mask_outputs(outputs: Sequence[Mapping[str, Any]], paths: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """A cell's outputs (nbformat dicts) masked: comparable between two runs of the notebook.

    Streams become one output per stream name (their text concatenated), first and in name order;
    rich outputs and errors follow in their order, their text masked (binary images untouched).
    """
    streams: dict[str, str] = {}
    rest: list[dict[str, Any]] = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            name = str(output.get("name", "stdout"))
            streams[name] = streams.get(name, "") + _text(output.get("text", ""))
        elif kind in ("execute_result", "display_data"):
            data = {mime: mask_text(_text(value), paths) if mime not in BINARY_MIMES and _is_text(value) else value
                    for mime, value in dict(output.get("data", {})).items()}
            rest.append({"output_type": kind, "data": data})
        elif kind == "error":
            rest.append({"output_type": "error", "ename": str(output.get("ename", "")),
                         "evalue": mask_text(str(output.get("evalue", "")), paths),
                         "traceback": [mask_text(str(line), paths) for line in output.get("traceback", [])]})
        else:
            rest.append({k: v for k, v in output.items() if k not in ("execution_count", "transient", "metadata")})
    masked = [{"output_type": "stream", "name": name, "text": mask_text(streams[name], paths)}
              for name in sorted(streams)]
    return masked + rest


def is_install_cell(source: str) -> bool:
    """A cell of ``!pip install`` / ``%pip install`` lines only (comments and blank lines aside): pip's report
    natively, "already in the image: …" in a job; its outputs differ by design and are not compared."""
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return bool(lines) and all(ln[0] in "!%" and "pip install" in ln for ln in lines)
