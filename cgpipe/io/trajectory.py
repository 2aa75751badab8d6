"""The one trajectory reader and writer.

Files follow mdtraj's HDF5 layout (``coordinates`` in nm, ``time`` in ps, a JSON
``topology``, root attributes ``conventions="Pande"``), so ``mdtraj.load`` and VMD's
plugin open them as-is. cgpipe adds, where they exist:

- ``forces`` [n_frames, n_atoms, 3] in kJ/mol/nm,
- ``trajectory_index`` [n_frames]: the trajectory (or simulation replica) each frame
  belongs to, for files that hold several trajectories back to back,
- a ``provenance`` root attribute (JSON).

Written with h5py rather than mdtraj's PyTables writer so that extra datasets and
attributes go into the same atomic write.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
from pathlib import Path
from typing import Any

import h5py
import mdtraj as md
import numpy as np

import cgpipe
from cgpipe import keys
from cgpipe.io.atomic import atomic_output
from cgpipe.io.provenance import Provenance


@dataclasses.dataclass
class TrajectoryData:
    """Positions (and forces) of one or more trajectories over one topology.

    Attributes
    ----------
    topology
        The mdtraj topology (all-atom, or CG with one atom per bead).
    coordinates
        [n_frames, n_atoms, 3] positions in nm.
    time
        [n_frames] time in ps.
    forces
        [n_frames, n_atoms, 3] forces in kJ/mol/nm, or ``None``.
    trajectory_index
        [n_frames] integer label of the trajectory each frame belongs to, or ``None``
        when the file holds one trajectory.
    provenance
        The provenance record read from the file (empty for data built in memory).
    """

    topology: md.Topology
    coordinates: np.ndarray
    time: np.ndarray
    forces: np.ndarray | None = None
    trajectory_index: np.ndarray | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coordinates = np.asarray(self.coordinates, dtype=np.float32)
        self.time = np.asarray(self.time, dtype=np.float64)
        n_frames = self.coordinates.shape[0]
        if self.coordinates.ndim != 3 or self.coordinates.shape[1:] != (self.topology.n_atoms, 3):
            raise ValueError(
                f"coordinates have shape {self.coordinates.shape}, expected "
                f"[n_frames, {self.topology.n_atoms}, 3] for the topology's atoms"
            )
        if self.time.shape != (n_frames,):
            raise ValueError(f"time has shape {self.time.shape}, expected ({n_frames},)")
        if self.forces is not None:
            self.forces = np.asarray(self.forces, dtype=np.float32)
            if self.forces.shape != self.coordinates.shape:
                raise ValueError(
                    f"forces have shape {self.forces.shape}, coordinates {self.coordinates.shape}"
                )
        if self.trajectory_index is None:
            self.trajectory_index = np.zeros(n_frames, dtype=np.int64)
        self.trajectory_index = np.asarray(self.trajectory_index, dtype=np.int64)
        if self.trajectory_index.shape != (n_frames,):
            raise ValueError(
                f"trajectory_index has shape {self.trajectory_index.shape}, expected ({n_frames},)"
            )

    @property
    def n_frames(self) -> int:
        return int(self.coordinates.shape[0])

    @property
    def trajectories(self) -> np.ndarray:
        """Sorted unique trajectory labels."""
        return np.unique(self.trajectory_index)

    def to_mdtraj(self) -> md.Trajectory:
        return md.Trajectory(self.coordinates, self.topology, time=self.time)

    @staticmethod
    def concatenate(parts: list[TrajectoryData]) -> TrajectoryData:
        """Frames of several trajectories on the same topology, labelled by their order."""
        if not parts:
            raise ValueError("nothing to concatenate")
        n_atoms = parts[0].topology.n_atoms
        for i, part in enumerate(parts):
            if part.topology.n_atoms != n_atoms:
                raise ValueError(
                    f"trajectory {i} has {part.topology.n_atoms} atoms, trajectory 0 has {n_atoms}"
                )
        has_forces = all(p.forces is not None for p in parts)
        return TrajectoryData(
            topology=parts[0].topology,
            coordinates=np.concatenate([p.coordinates for p in parts]),
            time=np.concatenate([p.time for p in parts]),
            forces=np.concatenate([p.forces for p in parts]) if has_forces else None,
            trajectory_index=np.concatenate(
                [np.full(p.n_frames, i, dtype=np.int64) for i, p in enumerate(parts)]
            ),
        )


def _check_finite(name: str, array: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
    if bad.any():
        frame = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: {name} hold NaN or infinite values, first at frame {frame} "
            f"({int(bad.sum())} frames affected)"
        )


def write_trajectory(
    path: str | os.PathLike[str], data: TrajectoryData, provenance: Provenance
) -> None:
    """Write ``data`` atomically to ``path`` in mdtraj's HDF5 layout plus forces."""
    path = Path(path)
    _check_finite("coordinates", data.coordinates, path)
    if data.forces is not None:
        _check_finite("forces", data.forces, path)
    topology_json = json.dumps(
        md.formats.HDF5TrajectoryFile.convert_topology_to_dict(data.topology)
    )
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["conventions"] = "Pande"
        handle.attrs["conventionVersion"] = "1.1"
        handle.attrs["program"] = "cgpipe"
        handle.attrs["programVersion"] = cgpipe.__version__
        handle.attrs["application"] = "cgpipe"
        handle.attrs["title"] = f"cgpipe {provenance.stage}"
        handle.attrs[keys.PROVENANCE] = provenance.to_json()
        handle.create_dataset(keys.TOPOLOGY, data=np.array([topology_json.encode("ascii")]))
        chunks = (min(max(data.n_frames, 1), 256), data.topology.n_atoms, 3)
        compression = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        coordinates = handle.create_dataset(
            keys.COORDINATES,
            data=data.coordinates,
            chunks=chunks if data.n_frames else None,
            **(compression if data.n_frames else {}),
        )
        coordinates.attrs[keys.UNITS] = keys.UNIT_LENGTH
        time = handle.create_dataset(keys.TIME, data=data.time.astype(np.float32))
        time.attrs[keys.UNITS] = keys.UNIT_TIME
        if data.forces is not None:
            forces = handle.create_dataset(
                keys.FORCES,
                data=data.forces,
                chunks=chunks if data.n_frames else None,
                **(compression if data.n_frames else {}),
            )
            forces.attrs[keys.UNITS] = keys.UNIT_FORCE
        handle.create_dataset(keys.TRAJECTORY_INDEX, data=data.trajectory_index)


def topology_from_dict(topology_dict: dict[str, Any]) -> md.Topology:
    topology = md.Topology()
    for chain_dict in sorted(topology_dict["chains"], key=operator.itemgetter("index")):
        chain = topology.add_chain(chain_id=chain_dict.get("chain_id"))
        for residue_dict in sorted(chain_dict["residues"], key=operator.itemgetter("index")):
            residue = topology.add_residue(
                residue_dict["name"],
                chain,
                resSeq=residue_dict.get("resSeq"),
                segment_id=residue_dict.get("segmentID", ""),
            )
            for atom_dict in sorted(residue_dict["atoms"], key=operator.itemgetter("index")):
                try:
                    element = md.element.get_by_symbol(atom_dict["element"])
                except KeyError:
                    element = md.element.virtual
                topology.add_atom(atom_dict["name"], element, residue)
    atoms = list(topology.atoms)
    for index1, index2 in topology_dict["bonds"]:
        topology.add_bond(atoms[index1], atoms[index2])
    return topology


def read_trajectory(path: str | os.PathLike[str], stride: int = 1) -> TrajectoryData:
    """Read a cgpipe (or plain mdtraj) HDF5 trajectory, checking it on the way in."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such trajectory file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from error
    with handle:
        for name in (keys.TOPOLOGY, keys.COORDINATES, keys.TIME):
            if name not in handle:
                raise ValueError(f"{path}: no {name!r} dataset; not an mdtraj HDF5 trajectory")
        raw = handle[keys.TOPOLOGY][0]
        topology = topology_from_dict(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
        coordinates = handle[keys.COORDINATES][::stride]
        units = handle[keys.COORDINATES].attrs.get(keys.UNITS, keys.UNIT_LENGTH)
        units = units.decode() if isinstance(units, bytes) else units
        if units != keys.UNIT_LENGTH:
            raise ValueError(f"{path}: coordinates are in {units!r}, cgpipe expects nanometers")
        time = handle[keys.TIME][::stride]
        forces = handle[keys.FORCES][::stride] if keys.FORCES in handle else None
        index = handle[keys.TRAJECTORY_INDEX][::stride] if keys.TRAJECTORY_INDEX in handle else None
        text = handle.attrs.get(keys.PROVENANCE)
        provenance = json.loads(text) if text is not None else {}
    if coordinates.shape[1] != topology.n_atoms:
        raise ValueError(
            f"{path}: topology has {topology.n_atoms} atoms but coordinates have "
            f"{coordinates.shape[1]}"
        )
    _check_finite("coordinates", coordinates, path)
    if forces is not None:
        _check_finite("forces", forces, path)
    return TrajectoryData(topology, coordinates, time, forces, index, provenance)
