"""Disk hygiene's decisions (jobs/retention.py): which runs stay, which images go with them, what that frees.

Plain values in, plain values out: job records as the store holds them and engine facts shaped as the
engine reports them (sizes computed here the way the engine computes Size and SharedSize).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from jupyter_containerize.backends.config import Config
from jupyter_containerize.backends.disk import (
    LOCK_LABEL,
    CacheRecord,
    ContainerFacts,
    EngineFacts,
    ImageFacts,
    chain_ids,
)
from jupyter_containerize.errors import OptionError
from jupyter_containerize.jobs.retention import (
    Retention,
    age_text,
    freed_bytes,
    human_bytes,
    plan,
    runs_to_keep,
    usage,
)
from jupyter_containerize.jobs.store import JobRecord
from jupyter_containerize.validators import age_seconds, keep_count

DAY = 86400.0
NOW = 1_000 * DAY
LABELS = {LOCK_LABEL: "ab" * 32, "org.jupyter-containerize.notebook": "a.ipynb"}


def job(job_id: str, notebook: str = "/nb/a.ipynb", age_days: float = 1.0, status: str = "succeeded",
        image: str = "", sweep: str = "", output_dir: str | None = None, lock_hash: str = "") -> JobRecord:
    created = NOW - age_days * DAY
    folder = output_dir if output_dir is not None else f"{Path(notebook).parent}/{Path(notebook).stem}.jc-jobs/{job_id}"
    return JobRecord(id=job_id, notebook=notebook, created=created, updated=created, status=status,
                     finished=created + 60 if status in ("succeeded", "failed", "cancelled") else None,
                     image_tag=image, image_id="", sweep_id=sweep, output_dir=folder, lock_hash=lock_hash)


def engine_images(stacks: dict[str, tuple[Sequence[str], tuple[str, ...], float]],
                  layer_size: dict[str, int]) -> list[ImageFacts]:
    """Images named by id: (their layers' diff ids, their tags, their age in days), sized as the engine sizes them."""
    chains = {name: chain_ids(diffs) for name, (diffs, _, _) in stacks.items()}
    size_of = {chain[i]: layer_size[diffs[i]] for name, (diffs, _, _) in stacks.items()
               for i, chain in [(i, chains[name]) for i in range(len(diffs))]}
    refs: dict[str, int] = {}
    for chain in chains.values():
        for node in chain:
            refs[node] = refs.get(node, 0) + 1
    return [ImageFacts(id=name, tags=tags, created=NOW - age * DAY, labels=dict(LABELS) if tags and tags[0].startswith(
        "jupyter-containerize/") and "-stage" not in tags[0] else {}, size=sum(size_of[n] for n in chains[name]),
                       shared_size=sum(size_of[n] for n in chains[name] if refs[n] > 1), layers=chains[name])
            for name, (_, tags, age) in stacks.items()]


def own(record: JobRecord) -> bool:
    return record.output_dir.endswith(f".jc-jobs/{record.id}")


REPOS = {"/nb/a.ipynb": "jupyter-containerize/a", "/nb/b.ipynb": "jupyter-containerize/b"}


def test_age_and_count_parse_through_the_validators() -> None:
    assert age_seconds("30d") == 30 * DAY and age_seconds("12h") == 12 * 3600 and age_seconds("2w") == 14 * DAY
    assert age_seconds("90m") == 5400 and age_seconds("45s") == 45 and age_seconds("1.5d") == 1.5 * DAY
    assert age_seconds("1-12") == 36 * 3600 and age_seconds("36:00:00") == 36 * 3600  # the wall-time forms
    for bad in ("soon", "30", "-1d", "30x", "", "1e9d", "99999999d"):
        with pytest.raises(OptionError, match="--older-than"):
            age_seconds(bad)
    assert keep_count(1) == 1
    for bad_count in (0, -1):
        with pytest.raises(OptionError, match="--keep-last"):
            keep_count(bad_count)
    assert (age_text(30 * DAY), age_text(7 * DAY), age_text(5400), age_text(36 * 3600)) == ("30d", "1w", "90m", "36h")
    assert [human_bytes(n) for n in (0, 999, 24_600, 448_100_113, 32_660_000_000, -1)] == [
        "0 B", "999 B", "24.6 kB", "448 MB", "32.7 GB", "?"]


def test_keep_last_keeps_each_notebooks_newest_finished_runs_and_every_unfinished_job() -> None:
    jobs = [job("a1", age_days=5), job("a2", age_days=4), job("a3", age_days=3),
            job("a4", age_days=0.1, status="running"),  # unfinished: stays, and is not one of the N
            job("b1", "/nb/b.ipynb", age_days=9), job("b2", "/nb/b.ipynb", age_days=8, status="failed")]
    kept, removed = runs_to_keep(jobs, Retention(keep_last=1), NOW)
    assert {j.id for j in kept} == {"a3", "a4", "b2"}
    assert {j.id for j in removed} == {"a1", "a2", "b1"}
    kept, removed = runs_to_keep(jobs, Retention(keep_last=2), NOW)
    assert {j.id for j in removed} == {"a1"}


def test_a_sweep_is_one_run_and_goes_or_stays_whole() -> None:
    jobs = [job("s1", age_days=2, sweep="sweep-1"), job("s2", age_days=2, sweep="sweep-1"),
            job("s3", age_days=2, sweep="sweep-1", status="failed"), job("x", age_days=3)]
    kept, removed = runs_to_keep(jobs, Retention(keep_last=1), NOW)
    assert {j.id for j in kept} == {"s1", "s2", "s3"} and [j.id for j in removed] == ["x"]
    jobs.append(job("s4", age_days=0, sweep="sweep-1", status="queued"))  # one unfinished job keeps its sweep
    kept, removed = runs_to_keep(jobs, Retention(keep_last=1), NOW)
    assert {j.id for j in kept} == {"s1", "s2", "s3", "s4", "x"} and removed == []


def test_older_than_and_either_rule_keeps_a_run() -> None:
    jobs = [job("old", age_days=40), job("older", age_days=50), job("new", age_days=2)]
    assert {j.id for j in runs_to_keep(jobs, Retention(older_than=30 * DAY), NOW)[1]} == {"old", "older"}
    both = Retention(keep_last=2, older_than=30 * DAY)  # new by age; old as one of the last 2
    assert {j.id for j in runs_to_keep(jobs, both, NOW)[1]} == {"older"}
    assert {j.id for j in runs_to_keep(jobs, Retention(older_than=0), NOW)[1]} == {"old", "older", "new"}


LAYERS = {"base": 380, "runner": 60, "venv1": 290, "venv2": 300, "nb1": 1, "nb2": 2, "nb3": 3, "stage": 500,
          "other": 50}


def _engine(*extra: ContainerFacts) -> EngineFacts:
    images = engine_images({
        "sha256:base": (["base"], ("python:3.11.7-slim-bookworm",), 100),
        "sha256:old": (["base", "runner", "venv1", "nb1"], ("jupyter-containerize/a:" + "1" * 16,), 10),
        "sha256:mid": (["base", "runner", "venv1", "nb2"], ("jupyter-containerize/a:" + "2" * 16,), 5),
        "sha256:new": (["base", "runner", "venv2", "nb3"], ("jupyter-containerize/a:" + "3" * 16,), 1),
        "sha256:stage": (["base", "stage"], ("jupyter-containerize/a:" + "1" * 16 + "-stage0",), 10),
        "sha256:built": (["base", "runner", "other"], ("jupyter-containerize/a:" + "4" * 16,), 60),
        "sha256:elsewhere": (["base", "other", "nb1"], ("jupyter-containerize/zz:" + "5" * 16,), 60),
        "sha256:minbase": (["other", "nb2"], ("jupyter-containerize/debian-minbase:bookworm",), 90),
    }, LAYERS)
    return EngineFacts(images=tuple(images), containers=extra, sizes=True)


def _tag(n: str) -> str:
    return "jupyter-containerize/a:" + n * 16


def test_images_go_with_the_last_job_that_used_them_and_their_builder_stage_with_them() -> None:
    jobs = [job("j1", age_days=10, image=_tag("1")), job("j2", age_days=5, image=_tag("2")),
            job("j3", age_days=1, image=_tag("3"))]
    result = plan(jobs, _engine(), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS)
    assert [j.id for j in result.jobs] == ["j1", "j2"] and result.kept_jobs == 1
    gone = {r.refs: r for r in result.images}
    assert set(gone) == {(_tag("1"),), (_tag("2"),), (_tag("1") + "-stage0",)}
    assert all(r.deleted for r in result.images) and gone[(_tag("1"),)].reason == "only removed jobs used it"
    # both of venv1's images go, so their shared 290 + 1 + 2, and the stage's own 500
    assert (result.image_bytes, result.exact) == (290 + 1 + 2 + 500, True)
    assert [j.folder for j in result.jobs] == ["/nb/a.jc-jobs/j1", "/nb/a.jc-jobs/j2"]
    text = result.text()
    assert "would remove 2 jobs (1 kept):" in text and "  job j1  succeeded" in text
    assert "    folder /nb/a.jc-jobs/j1  0 B" in text and _tag("1") + "-stage0" in text


def test_an_image_a_kept_or_unfinished_job_needs_stays() -> None:
    jobs = [job("j1", age_days=10, image=_tag("1")), job("j2", age_days=5, image=_tag("1")),
            job("run", age_days=20, image=_tag("2"), status="running"), job("j3", age_days=30, image=_tag("2"))]
    result = plan(jobs, _engine(), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS)
    assert {j.id for j in result.jobs} == {"j1", "j3"}  # j2 is the last finished run; the running job stays
    assert result.images == () and result.image_bytes == 0


def test_images_no_job_uses_go_by_age_only_in_scope_and_never_by_keep_last_alone() -> None:
    jobs = [job("j3", age_days=1, image=_tag("3"))]
    assert plan(jobs, _engine(), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS).images == ()
    by_age = plan(jobs, _engine(), Retention(older_than=30 * DAY), NOW, owned_folder=own, repos=REPOS)
    assert [r.refs for r in by_age.images] == [(_tag("4"),)]  # old, same notebook's repository; not zz's
    assert by_age.images[0].reason == "no job uses it; built 60d ago"
    everything = plan(jobs, _engine(), Retention(older_than=4 * DAY), NOW, owned_folder=own, repos=REPOS,
                      all_images=True)
    assert {r.refs[0] for r in everything.images} == {_tag("1"), _tag("2"), _tag("4"), _tag("1") + "-stage0",
                                                      "jupyter-containerize/zz:" + "5" * 16}
    assert not any("minbase" in r.refs[0] or "python" in r.refs[0] for r in everything.images)  # never others'


def test_protected_busy_and_used_images_are_left_alone_with_a_reason() -> None:
    jobs = [job("j1", age_days=10, image=_tag("1")), job("j2", age_days=5, image=_tag("2")),
            job("j3", age_days=1, image=_tag("3"))]
    others = ContainerFacts(id="c1", name="someone", image_id="sha256:mid", state="exited")
    result = plan(jobs, _engine(others), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS,
                  protected={_tag("1")})
    assert [r.refs for r in result.images] == []  # j1's is protected, so its stage stays; j2's is in use
    assert {(s.ref, s.reason) for s in result.spared} == {(_tag("1"), "protected"),
                                                          (_tag("2"), "container someone (exited) uses it")}
    leftover = ContainerFacts(id="c2", name="jc-j2", image_id="sha256:mid", state="exited", job_id="j2")
    result = plan(jobs, _engine(leftover), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS)
    assert {r.refs[0]: r.containers for r in result.images}[_tag("2")] == ("c2",)  # removed first, then the image
    running = ContainerFacts(id="c3", name="jc-j2", image_id="sha256:mid", state="running", job_id="j2")
    result = plan(jobs, _engine(running), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS)
    assert _tag("2") not in {r.refs[0] for r in result.images}
    queued = [*jobs, job("q", age_days=0, status="building")]  # no image yet: it may reuse any of a's
    result = plan(queued, _engine(), Retention(keep_last=1), NOW, owned_folder=own, repos=REPOS)
    assert result.images == () and {s.reason for s in result.spared} == {
        "an unfinished job of its notebook may use it"}
    assert {j.id for j in result.jobs} == {"j1", "j2"}  # the jobs themselves still go


def test_another_tag_keeps_the_image_and_an_output_folder_given_by_the_user_stays() -> None:
    engine = _engine()
    pushed = [i if i.id != "sha256:mid" else ImageFacts(**{**i.__dict__, "tags": (*i.tags, "team/a:v1")})
              for i in engine.images]
    jobs = [job("j2", age_days=5, image=_tag("2"), output_dir="/data/results"), job("j3", age_days=1)]
    result = plan(jobs, EngineFacts(images=tuple(pushed), sizes=True), Retention(keep_last=1), NOW,
                  owned_folder=own, repos=REPOS)
    (removal,) = result.images
    assert (removal.refs, removal.deleted, removal.kept_by) == ((_tag("2"),), False, ("team/a:v1",))
    assert result.image_bytes == 0
    assert (result.jobs[0].folder, result.jobs[0].folder_kept) == ("", "/data/results")
    assert "/data/results stays (given with --output)" in result.text()
    assert "the image stays: team/a:v1" in result.text()


def test_build_cache_estimate_spares_cache_mounts_and_what_was_used_lately() -> None:
    cache = (CacheRecord("r1", "regular", 100, NOW - 40 * DAY), CacheRecord("r2", "regular", 10, NOW - DAY),
             CacheRecord("r3", "regular", 7, None), CacheRecord("u", "exec.cachemount", 600, NOW - 90 * DAY),
             CacheRecord("r4", "source.local", 5, NOW - 50 * DAY, in_use=True))
    result = plan([], EngineFacts(cache=cache, sizes=True), Retention(older_than=30 * DAY), NOW, owned_folder=own,
                  build_cache=True)
    assert result.cache is not None
    assert (result.cache.records, result.cache.bytes, result.cache.mounts_kept) == (2, 107, 600)


def _truth(stacks: dict[str, list[str]], sizes: dict[str, int], going: set[str]) -> int:
    stays = {tuple(d[: i + 1]) for name, d in stacks.items() if name not in going for i in range(len(d))}
    freed = {tuple(d[: i + 1]) for name, d in stacks.items() if name in going for i in range(len(d))} - stays
    return sum(sizes[prefix[-1]] for prefix in freed)


def test_freed_bytes_is_exact_where_the_facts_allow_and_never_more_than_the_truth() -> None:
    rng = random.Random(7)
    exact_cases = 0
    for _ in range(400):
        sizes = {f"l{i}": rng.randint(0, 1000) for i in range(12)}
        stacks: dict[str, list[str]] = {}
        for n in range(rng.randint(1, 7)):
            base = list(rng.choice(list(stacks.values()))) if stacks and rng.random() < 0.8 else []
            stacks[f"i{n}"] = base[: rng.randint(0, len(base))] + rng.sample(sorted(sizes), rng.randint(1, 3))
        images = engine_images({k: (v, (), 0) for k, v in stacks.items()}, sizes)
        going = {name for name in stacks if rng.random() < 0.5}
        truth = _truth(stacks, sizes, going)
        estimate, exact = freed_bytes(images, going)
        assert estimate <= truth, (stacks, going)
        if exact:
            exact_cases += 1
            assert estimate == truth, (stacks, going)
    assert exact_cases > 300  # an unknown fork is the exception


def test_a_fork_with_no_known_size_is_a_lower_bound() -> None:
    stacks = {"a": ["x", "y", "a"], "b": ["x", "y", "b"], "c": ["x", "z", "c"], "d": ["x", "z", "d"]}
    sizes = {"x": 100, "y": 10, "z": 20, "a": 1, "b": 2, "c": 3, "d": 4}
    images = engine_images({k: (v, (), 0) for k, v in stacks.items()}, sizes)
    assert freed_bytes(images, {"a"}) == (1, True)
    estimate, exact = freed_bytes(images, {"a", "b"})  # y's size needs x's, which no image gives
    assert not exact and estimate <= 10 + 1 + 2
    with_base = engine_images({**{k: (v, (), 0) for k, v in stacks.items()}, "base": (["x"], (), 0)}, sizes)
    assert freed_bytes(with_base, {"a", "b"}) == (10 + 1 + 2, True)  # the base image's size is x's
    assert freed_bytes(with_base, {"a", "b", "c", "d"}) == (10 + 20 + 1 + 2 + 3 + 4, True)


def test_du_counts_each_notebooks_folders_and_images_and_the_build_cache() -> None:
    jobs = [job("j1", age_days=10, image=_tag("1")), job("j2", age_days=5, image=_tag("2"))]
    engine = _engine()
    engine = EngineFacts(images=engine.images, cache=(CacheRecord("r", "regular", 70, None),
                                                      CacheRecord("u", "exec.cachemount", 30, None)), sizes=True)
    result = usage(jobs, engine, {"/nb/a.jc-jobs/j1": 4096, "/nb/a.jc-jobs/j2": 8192}, REPOS)
    first = result.notebooks[0]
    assert (first.notebook, first.jobs, first.outputs, first.images, first.image_bytes) == (
        "/nb/a.ipynb", 2, 12288, 2, 290 + 1 + 2)
    assert {(n.notebook, n.in_store) for n in result.notebooks[1:]} == {("jupyter-containerize/a", False),
                                                                        ("jupyter-containerize/zz", False)}
    assert (result.cache_bytes, result.cache_mount_bytes, result.output_bytes) == (100, 30, 12288)
    assert "jupyter-containerize/debian-minbase:bookworm" not in {e.ref for e in result.environments}
    assert {e.ref: e.jobs for e in result.environments}[_tag("1")] == 1
    text = result.text()
    assert text.splitlines()[0].split() == ["NOTEBOOK", "JOBS", "OUTPUTS", "IMAGES", "IMAGE", "SPACE"]
    assert "(builder stage)" in text and "uv's download cache 30 B" in text
    assert "jupyter-containerize/zz (no job)" in text
    assert result.to_dict()["totals"]["outputs"] == 12288


def test_the_automatic_retention_is_a_setting_of_the_config(tmp_path: Path) -> None:
    config = Config.from_env({"JC_RETENTION_KEEP_LAST": "3", "JC_RETENTION_OLDER_THAN": "30d"})
    assert (config.retention_keep_last, config.retention_older_than) == (3, 30 * DAY)
    assert Config.from_env({}, retention_older_than="12h").retention_older_than == 12 * 3600
    assert Config.from_env({}).retention_keep_last is None
    with pytest.raises(OptionError, match="retention_keep_last"):
        Config.from_env({"JC_RETENTION_KEEP_LAST": "0"})
    with pytest.raises(OptionError, match="retention_older_than 'soon' is not an age"):
        Config.from_env({"JC_RETENTION_OLDER_THAN": "soon"})
    from jupyter_containerize.server.app import ContainerizeApp

    app = ContainerizeApp()
    app.retention_keep_last = 2
    app.retention_older_than = "1w"
    assert (app.job_config().retention_keep_last, app.job_config().retention_older_than) == (2, 7 * DAY)


def test_prune_and_du_parse_through_the_one_option_parser() -> None:
    from jupyter_containerize.options import parse

    args = parse(["prune", "--keep-last", "2", "--older-than", "30d", "--all-images", "--dry-run"]).args
    assert (args["keep_last"], args["older_than_seconds"], args["all_images"], args["dry_run"], args["yes"]) == (
        2, 30 * DAY, True, True, False)
    assert parse(["du", "--json"]).args == {"json": True}
    refused = {("prune",): "prune needs a retention", ("prune", "--keep-last", "1", "--all-images"): "--all-images",
               ("prune", "--keep", "1"): "unrecognized arguments",  # no abbreviations
               ("prune", "--older-than", "30"): "not an age"}
    for argv, words in refused.items():
        with pytest.raises(OptionError, match=words):
            parse(list(argv))
