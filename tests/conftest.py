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
def test_config() -> dict:
    """config/test.yaml, validated: every method's section as the integration test runs it."""
    return load_config(REPO / "config/test.yaml")


@pytest.fixture(scope="session")
def penta_alanine() -> md.Topology:
    """Capped penta-alanine's backbone heavy atoms, bonded: every fixed map has >= 2 beads
    on it (alanine dipeptide has one C-alpha)."""
    from cgpipe.reference.structure import build_backbone

    topology = md.Topology.from_openmm(build_backbone("AAAAA", "helix")[0])
    topology.create_standard_bonds()
    return topology


def build_mapping_on(name: str, topology: md.Topology):
    """A registered fixed mapping built on ``topology``."""
    from cgpipe.mapping import MAPPINGS

    return MAPPINGS.get(name)().build(topology, None)


def shared_force_mapping():
    """(Mapping, all-atom topology): beads on atoms 0 and 1 of a three-atom chain; the
    force on atom 2 is split between them (a soft force map: still Xi_f Xi^T = I)."""
    import pandas as pd

    from cgpipe.mapping import Mapping

    topology = md.Topology()
    residue = topology.add_residue("TOY", topology.add_chain())
    for name in ("A", "B", "C"):
        topology.add_atom(name, md.element.carbon, residue)
    cg = md.Topology()
    residue = cg.add_residue("TOY", cg.add_chain())
    for name in ("A", "B"):
        cg.add_atom(name, md.element.carbon, residue)
    table = pd.DataFrame(
        {
            "bead": [0, 0, 1, 1],
            "atom": [0, 2, 1, 2],
            "weight": [1.0, 0.0, 1.0, 0.0],
            "force_weight": [1.0, 0.5, 1.0, 0.5],
            "bead_name": ["A", "A", "B", "B"],
            "bead_type": [0, 0, 1, 1],
            "mass": 18.0,
            "residue_index": 0,
            "residue_name": "TOY",
            "residue_seq": 1,
        }
    )
    return Mapping("shared", 3, table, cg), topology


@pytest.fixture(scope="session")
def tiny_reference_params() -> dict:
    params = load_config(None)["reference"]
    params.update(equilibration_steps=50, start_steps=200, n_steps=400, save_every=20)
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


@pytest.fixture(scope="session")
def ala2_backbone(tmp_path_factory, ala2_reference, test_config) -> dict:
    """The two tiny alanine-dipeptide trajectories on the backbone map, as the mapping and
    forces stages write them: {"references", "mapping", "cg"} paths."""
    from cgpipe import forces, mapping

    folder = tmp_path_factory.mktemp("ala2_backbone")
    mapping_path, cg_path = folder / "backbone.parquet", folder / "backbone.h5"
    mapping.run(ala2_reference, mapping_path, name="backbone", cfg=test_config)
    forces.run(ala2_reference, mapping_path, cg_path, cfg=test_config)
    return {"references": list(ala2_reference), "mapping": mapping_path, "cg": cg_path}
