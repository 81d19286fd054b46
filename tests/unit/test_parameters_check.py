"""Parameters checked against the parameters cell: unknown names with a did-you-mean, values coerced or refused."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobs.pipeline import checked_spec
from jupyter_containerize.options import parse
from jupyter_containerize.parameters_check import check_parameters, check_sweep, declared
from tests.support.notebooks import write_notebook

CELL = """\
# Parameters
n_estimators = 30
max_depth: int = 4
learning_rate = 0.1
use_gpu = False
run_name = "baseline"
layers = [64, 32]
shape = (28, 28)
options = {"seed": 0}
checkpoint = None
data_dir = os.path.join("data", "raw")
lr: float = None
a, b = 1, 2
for i in range(2):
    pass
"""


def _check(**given: Any) -> dict[str, Any]:
    return check_parameters(CELL, given, "train.ipynb")


def _refused(**given: Any) -> str:
    with pytest.raises(OptionError) as info:
        _check(**given)
    return str(info.value)


def test_every_name_the_cell_binds_is_known_and_literal_defaults_give_types() -> None:
    known = declared(CELL)
    assert {k: v.kind for k, v in known.items()} == {
        "n_estimators": "int", "max_depth": "int", "learning_rate": "float", "use_gpu": "bool", "run_name": "str",
        "layers": "list", "shape": "tuple", "options": "dict", "checkpoint": None, "data_dir": None,
        "lr": "float", "a": None, "b": None, "i": None}
    assert known["n_estimators"].default == "30"


def test_a_typo_is_refused_with_a_did_you_mean() -> None:
    said = _refused(n_estimator=20)
    assert said.startswith("train.ipynb has no parameter n_estimator: did you mean n_estimators?")
    assert "add `n_estimator = …` to that cell" in said and "\n" not in said
    assert "did you mean" not in _refused(zzz=1)


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("n_estimators", 20, 20), ("n_estimators", "20", 20), ("n_estimators", 20.0, 20), ("n_estimators", "1_000", 1000),
    ("learning_rate", 1, 1.0), ("learning_rate", "1e-3", 0.001), ("learning_rate", "0.5", 0.5),
    ("use_gpu", "true", True), ("use_gpu", "False", False), ("use_gpu", 1, True), ("use_gpu", True, True),
    ("run_name", "tuned", "tuned"), ("run_name", 5, "5"), ("run_name", 0.5, "0.5"),
    ("layers", "[128, 64]", [128, 64]), ("layers", "128,64", [128, 64]), ("layers", [1], [1]),
    ("layers", "a, b", ["a", "b"]), ("shape", "32,32", (32, 32)), ("shape", [3, 3], (3, 3)),
    ("options", "{'seed': 1}", {"seed": 1}),
    ("checkpoint", "ckpt.pt", "ckpt.pt"), ("data_dir", 3, 3), ("lr", "0.01", 0.01), ("a", "x", "x"),
    ("max_depth", None, None),
])
def test_values_are_coerced_to_the_cells_types(name: str, given: Any, expected: Any) -> None:
    got = _check(**{name: given})[name]
    assert got == expected and type(got) is type(expected)


def test_nan_and_inf_stay_floats() -> None:
    assert math.isnan(_check(learning_rate="nan")["learning_rate"])
    assert _check(learning_rate=float("inf"))["learning_rate"] == float("inf")


@pytest.mark.parametrize(("name", "given", "words"), [
    ("n_estimators", "abc", "n_estimators is an int in train.ipynb's parameters cell (default 30), and 'abc' is not one"),
    ("n_estimators", 2.5, "is an int"), ("n_estimators", True, "is an int"), ("n_estimators", "", "is an int"),
    ("learning_rate", "fast", "is a float"), ("learning_rate", False, "is a float"),
    ("use_gpu", "maybe", "is a bool"), ("use_gpu", 2, "is a bool"),
    ("run_name", [1], "is a str"), ("options", "seed=1", "is a dict"), ("layers", 3, "is a list"),
])
def test_values_of_another_type_are_refused_in_one_sentence(name: str, given: Any, words: str) -> None:
    said = _refused(**{name: given})
    assert words in said and "\n" not in said and "Pass " in said


def test_the_order_given_is_kept() -> None:
    assert list(_check(use_gpu=True, n_estimators=1, learning_rate=2)) == ["use_gpu", "n_estimators", "learning_rate"]


def test_a_sweep_is_checked_value_by_value() -> None:
    assert check_sweep(CELL, {"n_estimators": ["10", 20]}, "t.ipynb") == {"n_estimators": (10, 20)}
    with pytest.raises(OptionError, match="n_estimators is an int"):
        check_sweep(CELL, {"n_estimators": [10, "x"]}, "t.ipynb")
    with pytest.raises(OptionError, match="did you mean learning_rate"):
        check_sweep(CELL, {"learning_rat": [0.1]}, "t.ipynb")


def test_a_cell_that_does_not_parse_is_named() -> None:
    with pytest.raises(OptionError, match=r"^The parameters cell does not parse \(invalid syntax"):
        check_parameters("x = = 1", {"x": 1}, "t.ipynb")


def test_the_cli_magic_and_rest_spec_is_checked_in_one_place(tmp_path: Path) -> None:
    """``checked_spec`` (what the manager, prepare and export call) types the spec's values."""
    nb = write_notebook(tmp_path / "train.ipynb", "print(n_estimators)", parameters=CELL)
    parsed = parse(["run", str(nb), "-p", "n_estimators", "20", "-p", "use_gpu=yes", "--sweep", "learning_rate=1,2"])
    assert parsed.spec is not None
    spec = checked_spec(parsed.spec)
    assert spec.parameters == {"n_estimators": 20, "use_gpu": True} and spec.sweep == {"learning_rate": (1.0, 2.0)}
    typo = parse(["run", str(nb), "-p", "n_estimator=20"]).spec
    assert typo is not None
    with pytest.raises(OptionError, match="did you mean n_estimators"):
        checked_spec(typo)
