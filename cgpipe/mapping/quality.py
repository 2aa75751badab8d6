"""How much of the all-atom structure a linear CG map keeps: its best linear reconstruction.

A map Xi [n_beads, n_atoms] loses the atomic detail inside each bead; the reconstruction
error of the best linear decoder D [n_atoms, n_beads], x_hat = D Xi x, measures that loss
in nm, as in Autograin's auto-encoder view of coarse-graining (Wang & Gomez-Bombarelli,
npj Comput. Mater. 5, 125 (2019)). The decoder's rows sum to 1, so the reconstruction is
translation-equivariant (it acts on each Cartesian coordinate alike, so it is also
rotation-equivariant) and frames need no alignment. :func:`random_assignment` draws the
floor every learned map should beat: a random connected partition with as many beads.
"""

from __future__ import annotations

import collections

import mdtraj as md
import numpy as np

from cgpipe.mapping.groups import attach_hydrogens, components, heavy_atoms, neighbours


def _check_frames(xi: np.ndarray, x: np.ndarray) -> None:
    if xi.ndim != 2 or x.ndim != 3 or x.shape[1:] != (xi.shape[1], 3):
        raise ValueError(
            f"frames of shape {x.shape} do not fit a map of shape {xi.shape}: expected "
            f"[n_frames, {xi.shape[1] if xi.ndim == 2 else 'n_atoms'}, 3]"
        )


def best_linear_decoder(xi: np.ndarray, train_x: np.ndarray) -> np.ndarray:
    """The least-squares decoder of a map: argmin_D sum_frames |x - D Xi x|^2, rows of D
    summing to 1.

    The three Cartesian coordinates of every frame are samples of one linear problem.
    The constraint is eliminated by measuring every position from the last bead:
    x - z_last = D[:, :-1] (z[:-1] - z_last). A problem without a unique minimiser (too few
    frames) gets the minimum-norm one.

    Parameters
    ----------
    xi
        [n_beads, n_atoms] the coordinate map, rows summing to 1.
    train_x
        [n_frames, n_atoms, 3] all-atom positions (nm) the decoder is fitted on.

    Returns
    -------
    numpy.ndarray
        [n_atoms, n_beads] the decoder D, float64.
    """
    xi = np.asarray(xi, dtype=np.float64)
    x = np.asarray(train_x, dtype=np.float64)
    _check_frames(xi, x)
    n_beads, n_atoms = xi.shape
    z = np.einsum("ba,fad->fbd", xi, x)
    # One sample per (frame, coordinate): atoms and beads as columns.
    x_samples = x.transpose(0, 2, 1).reshape(-1, n_atoms)
    z_samples = z.transpose(0, 2, 1).reshape(-1, n_beads)
    last = z_samples[:, -1:]
    d = np.empty((n_atoms, n_beads))
    if n_beads > 1:
        d[:, :-1] = np.linalg.lstsq(z_samples[:, :-1] - last, x_samples - last, rcond=None)[0].T
    d[:, -1] = 1.0 - d[:, :-1].sum(axis=1)
    return d


def reconstruction_error(xi: np.ndarray, d: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[n_frames] the RMS over atoms of |x - D Xi x| per frame, in nm.

    Parameters
    ----------
    xi
        [n_beads, n_atoms] the coordinate map.
    d
        [n_atoms, n_beads] the decoder (e.g. :func:`best_linear_decoder`).
    x
        [n_frames, n_atoms, 3] all-atom positions in nm.
    """
    xi = np.asarray(xi, dtype=np.float64)
    d = np.asarray(d, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    _check_frames(xi, x)
    if d.shape != xi.T.shape:
        raise ValueError(f"decoder of shape {d.shape}, expected {xi.T.shape}")
    residual = x - np.einsum("ab,bc,fcd->fad", d, xi, x)
    return np.sqrt((residual**2).sum(axis=-1).mean(axis=1))


def random_assignment(topology: md.Topology, n_beads: int, seed: int) -> np.ndarray:
    """A random partition of the heavy atoms into ``n_beads`` bonded groups, each hydrogen
    with its heavy atom: the floor a learned map of as many beads should beat.

    Beads grow from random seed atoms (at least one per molecule), one random bead at a
    time taking a random unassigned heavy atom bonded to it, until every heavy atom is in
    a bead.

    Parameters
    ----------
    topology
        The all-atom topology (bonds included).
    n_beads
        Beads wanted: at least the number of molecules, at most the heavy atoms.
    seed
        Seeds the draw.

    Returns
    -------
    numpy.ndarray
        [n_atoms] the bead of each atom, 0 … n_beads - 1.
    """
    rng = np.random.default_rng(seed)
    heavy = heavy_atoms(topology)
    bonded = neighbours(topology)
    molecules = components(bonded, heavy.tolist())
    if not len(molecules) <= n_beads <= len(heavy):
        raise ValueError(
            f"a random connected map of {n_beads} beads needs between {len(molecules)} "
            f"(the molecules) and {len(heavy)} (the heavy atoms) beads"
        )
    starts = [int(rng.choice(molecule)) for molecule in molecules]
    rest = np.setdiff1d(heavy, starts)
    starts += rng.choice(rest, size=n_beads - len(starts), replace=False).tolist()
    label_of = {atom: bead for bead, atom in enumerate(starts)}
    members: dict[int, list[int]] = collections.defaultdict(list)
    for atom, bead in label_of.items():
        members[bead].append(atom)
    heavy_set = set(heavy.tolist())
    while len(label_of) < len(heavy):
        frontier = {
            bead: sorted(
                {o for a in atoms for o in bonded[a] if o in heavy_set and o not in label_of}
            )
            for bead, atoms in members.items()
        }
        growing = sorted(bead for bead, atoms in frontier.items() if atoms)
        bead = int(rng.choice(growing))
        atom = int(rng.choice(frontier[bead]))
        label_of[atom] = bead
        members[bead].append(atom)
    return attach_hydrogens(topology, label_of)
