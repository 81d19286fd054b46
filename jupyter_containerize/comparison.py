"""A sweep's jobs side by side: rows, the metric compared, the best run, exports and a plot. No I/O.

:func:`compare` turns the job records of one sweep into a :class:`Comparison`, which the
front ends show: a text table (CLI), CSV and JSON (CLI, REST), an HTML table and a
Vega-Lite v5 plot (magics, sidebar). The plot is a plain JSON spec; no plotting library.

The rules, in one place:

- **Metric.** ``metric`` when given (it must be one some job of the sweep recorded); by
  default the first metric that every succeeded job recorded as a number (in the order the
  oldest succeeded job recorded them; ``log_metric`` keeps them sorted by name).
- **Direction.** ``direction`` when given (``--minimize``/``--maximize``); otherwise lower is
  better when a word of the metric's name is ``loss`` or ``error`` (also ``err``, ``mse``,
  ``rmse``, ``mae``; words split at ``_``, ``-``, ``.``, spaces, digits and camelCase:
  ``val_loss``, ``test-error``, ``errorRate``), higher is better for any other name.
- **Ranking.** Only succeeded jobs with a number for the metric are ranked and plotted,
  best first (ties keep the order the jobs were created in); the other jobs follow in
  creation order. The best run is rank 1.
- **Duration.** Build plus run: the seconds of the image build the job showed (a sweep
  builds once and shows that build on every job) plus the time from the container's
  start to the job's end.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeGuard

from .errors import OptionError, listing
from .jobspec import format_value

Direction = Literal["maximize", "minimize"]
VEGA_LITE_MIME = "application/vnd.vegalite.v5+json"
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
MINIMIZE_WORDS = frozenset({"loss", "error", "err", "mse", "rmse", "mae"})
LOG_SCALE_RATIO = 100.0  # a numeric parameter spanning this factor or more (all > 0) is drawn on a log scale
BEST_COLOUR = "#d62728"
OTHER_COLOUR = "#4c78a8"


class RecordLike(Protocol):
    """What a comparison reads of a job record (``jobs.store.JobRecord`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def created(self) -> float: ...
    @property
    def started(self) -> float | None: ...
    @property
    def finished(self) -> float | None: ...
    @property
    def parameters(self) -> dict[str, Any]: ...
    @property
    def metrics(self) -> dict[str, Any]: ...
    @property
    def sweep_id(self) -> str: ...


def is_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (``True`` is not a metric)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def infer_direction(metric: str) -> Direction:
    """``minimize`` when a word of the name is loss, error, err, mse, rmse or mae; else ``maximize``."""
    words = re.split(r"[^a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", metric).lower())
    return "minimize" if MINIMIZE_WORDS.intersection(words) else "maximize"


def default_metric(records: Sequence[RecordLike]) -> str | None:
    """The first metric every succeeded job recorded as a number; None when they share none (or none succeeded)."""
    succeeded = sorted((r for r in records if r.status == "succeeded"), key=lambda r: r.created)
    if not succeeded:
        return None
    for name, value in succeeded[0].metrics.items():
        if is_number(value) and all(is_number(r.metrics.get(name)) for r in succeeded[1:]):
            return str(name)
    return None


@dataclass(frozen=True)
class Row:
    """One job of the sweep as the comparison shows it."""

    job_id: str
    name: str
    status: str
    parameters: dict[str, Any]
    metrics: dict[str, Any]
    build_seconds: float | None = None
    run_seconds: float | None = None
    value: float | None = None  # the compared metric, when this job is ranked
    rank: int | None = None  # 1 is the best run; None: not ranked (not succeeded, or no number)

    @property
    def best(self) -> bool:
        return self.rank == 1

    @property
    def duration(self) -> float | None:
        """Build plus run seconds (what is known of them)."""
        parts = [s for s in (self.build_seconds, self.run_seconds) if s is not None]
        return sum(parts) if parts else None

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "name": self.name, "status": self.status, "parameters": self.parameters,
                "metrics": self.metrics, "value": self.value, "rank": self.rank, "best": self.best,
                "build_seconds": self.build_seconds, "run_seconds": self.run_seconds, "duration": self.duration}


@dataclass(frozen=True)
class Comparison:
    """A sweep's jobs compared on one metric; see the module's docstring for the rules."""

    sweep_id: str
    metric: str | None
    direction: Direction
    direction_inferred: bool
    rows: tuple[Row, ...]
    parameters: tuple[str, ...] = ()  # every parameter name, in the order the jobs have them
    varying: tuple[str, ...] = ()  # the parameters whose values differ between jobs
    metrics: tuple[str, ...] = ()  # every metric name some job recorded
    fixed: dict[str, Any] = field(default_factory=dict)  # the parameters every job has with one value

    @property
    def best(self) -> Row | None:
        return next((r for r in self.rows if r.best), None)

    @property
    def ranked(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.rank is not None)

    def direction_text(self) -> str:
        """``higher is better`` / ``lower is better``, and why."""
        text = "lower is better" if self.direction == "minimize" else "higher is better"
        if not self.direction_inferred:
            return f"{text} (--{self.direction})"
        return f"{text} (from its name)" if self.direction == "minimize" else text

    def summary(self) -> str:
        """One line: the sweep, how its jobs ended, the metric and the best run."""
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.status] = counts.get(r.status, 0) + 1
        states = ", ".join(f"{n} {s}" for s, n in counts.items())
        text = f"sweep {self.sweep_id}: {len(self.rows)} job{'' if len(self.rows) == 1 else 's'} ({states})"
        if self.metric is None:
            if "succeeded" in counts:
                return text + "; no metric to compare: the succeeded jobs share no number"
            return text + "; no metric to compare yet: no job succeeded"
        text += f"; metric {self.metric}, {self.direction_text()}"
        best = self.best
        if best is not None:
            who = f" ({best.name})" if best.name else ""
            text += f"; best: job {best.job_id}{who} {self.metric}={_number(best.value)}"
        return text

    # -- exports ---------------------------------------------------------------------------------
    def to_dict(self, vega_lite: bool = True) -> dict[str, Any]:
        """JSON-safe: the rules' outcome, every row, and (``vega_lite``) the plot's spec."""
        data: dict[str, Any] = {
            "sweep_id": self.sweep_id, "metric": self.metric, "direction": self.direction,
            "direction_inferred": self.direction_inferred, "parameters": list(self.parameters),
            "varying": list(self.varying), "fixed": self.fixed, "metrics": list(self.metrics),
            "best": self.best.job_id if self.best else None, "summary": self.summary(),
            "rows": [r.to_dict() for r in self.rows],
        }
        if vega_lite:
            data["vega_lite"] = self.vega_lite()
        return data

    def export(self, *, as_json: bool = False, as_csv: bool = False) -> str | None:
        """The text ``--json`` or ``--csv`` asks for (ending in a line break); None for neither (each
        front end then shows the comparison its own way)."""
        if as_json:
            return json.dumps(self.to_dict(), indent=1, default=str) + "\n"
        return self.csv() if as_csv else None

    def columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The parameters and metrics a table shows: the varying parameters (all when none varies) and every
        metric, the compared one first."""
        params = self.varying or self.parameters
        metrics = ((self.metric,) if self.metric else ()) + tuple(m for m in self.metrics if m != self.metric)
        return params, metrics

    def text(self) -> str:
        """A plain-text table, best first, the best run marked ``*``."""
        params, metrics = self.columns()
        names = any(r.name for r in self.rows)
        head = ["", "RANK", "JOB", *(["NAME"] if names else []), "STATUS", *params, *metrics, "DURATION"]
        body = [["*" if r.best else "", str(r.rank or "-"), r.job_id, *([r.name] if names else []), r.status,
                 *(_cell(r.parameters, p) for p in params), *(_cell(r.metrics, m) for m in metrics),
                 f"{r.duration:.1f}s" if r.duration is not None else "-"] for r in self.rows]
        widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
        lines = [self.summary(), ""]
        lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [head, *body]]
        if self.fixed:
            lines += ["", "same in every job: " + " ".join(f"{k}={format_value(v)}" for k, v in self.fixed.items())]
        return "\n".join(lines)

    def csv(self) -> str:
        """CSV, one row per job, best first: ``params.NAME`` and ``metrics.NAME`` columns (MLflow's naming)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        metrics = ((self.metric,) if self.metric else ()) + tuple(m for m in self.metrics if m != self.metric)
        writer.writerow(["job_id", "name", "status", "rank", "best", *(f"params.{p}" for p in self.parameters),
                         *(f"metrics.{m}" for m in metrics), "build_seconds", "run_seconds", "duration_seconds"])
        for r in self.rows:
            writer.writerow([r.job_id, r.name, r.status, r.rank or "", "true" if r.best else "false",
                             *(_csv_value(r.parameters.get(p)) for p in self.parameters),
                             *(_csv_value(r.metrics.get(m)) for m in metrics),
                             *(_csv_value(s) for s in (r.build_seconds, r.run_seconds, r.duration))])
        return out.getvalue()

    def html(self) -> str:
        """An HTML table (the magics' display), best first, the best run marked ★."""
        params, metrics = self.columns()
        names = any(r.name for r in self.rows)
        head = ["", "rank", "job", *(["name"] if names else []), "status", *params, *metrics, "duration"]
        rows = []
        for r in self.rows:
            cells = ["★" if r.best else "", str(r.rank or "–"), f"<code>{html.escape(r.job_id)}</code>",
                     *([html.escape(r.name)] if names else []), html.escape(r.status),
                     *(html.escape(_cell(r.parameters, p)) for p in params),
                     *(html.escape(_cell(r.metrics, m)) for m in metrics),
                     f"{r.duration:.1f} s" if r.duration is not None else "–"]
            style = ' style="font-weight:bold"' if r.best else ""
            rows.append(f'<tr class="jc-sweep-row{" jc-best" if r.best else ""}"{style}>'
                        + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        fixed = ("<p>same in every job: " + html.escape(" ".join(f"{k}={format_value(v)}" for k, v in self.fixed.items()))
                 + "</p>") if self.fixed else ""
        return (f'<div class="jc-sweep-comparison"><p><b>{html.escape(self.summary())}</b></p>'
                f'<table class="jc-sweep"><thead><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>'
                f'</thead><tbody>{"".join(rows)}</tbody></table>{fixed}</div>')

    # -- the plot ------------------------------------------------------------------------------------
    def vega_lite(self) -> dict[str, Any] | None:
        """A Vega-Lite v5 spec of the ranked runs; None when there is nothing to plot (no metric, no run ranked).

        One varying parameter: the metric against it (points and a line, the best point highlighted).
        Several: parallel coordinates (a ``fold`` of the parameters' and the metric's positions on
        axes scaled 0..1, one line per run, the raw values written beside the points). None: the metric
        per job.
        """
        ranked = self.ranked
        if self.metric is None or not ranked:
            return None
        subtitle = f"sweep {self.sweep_id} · {len(ranked)} of {len(self.rows)} jobs ranked · {self.direction_text()}"
        spec: dict[str, Any] = {
            "$schema": VEGA_LITE_SCHEMA,
            "description": f"{self.metric} of the jobs of sweep {self.sweep_id}",
            "width": 320, "height": 200,
        }
        values = [self._datum(r) for r in ranked]
        if len(self.varying) == 1:
            spec.update(self._against_one(self.varying[0], values))
        elif self.varying:
            spec.update(self._parallel(values))
        else:
            spec.update(self._per_job(values))
        spec["title"] = {"text": spec.pop("_title"), "subtitle": subtitle}
        return spec

    def _datum(self, row: Row) -> dict[str, Any]:
        # Fixed fields are plain words; parameters are "p:NAME", so no name can shadow another.
        datum: dict[str, Any] = {"job": row.job_id, "name": row.name, "rank": row.rank, "best": row.best,
                                 "value": row.value}
        for p in self.varying:
            datum[f"p:{p}"] = row.parameters.get(p)
        return datum

    def _tooltip(self) -> list[dict[str, Any]]:
        assert self.metric is not None
        return [{"field": "job", "type": "nominal", "title": "job"},
                *([{"field": "name", "type": "nominal", "title": "name"}] if any(r.name for r in self.rows) else []),
                *({"field": _field(f"p:{p}"), "type": "nominal", "title": p} for p in self.varying),
                {"field": "value", "type": "quantitative", "title": self.metric},
                {"field": "rank", "type": "ordinal", "title": "rank"}]

    def _against_one(self, param: str, values: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.metric is not None
        xs = [v[f"p:{param}"] for v in values]
        x: dict[str, Any] = {"field": _field(f"p:{param}"), "title": param}
        if all(is_number(v) for v in xs):
            x["type"] = "quantitative"
            # padding: the first and last points are drawn whole, not cut by the plot's edge
            x["scale"] = {"type": "log", "padding": 12} if _log_scale(xs) else {"zero": False, "padding": 12}
        else:
            x.update(type="ordinal", sort=[_scalar(v) for v in _ordered(xs)])
            for v in values:
                v[f"p:{param}"] = _scalar(v[f"p:{param}"])
        y = {"field": "value", "type": "quantitative", "title": self.metric, "scale": {"zero": False, "padding": 12}}
        best = {"field": "best", "type": "nominal", "title": "best run",
                "scale": {"domain": [True, False], "range": [BEST_COLOUR, OTHER_COLOUR]}}
        return {
            "_title": f"{self.metric} by {param}",
            "data": {"values": values},
            "layer": [
                {"mark": {"type": "line", "color": "#9e9e9e"}, "encoding": {"x": x, "y": y}},
                {"mark": {"type": "point", "filled": True, "opacity": 1},
                 "encoding": {"x": x, "y": y, "color": best,
                              "size": {"condition": {"test": "datum.best", "value": 160}, "value": 70},
                              "tooltip": self._tooltip()}},
                {"transform": [{"filter": "datum.best"}],
                 "mark": {"type": "text", "dy": -14, "fontWeight": "bold", "color": BEST_COLOUR},
                 "encoding": {"x": x, "y": y, "text": {"value": "best"}}},
            ],
        }

    def _per_job(self, values: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.metric is not None
        x = {"field": "job", "type": "nominal", "title": "job", "sort": [v["job"] for v in values]}
        return {
            "_title": f"{self.metric} per job",
            "data": {"values": values},
            "mark": {"type": "point", "filled": True, "opacity": 1},
            "encoding": {"x": x, "y": {"field": "value", "type": "quantitative", "title": self.metric,
                                       "scale": {"zero": False}},
                         "color": {"field": "best", "type": "nominal", "title": "best run",
                                   "scale": {"domain": [True, False], "range": [BEST_COLOUR, OTHER_COLOUR]}},
                         "size": {"condition": {"test": "datum.best", "value": 160}, "value": 70},
                         "tooltip": self._tooltip()},
        }

    def _parallel(self, values: list[dict[str, Any]]) -> dict[str, Any]:
        assert self.metric is not None
        axes = [*self.varying, self.metric]
        raw = {p: [v[f"p:{p}"] for v in values] for p in self.varying}
        raw[self.metric] = [v["value"] for v in values]
        for i, axis in enumerate(axes):
            for v, position, text in zip(values, _positions(raw[axis]), (_display(x) for x in raw[axis]), strict=True):
                v[f"n:{i}"] = position
                v[f"t:{i}"] = text
        for v in values:
            for p in self.varying:
                v[f"p:{p}"] = _scalar(v[f"p:{p}"])
        keys = [f"n:{i}" for i in range(len(axes))]
        label = _choose("datum.label", {k: a for k, a in zip(keys, axes, strict=True)}, "datum.label")
        text = _choose("datum.axis", {k: f"datum['t:{i}']" for i, k in enumerate(keys)}, "''", quote=False)
        x = {"field": "axis", "type": "nominal", "sort": keys, "title": None,
             "axis": {"labelExpr": label, "labelAngle": 0, "domain": False, "ticks": False, "labelFontWeight": "bold"}}
        y = {"field": "position", "type": "quantitative", "axis": None, "scale": {"domain": [-0.08, 1.08]}}
        colour = {"field": "value", "type": "quantitative", "title": self.metric,
                  "scale": {"scheme": "viridis", "reverse": self.direction == "minimize"}}
        return {
            "_title": f"{self.metric} by {', '.join(self.varying)}",
            "data": {"values": values},
            "transform": [{"fold": keys, "as": ["axis", "position"]}, {"calculate": text, "as": "raw"}],
            "layer": [
                {"mark": {"type": "rule", "color": "#ccc"}, "encoding": {"x": x, "detail": {"aggregate": "count"}}},
                {"mark": {"type": "line"},
                 "encoding": {"x": x, "y": y, "detail": {"field": "job", "type": "nominal"}, "color": colour,
                              "strokeWidth": {"condition": {"test": "datum.best", "value": 4}, "value": 1.5},
                              "opacity": {"condition": {"test": "datum.best", "value": 1}, "value": 0.6},
                              "tooltip": self._tooltip()}},
                {"mark": {"type": "point", "filled": True, "opacity": 1},
                 "encoding": {"x": x, "y": y, "color": {"condition": {"test": "datum.best", "value": BEST_COLOUR},
                                                        "value": OTHER_COLOUR},
                              "size": {"condition": {"test": "datum.best", "value": 90}, "value": 40},
                              "tooltip": self._tooltip()}},
                {"mark": {"type": "text", "align": "left", "dx": 6, "fontSize": 10},
                 "encoding": {"x": x, "y": y, "text": {"field": "raw", "type": "nominal"}}},
            ],
        }


def compare(records: Iterable[RecordLike], *, sweep_id: str = "", metric: str | None = None,
            direction: Direction | None = None, build_seconds: Mapping[str, float] | None = None) -> Comparison:
    """Compare a sweep's jobs on ``metric`` (default: :func:`default_metric`), best first.

    Args:
        records: The sweep's jobs (any order).
        sweep_id: Shown in the summary and the plot (default: the records' own).
        metric: The metric to compare; it must be one that some job recorded.
        direction: ``maximize``/``minimize``; default :func:`infer_direction` of the metric's name.
        build_seconds: Each job's build time (job id → seconds), when known.

    Raises:
        OptionError: ``metric`` is not one that any job of the sweep recorded.
    """
    jobs = sorted(records, key=lambda r: r.created)
    sweep_id = sweep_id or next((r.sweep_id for r in jobs if r.sweep_id), "")
    metric_names = _names(r.metrics for r in jobs)
    if metric is not None and metric not in metric_names:
        where = f"sweep {sweep_id}" if sweep_id else "these jobs"
        if metric_names:
            raise OptionError(f"The {where} has no metric {metric!r}; its jobs recorded {listing(metric_names)}",
                              "Pass one of them to --metric.")
        raise OptionError(f"The {where} has no metric {metric!r}: its jobs recorded no metrics yet",
                          "Record one with log_metric('name', value) in the notebook, or wait for the jobs to end.")
    chosen = metric if metric is not None else default_metric(jobs)
    inferred = direction is None
    way: Direction = direction or (infer_direction(chosen) if chosen else "maximize")
    builds = build_seconds or {}

    def value(r: RecordLike) -> float | None:
        v = r.metrics.get(chosen) if chosen is not None and r.status == "succeeded" else None
        return float(v) if is_number(v) else None

    ranked = sorted((r for r in jobs if value(r) is not None),
                    key=lambda r: -(value(r) or 0.0) if way == "maximize" else (value(r) or 0.0))
    rank = {r.id: i + 1 for i, r in enumerate(ranked)}
    ordered = [*ranked, *(r for r in jobs if r.id not in rank)]
    rows = tuple(Row(job_id=r.id, name=r.name, status=r.status, parameters=dict(r.parameters),
                     metrics=dict(r.metrics), build_seconds=builds.get(r.id),
                     run_seconds=(r.finished - r.started) if r.started is not None and r.finished is not None else None,
                     value=value(r), rank=rank.get(r.id)) for r in ordered)
    params = _names(r.parameters for r in jobs)
    varying = tuple(p for p in params if len({_key(r.parameters.get(p, _MISSING)) for r in jobs}) > 1)
    fixed = {p: jobs[0].parameters[p] for p in params if p not in varying}
    return Comparison(sweep_id=sweep_id, metric=chosen, direction=way, direction_inferred=inferred, rows=rows,
                      parameters=params, varying=varying, metrics=metric_names, fixed=fixed)


# -- helpers ---------------------------------------------------------------------------------------
_MISSING = object()


def _names(dicts: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """Every key, in the order first seen."""
    seen: dict[str, None] = {}
    for d in dicts:
        seen.update(dict.fromkeys(str(k) for k in d))
    return tuple(seen)


def _key(value: Any) -> str:
    if value is _MISSING:
        return "\x00missing"
    return json.dumps(value, sort_keys=True, default=str)


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _display(value: Any) -> str:
    if value is None:
        return ""
    return _number(value) if is_number(value) else format_value(value)


def _cell(values: Mapping[str, Any], key: str) -> str:
    return _display(values[key]) if key in values else "-"


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, default=str)


def _scalar(value: Any) -> Any:
    """A value a Vega-Lite axis can place: numbers, strings and booleans as they are, the rest as text."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else format_value(value)


def _ordered(values: Sequence[Any]) -> list[Any]:
    """Distinct values, numbers first by size, then the rest by their text."""
    distinct = {_key(v): v for v in values}.values()
    return sorted(distinct, key=lambda v: (0, float(v), "") if is_number(v) else (1, 0.0, _display(v)))


def _log_scale(values: Sequence[Any]) -> bool:
    numbers = [float(v) for v in values]
    return min(numbers) > 0 and max(numbers) / min(numbers) >= LOG_SCALE_RATIO


def _positions(values: Sequence[Any]) -> list[float]:
    """Each value's place on a 0..1 axis: numbers by size (log for a wide positive range), others by rank."""
    if values and all(is_number(v) for v in values):
        numbers = [math.log10(float(v)) for v in values] if _log_scale(values) else [float(v) for v in values]
        low, high = min(numbers), max(numbers)
        return [0.5 if high == low else (n - low) / (high - low) for n in numbers]
    order = [_key(v) for v in _ordered(values)]
    step = 1 / (len(order) - 1) if len(order) > 1 else 0.0
    return [0.5 if len(order) == 1 else order.index(_key(v)) * step for v in values]


def _field(name: str) -> str:
    r"""A field reference for Vega-Lite: ``.``, ``[``, ``]`` and ``\`` would otherwise mean a nested field."""
    return re.sub(r"([\\.\[\]])", r"\\\1", name)


def _choose(subject: str, cases: Mapping[str, str], otherwise: str, quote: bool = True) -> str:
    """A Vega expression: ``subject === 'k1' ? v1 : subject === 'k2' ? v2 : otherwise`` (values quoted if ``quote``)."""
    text = otherwise
    for key, result in reversed(list(cases.items())):
        text = f"{subject} === {json.dumps(key)} ? {json.dumps(result) if quote else result} : {text}"
    return text
