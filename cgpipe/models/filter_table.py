"""SchNet's continuous filters as cubic Hermite tables in the pair distance, for
simulation.

Each interaction's filter W(r) = MLP(Gaussians(r)) * cosine_cutoff(r) is a function of
one scalar, the pair distance, yet evaluating it costs a ``num_gaussians x num_filters``
and a ``num_filters x num_filters`` matrix product per pair: four fifths of the default
CGSchNet's arithmetic, and more than 95 % of a protein-sized network's (128 filters, 50
Gaussians). A frozen model's filters are therefore tabulated once on a uniform grid of
[0, cutoff] (values and derivatives by forward-mode autograd, in double precision) and
evaluated per pair as a cubic Hermite polynomial: a gather of four coefficient rows and
a Horner step, about 10 operations per filter instead of ~2 000-22 000.

Accuracy: the Gaussians are the filters' narrowest features (width s = cutoff /
(num_gaussians - 1)); with ``points_per_width`` grid intervals per s the Hermite error
bound h^4 max|W''''| / 384 is below 1e-7 of the filter's scale at 16, and the derivative's
below 1e-5. The simulate stage checks the tabulated forces against the exact ones before
it uses them (:func:`cgpipe.simulate.compiled.energy_and_forces`).

The derivative with respect to r is evaluated in the forward pass and kept for backward
(one tensor the filters' size), so the forces need no graph of the polynomial; the table
is not differentiable with respect to the network's parameters: it is for a frozen
model, and :meth:`cgpipe.models.schnet.SchNet.train` drops it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch


class FilterTable(torch.nn.Module):
    """Filters of ``n_tables`` interactions tabulated over [0, cutoff].

    Parameters
    ----------
    functions
        One callable per interaction, r [n] (nm, float64) -> filters [n, num_filters]
        (already damped by the cosine cutoff).
    cutoff
        nm; distances are clamped to [0, cutoff].
    n_intervals
        Grid intervals over [0, cutoff].
    dtype, device
        Of the table (the model's).
    """

    def __init__(
        self,
        functions: Sequence[Callable[[torch.Tensor], torch.Tensor]],
        cutoff: float,
        n_intervals: int,
        *,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        super().__init__()
        if n_intervals < 1:
            raise ValueError(f"need at least one grid interval, got {n_intervals}")
        self.cutoff = float(cutoff)
        self.n_intervals = int(n_intervals)
        self.spacing = self.cutoff / self.n_intervals
        grid = torch.linspace(0.0, self.cutoff, self.n_intervals + 1, dtype=torch.float64)
        coefficients = []
        for function in functions:
            values, slopes = torch.func.jvp(function, (grid,), (torch.ones_like(grid),))
            coefficients.append(_hermite(values, slopes * self.spacing))
        # [n_tables, 4, n_intervals, num_filters]: each interaction's c0..c3 contiguous
        table = torch.stack(coefficients).to(device=device, dtype=dtype)
        self.register_buffer("table", table, persistent=False)

    def forward(self, distances: torch.Tensor) -> list[torch.Tensor]:
        """Each interaction's filters [n, num_filters] at distances [n] (nm)."""
        u = distances.clamp(0.0, self.cutoff) / self.spacing
        interval = u.detach().floor().clamp(max=self.n_intervals - 1)
        t = (u - interval).unsqueeze(-1)
        index = interval.long()
        return [_Polynomial.apply(t, index, self.table[k]) for k in range(self.table.shape[0])]


def _hermite(values: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """Coefficients [4, n_intervals, n] of p(t) = c0 + c1 t + c2 t^2 + c3 t^3 on each
    interval from the values and the slopes (per unit t) at its ends."""
    v0, v1 = values[:-1], values[1:]
    m0, m1 = slopes[:-1], slopes[1:]
    return torch.stack(
        [v0, m0, -3.0 * v0 - 2.0 * m0 + 3.0 * v1 - m1, 2.0 * v0 + m0 - 2.0 * v1 + m1]
    )


class _Polynomial(torch.autograd.Function):
    """p(t) on interval ``index`` of one table [4, n_intervals, n], with dp/dt kept for
    backward (t's gradient flows on to r through u = r / spacing)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        t: torch.Tensor,
        index: torch.Tensor,
        coefficients: torch.Tensor,  # noqa: ANN001
    ) -> torch.Tensor:
        c0, c1, c2, c3 = (coefficients[k].index_select(0, index) for k in range(4))
        ctx.save_for_backward((3.0 * c3 * t + 2.0 * c2) * t + c1)
        return ((c3 * t + c2) * t + c1) * t + c0

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205 - autograd's signature
        (slope,) = ctx.saved_tensors
        return (grad * slope).sum(-1, keepdim=True), None, None


def intervals_for(cutoff: float, num_gaussians: int, points_per_width: int) -> int:
    """Grid intervals over [0, cutoff] with ``points_per_width`` per Gaussian width."""
    width = cutoff / max(num_gaussians - 1, 1)
    return max(1, math.ceil(points_per_width * cutoff / width))
