"""Physical constants in cgpipe's units (nm, ps, kJ/mol, K, amu).

Conversions to Å or kcal/mol belong at import/export edges only, spelled out there.
"""

BOLTZMANN = 0.00831446261815324  # kJ/mol/K (k_B * N_A)


def thermal_energy(temperature: float) -> float:
    """kT in kJ/mol for a temperature in K."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature} K")
    return BOLTZMANN * temperature
