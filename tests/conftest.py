"""Shared fixtures: the alanine-dipeptide structure that openmmtools ships, a short
reference trajectory with forces generated once per test session, and a local HTTP
server for download tests (files from a temporary folder, a request log, and a way to
make it cut transfers short; nothing leaves 127.0.0.1)."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import mdtraj as md
import pytest

from cgpipe.config import load_config
from cgpipe.reference import generate_trajectory, resolve_structure

ALA2 = "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ala2_structure() -> Path:
    return resolve_structure(ALA2)


@pytest.fixture(scope="session")
def ala2_topology(ala2_structure: Path) -> md.Topology:
    return md.load(str(ala2_structure)).topology


@pytest.fixture(scope="session")
def tiny_reference_params() -> dict:
    params = load_config(None)["reference"]
    params.update(equilibration_steps=50, n_steps=400, save_every=20)
    return params


@pytest.fixture(scope="session")
def ala2_reference(tmp_path_factory, tiny_reference_params) -> list[Path]:
    """Two 20-frame alanine-dipeptide trajectories with forces."""
    folder = tmp_path_factory.mktemp("reference")
    paths = []
    for index in range(2):
        path = folder / f"traj_{index}.h5"
        generate_trajectory(
            ALA2,
            path,
            system="ala2",
            index=index,
            temperature=300.0,
            params=tiny_reference_params,
            master_seed=1,
        )
        paths.append(path)
    return paths


@dataclasses.dataclass
class LocalServer:
    """A running server: ``url(name)`` serves ``root / name``."""

    root: Path
    port: int
    requests: list[str]
    truncate: set[str]  # names whose transfers are cut short
    truncate_once: set[str]  # names whose next transfer only is cut short

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; for names in ``truncate`` it promises more bytes than it sends."""

    def __init__(
        self, *args, requests: list[str], truncate: set[str], truncate_once: set[str], **kwargs
    ) -> None:
        self._requests = requests
        self._truncate = truncate
        self._truncate_once = truncate_once
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        self._requests.append(self.path)
        name = self.path.lstrip("/")
        if name in self._truncate or name in self._truncate_once:
            self._truncate_once.discard(name)
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:
        pass  # keep the test output clean


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    """Serve ``tmp_path / "served"`` on 127.0.0.1 at a free port until the test ends."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []
    truncate: set[str] = set()
    truncate_once: set[str] = set()
    handler = partial(
        _Handler,
        directory=str(root),
        requests=requests,
        truncate=truncate,
        truncate_once=truncate_once,
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield LocalServer(root, server.server_address[1], requests, truncate, truncate_once)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
