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

import contextlib
import dataclasses
import json
import operator
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import mdtraj as md
import numpy as np

import cgpipe
from cgpipe import keys
from cgpipe.errors import InputError
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


def check_finite(
    name: str, array: np.ndarray, path: Path, first_frame: int = 0, stride: int = 1
) -> None:
    """Refuse NaN or infinite values in [n_frames, n_atoms, 3] ``array``, naming the first bad
    frame (``first_frame + k * stride``: the numbering of the file it came from) and atom."""
    bad = ~np.isfinite(array).all(axis=-1)
    if bad.any():
        frames, atoms = np.nonzero(bad)  # row-major: the earliest frame, then its first atom
        raise InputError(
            f"{path}: {name} hold NaN or infinite values, first at frame "
            f"{first_frame + int(frames[0]) * stride} atom {int(atoms[0])} "
            f"({int(bad.any(axis=1).sum())} frames affected)"
        )


@contextlib.contextmanager
def open_hdf5(path: str | os.PathLike[str], what: str) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading, with errors that name the file and what it should be.

    A context manager. h5py's errors while opening the file, and while reading it in the
    ``with`` block, become :class:`~cgpipe.errors.InputError` naming the file: a file
    cut short or damaged may open and fail only when a dataset is read.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InputError
        The file is not HDF5, or is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise InputError(f"{path}: not a readable HDF5 file ({error})") from error
    with handle:
        try:
            yield handle
        except (OSError, RuntimeError) as error:  # what h5py raises for a damaged file
            raise InputError(f"{path}: damaged {what}, cannot read it ({error})") from error


class TrajectoryWriter:
    """Write a trajectory in blocks of frames, atomically: the file appears when complete.

    For trajectories too long to hold in memory (reference generation appends as it
    goes). Use as a context manager; leaving the block by an exception leaves nothing.

    Parameters
    ----------
    path
        The artifact to write.
    topology
        Topology of every frame.
    provenance
        Its record, stored when the writer closes.
    with_forces
        Whether every block carries forces.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        topology: md.Topology,
        provenance: Provenance,
        *,
        with_forces: bool,
    ) -> None:
        self.path = Path(path)
        self.topology = topology
        self.provenance = provenance
        self.with_forces = with_forces
        self.n_frames = 0

    def __enter__(self) -> TrajectoryWriter:
        self._atomic = atomic_output(self.path)
        tmp = self._atomic.__enter__()
        self._handle = h5py.File(tmp, "w")
        handle, n_atoms = self._handle, self.topology.n_atoms
        handle.attrs["conventions"] = "Pande"
        handle.attrs["conventionVersion"] = "1.1"
        handle.attrs["program"] = "cgpipe"
        handle.attrs["programVersion"] = cgpipe.__version__
        handle.attrs["application"] = "cgpipe"
        handle.attrs["title"] = f"cgpipe {self.provenance.stage}"
        topology_json = json.dumps(
            md.formats.HDF5TrajectoryFile.convert_topology_to_dict(self.topology)
        )
        handle.create_dataset(keys.TOPOLOGY, data=np.array([topology_json.encode("ascii")]))
        # Chunks of up to 256 frames: whole frames read fast, gzip level 1 stays cheap.
        frame_chunks = (max(1, min(256, (1 << 20) // (12 * max(n_atoms, 1)))), max(n_atoms, 1), 3)
        compression = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
        names = [(keys.COORDINATES, keys.UNIT_LENGTH)]
        if self.with_forces:
            names.append((keys.FORCES, keys.UNIT_FORCE))
        for name, units in names:
            dataset = handle.create_dataset(
                name,
                shape=(0, n_atoms, 3),
                maxshape=(None, n_atoms, 3),
                dtype=np.float32,
                chunks=frame_chunks,
                **compression,
            )
            dataset.attrs[keys.UNITS] = units
        handle.create_dataset(keys.TIME, shape=(0,), maxshape=(None,), dtype=np.float32)
        handle[keys.TIME].attrs[keys.UNITS] = keys.UNIT_TIME
        handle.create_dataset(keys.TRAJECTORY_INDEX, shape=(0,), maxshape=(None,), dtype=np.int64)
        return self

    def append(
        self,
        coordinates: np.ndarray,
        time: np.ndarray,
        forces: np.ndarray | None = None,
        trajectory_index: np.ndarray | int = 0,
    ) -> None:
        """Add frames: coordinates [n, n_atoms, 3] nm, time [n] ps, forces kJ/mol/nm."""
        coordinates = np.asarray(coordinates, dtype=np.float32)
        n = coordinates.shape[0]
        if coordinates.shape[1:] != (self.topology.n_atoms, 3):
            raise ValueError(
                f"{self.path}: frames have {coordinates.shape[1:]} positions, the topology "
                f"has {self.topology.n_atoms} atoms"
            )
        if (forces is not None) != self.with_forces:
            raise ValueError(f"{self.path}: every block must carry forces, or none")
        check_finite("coordinates", coordinates, self.path, self.n_frames)
        blocks = {keys.COORDINATES: coordinates}
        if forces is not None:
            forces = np.asarray(forces, dtype=np.float32)
            check_finite("forces", forces, self.path, self.n_frames)
            blocks[keys.FORCES] = forces
        blocks[keys.TIME] = np.asarray(time, dtype=np.float32).reshape(n)
        blocks[keys.TRAJECTORY_INDEX] = np.broadcast_to(
            np.asarray(trajectory_index, dtype=np.int64), (n,)
        )
        for name, block in blocks.items():
            dataset = self._handle[name]
            dataset.resize(self.n_frames + n, axis=0)
            dataset[self.n_frames :] = block
        self.n_frames += n

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._handle.attrs[keys.PROVENANCE] = self.provenance.to_json()
        finally:
            self._handle.close()
            self._atomic.__exit__(kind, value, traceback)


def write_trajectory(
    path: str | os.PathLike[str], data: TrajectoryData, provenance: Provenance
) -> None:
    """Write ``data`` atomically to ``path`` in mdtraj's HDF5 layout plus forces."""
    # Checked before the file is opened, so that bad data leaves no temporary file either.
    check_finite("coordinates", data.coordinates, Path(path))
    if data.forces is not None:
        check_finite("forces", data.forces, Path(path))
    with TrajectoryWriter(
        path, data.topology, provenance, with_forces=data.forces is not None
    ) as writer:
        writer.append(data.coordinates, data.time, data.forces, data.trajectory_index)


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
    with open_hdf5(path, "trajectory file") as handle:
        for name in (keys.TOPOLOGY, keys.COORDINATES, keys.TIME):
            if name not in handle:
                raise InputError(f"{path}: no {name!r} dataset; not an mdtraj HDF5 trajectory")
        raw = handle[keys.TOPOLOGY][0]
        try:
            topology = topology_from_dict(
                json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            )
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise InputError(f"{path}: the topology is not mdtraj's JSON ({error!r})") from error
        coordinates = handle[keys.COORDINATES][::stride]
        units = handle[keys.COORDINATES].attrs.get(keys.UNITS, keys.UNIT_LENGTH)
        units = units.decode() if isinstance(units, bytes) else units
        if units != keys.UNIT_LENGTH:
            raise InputError(f"{path}: coordinates are in {units!r}, cgpipe expects nanometers")
        time = handle[keys.TIME][::stride]
        forces = handle[keys.FORCES][::stride] if keys.FORCES in handle else None
        index = handle[keys.TRAJECTORY_INDEX][::stride] if keys.TRAJECTORY_INDEX in handle else None
        text = handle.attrs.get(keys.PROVENANCE)
        provenance = json.loads(text) if text is not None else {}
    if coordinates.shape[1] != topology.n_atoms:
        raise InputError(
            f"{path}: topology has {topology.n_atoms} atoms but coordinates have "
            f"{coordinates.shape[1]}"
        )
    check_finite("coordinates", coordinates, path)
    if forces is not None:
        check_finite("forces", forces, path)
    return TrajectoryData(topology, coordinates, time, forces, index, provenance)
