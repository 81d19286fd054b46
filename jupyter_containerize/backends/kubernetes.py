"""Kubernetes as a run backend: one ``batch/v1`` Job per job, through the official ``kubernetes`` client.

The Job runs the same image (by digest once pushed) and runner as the Docker backend,
hardened the same way: non-root, no privilege escalation, every capability dropped, a
read-only root with an in-memory ``/tmp``; ``/dev/shm`` is a memory ``emptyDir`` sized
like ``--shm-size``; GPUs are ``nvidia.com/gpu`` limits; ``-v`` volumes become PVCs
(named volumes) or ``hostPath`` (bind mounts).

What was and was NOT run against a cluster: no Kubernetes API server could be started
where this was written. The manifests are checked offline against the Kubernetes
OpenAPI schema (``kubernetes-validate``) and round-tripped through the client's own
``V1Job`` model; the client calls (create, watch status, logs, delete) are exercised
against a fake HTTP transport that answers like an API server. Submitting to a real
cluster, scheduling, image pulls, GPU device plugins and PVC binding were not tested.

Configuration: the ``k8s_*`` settings of :class:`.config.Config` (``JC_K8S_*`` by default):
``k8s_namespace`` (default: the kubeconfig context's namespace, else ``default``),
``k8s_output_pvc`` (a PVC mounted at ``/output``; default: an ``emptyDir``, so files
written to /output are lost with the pod; metrics and logs still arrive as events),
``k8s_ttl`` (``ttlSecondsAfterFinished``, default 3600), ``k8s_backoff_limit``
(default 0: a failed notebook is not retried), ``k8s_poll`` (seconds, default 2).
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from typing import Any

from .. import validators
from ..errors import BackendError, ControllerUnreachable
from ..events import RunStarted
from ..jobspec import OUTPUT_DIR_IN_CONTAINER, JobSpec
from .base import Backend, EventSink, RunOutcome, RunRequest, hard_limit_seconds, job_environment
from .config import Config
from .container import hardening_options, parse_log_line
from .engine import JOB_LABEL, ROLE_LABEL

DEFAULT_UID = 1000
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_API_BUSY = frozenset({429, 500, 502, 503, 504})  # throttled, or the API server (or its proxy) is away


def job_name(job_id: str) -> str:
    """The Kubernetes name of our job (a DNS-1123 label)."""
    name = "jc-" + job_id.lower()
    if not _DNS_LABEL.match(name) or len(name) > 63:
        raise BackendError(f"The job id {job_id!r} cannot name a Kubernetes Job", "Use the id the job store gave.")
    return name


def refuse_device_choice(spec: JobSpec) -> None:
    """Kubernetes picks the GPUs: ``--gpus all`` or device ids cannot be asked of it."""
    if spec.gpus.device_ids or spec.gpus.count == -1:
        raise BackendError(f"--gpus {spec.gpus.describe()} cannot be asked of Kubernetes, which picks the devices",
                           "Ask for a number of GPUs, e.g. --gpus 1 (an nvidia.com/gpu limit).")


def job_manifest(request: RunRequest, namespace: str = "default", *, uid: int | None = None,
                 output_claim: str | None = None, ttl_seconds: int = 3600, backoff_limit: int = 0) -> dict[str, Any]:
    """The ``batch/v1`` Job for ``request`` as a plain dict (what ``kubectl apply -f`` takes)."""
    spec = request.spec
    name = job_name(request.job_id)
    labels = {JOB_LABEL: request.job_id, ROLE_LABEL: "job", "app.kubernetes.io/managed-by": "jupyter-containerize"}
    user = uid if uid is not None else (spec.build.uid or DEFAULT_UID)
    if user == 0:
        raise BackendError("The job would run as root (UID 0)", "Build with an unprivileged --uid.")
    env = job_environment(request)

    volumes: list[dict[str, Any]] = [
        {"name": "output", **({"persistentVolumeClaim": {"claimName": output_claim}} if output_claim
                              else {"emptyDir": {}})},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
        {"name": "dshm", "emptyDir": {"medium": "Memory",
                                      **({"sizeLimit": f"{validators.size_mib(spec.resources.shm_size, '--shm-size')}Mi"}
                                         if spec.resources.shm_size else {})}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "output", "mountPath": OUTPUT_DIR_IN_CONTAINER},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "dshm", "mountPath": "/dev/shm"},
    ]
    for i, v in enumerate(spec.volumes):
        vol_name = f"vol-{i}"
        if v.kind == "volume":
            if not _DNS_LABEL.match(v.source):
                raise BackendError(f"The volume {v.source!r} cannot name a PersistentVolumeClaim",
                                   "Use a lowercase name of letters, digits and '-'.")
            volumes.append({"name": vol_name, "persistentVolumeClaim": {"claimName": v.source, "readOnly": v.read_only}})
        else:
            volumes.append({"name": vol_name, "hostPath": {"path": v.source, "type": "Directory"}})
        mounts.append({"name": vol_name, "mountPath": v.target, "readOnly": v.read_only})

    limits: dict[str, str] = {}
    if spec.resources.cpus:
        limits["cpu"] = f"{max(1, math.ceil(spec.resources.cpus * 1000))}m"
    if spec.resources.memory:
        limits["memory"] = f"{validators.size_mib(spec.resources.memory)}Mi"
    refuse_device_choice(spec)
    if spec.gpus.count > 0:
        limits["nvidia.com/gpu"] = str(spec.gpus.count)

    hardening = hardening_options(spec.hardening)
    container: dict[str, Any] = {
        "name": "job",
        "image": request.image.reference,
        "imagePullPolicy": "IfNotPresent",
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "volumeMounts": mounts,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": user, "runAsGroup": user,
            "allowPrivilegeEscalation": not hardening["security_opt"], "readOnlyRootFilesystem": hardening["read_only"],
            "capabilities": {"drop": hardening["cap_drop"] or []}, "privileged": False,
        },
    }
    if request.command:
        container["args"] = list(request.command)
    if limits:
        container["resources"] = {"limits": limits, "requests": dict(limits)}
    if spec.gpus.count > 0:
        container["env"] += [{"name": "NVIDIA_DRIVER_CAPABILITIES", "value": ",".join(
            c for c in spec.gpus.capabilities if c != "gpu") or "compute,utility"}]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "fsGroup": user,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": volumes,
    }
    if spec.gpus.count > 0:
        pod_spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec},
    }
    deadline = hard_limit_seconds(spec)
    if deadline:  # --timeout plus the grace the runner has to save the notebook
        job_spec["activeDeadlineSeconds"] = deadline
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": job_spec,
    }


def validate_manifest(manifest: dict[str, Any], version: str | None = None) -> None:
    """Check ``manifest`` against the Kubernetes OpenAPI schema offline (``kubernetes-validate``, strict)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, version or kubernetes_validate.utils.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as e:
        raise BackendError(f"The Kubernetes Job manifest is invalid: {e.message}", "Report this as a bug.") from None


class KubernetesBackend(Backend):
    """Runs jobs as Kubernetes Jobs with the official client (kubeconfig or in-cluster config)."""

    name = "kubernetes"
    host_paths = False

    def __init__(self, api_client: Any = None, namespace: str | None = None, poll: float | None = None,
                 output_claim: str | None = None, ttl_seconds: int | None = None,
                 backoff_limit: int | None = None) -> None:
        defaults = Config()
        self._api_client = api_client
        self._namespace = namespace or None
        self.poll = poll if poll is not None else defaults.k8s_poll
        self.output_claim = output_claim or None
        self.ttl_seconds = ttl_seconds if ttl_seconds is not None else defaults.k8s_ttl
        self.backoff_limit = backoff_limit if backoff_limit is not None else defaults.k8s_backoff_limit

    @classmethod
    def from_config(cls, config: Config) -> KubernetesBackend:
        return cls(namespace=config.k8s_namespace, poll=config.k8s_poll, output_claim=config.k8s_output_pvc,
                   ttl_seconds=config.k8s_ttl, backoff_limit=config.k8s_backoff_limit)

    # -- client ------------------------------------------------------------------------------------
    @property
    def api_client(self) -> Any:
        return self._configured_client()

    def _configured_client(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            # KUBECONFIG as it is now: the client library reads it once, when it is first imported.
            kubeconfig = os.environ.get("KUBECONFIG") or None
            try:
                try:
                    config.load_incluster_config()  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    _contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
                        config_file=kubeconfig)
                    config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
                    if self._namespace is None and active:
                        self._namespace = active.get("context", {}).get("namespace")
            except (config.ConfigException, OSError, TypeError) as e:
                raise BackendError(f"No Kubernetes cluster is configured ({e})",
                                   "Set KUBECONFIG (or run inside a cluster) and check `kubectl get nodes`.") from None
            self._api_client = client.ApiClient()
        return self._api_client

    @property
    def namespace(self) -> str:
        return self._namespace or "default"

    def preflight(self, spec: JobSpec, cuda_version: str | None = None) -> None:
        """The client library, a configured cluster and a GPU request Kubernetes can place."""
        try:
            import kubernetes  # noqa: F401
        except ImportError:
            raise BackendError("--backend kubernetes needs the kubernetes client library, which this Python lacks",
                               "Install it: pip install 'jupyter-containerize[kubernetes]'.") from None
        refuse_device_choice(spec)
        self._configured_client()  # the cluster's configuration: BackendError when there is none

    def _batch(self) -> Any:
        from kubernetes import client

        return client.BatchV1Api(self.api_client)

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client)

    # -- Backend protocol --------------------------------------------------------------------------
    def start(self, request: RunRequest) -> str:
        """Create the Job; returns its name."""
        from kubernetes.client import V1Job

        api_client = self.api_client  # resolves the namespace from the kubeconfig first
        manifest = job_manifest(request, self.namespace, output_claim=self.output_claim,
                                ttl_seconds=self.ttl_seconds, backoff_limit=self.backoff_limit)
        del api_client
        body = V1Job.from_dict(manifest)
        created = self._call(lambda: self._batch().create_namespaced_job(self.namespace, body))
        return str(created.metadata.name)

    def follow(self, job_id: str, ref: str, on_event: EventSink, since: str = "",
               stop: threading.Event | None = None) -> RunOutcome:
        """Wait for the pod, stream its log (timestamped, so a re-attach resumes after ``since``), then the end."""
        last = since
        pod = self._wait_for_pod(ref, stop)
        if pod is None:
            status = self._job_status(ref)
            return RunOutcome(exit_code=None, cancelled=status == "missing", last_log_time=last)
        on_event(RunStarted(container_id=f"k8s:{self.namespace}/{pod}", image=""))
        last = self._stream_log(pod, on_event, since, stop)
        exit_code, lost, out_of_memory = self._wait_for_exit(ref, pod, stop)
        return RunOutcome(exit_code=exit_code, cancelled=self._job_status(ref) == "missing", last_log_time=last,
                          lost=lost, out_of_memory=out_of_memory)

    def cancel(self, job_id: str, ref: str) -> None:
        """Delete the Job and its pods (the container gets SIGTERM, then the grace period)."""
        self._delete(ref)

    def remove(self, job_id: str, ref: str) -> None:
        self._delete(ref)

    def is_running(self, job_id: str, ref: str) -> bool:
        return self._job_status(ref) == "active"

    # -- helpers -----------------------------------------------------------------------------------
    def _call(self, fn: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn()
        except ApiException as e:
            reason = _api_reason(e)
            if e.status in (401, 403):
                raise BackendError(f"The Kubernetes API refused the request ({reason})",
                                   f"Check your credentials and RBAC for Jobs in namespace {self.namespace}.") from None
            error = ControllerUnreachable if e.status in _API_BUSY else BackendError
            raise error(f"The Kubernetes API failed ({e.status}: {reason})",
                        "Check the cluster with `kubectl get jobs`.") from None
        except OSError as e:  # urllib3 errors derive from it
            raise ControllerUnreachable(f"The Kubernetes API cannot be reached ({e})",
                                        "Check `kubectl cluster-info`.") from None

    def _job_status(self, ref: str) -> str:
        """``active``, ``succeeded``, ``failed`` or ``missing``."""
        from kubernetes.client.exceptions import ApiException

        try:
            job = self._batch().read_namespaced_job_status(ref, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return "missing"
            raise BackendError(f"The Kubernetes API failed ({e.status}: {_api_reason(e)})", "") from None
        status = job.status
        if status is None:
            return "active"
        for cond in status.conditions or ():
            if cond.status == "True" and cond.type in ("Complete", "Failed"):
                return "succeeded" if cond.type == "Complete" else "failed"
        return "active"

    def _pods(self, ref: str) -> list[Any]:
        pods = self._call(lambda: self._core().list_namespaced_pod(self.namespace, label_selector=f"job-name={ref}"))
        return list(pods.items or [])

    def _wait_for_pod(self, ref: str, stop: threading.Event | None) -> str | None:
        """The pod's name once it runs (or ended); None when the Job vanished."""
        while True:
            for pod in self._pods(ref):
                if pod.status is not None and pod.status.phase in ("Running", "Succeeded", "Failed"):
                    return str(pod.metadata.name)
            if self._job_status(ref) in ("missing", "failed"):
                return None
            if _stopped(stop, self.poll):
                return None

    def _stream_log(self, pod: str, on_event: EventSink, since: str, stop: threading.Event | None) -> str:
        last = since
        response = self._call(lambda: self._core().read_namespaced_pod_log(
            pod, self.namespace, follow=True, timestamps=True, _preload_content=False))
        buffer = b""
        try:
            for chunk in response.stream(4096):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    last = _emit_line(raw, since, last, on_event)
                if stop is not None and stop.is_set():
                    return last
            if buffer:
                last = _emit_line(buffer, since, last, on_event)
        finally:
            response.release_conn()
        return last

    def _wait_for_exit(self, ref: str, pod: str, stop: threading.Event | None) -> tuple[int | None, str, bool]:
        """The container's exit code; why the pod was lost (evicted, its node gone: not the notebook's
        fault) or ""; whether the kernel was killed for its memory."""
        while True:
            for p in self._pods(ref):
                if p.metadata.name != pod or p.status is None:
                    continue
                lost = ""
                if p.status.reason in ("Evicted", "NodeLost", "Preempting", "Terminated"):
                    lost = f"Kubernetes ended the pod: {p.status.reason}" + \
                        (f" ({p.status.message})" if p.status.message else "")
                for cs in p.status.container_statuses or ():
                    ended = cs.state.terminated if cs.state is not None else None
                    if ended is not None:
                        return int(ended.exit_code), lost, ended.reason == "OOMKilled"
                if lost and p.status.phase == "Failed":
                    return None, lost, False
            if self._job_status(ref) == "missing" or _stopped(stop, self.poll):
                return None, "", False

    def _delete(self, ref: str) -> None:
        from kubernetes.client.exceptions import ApiException

        if not ref:  # the Job was never created (and an empty name would address every Job)
            return
        try:
            self._batch().delete_namespaced_job(ref, self.namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise BackendError(f"The Kubernetes Job {ref} could not be deleted ({_api_reason(e)})",
                                   f"Delete it with `kubectl delete job {ref}`.") from None


def _stopped(stop: threading.Event | None, poll: float) -> bool:
    """Wait one poll; whether ``stop`` was set (at once when it was, so a stop never waits a poll)."""
    if stop is None:
        time.sleep(poll)
        return False
    return stop.wait(poll)


def _emit_line(raw: bytes, since: str, last: str, on_event: EventSink) -> str:
    stamp, _, text = raw.decode("utf-8", "replace").partition(" ")
    if since and stamp <= since:
        return last
    on_event(parse_log_line(text))
    return stamp


def _api_reason(e: Any) -> str:
    try:
        return str(json.loads(e.body).get("message") or e.reason)
    except (TypeError, ValueError, AttributeError):
        return str(e.reason)

