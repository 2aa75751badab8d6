"""The sample stage: independent configurations drawn from a model that samples without
dynamics (``"iid"`` in its ``samples``; the diffusion model, by reverse diffusion)."""

from cgpipe.sample.stage import run

__all__ = ["run"]
