"""Force-field files: the solute's, given by ``reference.forcefield``, and the solvent's,
added from ``reference.solvent`` — each file once.

OpenMM's ``ForceField`` happily loads the same implicit-solvent file twice and then
builds two generalised-Born forces, so a solvent file listed in ``forcefield`` while
``solvent`` also names one doubles the solvation energy without any warning (the
default config of cgpipe 0.1 did exactly that). The files are therefore checked here,
when the configuration is read, and the built system is checked again by the
reference stage (:func:`cgpipe.reference.structure.check_system`).

Kept free of OpenMM imports: the workflow validates its configuration at start-up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from cgpipe.errors import InputError

# Basenames of OpenMM's water-model files (amber14/tip3p.xml, charmm36/water.xml,
# tip4pew.xml, opc3.xml, ...); implicit-solvent files live under implicit/.
_WATER_FILE = re.compile(r"^(tip\d\w*|spce|opc\d?|water|swm\d\w*)(-[\w-]+)?\.xml$", re.IGNORECASE)


def is_solvent_file(name: str) -> bool:
    """Whether an OpenMM force-field file describes a solvent (implicit or water)."""
    parts = name.replace("\\", "/").split("/")
    return "implicit" in parts[:-1] or bool(_WATER_FILE.match(parts[-1]))


def solvent_files(forcefield: Sequence[str], solvent: str) -> list[str]:
    """The force-field files of ``solvent`` that go with the solute's force field."""
    if solvent == "vacuum":
        return []
    if solvent in ("obc2", "gbn2"):
        return [f"implicit/{solvent}.xml"]
    if any(name.startswith("amber14") for name in forcefield):
        return ["amber14/tip3p.xml"]
    if any(name.startswith("charmm36") for name in forcefield):
        return ["charmm36/water.xml"]
    return ["tip3p.xml"]


def forcefield_problem(forcefield: Sequence[str], solvent: str) -> str | None:
    """Why the solute files ``forcefield`` and ``solvent`` cannot be combined, or ``None``.

    Refused: a file listed twice; an implicit-solvent file in ``forcefield`` (the
    solvent is chosen by ``solvent``, vacuum included); a water-model file in
    ``forcefield`` while ``solvent`` is explicit water, which adds its own.
    """
    repeated = sorted(name for name, count in Counter(forcefield).items() if count > 1)
    if repeated:
        return f"lists {repeated[0]} twice; give each force-field file once"
    for name in forcefield:
        if not is_solvent_file(name):
            continue
        implicit = "implicit" in name.replace("\\", "/").split("/")[:-1]
        if implicit or solvent == "tip3p":
            return (
                f"lists the solvent file {name}, but the solvent is chosen by reference.solvent "
                f"(here {solvent}, which adds {solvent_files(forcefield, solvent) or 'nothing'}): "
                "list only the solute's files"
            )
    return None


def all_files(forcefield: Sequence[str], solvent: str) -> list[str]:
    """The solute's files then the solvent's: what ``openmm.app.ForceField`` loads.

    Raises
    ------
    InputError
        Where :func:`forcefield_problem` finds one, naming the key.
    """
    problem = forcefield_problem(forcefield, solvent)
    if problem is not None:
        raise InputError(f"reference.forcefield {list(forcefield)} {problem}")
    return [*forcefield, *solvent_files(forcefield, solvent)]
