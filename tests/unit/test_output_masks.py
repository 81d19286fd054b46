"""The masks verify and the corpus apply before comparing outputs: what legitimately differs between runs."""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_containerize.output_masks import is_install_cell, mask_outputs, mask_text

HOST = {"/home/ana/proj/.venv": "<venv>", "/home/ana/proj": "<cwd>"}
IMAGE = {"/opt/venv": "<venv>", "/work": "<cwd>"}


@pytest.mark.parametrize(("host", "image"), [
    # install locations: the kernel's venv (or user site, or a system dist-packages) vs the image's
    ("/home/ana/proj/.venv/lib/python3.11/site-packages/sklearn/base.py:12: FutureWarning: x",
     "/opt/venv/lib/python3.11/site-packages/sklearn/base.py:12: FutureWarning: x"),
    ("~/.local/lib/python3.11/site-packages/pkg/mod.py", "/opt/venv/lib/python3.11/site-packages/pkg/mod.py"),
    ("/usr/lib/python3/dist-packages/numpy/core.py", "/opt/venv/lib/python3.11/site-packages/numpy/core.py"),
    # the standard library's prefix: pyenv on the host, /usr/local in a python image
    ("/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py:353: UserWarning",
     "/usr/local/lib/python3.11/json/decoder.py:353: UserWarning"),
    # the venv's own prefix and the working folder, named by the caller
    ("/home/ana/proj/.venv/bin/python", "/opt/venv/bin/python"),
    ("wrote /home/ana/proj/out/model.pkl", "wrote /work/out/model.pkl"),
    # ipykernel's per-process cell files and a traceback's execution count
    ("/tmp/ipykernel_4242/3007615932.py:4: UserWarning: hi", "/tmp/ipykernel_11/3007615932.py:4: UserWarning: hi"),
    ("Cell In[17], line 2", "Cell In[3], line 2"),
    # clocks
    ("run at 2024-05-01 12:30:01.123456", "run at 2026-11-30T08:52:00+00:00"),
    ("today 2024-05-01", "today 2026-11-30"),
    ("Mon Jan  1 12:00:00 2024", "Sun Nov 30 08:52:00 2026"),
    ("datetime.datetime(2024, 5, 1, 12, 30, 1, 123)",
     "datetime.datetime(2026, 11, 30, 8, 52, tzinfo=datetime.timezone.utc)"),
    ("datetime.date(2024, 5, 1)", "datetime.date(2026, 11, 30)"),
    ("at 12:30:01", "at 08:52:00"),
    ("t=1712345678.1234", "t=1790000000.5"),
    # elapsed times and rates
    ("Wall time: 1.2 ms", "Wall time: 35 µs"),
    ("CPU times: user 1.2 ms, sys: 0 ns, total: 1.2 ms", "CPU times: user 3.4 s, sys: 12 ms, total: 3.41 s"),
    ("took 0.53s", "took 12.0s"),
    ("done in 3 seconds", "done in 41 seconds"),
    ("1.23 µs ± 4.5 ns per loop (mean ± std. dev. of 7 runs, 1,000,000 loops each)",
     "2.5 µs ± 80 ns per loop (mean ± std. dev. of 7 runs, 100,000 loops each)"),
    ("10/10 [00:01<00:00,  9.87it/s]", "10/10 [00:03<00:00,  3.10it/s]"),
    # memory addresses
    ("<Foo object at 0x7f12ab34cd56>", "<Foo object at 0x7fffee001122>"),
])
def test_what_differs_legitimately_is_masked(host: str, image: str) -> None:
    assert host != image
    assert mask_text(host, HOST) == mask_text(image, IMAGE)


@pytest.mark.parametrize(("a", "b"), [
    ("loss 0.25", "loss 0.26"),  # numbers are data, not clocks
    ("has 12 heads", "has 13 heads"),
    ("/opt/venvs/x.py", "/opt/venv/x.py"),  # a prefix matches whole path segments only
    ("/workspace/a.csv", "/work/a.csv"),
    ("/usr/lib/python3.11/json/decoder.py", "/usr/lib/python3.11/json/encoder.py"),
    ("id 0x1f", "id 0x2f"),  # short hex is data
])
def test_real_differences_stay(a: str, b: str) -> None:
    assert mask_text(a, IMAGE) != mask_text(b, IMAGE)


def test_placeholders_are_named() -> None:
    text = mask_text("/home/ana/proj/.venv/lib/python3.11/site-packages/x.py /home/ana/proj/.venv/bin/python "
                     "/home/ana/proj/data.csv /tmp/ipykernel_9/1.py Wall time: 2 ms 0x7f0011223344", HOST)
    assert text == "<site-packages>/x.py <venv>/bin/python <cwd>/data.csv <ipykernel>/1.py Wall time: <elapsed> 0x…"


def test_streams_compare_per_name_whatever_their_interleaving() -> None:
    one: list[dict[str, Any]] = [{"output_type": "stream", "name": "stdout", "text": "a\n"},
           {"output_type": "stream", "name": "stderr", "text": "warn\n"},
           {"output_type": "stream", "name": "stdout", "text": ["b\n", "c\n"]},
           {"output_type": "execute_result", "execution_count": 3, "metadata": {"x": 1}, "data": {"text/plain": "42"}}]
    other: list[dict[str, Any]] = [{"output_type": "stream", "name": "stderr", "text": "warn\n"},
             {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
             {"output_type": "execute_result", "execution_count": 9, "metadata": {},
              "data": {"text/plain": ["4", "2"]}},
             {"output_type": "stream", "name": "stdout", "text": "c\n"}]
    assert mask_outputs(one) == mask_outputs(other) == [
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "stream", "name": "stdout", "text": "a\nb\nc\n"},
        {"output_type": "execute_result", "data": {"text/plain": "42"}}]
    assert mask_outputs(one) != mask_outputs([*one, {"output_type": "stream", "name": "stdout", "text": "d"}])


def test_rich_outputs_and_errors_are_masked_but_images_kept() -> None:
    png = "iVBORw0KGgo0x7f12ab34cd56"  # base64 that happens to look like an address: left alone
    out = mask_outputs([
        {"output_type": "display_data", "metadata": {},
         "data": {"image/png": png, "text/plain": "<Figure at 0x7f12ab34cd56>", "application/json": {"a": 1},
                  "application/vnd.x+json": [1, 2]}},
        {"output_type": "error", "ename": "ValueError", "evalue": "bad /work/x.csv",
         "traceback": ["Cell In[4], line 1", "/opt/venv/lib/python3.11/site-packages/pandas/io.py"]},
    ], IMAGE)
    assert out == [
        {"output_type": "display_data", "data": {"image/png": png, "text/plain": "<Figure at 0x…>",
                                                 "application/json": {"a": 1}, "application/vnd.x+json": [1, 2]}},
        {"output_type": "error", "ename": "ValueError", "evalue": "bad <cwd>/x.csv",
         "traceback": ["Cell In[<n>], line 1", "<site-packages>/pandas/io.py"]},
    ]


def test_install_cells() -> None:
    assert is_install_cell("%pip install numpy\n# a comment\n!pip install -q pandas")
    assert not is_install_cell("%pip install numpy\nimport numpy")
    assert not is_install_cell("")
