"""A conda channel over HTTP on 127.0.0.1 whose package downloads wait at a gate."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path
from typing import Any

STOP_TIMEOUT = 10.0


class GatedChannelServer:
    """Serve a conda channel over HTTP on 127.0.0.1, holding package downloads at a gate.

    A stand-in for a slow network: repodata answers at once, while each package archive
    waits until :meth:`release` is called (or ``max_wait`` seconds pass), so a test can
    keep an operation running for as long as it needs.
    """

    def __init__(self, directory: Path, *, max_wait: float = 60.0) -> None:
        self.gate = threading.Event()
        self.requests: list[str] = []
        gate, requests = self.gate, self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path.endswith((".tar.bz2", ".conda")):
                    gate.wait(max_wait)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> GatedChannelServer:
        self.thread.start()
        return self

    def release(self) -> None:
        """Let every held and future package download through."""
        self.gate.set()

    def package_requests(self) -> list[str]:
        return [p for p in self.requests if p.endswith((".tar.bz2", ".conda"))]

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT)
