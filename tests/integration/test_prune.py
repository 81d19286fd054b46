"""``prune`` and ``du`` on the real engine, with real images, jobs and output folders.

Scoped to this test's own job store (JC_STORE) and notebooks whose names no other test uses: a prune
considers only the images its store's jobs use and this tool's images of its notebooks' repositories,
so nothing another test run or session uses is touched. The engine's build cache, which every build
on the engine shares, is never pruned here (``--build-cache`` is left out).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from jupyter_containerize.jobs.store import JobStore
from tests.support.cli import assert_one_clear_error, cli
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]


def _exists(engine: docker.DockerClient, ref: str) -> bool:
    try:
        engine.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_prune_keeps_the_last_run_and_every_image_a_kept_or_running_job_needs(
        tmp_path: Path, job_store: Path, engine: docker.DockerClient) -> None:
    token = uuid.uuid4().hex[:8]
    a = write_notebook(tmp_path / "nb" / f"prune-a-{token}.ipynb", f"print('a {token} one')")
    b = write_notebook(tmp_path / "nb" / f"prune-b-{token}.ipynb", "import time\nprint('started', flush=True)",
                       "time.sleep(seconds)", parameters="seconds = 0")
    b_first = b.read_bytes()

    def run(notebook: Path, *extra: str) -> str:
        done = cli("run", str(notebook), *extra, cwd=tmp_path, store=job_store)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.split()[1]  # "job <id>"

    a1 = run(a)
    write_notebook(a, f"print('a {token} two')")  # a notebook-only edit: a new image
    a2 = run(a)
    b1 = run(b)
    write_notebook(b, "print('edited')", parameters="seconds = 0")
    b2 = run(b)
    b.write_bytes(b_first)  # b1's notebook again: b1's image again, for a job that runs on
    b3 = run(b, "-p", "seconds", "300", "--detach")
    store = JobStore(job_store)
    rec = {j: store.get(j) for j in (a1, a2, b1, b2, b3)}
    assert rec[b3].image_tag == rec[b1].image_tag != rec[b2].image_tag and rec[a1].image_tag != rec[a2].image_tag
    folders = {j: Path(r.output_dir) for j, r in rec.items()}
    assert all(f.is_dir() for f in folders.values())
    images = {j: r.image_tag for j, r in rec.items()}
    try:
        # --dry-run: exactly the older runs (a1; b1, whose image the running b3 needs) and a1's image; nothing goes
        dry = cli("prune", "--keep-last", "1", "--dry-run", "--json", cwd=tmp_path, store=job_store)
        assert dry.returncode == 0, dry.stdout + dry.stderr
        planned = json.loads(dry.stdout)
        assert {j["id"]: j["folder"] for j in planned["jobs"]} == {a1: str(folders[a1]), b1: str(folders[b1])}
        assert [(i["refs"], i["deleted"]) for i in planned["images"]] == [([images[a1]], True)]
        assert planned["bytes"]["images"] > 0 and planned["bytes"]["folders"] > 0 and planned["spared"] == []
        text = cli("prune", "--keep-last", "1", "--dry-run", cwd=tmp_path, store=job_store).stdout
        assert f"  job {a1}  succeeded" in text and f"    folder {folders[a1]}  " in text
        assert f"  {images[a1]}  " in text and images[b1] not in text and "would free " in text
        assert all(f.is_dir() for f in folders.values())
        assert {t: _exists(engine, t) for t in images.values()} == dict.fromkeys(images.values(), True)
        assert {r.id for r in store.list()} == set(rec)

        pruned = cli("prune", "--keep-last", "1", "--yes", cwd=tmp_path, store=job_store)
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert "removed 2 jobs (3 kept):" in pruned.stdout and "removed 1 image:" in pruned.stdout
        assert "freed " in pruned.stdout and "could not" not in pruned.stdout
        assert {r.id for r in store.list()} == {a2, b2, b3}
        assert not folders[a1].exists() and not folders[b1].exists()
        assert folders[a2].is_dir() and folders[b2].is_dir() and folders[b3].is_dir()
        assert not _exists(engine, images[a1])
        assert all(_exists(engine, images[j]) for j in (a2, b2, b3))  # b3 runs on b1's image
        (container,) = labelled_containers(engine, b3)
        container.reload()
        assert container.status == "running" and store.get(b3).status == "running"

        usage = json.loads(cli("du", "--json", cwd=tmp_path, store=job_store).stdout)
        mine = {n["notebook"]: n for n in usage["notebooks"] if n["in_store"]}
        assert (mine[str(a)]["jobs"], mine[str(a)]["images"]) == (1, 1) and mine[str(a)]["outputs"] > 0
        assert (mine[str(b)]["jobs"], mine[str(b)]["images"]) == (2, 2)
        sizes = {e["ref"]: e for e in usage["environments"]}
        assert sizes[images[a2]]["size"] > sizes[images[a2]]["unique"] >= 0 and sizes[images[b3]]["jobs"] == 1
    finally:
        stopped = cli("stop", b3, cwd=tmp_path, store=job_store)
    assert stopped.returncode == 0 and store.get(b3).status == "cancelled", stopped.stdout + stopped.stderr

    # An image no job uses (from `build`) goes by age, in this store's notebooks' repositories only.
    write_notebook(a, f"print('a {token} three')")
    built = cli("build", str(a), cwd=tmp_path, store=job_store)
    assert built.returncode == 0, built.stdout + built.stderr
    unused = built.stdout.strip().splitlines()[-1]
    time.sleep(1.5)
    again = cli("prune", "--keep-last", "1", "--older-than", "1s", "--yes", cwd=tmp_path, store=job_store)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {r.id for r in store.list()} == {a2, b3}  # b3 is b's newest finished run now
    assert not _exists(engine, unused) and not _exists(engine, images[b2]) and not folders[b2].exists()
    assert _exists(engine, images[a2]) and _exists(engine, images[b3])
    assert f"{unused}  " in again.stdout and "no job uses it; built " in again.stdout


def test_prune_asks_first_and_refuses_without_a_terminal(tmp_path: Path, job_store: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "jupyter_containerize.cli", "prune", "--keep-last", "1"],
                          cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                          check=False)
    from tests.support.cli import CliResult

    assert_one_clear_error(CliResult(proc.returncode, proc.stdout, proc.stderr), "--yes", "--dry-run")


def test_the_automatic_retention_prunes_when_a_job_ends(tmp_path: Path, job_store: Path,
                                                        engine: docker.DockerClient) -> None:
    token = uuid.uuid4().hex[:8]
    nb = write_notebook(tmp_path / "nb" / f"prune-auto-{token}.ipynb", f"print('{token} one')")
    first = cli("run", str(nb), cwd=tmp_path, store=job_store)  # no retention set: nothing is pruned
    assert first.returncode == 0, first.stdout + first.stderr
    write_notebook(nb, f"print('{token} two')")
    second = cli("run", str(nb), cwd=tmp_path, store=job_store)
    assert second.returncode == 0, second.stdout + second.stderr
    old = JobStore(job_store).get(first.stdout.split()[1])
    assert Path(old.output_dir).is_dir() and _exists(engine, old.image_tag)

    write_notebook(nb, f"print('{token} three')")
    third = cli("run", str(nb), cwd=tmp_path, store=job_store, env={"JC_RETENTION_KEEP_LAST": "2"})
    assert third.returncode == 0, third.stdout + third.stderr
    kept = {r.id for r in JobStore(job_store).list()}
    assert kept == {second.stdout.split()[1], third.stdout.split()[1]}  # the job manager pruned the oldest run
    assert not Path(old.output_dir).exists() and not _exists(engine, old.image_tag)
