"""Amino acids by one-letter code, and the parsing of sequences.

Kept free of heavy imports: the workflow checks the systems sheet's sequences when it
starts, before any job runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from cgpipe.errors import InputError

ONE_LETTER: dict[str, str] = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS",
    "Q": "GLN", "E": "GLU", "G": "GLY", "H": "HIS", "I": "ILE",
    "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE", "P": "PRO",
    "S": "SER", "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}  # fmt: skip
CAPS = ("ACE", "NME")

STEREOCENTRES: dict[str, tuple[tuple[str, str, str, str, int], ...]] = {
    name: (("CA", "N", "C", "CB", 1),) for name in ONE_LETTER.values() if name != "GLY"
}
"""The stereocentres of each L amino acid, as (centre, a, b, c, sign): the sign of
(a - centre) x (b - centre) . (c - centre) in the natural residue, a geometric hand
whatever its Cahn-Ingold-Prelog label. Every CA with a CB is S (CYS's R is sulphur's
priority, not another geometry); THR's CB is R and ILE's CB S: with a, b, c in priority
order, R gives -1 and S +1. pdbfixer's own residue templates have these signs."""
STEREOCENTRES["THR"] += (("CB", "OG1", "CA", "CG2", -1),)
STEREOCENTRES["ILE"] += (("CB", "CA", "CG1", "CG2", 1),)


def stereocentres(
    residues: Iterable[tuple[str, Mapping[str, int]]],
) -> list[tuple[int, str, tuple[int, int, int, int], int]]:
    """Every stereocentre of :data:`STEREOCENTRES` that ``residues`` (each a residue name
    and its atoms' indices by name, in chain order) have all four atoms of, as (position
    of the residue in ``residues``, centre name, atom indices (centre, a, b, c), L sign):
    the one list of centres that the reference's preparation, the backmappers and the
    backmapping metrics share."""
    found = []
    for position, (name, atoms) in enumerate(residues):
        for centre, a, b, c, sign in STEREOCENTRES.get(name, ()):
            if all(atom in atoms for atom in (centre, a, b, c)):
                indices = (atoms[centre], atoms[a], atoms[b], atoms[c])
                found.append((position, centre, indices, sign))
    return found


def parse_sequence(sequence: str, source: str = "sequence") -> list[str]:
    """Three-letter residue names of a one-letter sequence (case-insensitive).

    Raises
    ------
    InputError
        Naming the first letter that is not one of the 20 standard amino acids and its
        position (1-based).
    """
    text = sequence.strip()
    if not text:
        raise InputError(f"{source}: the sequence is empty")
    residues = []
    for position, letter in enumerate(text, start=1):
        name = ONE_LETTER.get(letter.upper())
        if name is None:
            raise InputError(
                f"{source}: {letter!r} at position {position} of {text!r} is not an amino acid "
                f"(one-letter codes: {''.join(sorted(ONE_LETTER))})"
            )
        residues.append(name)
    return residues
