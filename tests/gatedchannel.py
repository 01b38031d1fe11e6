"""A conda channel over HTTP on 127.0.0.1 whose package downloads wait at a gate.

The one slow-network stand-in of the suite (REST tasks, the CLI command, SSH tunnels, the
operations tests and the browser tests' launcher all use it).
"""

from __future__ import annotations

import http.server
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import localchannel

STOP_TIMEOUT = 10.0
_ARCHIVES = (".tar.bz2", ".conda")


class GatedChannelServer:
    """Serve a conda channel over HTTP on 127.0.0.1, holding package downloads at a gate.

    Repodata answers at once, while each package archive waits until :meth:`release` is
    called (or ``max_wait`` seconds pass) and then ``delay`` seconds more, so a test can
    keep an operation running for as long as it needs.
    """

    def __init__(
        self, directory: Path, *, max_wait: float = 60.0, names: list[str] | None = None
    ) -> None:
        self.gate = threading.Event()
        self.delay = 0.0
        #: Package names of a channel made by :meth:`build`.
        self.names = names or []
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(directory), **kwargs)

            def do_GET(self) -> None:
                server.requests.append(self.path)
                if self.path.endswith(_ARCHIVES):
                    server.gate.wait(max_wait)
                    time.sleep(server.delay)
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @classmethod
    def build(cls, root: Path, *, count: int = 5, max_wait: float = 60.0) -> GatedChannelServer:
        """A started server for a new channel of ``count`` packages whose names no other
        test uses (so the package cache never has them and they are really downloaded)."""
        tag = uuid.uuid4().hex[:8]
        names = [f"slow{i}-{tag}" for i in range(count)]
        pkgs = [
            localchannel.Pkg(name, "1.0", files={f"share/{name}/data": b"x" * 2000})
            for name in names
        ]
        localchannel.build_channel(root, pkgs)
        return cls(root, max_wait=max_wait, names=names).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> GatedChannelServer:
        self.thread.start()
        return self

    def release(self) -> None:
        """Let every held and future package download through."""
        self.gate.set()

    @property
    def downloads(self) -> list[str]:
        """The package archives asked for so far."""
        return [p for p in self.requests if p.endswith(_ARCHIVES)]

    def package_requests(self) -> list[str]:
        return self.downloads

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(STOP_TIMEOUT)
