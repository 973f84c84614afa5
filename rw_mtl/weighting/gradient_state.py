"""Running state shaped like the task gradients G [T, D], whose width D is known only at the first step.

DB-MTL (an average of past task gradients), ExcessMTL (AdaGrad's accumulated squared gradients) and MoCo
(its tracked gradients Y) keep one [T, D] buffer each. D depends on the mode and the model (θ's size, z's
size), so the buffer is created empty and takes G's shape, as zeros, the first time G is seen. As a buffer
it moves with the method between devices and is saved in checkpoints; loading a checkpoint gives it the
saved shape first, so a fresh method resumes from a trained one's state. When that first step is skipped
(``on_nonfinite=skip``) the guard puts the sized buffer back to zeros
(``NonFiniteGuard.keep_state_if_skipped``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn


class GradientShapedState(nn.Module):
    """Mixin for a weighting method with [T, D] buffers named in ``gradient_shaped``."""

    gradient_shaped: ClassVar[tuple[str, ...]] = ()

    def _register_gradient_shaped(self) -> None:
        for name in self.gradient_shaped:
            self.register_buffer(name, torch.zeros(0))

    def _gradient_shaped(self, name: str, grads: Tensor) -> Tensor:
        """The buffer ``name``, created as zeros shaped like ``grads`` at first use (a shape check on the
        host: no device sync). A different width later means the mode or the model changed under it."""
        buffer = getattr(self, name)
        if buffer.numel() == 0:
            buffer = torch.zeros_like(grads)
            setattr(self, name, buffer)
        elif buffer.shape != grads.shape:
            raise ValueError(
                f"{type(self).__name__} keeps a running {name} of shape {tuple(buffer.shape)} but got task "
                f"gradients of shape {tuple(grads.shape)}; its state belongs to one model and one "
                "weighting.grad.mode"
            )
        return buffer

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        for name in self.gradient_shaped:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                setattr(self, name, torch.zeros_like(saved, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
