"""The Kubernetes backend without a cluster: manifests against the offline schema, client calls
against a fake transport that answers like an API server (no API server can run here)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, cast

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient, Configuration, V1Job
from kubernetes.client.rest import RESTClientObject

from jupyter_containerize.backends.base import ImageRef, RunOutcome, RunRequest
from jupyter_containerize.backends.kubernetes import (
    KubernetesBackend,
    job_manifest,
    validate_manifest,
)
from jupyter_containerize.errors import BackendError, JobError, OptionError
from jupyter_containerize.events import CellStarted, Event, Log
from jupyter_containerize.jobs.manager import Job, JobManager
from jupyter_containerize.jobs.store import JobStore
from jupyter_containerize.jobspec import GpuRequest, JobSpec, Resources, VolumeMount
from jupyter_containerize.validators import duration_seconds

DIGEST = "registry.example:5000/team/nb@sha256:" + "b" * 64


def request(tmp_path: Path, **changes: Any) -> RunRequest:
    spec = JobSpec(notebook=tmp_path / "nb.ipynb").with_changes(**changes)
    return RunRequest(job_id="a1b2c3", image=ImageRef(tag="jc/nb:1", image_id="sha256:1", digest=DIGEST), spec=spec,
                      output_dir=tmp_path / "out", command=("/work/nb.ipynb",))


@pytest.fixture()
def full(tmp_path: Path) -> RunRequest:
    return request(tmp_path, gpus=GpuRequest(count=2), env={"EVIL": "$(rm -rf /)\n`x`"}, parameters={"lr": 0.1},
                   resources=Resources(cpus=1.5, memory="4g", shm_size="1g", time_limit="1-02:00:00"),
                   volumes=(VolumeMount(source="datasets", target="/data", read_only=True, kind="volume"),
                            VolumeMount(source="/scratch/run", target="/scratch")))


def test_manifest_validates_against_the_kubernetes_schema(full: RunRequest) -> None:
    manifest = job_manifest(full, "ml")
    for version in ("1.27.0", kubernetes_validate.utils.latest_version()):
        kubernetes_validate.validate(manifest, version, strict=True)
    validate_manifest(manifest)


def test_manifest_content(full: RunRequest) -> None:
    m = job_manifest(full, "ml")
    job = m["spec"]
    pod = job["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == DIGEST  # by digest
    assert c["resources"]["limits"] == {"cpu": "1500m", "memory": "4096Mi", "nvidia.com/gpu": "2"}
    sc = c["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["runAsUser"] != 0
    assert pod["securityContext"]["runAsNonRoot"] and pod["restartPolicy"] == "Never"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1024Mi"}
    assert volumes["vol-0"]["persistentVolumeClaim"] == {"claimName": "datasets", "readOnly": True}
    assert volumes["vol-1"]["hostPath"]["path"] == "/scratch/run"
    mounts = {v["mountPath"] for v in c["volumeMounts"]}
    assert {"/dev/shm", "/tmp", "/output", "/data", "/scratch"} <= mounts
    assert job["backoffLimit"] == 0 and job["ttlSecondsAfterFinished"] == 3600
    assert job["activeDeadlineSeconds"] == 26 * 3600 + 60  # --timeout plus the runner's minute to save the notebook
    assert m["metadata"]["labels"]["org.jupyter-containerize.job"] == "a1b2c3"
    assert job["template"]["metadata"]["labels"]["org.jupyter-containerize.job"] == "a1b2c3"
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["EVIL"] == "$(rm -rf /)\n`x`" and json.loads(env["JC_PARAMETERS"]) == {"lr": 0.1}
    assert c["args"] == ["/work/nb.ipynb"]


def test_manifest_round_trips_through_the_clients_model(full: RunRequest) -> None:
    manifest = job_manifest(full, "ml")
    job = V1Job.from_dict(manifest)
    assert job is not None and job.spec is not None and job.spec.template.spec is not None
    context = job.spec.template.spec.containers[0].security_context
    assert context is not None and context.capabilities is not None
    assert context.capabilities.drop == ["ALL"]
    assert ApiClient().sanitize_for_serialization(job) == manifest  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("changes", [{"gpus": GpuRequest(count=-1)}, {"gpus": GpuRequest(device_ids=("0",))},
                                     {"volumes": (VolumeMount(source="Bad_Name", target="/d", kind="volume"),)},
                                     {"resources": Resources(time_limit="soon")}])
def test_unrepresentable_requests_are_refused(tmp_path: Path, changes: dict[str, Any]) -> None:
    with pytest.raises((BackendError, OptionError)):
        job_manifest(request(tmp_path, **changes))


def test_root_uid_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendError):
        job_manifest(request(tmp_path), uid=0)


@pytest.mark.parametrize("text, seconds", [("30", 1800), ("10:30", 630), ("01:00:00", 3600), ("2-0", 172800),
                                           ("1-01:30", 91800)])
def test_time_limits(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


# -- the client calls, against a fake API server ------------------------------------------------------

class FakeHTTPResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        self.reason = "OK" if status < 300 else "Error"
        self.data = body
        self.headers = {"content-type": "application/json"}

    def stream(self, amt: int) -> Any:
        for i in range(0, len(self.data), 7):  # small chunks: lines split across reads
            yield self.data[i:i + 7]

    def release_conn(self) -> None:
        pass


class FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.response = FakeHTTPResponse(status, body)
        self.status = status
        self.reason = self.response.reason
        self.data: bytes | None = None
        self.headers = self.response.headers

    def read(self) -> bytes:
        self.data = self.response.data
        return self.data

    def getheaders(self) -> dict[str, str]:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class FakeCluster:
    """Answers the Job/Pod/log endpoints the backend uses; records every request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.log = b""
        self.polls = 0

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, post_params: Any = None,
                _request_timeout: Any = None) -> FakeResponse:
        self.calls.append((method, url, body))
        path = url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        parts = path.split("/")
        if method == "POST" and path.endswith("/jobs"):
            self.jobs[body["metadata"]["name"]] = body
            return FakeResponse(201, json.dumps(body).encode())
        if method == "DELETE":
            existed = self.jobs.pop(parts[-1], None)
            return FakeResponse(200 if existed else 404, b'{"kind":"Status","message":"not found"}')
        if path.endswith("/status"):
            name = parts[-2]
            if name not in self.jobs:
                return FakeResponse(404, b'{"kind":"Status","message":"jobs not found"}')
            self.polls += 1
            done = {"conditions": [{"type": "Complete", "status": "True"}]} if self.polls > 1 else {"active": 1}
            return FakeResponse(200, json.dumps({**self.jobs[name], "status": done}).encode())
        if path.endswith("/pods"):
            pod = {"metadata": {"name": "jc-a1b2c3-xyz"},
                   "status": {"phase": "Succeeded", "containerStatuses": [
                       {"name": "job", "image": DIGEST, "imageID": "", "ready": False, "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0}}}]}}
            return FakeResponse(200, json.dumps({"items": [pod]}).encode())
        if path.endswith("/log"):
            return FakeResponse(200, self.log)
        return FakeResponse(404, b"{}")


@pytest.fixture()
def cluster() -> tuple[KubernetesBackend, FakeCluster]:
    config = Configuration()
    config.host = "https://k8s.invalid"
    api = ApiClient(config)
    fake = FakeCluster()
    api.rest_client = cast(RESTClientObject, fake)  # answers the requests the backend makes
    return KubernetesBackend(api_client=api, namespace="ml", poll=0.01), fake


def test_start_follow_and_delete_through_the_client(cluster: tuple[KubernetesBackend, FakeCluster],
                                                     full: RunRequest) -> None:
    backend, fake = cluster
    ref = backend.start(full)
    assert ref == "jc-a1b2c3"
    method, url, body = fake.calls[0]
    assert method == "POST" and url.endswith("/apis/batch/v1/namespaces/ml/jobs")
    assert body == job_manifest(full, "ml")  # what went on the wire is exactly the validated manifest

    event = {"type": "CellStarted", "index": 0, "total": 1, "source_first_line": "x = 1"}
    fake.log = (b"2024-01-01T00:00:01.000000000Z hello\n"
                b"2024-01-01T00:00:02.000000000Z @@jc-event " + json.dumps(event).encode() + b"\n")
    events: list[Event] = []
    outcome = backend.follow("a1b2c3", ref, events.append)
    assert outcome.exit_code == 0 and outcome.last_log_time == "2024-01-01T00:00:02.000000000Z"
    assert [e.text for e in events if isinstance(e, Log)] == ["hello"]
    assert any(isinstance(e, CellStarted) for e in events)
    log_call = next(c for c in fake.calls if c[1].split("?")[0].endswith("/log"))
    assert "follow=true" in log_call[1] and "timestamps=true" in log_call[1]

    # Re-attach after a restart: nothing already recorded comes again.
    again: list[Event] = []
    fake.polls = 0
    backend.follow("a1b2c3", ref, again.append, since="2024-01-01T00:00:01.000000000Z")
    assert not [e for e in again if isinstance(e, Log)]

    backend.cancel("a1b2c3", ref)
    delete = [c for c in fake.calls if c[0] == "DELETE"][-1]
    assert delete[1].split("?")[0].endswith("/apis/batch/v1/namespaces/ml/jobs/jc-a1b2c3")
    assert delete[2]["propagationPolicy"] == "Background" if delete[2] else "propagationPolicy=Background" in delete[1]
    backend.remove("a1b2c3", ref)  # already gone: idempotent
    assert not backend.is_running("a1b2c3", ref)


# -- a pod stuck Pending (no --time, so no activeDeadlineSeconds ends it) ------------------------------

class PendingCluster(FakeCluster):
    """Its pods never leave Pending; with ``stuck_delete`` the Job also outlives a delete (a finalizer)."""

    def __init__(self, stuck_delete: bool = False) -> None:
        super().__init__()
        self.stuck_delete = stuck_delete

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, post_params: Any = None,
                _request_timeout: Any = None) -> FakeResponse:
        path = url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
        if method == "DELETE" and self.stuck_delete:
            self.calls.append((method, url, body))
            return FakeResponse(200, b'{"kind":"Status","status":"Success"}')
        if method == "GET" and path.endswith("/status") and path.split("/")[-2] in self.jobs:
            self.calls.append((method, url, body))
            return FakeResponse(200, json.dumps({**self.jobs[path.split("/")[-2]], "status": {"active": 1}}).encode())
        if method == "GET" and path.endswith("/pods"):
            self.calls.append((method, url, body))
            pod = {"metadata": {"name": "jc-a1b2c3-xyz"},
                   "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                                                                  "reason": "Unschedulable"}]}}
            return FakeResponse(200, json.dumps({"items": [pod]}).encode())
        return super().request(method, url, headers, body, post_params, _request_timeout)


def _pending(poll: float, stuck_delete: bool = False) -> tuple[KubernetesBackend, PendingCluster]:
    config = Configuration()
    config.host = "https://k8s.invalid"
    api = ApiClient(config)
    fake = PendingCluster(stuck_delete)
    api.rest_client = cast(RESTClientObject, fake)  # answers the requests the backend makes
    return KubernetesBackend(api_client=api, namespace="ml", poll=poll), fake


def test_a_pending_pod_ends_the_follow_when_stop_is_set(tmp_path: Path) -> None:
    backend, fake = _pending(poll=2.0)  # the default poll: a stop must not wait for it
    ref = backend.start(request(tmp_path))
    stop = threading.Event()
    outcome: list[RunOutcome] = []
    follower = threading.Thread(target=lambda: outcome.append(backend.follow("a1b2c3", ref, lambda e: None,
                                                                              stop=stop)))
    follower.start()
    deadline = time.monotonic() + 10
    while sum(c[1].split("?")[0].endswith("/pods") for c in fake.calls) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert follower.is_alive()  # still waiting for the pod to be scheduled
    stopped = time.monotonic()
    stop.set()
    follower.join(5)
    assert not follower.is_alive() and time.monotonic() - stopped < 1.0
    assert outcome[0].exit_code is None and not outcome[0].cancelled
    assert not [c for c in fake.calls if c[0] == "DELETE"]  # stopping the follow leaves the Job alone


def _manager(tmp_path: Path, backend: KubernetesBackend) -> JobManager:
    return JobManager(JobStore(tmp_path / "jobs.sqlite"), backends={"kubernetes": backend})


def _pending_job(tmp_path: Path, manager: JobManager, fake: PendingCluster) -> Job:
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    job = manager.submit(JobSpec(notebook=nb, backend="kubernetes"), command=("python", "-c", "1"),
                         image=ImageRef(tag="jc/nb:1", image_id="sha256:1", digest=DIGEST))
    deadline = time.monotonic() + 10
    while not sum(c[1].split("?")[0].endswith("/pods") for c in fake.calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.status == "running"
    return job


def _threads_of(manager: JobManager, job: Job) -> list[str]:
    """Threads the manager still holds, and any thread named after the job."""
    return sorted({t.name for t in manager._live} | {t.name for t in threading.enumerate() if job.id in t.name})


def test_a_cancelled_pending_pod_whose_job_outlives_the_delete_still_ends(tmp_path: Path) -> None:
    backend, fake = _pending(poll=2.0, stuck_delete=True)
    manager = _manager(tmp_path, backend)
    manager.cancel_grace = 0.5
    job = _pending_job(tmp_path, manager, fake)
    job.cancel()
    record = job.wait(timeout=10)
    assert record.status == "cancelled"
    assert [c for c in fake.calls if c[0] == "DELETE"]  # the backend was asked to delete it first
    assert manager.close(5) == [] and _threads_of(manager, job) == []


def test_close_stops_following_a_pending_pod_and_leaves_it_for_a_reattach(tmp_path: Path) -> None:
    backend, fake = _pending(poll=2.0)
    manager = _manager(tmp_path, backend)
    job = _pending_job(tmp_path, manager, fake)
    started = time.monotonic()
    assert manager.close(10) == []
    assert time.monotonic() - started < 2.0
    assert _threads_of(manager, job) == []
    record = manager.store.get(job.id)
    assert record.status == "running" and record.owner_pid is None  # a new server re-attaches it
    assert not [c for c in fake.calls if c[0] == "DELETE"]  # the server's shutdown never deletes a job
    with pytest.raises(JobError):
        manager.submit(JobSpec(notebook=tmp_path / "nb.ipynb", backend="kubernetes"), command=("true",),
                       image=ImageRef(tag="jc/nb:1", image_id="sha256:1"))


# -- how a pod ended: evicted (retried with --retries), out of memory (said, not retried) ---------------

class EndedPodCluster(FakeCluster):
    """Its one pod ended as ``pod_status`` says."""

    def __init__(self, pod_status: dict[str, Any]) -> None:
        super().__init__()
        self.pod_status = pod_status

    def request(self, method: str, url: str, headers: Any = None, body: Any = None, post_params: Any = None,
                _request_timeout: Any = None) -> FakeResponse:
        if url.split("?")[0].endswith("/pods"):
            pod = {"metadata": {"name": "jc-a1b2c3-xyz"}, "status": self.pod_status}
            return FakeResponse(200, json.dumps({"items": [pod]}).encode())
        return super().request(method, url, headers, body, post_params, _request_timeout)


def _terminated(exit_code: int, reason: str) -> list[dict[str, Any]]:
    return [{"name": "job", "image": DIGEST, "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": {"exitCode": exit_code, "reason": reason}}}]


@pytest.mark.parametrize(("pod_status", "exit_code", "lost", "out_of_memory"), [
    ({"phase": "Failed", "containerStatuses": _terminated(137, "OOMKilled")}, 137, "", True),
    ({"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory.",
      "containerStatuses": _terminated(137, "Error")}, 137,
     "Kubernetes ended the pod: Evicted (The node was low on resource: memory.)", False),
    ({"phase": "Failed", "reason": "NodeLost"}, None, "Kubernetes ended the pod: NodeLost", False),
    ({"phase": "Failed", "containerStatuses": _terminated(1, "Error")}, 1, "", False),
])
def test_how_the_pod_ended_reaches_the_manager(tmp_path: Path, full: RunRequest, pod_status: dict[str, Any],
                                               exit_code: int | None, lost: str, out_of_memory: bool) -> None:
    config = Configuration()
    config.host = "https://k8s.invalid"
    api = ApiClient(config)
    fake = EndedPodCluster(pod_status)
    api.rest_client = cast(RESTClientObject, fake)
    backend = KubernetesBackend(api_client=api, namespace="ml", poll=0.01)
    ref = backend.start(full)
    outcome = backend.follow("a1b2c3", ref, lambda _e: None, stop=threading.Event())
    assert (outcome.exit_code, outcome.lost, outcome.out_of_memory) == (exit_code, lost, out_of_memory)


@pytest.mark.parametrize("status, away", [(503, True), (429, True), (500, True), (422, False), (403, False)])
def test_an_api_server_that_is_away_or_busy_is_told_from_a_refusal(cluster: tuple[KubernetesBackend, FakeCluster],
                                                                   full: RunRequest, status: int, away: bool) -> None:
    """Only the first kind is worth submitting again (``--retries``); a refusal stays a refusal."""
    from jupyter_containerize.errors import BackendError, Unreachable

    backend, fake = cluster
    fake.request = lambda *a, **k: FakeResponse(status, b'{"kind":"Status","message":"no"}')  # type: ignore[method-assign]
    with pytest.raises(BackendError) as info:
        backend.start(full)
    assert isinstance(info.value, Unreachable) is away
    assert info.value.message.endswith(("(no)", f"({status}: no)"))
