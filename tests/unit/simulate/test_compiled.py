"""The model's forces compiled with torch.compile equal the eager ones; a failed or
wrong compilation falls back to eager, saying why."""

from __future__ import annotations

import logging

import pytest
import torch

from cgpipe.simulate import compiled


class Harmonic(torch.nn.Module):
    """A stand-in model: harmonic springs between consecutive beads."""

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        bonds = torch.linalg.vector_norm(x[:, 1:] - x[:, :-1], dim=-1)
        return (500.0 * (bonds - 0.38) ** 2).sum(-1)

    def energy_and_forces(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            energy = self.energy(x)
            (gradient,) = torch.autograd.grad(energy.sum(), x)
        return energy.detach(), -gradient


def test_compiled_forces_equal_eager_ones_at_any_batch_size():
    model = Harmonic()
    example = torch.randn(6, 4, 3, generator=torch.Generator().manual_seed(0))
    fast = compiled.energy_and_forces(model, example, compile=True)
    assert fast is not model.energy_and_forces
    for n in (6, 5, 2):  # removing failed replicas shrinks the batch
        x = example[:n] + 0.01
        energies, forces = fast(x)
        reference = model.energy_and_forces(x)
        torch.testing.assert_close(energies, reference[0])
        torch.testing.assert_close(forces, reference[1])


def test_a_failed_compilation_runs_eagerly_and_says_why(monkeypatch, caplog):
    model = Harmonic()

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    with caplog.at_level(logging.WARNING):
        chosen = compiled.energy_and_forces(model, torch.randn(2, 4, 3), compile=True)
    assert chosen == model.energy_and_forces
    assert "no C++ compiler" in caplog.text


def test_compiled_forces_that_disagree_are_not_used(monkeypatch, caplog):
    model = Harmonic()

    def wrong(energy):
        return lambda x: (energy(x), torch.zeros_like(x))

    monkeypatch.setattr(compiled, "compiled_forces", wrong)
    with caplog.at_level(logging.WARNING):
        chosen = compiled.energy_and_forces(model, torch.randn(2, 4, 3), compile=True)
    assert chosen == model.energy_and_forces
    assert "differ from eager" in caplog.text
    assert compiled.energy_and_forces(model, torch.randn(2, 4, 3), compile=False) == (
        model.energy_and_forces
    )


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    yield
    torch._dynamo.reset()
