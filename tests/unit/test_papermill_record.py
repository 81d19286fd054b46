"""papermill's record in a job's output notebook: markers of an earlier run go, the keys are papermill's."""

from __future__ import annotations

import nbformat

from jupyter_containerize.papermill_record import (
    ERROR_MARKER_TAG,
    error_markers,
    notebook_metadata,
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
