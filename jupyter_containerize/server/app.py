"""The jupyter_server extension: the job manager and the REST handlers."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from ..jobs.manager import JobManager
from ..jobs.store import JobStore
from .handlers import HANDLERS


class ContainerizeApp(ExtensionApp):
    """Runs notebooks as container jobs for the JupyterLab sidebar."""

    name = "jupyter_containerize"
    load_other_extensions = True

    store_path = Unicode("", config=True, help="Job store (SQLite); default $JC_STORE or the Jupyter data dir.")
    stop_timeout = Float(10.0, config=True,
                         help="Seconds the server's shutdown waits for the job manager's threads to end.")

    manager: JobManager | None = None
    _reconciler: threading.Thread | None = None

    def initialize_settings(self) -> None:
        store = JobStore(Path(self.store_path)) if self.store_path else JobStore()
        manager = JobManager(store)
        self.manager = manager
        assert self.serverapp is not None
        root = Path(self.serverapp.root_dir).expanduser().resolve()
        self.settings.update({"containerize_manager": manager, "containerize_root": str(root)})
        # Re-attach jobs whose owner died (a restarted server); the engine may be slow, so off the loop.
        self._reconciler = threading.Thread(target=self._reconcile, args=(manager,), name="jc-reconcile", daemon=True)
        self._reconciler.start()

    async def stop_extension(self) -> None:
        """Server shutdown: stop the manager's watchers and join its threads (running jobs keep running)."""
        if self.manager is not None:
            await asyncio.to_thread(self._close, self.manager)

    def _close(self, manager: JobManager) -> None:
        deadline = time.monotonic() + self.stop_timeout
        if self._reconciler is not None:
            manager.close(0)  # refuse new re-attaches first, so the reconciler ends quickly
            self._reconciler.join(max(0.0, deadline - time.monotonic()))
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
