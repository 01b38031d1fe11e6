"""A tiny kernel that tells the user why their environment's kernel could not start.

The provisioner launches it (in the server's own Python) instead of the real kernel when the
environment is gone or broken, so the reason shows up in the notebook rather than as a
silent launch failure. Every execute request is answered with the reason, as an error.

Run as ``python -m jupyter_envs.kernels.fallback -f CONNECTION_FILE``; the reason comes in
the ``JUPYTER_ENVS_FALLBACK_REASON`` environment variable.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# User-facing reasons (tests assert on these). ``{prefix}`` is the environment's path.
ENV_MISSING = (
    "The conda environment {prefix} does not exist any more, so this kernel cannot start. "
    "Choose another kernel, or re-create the environment."
)
NOT_AN_ENV = (
    "{prefix} is not a conda environment (it has no conda-meta folder), so this kernel "
    "cannot start. Choose another kernel."
)
NO_EXECUTABLE = (
    "The kernel program {executable} is missing from the environment {prefix}. "
    "Install the kernel package (for Python: ipykernel) into it, or choose another kernel."
)
ACTIVATION_FAILED = (
    "Activating the environment {prefix} failed, so its kernel was not started: {error}"
)
GPU_UNAVAILABLE = "No GPU could be given to this kernel: {error}"
UNKNOWN = "The kernel for this environment could not be started."

REASON_VAR = "JUPYTER_ENVS_FALLBACK_REASON"
ERROR_NAME = "EnvironmentUnavailable"


def fallback_argv(connection_file: str) -> list[str]:
    """The command line that starts the fallback kernel (server's Python, absolute path)."""
    return [sys.executable, "-m", "jupyter_envs.kernels.fallback", "-f", connection_file]


def _kernel_class() -> type:
    from ipykernel.kernelbase import Kernel

    class FallbackKernel(Kernel):  # type: ignore[misc]
        """Answers every execute request with the reason the real kernel did not start."""

        implementation = "jupyter-envs-fallback"
        implementation_version = "1.0"
        language_info = {
            "name": "python",
            "mimetype": "text/x-python",
            "file_extension": ".py",
        }
        banner = "jupyter-envs fallback kernel"

        @property
        def reason(self) -> str:
            return os.environ.get(REASON_VAR) or UNKNOWN

        async def do_execute(
            self,
            code: str,
            silent: bool,
            store_history: bool = True,
            user_expressions: dict[str, Any] | None = None,
            allow_stdin: bool = False,
            *,
            cell_meta: dict[str, Any] | None = None,
            cell_id: str | None = None,
        ) -> dict[str, Any]:
            content = {"ename": ERROR_NAME, "evalue": self.reason, "traceback": [self.reason]}
            if not silent:
                self.send_response(self.iopub_socket, "error", content)  # type: ignore[no-untyped-call]
            return {"status": "error", "execution_count": self.execution_count, **content}

    return FallbackKernel


def main() -> None:
    """Start the fallback kernel (IPKernelApp command line: ``-f CONNECTION_FILE``)."""
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=_kernel_class())


if __name__ == "__main__":
    main()
