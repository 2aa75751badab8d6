"""Structural quality of backmapped all-atom frames, following the metrics of
DiAMoNDBack (Jones et al., J. Chem. Theory Comput. 2023): bond and angle geometry,
steric clashes, chirality and, for a generative backmapper's several samples per CG
frame, their accuracy and diversity.

Definitions (positions in nm, angles in rad unless a function says degrees):

- bond fraction: share of covalent bonds whose length is within a relative
  ``tolerance`` of a reference length;
- angle deviation: mean absolute deviation (degrees) of the bond angles i-j-k from
  reference angles;
- clash score: 100 x the heavy-atom pairs closer than ``clash`` (1.2 Å) over the pairs
  closer than ``near`` (5 Å), DiAMoNDBack's definition except that bonded (1-2) and
  angle (1-3) pairs, which are always close, are left out;
- chirality: the hand of each stereocentre of :data:`~cgpipe.residues.STEREOCENTRES`
  (every CA with a CB, and THR's and ILE's CB), +1 for an L amino acid's: the CA's sign
  of ((N - CA) x (C - CA)) . (CB - CA), FlowBack's ``chi``;
- heavy-atom RMSD: without superposition, since the CG frame fixes the all-atom frame;
- diversity: (mean RMSD to the truth - mean RMSD among samples) / mean RMSD to the truth,
  1 when the samples are identical, 0 when they spread as far from each other as from
  the truth.

Every function takes a batch of frames and works on all of them at once, in float64.
"""

from __future__ import annotations

import dataclasses

import mdtraj as md
import numpy as np

from cgpipe.errors import InputError
from cgpipe.geometry import chiral_volumes
from cgpipe.residues import stereocentres


@dataclasses.dataclass(frozen=True)
class Geometry:
    """What the metrics need from an :class:`mdtraj.Topology`, computed once.

    Attributes
    ----------
    bonds
        [n_bonds, 2] atom indices of the covalent bonds (``topology.bonds``).
    angles
        [n_angles, 3] i-j-k with bonds i-j and j-k, every such triple once (i < k).
    heavy
        [n_heavy] indices of the atoms that are not hydrogen.
    clash_pairs
        [n_pairs, 2] heavy-atom pairs i < j more than two bonds apart.
    chiral
        [n_centres, 4] (centre, a, b, c) of each stereocentre of
        :data:`~cgpipe.residues.STEREOCENTRES` whose four atoms the topology has (by name).
    chiral_sign
        [n_centres] the sign of (a - centre) x (b - centre) . (c - centre) in an L amino
        acid.
    phi, psi
        [n_phi, 4] and [n_psi, 4] backbone dihedral quadruples, as mdtraj picks them.
    """

    bonds: np.ndarray
    angles: np.ndarray
    heavy: np.ndarray
    clash_pairs: np.ndarray
    chiral: np.ndarray
    chiral_sign: np.ndarray
    phi: np.ndarray
    psi: np.ndarray

    @classmethod
    def from_topology(cls, topology: md.Topology) -> Geometry:
        n_atoms = topology.n_atoms
        bonds = np.array([(a.index, b.index) for a, b in topology.bonds], dtype=np.int64)
        bonds = bonds.reshape(-1, 2)
        neighbours: list[list[int]] = [[] for _ in range(n_atoms)]
        for i, j in bonds:
            neighbours[i].append(j)
            neighbours[j].append(i)
        angles = np.array(
            [
                (i, j, k)
                for j in range(n_atoms)
                for i in neighbours[j]
                for k in neighbours[j]
                if i < k
            ],
            dtype=np.int64,
        ).reshape(-1, 3)
        heavy = np.array(
            [a.index for a in topology.atoms if a.element is None or a.element.symbol != "H"],
            dtype=np.int64,
        )
        close = np.eye(n_atoms, dtype=bool)
        for pairs in (bonds, angles[:, [0, 2]]):
            close[pairs[:, 0], pairs[:, 1]] = close[pairs[:, 1], pairs[:, 0]] = True
        i, j = np.triu_indices(len(heavy), k=1)
        keep = ~close[heavy[i], heavy[j]]
        clash_pairs = np.stack([heavy[i][keep], heavy[j][keep]], axis=1)
        centres = stereocentres(
            (r.name, {atom.name: atom.index for atom in r.atoms}) for r in topology.residues
        )
        trajectory = md.Trajectory(np.zeros((1, n_atoms, 3)), topology)
        return cls(
            bonds=bonds,
            angles=angles,
            heavy=heavy,
            clash_pairs=clash_pairs.reshape(-1, 2),
            chiral=np.array([atoms for _, _, atoms, _ in centres], dtype=np.int64).reshape(-1, 4),
            chiral_sign=np.array([sign for *_, sign in centres], dtype=np.float64),
            phi=md.compute_phi(trajectory)[0].reshape(-1, 4),
            psi=md.compute_psi(trajectory)[0].reshape(-1, 4),
        )


def _frames(positions: np.ndarray, indices: np.ndarray, name: str = "positions") -> np.ndarray:
    """``positions`` as float64 [F, n_atoms, 3], checked to hold every atom of ``indices``."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise InputError(f"{name} must be [n_frames, n_atoms, 3], got shape {positions.shape}")
    if indices.size and indices.max() >= positions.shape[1]:
        raise InputError(
            f"{name} of shape {positions.shape} has too few atoms for atom index {indices.max()}"
        )
    return positions


def _reference(values: np.ndarray, n: int, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (n,):
        raise InputError(f"{name} must have shape ({n},), got {values.shape}")
    if n == 0:
        raise InputError(f"{name} is empty: the topology has none to compare")
    return values


def bond_lengths(positions: np.ndarray, geometry: Geometry) -> np.ndarray:
    """[F, n_bonds] bond lengths (nm) of positions [F, n_atoms, 3] (nm)."""
    x = _frames(positions, geometry.bonds)
    return np.linalg.norm(x[:, geometry.bonds[:, 1]] - x[:, geometry.bonds[:, 0]], axis=-1)


def bond_angles(positions: np.ndarray, geometry: Geometry) -> np.ndarray:
    """[F, n_angles] bond angles i-j-k (rad, in [0, pi]) of positions [F, n_atoms, 3] (nm)."""
    x = _frames(positions, geometry.angles)
    i, j, k = geometry.angles.T
    u, v = x[:, i] - x[:, j], x[:, k] - x[:, j]
    cosine = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def bond_fraction(
    positions: np.ndarray, geometry: Geometry, reference_lengths: np.ndarray, tolerance: float = 0.1
) -> np.ndarray:
    """[F] share of bonds whose length is within ``tolerance`` (relative, 0.1 = ±10 %) of
    ``reference_lengths`` [n_bonds] (nm)."""
    reference = _reference(reference_lengths, len(geometry.bonds), "reference_lengths")
    deviation = np.abs(bond_lengths(positions, geometry) - reference)
    return (deviation <= tolerance * reference).mean(axis=-1)


def angle_deviation(
    positions: np.ndarray, geometry: Geometry, reference_angles: np.ndarray
) -> np.ndarray:
    """[F] mean absolute deviation (degrees) of the bond angles from ``reference_angles``
    [n_angles] (rad)."""
    reference = _reference(reference_angles, len(geometry.angles), "reference_angles")
    return np.degrees(np.abs(bond_angles(positions, geometry) - reference).mean(axis=-1))


def clash_score(
    positions: np.ndarray, geometry: Geometry, clash: float = 0.12, near: float = 0.5
) -> np.ndarray:
    """[F] 100 x (clash pairs closer than ``clash`` nm) / (clash pairs closer than ``near``
    nm), 0 in a frame where no pair is near.

    Clash pairs are heavy-atom pairs more than two bonds apart: DiAMoNDBack counts all
    heavy-atom pairs (1.2 Å and 5 Å), but bonded and 1-3 pairs sit close by design.
    """
    if not 0 < clash < near:
        raise InputError(f"need 0 < clash < near, got clash={clash} nm, near={near} nm")
    x = _frames(positions, geometry.clash_pairs)
    pairs = geometry.clash_pairs
    distance = np.linalg.norm(x[:, pairs[:, 0]] - x[:, pairs[:, 1]], axis=-1)
    n_near = (distance < near).sum(axis=-1)
    n_clash = (distance < clash).sum(axis=-1)
    return np.where(n_near > 0, 100.0 * n_clash / np.maximum(n_near, 1), 0.0)


def chirality(positions: np.ndarray, geometry: Geometry) -> np.ndarray:
    """[F, n_centres] hand (+1 or -1) of each stereocentre of ``geometry.chiral``: +1
    where it is the L amino acid's (at CA the CORN rule), -1 where it is the mirror
    image's."""
    x = _frames(positions, geometry.chiral)
    volume = chiral_volumes(x, geometry.chiral) * geometry.chiral_sign
    return np.where(volume >= 0, 1.0, -1.0)


def signed_dihedrals(positions: np.ndarray, quadruples: np.ndarray) -> np.ndarray:
    """[F, n] dihedral angles (rad, in (-pi, pi]) of atom ``quadruples`` [n, 4], in the
    IUPAC convention of :func:`mdtraj.compute_dihedrals` (trans = pi)."""
    quadruples = np.asarray(quadruples, dtype=np.int64)
    if quadruples.ndim != 2 or quadruples.shape[1] != 4:
        raise InputError(f"quadruples must be [n, 4], got shape {quadruples.shape}")
    x = _frames(positions, quadruples)
    b1, b2, b3 = (x[:, quadruples[:, m + 1]] - x[:, quadruples[:, m]] for m in range(3))
    c1, c2 = np.cross(b2, b3), np.cross(b1, b2)
    y = (b1 * c1).sum(-1) * np.linalg.norm(b2, axis=-1)
    angle = np.arctan2(y, (c1 * c2).sum(-1))
    return np.where(angle <= -np.pi, np.pi, angle)


def heavy_rmsd(a: np.ndarray, b: np.ndarray, heavy: np.ndarray) -> np.ndarray:
    """[F] RMSD (nm) over the ``heavy`` atoms between ``a`` and ``b`` [F, n_atoms, 3] (nm),
    without superposition: the CG frame already fixes the all-atom frame."""
    heavy = np.asarray(heavy, dtype=np.int64)
    a, b = _frames(a, heavy, "a"), _frames(b, heavy, "b")
    if a.shape != b.shape:
        raise InputError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    return np.sqrt(((a[:, heavy] - b[:, heavy]) ** 2).sum(-1).mean(-1))


def sample_rmsds(
    samples: np.ndarray, truth: np.ndarray, heavy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-atom RMSDs (nm) of backmapped samples to the truth and among themselves.

    Parameters
    ----------
    samples
        [S, F, n_atoms, 3] S samples of each of F frames (nm).
    truth
        [F, n_atoms, 3] the all-atom frames the CG frames came from (nm).
    heavy
        [n_heavy] atom indices to compare.

    Returns
    -------
    to_truth, among
        [S, F] RMSD of each sample to the truth, and [F] mean RMSD over sample pairs
        s < t (0 when S == 1).
    """
    samples = np.asarray(samples, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if samples.ndim != 4 or samples.shape[1:] != truth.shape:
        raise InputError(
            f"samples must be [S, *truth.shape], got {samples.shape} and truth {truth.shape}"
        )
    n_samples, n_frames = samples.shape[:2]
    to_truth = heavy_rmsd(
        samples.reshape(-1, *truth.shape[1:]), np.tile(truth, (n_samples, 1, 1)), heavy
    ).reshape(n_samples, n_frames)
    if n_samples == 1:
        return to_truth, np.zeros(n_frames)
    s, t = np.triu_indices(n_samples, k=1)
    x = samples[:, :, np.asarray(heavy, dtype=np.int64)]
    among = np.sqrt(((x[s] - x[t]) ** 2).sum(-1).mean(-1)).mean(axis=0)
    return to_truth, among


def diversity(to_truth: np.ndarray, among: np.ndarray) -> np.ndarray:
    """[F] DiAMoNDBack's diversity score (mean_s to_truth - among) / mean_s to_truth of
    ``to_truth`` [S, F] and ``among`` [F] (nm): 1 for identical samples (also where every
    sample equals the truth), 0 when samples spread as far apart as from the truth."""
    to_truth, among = np.asarray(to_truth, np.float64), np.asarray(among, np.float64)
    if to_truth.ndim != 2 or among.shape != to_truth.shape[1:]:
        raise InputError(
            f"to_truth must be [S, F] and among [F], got {to_truth.shape}, {among.shape}"
        )
    mean = to_truth.mean(axis=0)
    return np.where(mean > 0, (mean - among) / np.where(mean > 0, mean, 1.0), 1.0)
