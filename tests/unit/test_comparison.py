"""A sweep's comparison as plain values: metric and direction rules, ranking, exports and the Vega-Lite spec."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from jupyter_containerize.comparison import (
    VEGA_LITE_SCHEMA,
    Comparison,
    compare,
    default_metric,
    infer_direction,
)
from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobs.store import JobRecord


def job(job_id: str, created: float, status: str = "succeeded", name: str = "", **values: Any) -> JobRecord:
    """A finished job of sweep-1 that ran 10 s; ``values``: parameters as p_NAME, metrics as m_NAME."""
    return JobRecord(id=job_id, notebook="/nb/train.ipynb", created=created, updated=created, status=status,
                     name=name, sweep_id="sweep-1", started=created + 5, finished=created + 15,
                     parameters={k[2:]: v for k, v in values.items() if k.startswith("p_")},
                     metrics={k[2:]: v for k, v in values.items() if k.startswith("m_")})


def sweep() -> list[JobRecord]:
    return [
        job("a", 1, name="exp lr=0.1", p_lr=0.1, p_seed=0, m_accuracy=0.80, m_loss=0.5),
        job("b", 2, name="exp lr=0.01", p_lr=0.01, p_seed=0, m_accuracy=0.90, m_loss=0.3),
        job("c", 3, name="exp lr=0.001", p_lr=0.001, p_seed=0, m_accuracy=0.85, m_loss=0.2),
        job("d", 4, status="failed", name="exp lr=1.0", p_lr=1.0, p_seed=0, m_accuracy=0.99),
    ]


@pytest.mark.parametrize(("name", "direction"), [
    ("loss", "minimize"), ("val_loss", "minimize"), ("test-error", "minimize"), ("errorRate", "minimize"),
    ("valLoss", "minimize"), ("rmse", "minimize"), ("mae.val", "minimize"), ("top1_err", "minimize"),
    ("accuracy", "maximize"), ("f1", "maximize"), ("glossary", "maximize"), ("terror_score", "maximize"),
    ("auc", "maximize"), ("lossless_ratio", "maximize"),
])
def test_direction_is_inferred_from_the_words_of_the_name(name: str, direction: str) -> None:
    assert infer_direction(name) == direction


def test_default_metric_is_the_first_number_every_succeeded_job_shares() -> None:
    records = [job("a", 1, m_note="x", m_loss=0.5, m_accuracy=0.8), job("b", 2, m_note="y", m_accuracy=0.9),
               job("c", 3, status="failed")]
    assert default_metric(records) == "accuracy"  # note is no number, loss is missing in b, c failed
    assert default_metric([job("a", 1, status="failed", m_x=1.0)]) is None
    assert default_metric([job("a", 1, m_flag=True)]) is None  # a bool is not a metric


def test_rows_are_ranked_best_first_and_the_rest_follow_in_creation_order() -> None:
    c = compare(list(reversed(sweep())))
    assert c.metric == "accuracy" and c.direction == "maximize" and c.direction_inferred
    assert [r.job_id for r in c.rows] == ["b", "c", "a", "d"]
    assert [r.rank for r in c.rows] == [1, 2, 3, None]  # the failed job's 0.99 is shown, never ranked
    assert c.best is not None and c.best.job_id == "b" and c.best.name == "exp lr=0.01"
    assert [r.best for r in c.rows] == [True, False, False, False]
    assert c.rows[3].value is None and c.rows[3].metrics == {"accuracy": 0.99}
    assert c.varying == ("lr",) and c.fixed == {"seed": 0} and c.metrics == ("accuracy", "loss")
    assert c.sweep_id == "sweep-1"


def test_loss_is_minimized_and_a_given_direction_wins() -> None:
    c = compare(sweep(), metric="loss")
    assert c.direction == "minimize" and c.direction_inferred
    assert [r.job_id for r in c.rows][:3] == ["c", "b", "a"]
    c = compare(sweep(), metric="loss", direction="maximize")
    assert c.direction == "maximize" and not c.direction_inferred and c.best is not None and c.best.job_id == "a"
    assert "(--maximize)" in c.summary()
    c = compare(sweep(), direction="minimize")
    assert c.metric == "accuracy" and c.best is not None and c.best.job_id == "a"


def test_ties_keep_the_creation_order() -> None:
    c = compare([job("x", 2, m_acc=0.5), job("y", 1, m_acc=0.5), job("z", 3, m_acc=0.7)])
    assert [r.job_id for r in c.rows] == ["z", "y", "x"] and c.best is not None and c.best.job_id == "z"


def test_an_unknown_metric_is_one_sentence_naming_the_known_ones() -> None:
    with pytest.raises(OptionError) as info:
        compare(sweep(), metric="acc")
    assert str(info.value) == ("The sweep sweep-1 has no metric 'acc'; its jobs recorded accuracy and loss. "
                               "Pass one of them to --metric.")
    with pytest.raises(OptionError, match="recorded no metrics yet"):
        compare([job("a", 1, status="running")], metric="acc")


def test_duration_is_build_plus_run() -> None:
    c = compare(sweep(), build_seconds={"a": 3.5, "b": 3.5})
    rows = {r.job_id: r for r in c.rows}
    assert rows["a"].build_seconds == 3.5 and rows["a"].run_seconds == 10 and rows["a"].duration == 13.5
    assert rows["c"].build_seconds is None and rows["c"].duration == 10
    queued = compare([JobRecord(id="q", notebook="n", created=1, updated=1, status="queued", sweep_id="s")])
    assert queued.rows[0].duration is None


def test_no_succeeded_job_gives_no_metric_and_no_plot() -> None:
    c = compare([job("a", 1, status="failed", p_lr=1), job("b", 2, status="running", p_lr=2)])
    assert c.metric is None and c.best is None and c.vega_lite() is None
    assert "no metric to compare yet" in c.summary()
    assert [r.job_id for r in c.rows] == ["a", "b"]


def test_text_table_marks_the_best_and_lists_what_is_fixed() -> None:
    text = compare(sweep(), build_seconds={"b": 2.0}).text()
    lines = text.splitlines()
    assert lines[0] == ("sweep sweep-1: 4 jobs (3 succeeded, 1 failed); metric accuracy, higher is better; "
                        "best: job b (exp lr=0.01) accuracy=0.9")
    head = lines[2].split()
    assert head == ["RANK", "JOB", "NAME", "STATUS", "lr", "accuracy", "loss", "DURATION"]
    assert lines[3].startswith("*") and " b " in lines[3] and "12.0s" in lines[3]
    assert lines[6].split()[:2] == ["-", "d"]  # unranked: no rank
    assert lines[-1] == "same in every job: seed=0"


def test_csv_has_a_row_per_job_with_mlflow_style_columns() -> None:
    rows = list(csv.DictReader(io.StringIO(compare(sweep(), metric="loss").csv())))
    assert [r["job_id"] for r in rows] == ["c", "b", "a", "d"]
    assert list(rows[0]) == ["job_id", "name", "status", "rank", "best", "params.lr", "params.seed", "metrics.loss",
                             "metrics.accuracy", "build_seconds", "run_seconds", "duration_seconds"]
    assert rows[0]["best"] == "true" and rows[0]["params.lr"] == "0.001" and rows[0]["metrics.loss"] == "0.2"
    assert rows[3]["rank"] == "" and rows[3]["metrics.loss"] == "" and float(rows[3]["run_seconds"]) == 10
    assert rows[1]["name"] == "exp lr=0.01"


def test_json_is_plain_data_with_the_plot() -> None:
    data = json.loads(json.dumps(compare(sweep()).to_dict()))
    assert data["metric"] == "accuracy" and data["direction"] == "maximize" and data["best"] == "b"
    assert [r["job_id"] for r in data["rows"]] == ["b", "c", "a", "d"]
    assert data["rows"][0]["best"] is True and data["rows"][0]["parameters"] == {"lr": 0.01, "seed": 0}
    assert data["vega_lite"]["$schema"] == VEGA_LITE_SCHEMA
    assert "vega_lite" not in compare(sweep()).to_dict(vega_lite=False)


def _layers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["mark"]["type"]: layer for layer in spec["layer"]}


def test_one_varying_parameter_plots_the_metric_against_it() -> None:
    spec = compare(sweep()).vega_lite()
    assert spec is not None and spec["$schema"] == VEGA_LITE_SCHEMA
    values = spec["data"]["values"]
    assert [(v["job"], v["p:lr"], v["value"], v["best"]) for v in values] == [
        ("b", 0.01, 0.90, True), ("c", 0.001, 0.85, False), ("a", 0.1, 0.80, False)]  # ranked runs only
    layers = _layers(spec)
    assert set(layers) == {"line", "point", "text"}
    x = layers["point"]["encoding"]["x"]
    assert x["field"] == "p:lr" and x["title"] == "lr" and x["type"] == "quantitative"
    assert x["scale"] == {"type": "log", "padding": 12}  # 0.001 .. 0.1 spans 100x
    assert layers["point"]["encoding"]["y"]["field"] == "value"
    assert layers["point"]["encoding"]["color"]["scale"]["domain"] == [True, False]
    assert layers["text"]["transform"] == [{"filter": "datum.best"}]
    assert spec["title"]["text"] == "accuracy by lr"


def test_a_string_parameter_is_an_ordinal_axis_in_order() -> None:
    records = [job("a", 1, p_opt="sgd", m_acc=0.5), job("b", 2, p_opt="adam", m_acc=0.7)]
    spec = compare(records).vega_lite()
    assert spec is not None
    x = _layers(spec)["point"]["encoding"]["x"]
    assert x["type"] == "ordinal" and x["sort"] == ["adam", "sgd"]


def test_several_varying_parameters_draw_parallel_coordinates_with_a_fold() -> None:
    records = [job("a", 1, p_lr=0.1, p_opt="sgd", m_loss=0.5), job("b", 2, p_lr=0.2, p_opt="adam", m_loss=0.3),
               job("c", 3, p_lr=0.3, p_opt="sgd", m_loss=0.4)]
    spec = compare(records).vega_lite()
    assert spec is not None
    assert spec["transform"][0] == {"fold": ["n:0", "n:1", "n:2"], "as": ["axis", "position"]}
    by_job = {v["job"]: v for v in spec["data"]["values"]}
    assert by_job["a"]["n:0"] == 0 and by_job["c"]["n:0"] == 1 and by_job["b"]["n:0"] == pytest.approx(0.5)
    assert by_job["b"]["n:1"] == 0 and by_job["a"]["n:1"] == 1  # adam < sgd
    assert by_job["b"]["n:2"] == 0 and by_job["a"]["n:2"] == 1  # the metric, raw scale
    assert by_job["b"]["best"] and by_job["b"]["t:1"] == "adam" and by_job["a"]["t:0"] == "0.1"
    x = spec["layer"][1]["encoding"]["x"]
    assert x["sort"] == ["n:0", "n:1", "n:2"]
    assert x["axis"]["labelExpr"] == ('datum.label === "n:0" ? "lr" : datum.label === "n:1" ? "opt" : '
                                      'datum.label === "n:2" ? "loss" : datum.label')
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["rule", "line", "point", "text"]


def test_no_varying_parameter_plots_the_metric_per_job() -> None:
    spec = compare([job("a", 1, p_lr=0.1, m_acc=0.5), job("b", 2, p_lr=0.1, m_acc=0.6)]).vega_lite()
    assert spec is not None and spec["mark"]["type"] == "point" and spec["encoding"]["x"]["sort"] == ["b", "a"]


def test_odd_metric_names_are_titles_never_field_paths() -> None:
    odd = [job("a", 1, p_lr=1), job("b", 2, p_lr=2)]
    for record, value in zip(odd, (0.5, 0.6), strict=True):
        record.metrics = {"val.acc[1]": value}
    spec = compare(odd).vega_lite()
    assert spec is not None
    y = _layers(spec)["point"]["encoding"]["y"]
    assert y["field"] == "value" and y["title"] == "val.acc[1]"


def test_html_marks_the_best_row_and_escapes() -> None:
    c: Comparison = compare([job("a", 1, name="<b>x</b>", p_lr=1, m_acc=0.5), job("b", 2, p_lr=2, m_acc=0.6)])
    text = c.html()
    assert text.count("jc-best") == 1 and "★" in text and "&lt;b&gt;x&lt;/b&gt;" in text
    assert text.index("<code>b</code>") < text.index("<code>a</code>")


def test_export_is_what_json_or_csv_asks_for_and_none_otherwise() -> None:
    comparison = compare(sweep())
    assert json.loads(comparison.export(as_json=True) or "") == json.loads(json.dumps(comparison.to_dict(), default=str))
    assert comparison.export(as_csv=True) == comparison.csv()
    assert comparison.export() is None  # each front end shows it its own way (text, widget)
