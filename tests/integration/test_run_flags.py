"""Run flags reach the real job (clean-house issue: untested flags get tests on the real engine).

Two jobs of ONE notebook (so one image): one with every run flag at its default, one with
``--keep-caps --allow-new-privileges --writable-root --cpus --memory --network none --tag``.
Each job probes itself from inside (capabilities, no_new_privs, the root filesystem, its cgroup
limits, its network) into /output/probe.json, then holds until the test has read the container's
HostConfig from the engine (finished jobs leave no container behind) and writes /output/release.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from jupyter_containerize.events import Log
from jupyter_containerize.jobs.manager import Job, JobManager
from jupyter_containerize.jobs.store import JobRecord, JobStore
from tests.support.engine import labelled_containers
from tests.support.notebooks import write_notebook
from tests.support.specs import run_spec

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("base_image")]

CPUS = 1.5
MEMORY = "512m"
MEMORY_BYTES = 512 * 1024**2
NO_LIMIT_V1 = 2**60  # cgroup v1 writes "no memory limit" as a page-rounded 2**63 - 1
HOLD_SECONDS = 300  # a job the test lost (a crash) still ends on its own
DOCKER_DEFAULT_CAPS = {  # the engine's default set: what --keep-caps leaves (bit numbers, linux/capability.h)
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8,
    "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31,
}
NEVER_DEFAULT_CAPS = {"NET_ADMIN": 12, "SYS_ADMIN": 21, "SYS_PTRACE": 19, "SYS_MODULE": 16}

PROBE_CELL = """\
import errno, json, os, socket

def field(name):
    for line in open('/proc/self/status'):
        if line.startswith(name + ':'):
            return line.split(':', 1)[1].strip()

def read(*paths):
    for path in paths:
        try:
            return open(path).read().strip()
        except OSError:
            pass
    return None

def error_name(exc):
    return errno.errorcode.get(exc.errno, str(exc)) if exc.errno else type(exc).__name__

probe = {name: field(name) for name in ('CapEff', 'CapPrm', 'CapBnd', 'NoNewPrivs')}
probe['uid'] = os.getuid()
try:
    open('/etc/jc-probe', 'w').close()
    probe['etc_write'] = 'written'
except OSError as exc:
    probe['etc_write'] = error_name(exc)
probe['root_read_only'] = bool(os.statvfs('/').f_flag & os.ST_RDONLY)
try:
    open('/tmp/jc-probe', 'w').write('x')
    probe['tmp_write'] = 'written'
except OSError as exc:
    probe['tmp_write'] = error_name(exc)
probe['cpu_max'] = read('/sys/fs/cgroup/cpu.max')
probe['cfs_quota_us'] = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us')
probe['cfs_period_us'] = read('/sys/fs/cgroup/cpu/cpu.cfs_period_us', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us')
probe['memory_max'] = read('/sys/fs/cgroup/memory.max')
probe['memory_limit_in_bytes'] = read('/sys/fs/cgroup/memory/memory.limit_in_bytes')
probe['interfaces'] = sorted(name for _, name in socket.if_nameindex())
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    udp.connect(('192.0.2.1', 9))  # TEST-NET-1: only a route lookup, nothing is sent
    probe['route'] = 'ok'
except OSError as exc:
    probe['route'] = error_name(exc)
finally:
    udp.close()
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.settimeout(1)
try:
    tcp.connect(('192.0.2.1', 9))
    probe['tcp'] = 'connected'
except socket.timeout:
    probe['tcp'] = 'timeout'
except OSError as exc:
    probe['tcp'] = error_name(exc)
finally:
    tcp.close()
with open('/output/probe.json.part', 'w') as f:
    json.dump(probe, f)
os.rename('/output/probe.json.part', '/output/probe.json')
print('probed', json.dumps(probe))
"""

HOLD_CELL = f"""\
import os, time
deadline = time.monotonic() + {HOLD_SECONDS}
while not os.path.exists('/output/release') and time.monotonic() < deadline:
    time.sleep(0.1)
print('released', os.path.exists('/output/release'))
"""


@dataclass
class Ran:
    """One finished job: its record, what it saw inside, what the engine gave its container."""

    record: JobRecord
    probe: dict[str, Any]
    host_config: dict[str, Any]
    image_tags: list[str]  # the job's image's tags while it ran
    log: str


def _held(job: Job, engine: docker.DockerClient,
          timeout: float) -> tuple[dict[str, Any], dict[str, Any], list[str], Path]:
    """Wait until the job has probed itself, then read its container's HostConfig and its image's tags."""
    deadline = time.monotonic() + timeout
    while True:
        record = job.record
        if record.done:
            raise AssertionError(f"job {job.id} ended before it was inspected: {record.status} {record.error}")
        if record.output_dir and (Path(record.output_dir) / "probe.json").exists():
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job.id} did not probe itself within {timeout:.0f} s (status {record.status})")
        time.sleep(0.1)
    out = Path(record.output_dir)
    probe = json.loads((out / "probe.json").read_text())
    containers = labelled_containers(engine, job.id)
    assert len(containers) == 1 and containers[0].id is not None, containers
    attrs = engine.api.inspect_container(containers[0].id)
    tags = engine.api.inspect_image(attrs["Image"])["RepoTags"] or []  # type: ignore[no-untyped-call]
    return probe, attrs["HostConfig"], tags, out


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nonce makes the first job really build (the --tag path of a fresh build); the second reuses it."""
    folder = tmp_path_factory.mktemp("flags")
    return write_notebook(folder / "flags.ipynb", f"# nonce {uuid.uuid4().hex}\n" + PROBE_CELL, HOLD_CELL)


@pytest.fixture(scope="module")
def extra_tag(engine: docker.DockerClient) -> Iterator[str]:
    """A repository no other session's cleanup untags (the engine is shared); this module untags it."""
    tag = f"jc-run-flags/probe:{uuid.uuid4().hex[:12]}"
    yield tag
    with contextlib.suppress(docker.errors.DockerException):
        engine.images.remove(tag)


@pytest.fixture(scope="module")
def jobs(notebook: Path, extra_tag: str, engine: docker.DockerClient,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Ran]]:
    """Both jobs held at once (the second is submitted once the first built the image)."""
    manager = JobManager(JobStore(tmp_path_factory.mktemp("store") / "jobs.sqlite"))
    flags = {
        "loosened": ("--keep-caps", "--allow-new-privileges", "--writable-root", "--cpus", str(CPUS),
                     "--memory", MEMORY, "--network", "none", "--tag", extra_tag),
        "defaults": (),
    }
    started: dict[str, Job] = {}
    held: dict[str, tuple[dict[str, Any], dict[str, Any], list[str], Path]] = {}
    try:
        for name, args in flags.items():
            started[name] = manager.submit(run_spec(notebook, *args))
            held[name] = _held(started[name], engine, timeout=600 if name == "loosened" else 120)
        for *_, out in held.values():
            (out / "release").write_text("go")
        ran = {}
        for name, job in started.items():
            record = job.wait(timeout=120)
            log = "".join(e.text for _, e in job.events() if isinstance(e, Log))
            ran[name] = Ran(record, *held[name][:3], log)
        yield ran
    finally:
        for job in started.values():
            if not job.record.done:
                if job.record.output_dir:
                    (Path(job.record.output_dir) / "release").write_text("go")
                job.cancel()
                job.wait(timeout=60)


@pytest.fixture(scope="module")
def defaults(jobs: dict[str, Ran]) -> Ran:
    return jobs["defaults"]


@pytest.fixture(scope="module")
def loosened(jobs: dict[str, Ran]) -> Ran:
    return jobs["loosened"]


def _caps(text: str) -> int:
    return int(text, 16)


def test_both_jobs_succeed_on_one_image_and_leave_no_container(jobs: dict[str, Ran],
                                                               engine: docker.DockerClient) -> None:
    for name, ran in jobs.items():
        assert ran.record.status == "succeeded", f"{name}: {ran.record.error}\n{ran.log}"
        assert "released True" in ran.log, name
        assert labelled_containers(engine, ran.record.id) == []
    assert jobs["defaults"].record.image_id == jobs["loosened"].record.image_id
    assert all(ran.probe["uid"] != 0 for ran in jobs.values())  # why CapEff is 0 either way: CapBnd tells


# -- capabilities ------------------------------------------------------------------------------
def test_capabilities_are_dropped_by_default(defaults: Ran) -> None:
    assert defaults.host_config["CapDrop"] == ["ALL"]
    assert not defaults.host_config.get("CapAdd")
    for name in ("CapBnd", "CapPrm", "CapEff"):
        assert _caps(defaults.probe[name]) == 0, (name, defaults.probe)


def test_keep_caps_leaves_the_engines_default_capabilities(loosened: Ran) -> None:
    assert not loosened.host_config.get("CapDrop")  # nothing dropped, nothing added
    assert not loosened.host_config.get("CapAdd")
    bounding = _caps(loosened.probe["CapBnd"])
    missing = [n for n, bit in DOCKER_DEFAULT_CAPS.items() if not bounding >> bit & 1]
    assert not missing, (missing, loosened.probe["CapBnd"])
    extra = [n for n, bit in NEVER_DEFAULT_CAPS.items() if bounding >> bit & 1]
    assert not extra, (extra, loosened.probe["CapBnd"])
    assert _caps(loosened.probe["CapEff"]) == 0  # the job still runs as an unprivileged user


# -- no_new_privs ------------------------------------------------------------------------------
def test_no_new_privileges_is_set_by_default(defaults: Ran) -> None:
    assert "no-new-privileges:true" in (defaults.host_config.get("SecurityOpt") or [])
    assert defaults.probe["NoNewPrivs"] == "1"


def test_allow_new_privileges_leaves_no_new_privs_unset(loosened: Ran) -> None:
    assert not any(o.startswith("no-new-privileges") for o in loosened.host_config.get("SecurityOpt") or [])
    assert loosened.probe["NoNewPrivs"] == "0"


# -- the root filesystem -------------------------------------------------------------------------
def test_the_root_is_read_only_by_default_with_a_writable_tmp(defaults: Ran) -> None:
    assert defaults.host_config["ReadonlyRootfs"] is True
    assert "/tmp" in (defaults.host_config.get("Tmpfs") or {})
    assert defaults.probe["root_read_only"] is True
    assert defaults.probe["etc_write"] == "EROFS"
    assert defaults.probe["tmp_write"] == "written"


def test_writable_root_mounts_the_root_read_write(loosened: Ran) -> None:
    assert loosened.host_config["ReadonlyRootfs"] is False
    assert loosened.probe["root_read_only"] is False
    # writable, yet /etc stays root's: the unprivileged job user is refused by permission, not by the mount
    assert loosened.probe["etc_write"] == "EACCES"
    assert loosened.probe["tmp_write"] == "written"


# -- resources -----------------------------------------------------------------------------------
def _cpu_limit(probe: dict[str, Any]) -> float | None:
    """CPUs the cgroup allows (None: no limit), from cgroup v2 cpu.max or v1 cfs quota/period."""
    if probe["cpu_max"] is not None:
        quota, period = probe["cpu_max"].split()
        return None if quota == "max" else int(quota) / int(period)
    assert probe["cfs_quota_us"] is not None, probe
    quota = int(probe["cfs_quota_us"])
    return None if quota < 0 else quota / int(probe["cfs_period_us"])


def _memory_limit(probe: dict[str, Any]) -> int | None:
    if probe["memory_max"] is not None:
        return None if probe["memory_max"] == "max" else int(probe["memory_max"])
    assert probe["memory_limit_in_bytes"] is not None, probe
    limit = int(probe["memory_limit_in_bytes"])
    return None if limit >= NO_LIMIT_V1 else limit


def test_no_cpu_or_memory_limit_by_default(defaults: Ran) -> None:
    assert not defaults.host_config.get("NanoCpus") and not defaults.host_config.get("CpuQuota")
    assert not defaults.host_config.get("Memory")
    assert _cpu_limit(defaults.probe) is None
    assert _memory_limit(defaults.probe) is None


def test_cpus_reaches_the_cgroup(loosened: Ran) -> None:
    assert loosened.host_config["NanoCpus"] == int(CPUS * 1e9)
    assert _cpu_limit(loosened.probe) == pytest.approx(CPUS)


def test_memory_reaches_the_cgroup(loosened: Ran) -> None:
    assert loosened.host_config["Memory"] == MEMORY_BYTES
    assert _memory_limit(loosened.probe) == MEMORY_BYTES


# -- network -------------------------------------------------------------------------------------
def test_the_engines_default_network_by_default(defaults: Ran) -> None:
    assert defaults.host_config["NetworkMode"] in ("default", "bridge")
    assert set(defaults.probe["interfaces"]) - {"lo"}, defaults.probe
    assert defaults.probe["route"] == "ok"


def test_network_none_leaves_only_loopback(loosened: Ran) -> None:
    assert loosened.host_config["NetworkMode"] == "none"
    assert loosened.probe["interfaces"] == ["lo"]
    assert loosened.probe["route"] == "ENETUNREACH"
    assert loosened.probe["tcp"] == "ENETUNREACH"


# -- the image's tags ------------------------------------------------------------------------------
def test_tag_names_the_jobs_image(loosened: Ran, defaults: Ran, extra_tag: str, engine: docker.DockerClient) -> None:
    assert extra_tag in loosened.image_tags and loosened.record.image_tag in loosened.image_tags  # added to
    assert engine.images.get(extra_tag).id == loosened.record.image_id
    assert defaults.record.image_tag == loosened.record.image_tag  # a tag does not change the content hash


def test_the_flags_are_recorded_in_the_jobs_spec(jobs: dict[str, Ran], extra_tag: str) -> None:
    """What the CLI's `jobs` and the sidebar show: the store keeps the flags as asked."""
    loose, plain = jobs["loosened"].record.spec, jobs["defaults"].record.spec
    assert loose["hardening"]["cap_drop_all"] is False and plain["hardening"]["cap_drop_all"] is True
    assert loose["hardening"]["no_new_privileges"] is False and plain["hardening"]["no_new_privileges"] is True
    assert loose["hardening"]["read_only_root"] is False and plain["hardening"]["read_only_root"] is True
    assert loose["resources"]["cpus"] == CPUS and loose["resources"]["memory"] == MEMORY
    assert loose["network"] == "none" and plain["network"] is None
    assert loose["build"]["tag"] == extra_tag and plain["build"]["tag"] is None
