"""scripts/check_auth.py passes on jupyter_envs and catches each kind of unprotected route."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_auth.py"

HEADER = """
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler
from tornado import web
"""

GOOD = HEADER + """
class Base(APIHandler):
    auth_resource = "x"

class Fine(Base):
    @web.authenticated
    @authorized
    async def get(self):
        pass

    def helper(self):  # not an HTTP method
        pass

class NotAHandler:
    def get(self):
        pass
"""


def run(package: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_real_package_passes() -> None:
    result = run(SCRIPT.parent.parent / "jupyter_envs")
    assert result.returncode == 0, result.stdout
    assert "every handler" in result.stdout


def test_good_handlers_pass(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "h.py").write_text(GOOD)
    assert run(tmp_path / "pkg").returncode == 0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param(
            "class H(APIHandler):\n    auth_resource = 'x'\n"
            "    @authorized\n    async def post(self): pass\n",
            "H.post (line 8): missing @web.authenticated",
            id="no-authenticated",
        ),
        pytest.param(
            "class H(APIHandler):\n    auth_resource = 'x'\n"
            "    @web.authenticated\n    async def delete(self): pass\n",
            "H.delete (line 8): missing @authorized",
            id="no-authorized",
        ),
        pytest.param(
            "class H(APIHandler):\n    @web.authenticated\n    @authorized\n"
            "    async def get(self): pass\n",
            "H: no auth_resource",
            id="no-resource",
        ),
        pytest.param(
            "class B(APIHandler):\n    auth_resource = 'x'\n"
            "class H(B):\n    async def put(self): pass\n",
            "H.put (line 8): missing @web.authenticated, @authorized",
            id="inherited-handler-bare-method",
        ),
        pytest.param(
            "class W(WebSocketHandler):\n    auth_resource = 'x'\n"
            "    @authorized\n    async def get(self): pass\n",
            "W.get (line 8): missing @web.authenticated",
            id="websocket-no-ws-authenticated",
        ),
    ],
)
def test_unprotected_routes_fail(tmp_path: Path, code: str, expected: str) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "h.py").write_text(HEADER + code)
    result = run(pkg)
    assert result.returncode == 1
    assert expected in result.stdout
