"""Downloaded reference data turned into the same artifact as generated data.

Two public datasets, read from the files :mod:`cgpipe.reference.download` fetched, and
written with :func:`cgpipe.io.write_trajectory` so that every later stage reads them
exactly as it reads an OpenMM trajectory of :mod:`cgpipe.reference.openmm_generation`:

- **mdshare alanine dipeptide** (Noé group, FU Berlin): a PDB topology and XTC
  trajectories, positions in nm and time in ps as XTC stores them; no forces, so these
  feed the force-free routes (denoising diffusion, free-energy references).
- **mdCATH** (Mirarchi et al., Sci. Data 11, 1299, 2024): one HDF5 file per CATH
  domain, with protein positions in Å and forces in kcal/mol/Å for five temperatures
  and five replicas, one frame per ns. Converted to nm and kJ/mol/nm here, at the
  import edge, and the conversion is stated in the artifact's provenance.

Both readers check the data before anything is written (atom counts, finite values),
and :func:`cgpipe.io.write_trajectory` writes atomically: a file that fails a check
leaves no output behind.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import h5py
import mdtraj as md
import numpy as np

from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, write_trajectory
from cgpipe.io.trajectory import check_finite, open_hdf5

# Unit conversions at the import edge (cgpipe works in nm and kJ/mol; see DESIGN.md).
ANGSTROM_TO_NM = 0.1  # nm per Å
KCAL_TO_KJ = 4.184  # kJ per kcal (thermochemical calorie, as in CHARMM and OpenMM)
# kcal/mol/Å -> kJ/mol/nm: 4.184 kJ/kcal x 10 Å/nm = 41.84
KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM = KCAL_TO_KJ / ANGSTROM_TO_NM

# mdCATH saves one frame per ns; the publisher's own converter (convert_mdCATH.py) times
# frame i at (i + 1) ns, i.e. at the end of the interval it closes, which is also how
# cgpipe's OpenMM generation times its frames.
MDCATH_PS_PER_FRAME = 1000.0
MDCATH_UNITS = {"coords": ("Angstrom", "Å"), "forces": ("kcal/mol/Angstrom", "kcal/mol/Å")}


def ingest_mdshare(
    topology_pdb: Path,
    xtc: Path,
    output: Path,
    *,
    system: str,
    index: int,
    download: list[dict[str, Any]] | None = None,
    stride: int = 1,
    dataset: str = "alanine-dipeptide",
) -> TrajectoryData:
    """Convert one mdshare trajectory (PDB topology + XTC) into a reference artifact.

    Parameters
    ----------
    topology_pdb
        The dataset's topology, e.g. ``alanine-dipeptide-nowater.pdb`` (22 atoms).
    xtc
        One trajectory, e.g. ``alanine-dipeptide-0-250ns-nowater.xtc``: positions in nm,
        one frame per ps for 250 ns at 300 K.
    output
        The artifact, ``results/reference/{system}/traj_{index}.h5``.
    system
        The system's name in the systems sheet.
    index
        The trajectory's index within the system.
    download
        :meth:`DownloadRecord.to_dict` of the files read, for provenance.
    stride
        Keep every ``stride``-th frame.
    dataset
        The mdshare dataset's name, for provenance.

    Returns
    -------
    TrajectoryData
        Positions [n_frames, n_atoms, 3] in nm, time [n_frames] in ps, ``forces=None``.
    """
    topology_pdb, xtc, output = Path(topology_pdb), Path(xtc), Path(output)
    _check_stride(stride)
    topology = _load_pdb_topology(topology_pdb)
    if not xtc.is_file():
        raise FileNotFoundError(f"{xtc}: no such trajectory file")
    try:
        with md.formats.XTCTrajectoryFile(str(xtc), "r") as handle:
            coordinates, time, _step, _box = handle.read(stride=stride)
    except (OSError, RuntimeError) as error:  # mdtraj's XTC reader raises either
        raise InputError(f"{xtc}: not a readable XTC trajectory ({error})") from error
    if coordinates.shape[0] == 0:
        raise InputError(f"{xtc}: the trajectory holds no frames")
    _check_atom_count(xtc, coordinates.shape[1], topology, topology_pdb)
    check_finite("positions", coordinates, xtc, stride=stride)

    data = TrajectoryData(topology, coordinates, time, forces=None)
    provenance = Provenance(
        stage="reference",
        config={"system": system, "source": "mdshare", "dataset": dataset, "stride": stride},
        inputs=[topology_pdb, xtc],
        extra={
            "source": "mdshare",
            "dataset": dataset,
            "trajectory": index,
            "forces": None,
            "units": {"coordinates": "nm (as stored in XTC)", "time": "ps (as stored in XTC)"},
            "download": list(download or []),
        },
    )
    write_trajectory(output, data, provenance)
    return data


def ingest_mdcath(
    h5_path: Path,
    output: Path,
    *,
    system: str,
    temperature: int,
    replica: int,
    download: list[dict[str, Any]] | None = None,
    stride: int = 1,
) -> TrajectoryData:
    """Convert one mdCATH simulation (domain, temperature, replica) into a reference artifact.

    The file holds one root group named by the CATH domain id, with ``pdbProteinAtoms``
    (PDB text of the N protein atoms) and groups ``<temperature>/<replica>`` holding
    ``coords`` [F, N, 3] in Å and ``forces`` [F, N, 3] in kcal/mol/Å.

    Parameters
    ----------
    h5_path
        ``mdcath_dataset_<domain>.h5``.
    output
        The artifact, ``results/reference/{system}/traj_{i}.h5``.
    system
        The system's name in the systems sheet.
    temperature
        Simulation temperature in K: 320, 348, 379, 413 or 450.
    replica
        Replica number, 0 to 4.
    download
        :meth:`DownloadRecord.to_dict` of the file read, for provenance.
    stride
        Keep every ``stride``-th frame.

    Returns
    -------
    TrajectoryData
        Positions [n_frames, n_atoms, 3] in nm, time [n_frames] in ps (frame i of the
        file at (i + 1) x 1000 ps), forces [n_frames, n_atoms, 3] in kJ/mol/nm.
    """
    h5_path, output = Path(h5_path), Path(output)
    _check_stride(stride)
    with open_hdf5(h5_path, "mdCATH file") as handle:
        layout = _text(handle.attrs.get("layout"))
        domains = [name for name, item in handle.items() if isinstance(item, h5py.Group)]
        if len(domains) != 1:
            raise InputError(
                f"{h5_path}: an mdCATH file holds one domain group at its root, found {domains}"
            )
        domain = domains[0]
        domain_group = handle[domain]
        pdb_text = _text(_dataset(h5_path, domain_group, "pdbProteinAtoms")[()])

        temperature_key = str(int(temperature))
        if not isinstance(domain_group.get(temperature_key), h5py.Group):
            available = sorted(
                (name for name, item in domain_group.items() if isinstance(item, h5py.Group)),
                key=lambda name: (not name.isdigit(), int(name) if name.isdigit() else 0, name),
            )
            raise InputError(
                f"{h5_path}: no temperature group {domain}/{temperature_key} "
                f"({temperature} K); available: {available}"
            )
        replica_key = str(int(replica))
        replica_group = domain_group[temperature_key].get(replica_key)
        if not isinstance(replica_group, h5py.Group):
            raise InputError(
                f"{h5_path}: no replica group {domain}/{temperature_key}/{replica_key}; "
                f"available: {sorted(domain_group[temperature_key])}"
            )
        prefix = f"{domain}/{temperature_key}/{replica_key}"
        coords_dataset = _dataset(h5_path, replica_group, "coords", prefix)
        forces_dataset = _dataset(h5_path, replica_group, "forces", prefix)
        for dataset in (coords_dataset, forces_dataset):
            _check_unit(h5_path, dataset, f"{prefix}/{dataset.name.rsplit('/', 1)[-1]}")
        n_frames_total = int(coords_dataset.shape[0])
        declared = replica_group.attrs.get("numFrames")
        if declared is not None and int(declared) != n_frames_total:
            raise InputError(
                f"{h5_path}: {prefix} declares numFrames={int(declared)} but "
                f"{prefix}/coords holds {n_frames_total} frames"
            )
        if forces_dataset.shape != coords_dataset.shape:
            raise InputError(
                f"{h5_path}: {prefix}/forces has shape {forces_dataset.shape}, "
                f"{prefix}/coords {coords_dataset.shape}"
            )
        coords_angstrom = coords_dataset[::stride]
        forces_kcal = forces_dataset[::stride]

    if coords_angstrom.ndim != 3 or coords_angstrom.shape[2] != 3:
        raise InputError(
            f"{h5_path}: {prefix}/coords has shape {coords_angstrom.shape}, expected [F, N, 3]"
        )
    if coords_angstrom.shape[0] == 0:
        raise InputError(f"{h5_path}: {prefix}/coords holds no frames")
    topology = _pdb_text_topology(pdb_text, h5_path, f"{domain}/pdbProteinAtoms")
    _check_atom_count(
        h5_path,
        coords_angstrom.shape[1],
        topology,
        f"{domain}/pdbProteinAtoms",
        dataset=f"{prefix}/coords",
    )
    # Convert in float64, then store float32 like every cgpipe trajectory; checked after
    # the conversion so that an overflow to infinity is caught too.
    coordinates = (coords_angstrom.astype(np.float64) * ANGSTROM_TO_NM).astype(np.float32)
    forces = (forces_kcal.astype(np.float64) * KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM).astype(
        np.float32
    )
    check_finite(f"{prefix}/coords", coordinates, h5_path, stride=stride)
    check_finite(f"{prefix}/forces", forces, h5_path, stride=stride)
    time = (np.arange(n_frames_total)[::stride] + 1) * MDCATH_PS_PER_FRAME

    data = TrajectoryData(topology, coordinates, time, forces)
    provenance = Provenance(
        stage="reference",
        config={
            "system": system,
            "source": "mdcath",
            "temperature": temperature,
            "replica": replica,
            "stride": stride,
        },
        inputs=[h5_path],
        extra={
            "source": "mdcath",
            "domain": domain,
            "temperature": temperature,
            "replica": replica,
            "layout": layout,
            "units": {
                "coordinates": f"Å -> nm, x{ANGSTROM_TO_NM:g}",
                "forces": f"kcal/mol/Å -> kJ/mol/nm, x{KCAL_PER_MOL_ANGSTROM_TO_KJ_PER_MOL_NM:g}",
                "time": f"frame i -> (i + 1) x {MDCATH_PS_PER_FRAME:g} ps",
            },
            "download": list(download or []),
        },
    )
    write_trajectory(output, data, provenance)
    return data


def _check_stride(stride: int) -> None:
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")


def _text(value: Any) -> str | None:
    """An HDF5 string attribute or scalar dataset as str (h5py hands back bytes or str)."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else value.tobytes()
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8")
    return str(value)


def _dataset(path: Path, group: h5py.Group, name: str, prefix: str | None = None) -> h5py.Dataset:
    item = group.get(name)
    if not isinstance(item, h5py.Dataset):
        where = f"{prefix or group.name.strip('/')}/{name}"
        raise InputError(f"{path}: no {where!r} dataset; not an mdCATH file of the expected layout")
    return item


def _check_unit(path: Path, dataset: h5py.Dataset, where: str) -> None:
    # mdCATH labels coords and forces with a "unit" attribute; a different label means a
    # file the conversion factors here do not fit.
    name = dataset.name.rsplit("/", 1)[-1]
    unit = _text(dataset.attrs.get("unit"))
    if unit is not None and unit not in MDCATH_UNITS[name]:
        raise InputError(
            f"{path}: {where} is in {unit!r}; cgpipe converts from {MDCATH_UNITS[name][0]!r}"
        )


def _load_pdb_topology(path: Path) -> md.Topology:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such topology file")
    try:
        topology = md.load_topology(str(path))
    except Exception as error:  # mdtraj's PDB parser raises assorted types on bad input
        raise InputError(f"{path}: cannot read the PDB topology ({error})") from error
    if topology.n_atoms == 0:
        raise InputError(f"{path}: the PDB topology holds no atoms")
    return topology


def _pdb_text_topology(text: str | None, path: Path, where: str) -> md.Topology:
    if not text or not any(line.startswith(("ATOM", "HETATM")) for line in text.splitlines()):
        raise InputError(f"{path}: {where} holds no PDB atom records")
    # mdtraj's PDB reader takes a file name, not a stream.
    with tempfile.TemporaryDirectory(prefix="cgpipe-mdcath-") as folder:
        pdb = Path(folder) / "protein.pdb"
        pdb.write_text(text)
        try:
            return _load_pdb_topology(pdb)
        except ValueError as error:
            raise InputError(f"{path}: {where} is not a readable PDB ({error})") from error


def _check_atom_count(
    path: Path,
    n_atoms: int,
    topology: md.Topology,
    topology_source: Path | str,
    dataset: str = "the trajectory",
) -> None:
    if n_atoms != topology.n_atoms:
        raise InputError(
            f"{path}: {dataset} has {n_atoms} atoms but the topology ({topology_source}) "
            f"has {topology.n_atoms}"
        )


def run(
    source: str,
    inputs: list[Path],
    output: Path,
    *,
    system: str,
    index: int,
    cfg: dict[str, Any],
) -> TrajectoryData:
    """Convert downloaded files to trajectory ``index`` of ``system``'s reference.

    Parameters
    ----------
    source
        ``mdshare`` (inputs: the topology PDB, then one XTC) or ``mdcath`` (one domain
        HDF5 file; ``index`` is the replica, ``cfg["temperature"]`` the temperature).
    cfg
        The validated configuration (``download`` and ``temperature`` are read).
    """
    from cgpipe.io import sha256sum
    from cgpipe.reference.download import DownloadRecord, pin_path, remote_file
    from cgpipe.stages import write_resolved_config

    records = []
    for path in inputs:
        url, known_hash, _ = remote_file(source, path.name, cfg["download"])
        record = DownloadRecord(
            url=url,
            path=path,
            sha256=sha256sum(path),
            known_hash=known_hash,
            pinned=known_hash is None and pin_path(path).exists(),
        )
        records.append(record.to_dict())
    stride = cfg["download"]["stride"]
    expected = {"mdshare": 2, "mdcath": 1}[source]
    if len(inputs) != expected:
        what = "the topology PDB and one XTC" if source == "mdshare" else "one domain HDF5 file"
        raise InputError(f"ingest of {source} takes {what}; got {[str(p) for p in inputs]}")
    if source == "mdshare":
        data = ingest_mdshare(
            inputs[0],
            inputs[1],
            output,
            system=system,
            index=index,
            download=records,
            stride=stride,
        )
    else:
        data = ingest_mdcath(
            inputs[0],
            output,
            system=system,
            temperature=int(cfg["temperature"]),
            replica=index,
            download=records,
            stride=stride,
        )
    write_resolved_config(output, cfg)
    return data
