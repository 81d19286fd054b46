"""The jupyter_server extension: the job manager and the REST handlers."""

from __future__ import annotations

import threading
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Unicode

from ..jobs.manager import JobManager
from ..jobs.store import JobStore
from .handlers import HANDLERS


class ContainerizeApp(ExtensionApp):
    """Runs notebooks as container jobs for the JupyterLab sidebar."""

    name = "jupyter_containerize"
    load_other_extensions = True

    store_path = Unicode("", config=True, help="Job store (SQLite); default $JC_STORE or the Jupyter data dir.")

    def initialize_settings(self) -> None:
        store = JobStore(Path(self.store_path)) if self.store_path else JobStore()
        manager = JobManager(store)
        assert self.serverapp is not None
        root = Path(self.serverapp.root_dir).expanduser().resolve()
        self.settings.update({"containerize_manager": manager, "containerize_root": str(root)})
        # Re-attach jobs whose owner died (a restarted server); the engine may be slow, so off the loop.
        threading.Thread(target=self._reconcile, args=(manager,), name="jc-reconcile", daemon=True).start()

    def _reconcile(self, manager: JobManager) -> None:
        try:
            manager.reconcile()
        except Exception as e:  # noqa: BLE001 - a missing engine must not stop the server
            self.log.warning("jupyter_containerize: could not reconcile jobs: %s", e)

    def initialize_handlers(self) -> None:
        self.handlers.extend(HANDLERS)
