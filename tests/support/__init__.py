"""Helpers the test suites share (fixtures live in ``tests/conftest.py``; helpers live here)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
