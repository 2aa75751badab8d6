"""A tiny fold to backmap: ala2 on the backbone map and its CG frames, labelled by
trajectory (standing in for a simulation)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def backmap_inputs(ala2_backbone) -> dict:
    """The reference paths, the mapping, and the CG frames of every reference frame
    (standing in for a simulation)."""
    return {
        "references": ala2_backbone["references"],
        "mapping": ala2_backbone["mapping"],
        "simulation": ala2_backbone["cg"],
    }
