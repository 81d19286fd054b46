"""papermill's record in a job's output notebook: markers of an earlier run go, the keys are papermill's."""

from __future__ import annotations

import nbformat

from jupyter_containerize.papermill_record import (
    ERROR_MARKER_TAG,
    error_markers,
    find_output_notebook,
    notebook_metadata,
    output_notebook_name,
    remove_error_markers,
)


def test_markers_of_an_earlier_run_are_removed_and_new_ones_link_the_failing_cell() -> None:
    top, here = error_markers(7)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(top), nbformat.v4.new_code_cell("x = 1"), nbformat.from_dict(here),
                nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_markdown_cell("kept", metadata={"tags": ["x"]})]
    remove_error_markers(nb.cells)
    assert [c.source for c in nb.cells] == ["x = 1", "1 / 0", "kept"]
    assert "In [7]" in top["source"] and top["metadata"]["tags"] == [ERROR_MARKER_TAG]
    nbformat.validate(nbformat.from_dict({**nbformat.v4.new_notebook(), "cells": [nbformat.from_dict(top)]}))
    assert top["id"] != here["id"]  # nbformat 4.5 cells need an id; older notebooks get none
    assert all("id" not in c for c in error_markers(7, ids=False))


def test_notebook_metadata_has_papermills_keys() -> None:
    record = notebook_metadata({"lr": 0.1}, input_path="/work/nb.ipynb", output_path="/output/nb.ipynb",
                               start="2026-01-01T00:00:00+00:00", default_parameters={"lr": 0.01})
    assert set(record) == {"default_parameters", "parameters", "environment_variables", "input_path", "output_path",
                           "start_time", "end_time", "duration", "exception"}
    assert record["parameters"] == {"lr": 0.1} and record["default_parameters"] == {"lr": 0.01}


def test_the_executed_notebook_is_named_stem_dot_job_id() -> None:
    assert output_notebook_name("train.ipynb", "3f2a9c01b2d4") == "train.3f2a9c01b2d4.ipynb"
    assert output_notebook_name("v1.2 run.ipynb", "job_1") == "v1.2 run.job_1.ipynb"
    # no job id (the runner by hand, compose.yaml), or one that cannot be part of a file name: the source's name
    for job_id in ("", "../x", "a/b", "x" * 65):
        assert output_notebook_name("train.ipynb", job_id) == "train.ipynb"


def test_the_output_notebook_is_found_by_the_job_id_else_nearest_the_top() -> None:
    outputs = ["/o/a_report.ipynb", "/o/model.pkl", "/o/sub/deep.ipynb", "/o/train.3f2a9c01b2d4.ipynb"]
    assert find_output_notebook(outputs, "3f2a9c01b2d4") == "/o/train.3f2a9c01b2d4.ipynb"
    assert find_output_notebook(outputs) == "/o/a_report.ipynb"  # without the id: the first at the top
    assert find_output_notebook(["/o/sub/deep.ipynb", "/o/train.ipynb"], "other") == "/o/train.ipynb"
    assert find_output_notebook(["/o/model.pkl"], "3f2a9c01b2d4") is None
