"""The Jupyter server's kernel manager for the course: at most `max_kernels` kernels at once.

A learner on Binder opens lab after lab and rarely closes a tab, so every lab's kernel would stay
alive: 19 kernels of 45 to 130 MB each do not fit in Binder's 2 GB next to the lab's services.
The idle culler of the course's configuration (30 minutes) frees them in a real session, where a
lab takes half an hour or more; this manager also frees them when labs follow each other faster.
When a new kernel starts and more than `max_kernels` are alive, the least recently used *idle* ones
(no cell running, nothing done for `min_idle_seconds`) are shut down, as the culler would shut them
down. Their tabs show "No Kernel"; Kernel > Restart Kernel and Run All brings a lab back (its
engines and data are still there: only the Python kernel went).

Used through `ServerApp.kernel_manager_class` in helpers/tools/jupyter_config (make lab, Binder,
the classroom) and measured by `make memory-check`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from traitlets import Float, Integer


class LabKernelManager(AsyncMappingKernelManager):
    max_kernels = Integer(8, config=True, help="Kernels kept alive at most (0: no limit); the least recently "
                                               "used idle ones beyond it are shut down when a kernel starts.")
    min_idle_seconds = Float(60.0, config=True, help="A kernel idle for less than this is never shut down.")

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        kernel_id = await super().start_kernel(*args, **kwargs)
        await self.make_room(keep=kernel_id)
        return kernel_id

    def surplus(self, keep: str, now: datetime | None = None) -> list[str]:
        """The kernels to shut down so that at most `max_kernels` remain, oldest activity first."""
        if self.max_kernels <= 0:
            return []
        now = now or datetime.now(timezone.utc)
        others = [(kid, k) for kid, k in list(self._kernels.items()) if kid != keep]
        excess = len(others) + 1 - self.max_kernels
        if excess <= 0:
            return []
        idle = [(kid, k) for kid, k in others
                if getattr(k, "execution_state", "idle") != "busy"
                and (now - getattr(k, "last_activity", now)).total_seconds() >= self.min_idle_seconds]
        idle.sort(key=lambda item: getattr(item[1], "last_activity", now))
        return [kid for kid, _ in idle[:excess]]

    async def make_room(self, keep: str) -> None:
        for kid in self.surplus(keep):
            kernel = self._kernels.get(kid)
            self.log.info("Shutting down kernel %s (%s): more than %d kernels are open and it is the least "
                          "recently used idle one (Kernel > Restart brings it back)", kid,
                          getattr(kernel, "kernel_name", "?"), self.max_kernels)
            try:
                await self.shutdown_kernel(kid)
            except Exception as exc:  # jupyter_server raises many kinds; one kernel must not stop the others
                self.log.warning("Could not shut down kernel %s: %s", kid, exc, exc_info=True)
