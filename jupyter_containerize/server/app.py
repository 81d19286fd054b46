"""The jupyter_server extension: the job manager and the REST handlers."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import fields
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, Unicode

from ..jobs.manager import Config, JobManager
from ..jobs.schedules import MAX_SLEEP_SECONDS, Scheduler
from .handlers import HANDLERS


class ContainerizeApp(ExtensionApp):
    """Runs notebooks as container jobs for the JupyterLab sidebar."""

    name = "jupyter_containerize"
    load_other_extensions = True

    # The job manager's settings (jobs.manager.Config), one trait per field, each defaulting to its JC_* variable.
    store_path = Unicode("", config=True, help="Job store (SQLite); default $JC_STORE or the Jupyter data dir.")
    slurm_dir = Unicode("", config=True, help="Folder of the Slurm jobs' scripts and output files, shared with "
                        "the nodes; default $JC_SLURM_DIR or ~/.local/share/jupyter-containerize/slurm.")
    slurm_docker = Unicode("", config=True, help="The docker command on the Slurm nodes; default $JC_SLURM_DOCKER "
                           "or docker.")
    slurm_poll = Float(None, allow_none=True, config=True,
                       help="Seconds between Slurm status polls; default $JC_SLURM_POLL or 1.")
    slurm_unknown_grace = Float(None, allow_none=True, config=True,
                                help="Seconds a Slurm job may stay unknown to every source before its follow gives "
                                "up; default $JC_SLURM_UNKNOWN_GRACE or 60.")
    k8s_namespace = Unicode("", config=True, help="Kubernetes namespace; default $JC_K8S_NAMESPACE, else the "
                            "kubeconfig context's, else default.")
    k8s_output_pvc = Unicode("", config=True, help="PersistentVolumeClaim mounted at /output; default "
                             "$JC_K8S_OUTPUT_PVC, else an emptyDir lost with the pod.")
    k8s_ttl = Int(None, allow_none=True, config=True,
                  help="ttlSecondsAfterFinished of each Kubernetes Job; default $JC_K8S_TTL or 3600.")
    k8s_backoff_limit = Int(None, allow_none=True, config=True,
                            help="backoffLimit of each Kubernetes Job; default $JC_K8S_BACKOFF_LIMIT or 0.")
    k8s_poll = Float(None, allow_none=True, config=True,
                     help="Seconds between Kubernetes status polls; default $JC_K8S_POLL or 2.")
    retention_keep_last = Int(None, allow_none=True, config=True,
                              help="After each job's end, keep each notebook's newest N finished runs and remove "
                              "the others with the images no kept job needs (as `prune --keep-last N`); default "
                              "$JC_RETENTION_KEEP_LAST, else keep everything.")
    retention_older_than = Unicode("", config=True,
                                   help="After each job's end, remove runs, and images no job uses, older than this "
                                   "age, e.g. 30d (as `prune --older-than`); default $JC_RETENTION_OLDER_THAN, else "
                                   "keep them. With both settings, a run either keeps stays.")
    notify = Unicode("", config=True,
                     help="A command to run or a webhook URL to POST the job's summary to when any job ends "
                     "(a job's --notify replaces it); default $JC_NOTIFY.")
    backend_options = Dict({}, config=True, help="Settings of third-party backends: {backend name: {key: value}}.")
    stop_timeout = Float(10.0, config=True,
                         help="Seconds the server's shutdown waits for the job manager's threads to end.")
    run_schedules = Bool(True, config=True,
                         help="Start the runs of due schedules (`jupyter containerize schedule`) from this server. "
                         "Several servers on one store may all do so: each time is claimed by one of them.")
    schedule_poll = Float(MAX_SLEEP_SECONDS, config=True,
                          help="Most seconds between two looks at the schedules (at most 60); the scheduler also "
                          "wakes at each schedule's next time.")

    manager: JobManager | None = None
    _reconciler: threading.Thread | None = None
    _scheduler: threading.Thread | None = None
    _scheduler_stop: threading.Event | None = None

    def job_config(self) -> Config:
        """The job manager's settings: these traits where set, else the ``JC_*`` environment's."""
        return Config.from_env(**{f.name: getattr(self, f.name) for f in fields(Config)})

    def initialize_settings(self) -> None:
        manager = JobManager(config=self.job_config())
        self.manager = manager
        assert self.serverapp is not None
        root = Path(self.serverapp.root_dir).expanduser().resolve()
        self.settings.update({"containerize_manager": manager, "containerize_root": str(root)})
        # Re-attach jobs whose owner died (a restarted server); the engine may be slow, so off the loop.
        self._reconciler = threading.Thread(target=self._reconcile, args=(manager,), name="jc-reconcile", daemon=True)
        self._reconciler.start()
        if self.run_schedules:  # due schedules become ordinary jobs of this manager (jobs/schedules.py)
            scheduler = Scheduler(manager, poll=self.schedule_poll,
                                  log=lambda message: self.log.warning("jupyter_containerize: %s", message))
            self._scheduler_stop = threading.Event()
            self._scheduler = threading.Thread(target=scheduler.run, args=(self._scheduler_stop,),
                                               name="jc-scheduler", daemon=True)
            self._scheduler.start()

    async def stop_extension(self) -> None:
        """Server shutdown: stop the manager's watchers and join its threads (running jobs keep running)."""
        if self.manager is not None:
            await asyncio.to_thread(self._close, self.manager)

    def _close(self, manager: JobManager) -> None:
        deadline = time.monotonic() + self.stop_timeout
        if self._scheduler_stop is not None:
            self._scheduler_stop.set()
        if self._reconciler is not None:
            manager.close(0)  # refuse new re-attaches first, so the reconciler ends quickly
            self._reconciler.join(max(0.0, deadline - time.monotonic()))
        if self._scheduler is not None:
            manager.close(0)  # and new jobs: a tick in progress stops claiming
            self._scheduler.join(max(0.0, deadline - time.monotonic()))
        left = manager.close(max(0.0, deadline - time.monotonic()))
        if left:
            self.log.warning("jupyter_containerize: %d job thread(s) still running at shutdown: %s",
                             len(left), ", ".join(left))

    def _reconcile(self, manager: JobManager) -> None:
        try:
            manager.reconcile()
        except Exception as e:  # noqa: BLE001 - a missing engine must not stop the server
            self.log.warning("jupyter_containerize: could not reconcile jobs: %s", e)

    def initialize_handlers(self) -> None:
        self.handlers.extend(HANDLERS)
