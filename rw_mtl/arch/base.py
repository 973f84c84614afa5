"""The interface the training step needs from a multi-task architecture."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn


class MTLArchitecture(nn.Module):
    """A network that maps inputs to one prediction per task.

    It names its parameters as the paper splits them: shared θ (``shared_parameters``) and task-specific
    ψ_t (``task_parameters``). Gradient methods balance only θ. Architectures with one shared
    representation z feeding every head (HPS) also set ``supports_rep_mode`` and split ``forward`` into
    ``encode`` (x → z) and ``decode`` (z → predictions), so that gradients can be taken w.r.t. z.
    """

    supports_rep_mode: bool = False

    def __init__(self, task_names: Sequence[str]) -> None:
        super().__init__()
        if len(task_names) < 1:
            raise ValueError("an architecture needs at least one task")
        self.task_names = list(task_names)

    def forward(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Predictions for ``tasks`` (all tasks by default), keyed by task name."""
        raise NotImplementedError

    def shared_parameters(self) -> list[nn.Parameter]:
        """θ: the parameters every task's loss depends on."""
        raise NotImplementedError

    def task_parameters(self) -> list[nn.Parameter]:
        """ψ: all task-specific parameters (the heads)."""
        raise NotImplementedError

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The trainable parameters of the last shared layer of weights: the last module, in registration
        order, that owns a shared weight matrix or kernel (≥ 2 dims) — GradNorm's W, where it measures the
        task gradients' norms (``weighting.grad.mode=last_layer``). Parameters that a submodule declares
        off the forward path (``unused_parameters()``: BERT's pooler when z is not its output) are skipped,
        so that W is a layer every task loss depends on."""
        unused = {
            id(p)
            for module in self.modules()
            if hasattr(module, "unused_parameters")
            for p in module.unused_parameters()
        }
        last = last_weight_layer(self, {id(p) for p in self.shared_parameters()} - unused)
        if not last:
            raise ValueError(
                f"{type(self).__name__} has no shared weight matrix to serve as the last shared layer; "
                "set weighting.grad.mode=param or rep"
            )
        return last

    def epoch_start(self, epoch: int, max_epochs: int) -> None:
        """Called by the training loop at the start of every training epoch (architectures with an epoch
        schedule, such as Learning to Branch's temperature); no-op by default."""

    def regularization(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> Tensor | None:
        """A term the architecture adds to the training objective for ``inputs`` (predicting ``tasks``), such
        as DSelect-k's selector penalties; None (the default) adds nothing. It may depend on task-specific
        parameters only: with a gradient method the step adds its gradient to theirs, outside G."""
        return None

    def encode(self, inputs: Tensor) -> Tensor:
        """x → shared representation z (rep-mode architectures only)."""
        raise NotImplementedError(f"{type(self).__name__} has no single shared representation")

    def require_stages(self, encoder: nn.Module) -> None:
        """Stage-wise architectures need encoders that expose ``stages`` and ``stage_channels``."""
        if not hasattr(encoder, "stages") or not hasattr(encoder, "stage_channels"):
            raise ValueError(
                f"{type(self).__name__} needs an encoder with `stages` and `stage_channels` "
                f"({type(encoder).__name__} has none); use arch=hps with this dataset.encoder"
            )

    @staticmethod
    def make_heads(
        task_outputs: Mapping[str, int], head: Callable[[int, int], nn.Module], in_features: int
    ) -> nn.ModuleDict:
        """One head per task: ``head(in_features, num_outputs)``."""
        return nn.ModuleDict({name: head(in_features, outputs) for name, outputs in task_outputs.items()})

    def decode(self, rep: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """z → predictions (rep-mode architectures only)."""
        raise NotImplementedError(f"{type(self).__name__} has no single shared representation")

    def representation_layout(self) -> tuple[int, int]:
        """(C, dim): z's number of feature channels and the dimension of z ([B, …]) that holds them — 1 for
        [B, C] features and [B, C, H, W] maps, −1 for [B, L, C] tokens (rep-mode architectures only)."""
        raise NotImplementedError(f"{type(self).__name__} has no single shared representation")


def last_weight_layer(network: nn.Module, among: set[int] | None = None) -> list[nn.Parameter]:
    """The trainable parameters of the last module of ``network``, in registration order, that owns a weight
    matrix or kernel (≥ 2 dims); with ``among`` (parameter ids) only those parameters count. Empty if none."""
    last: list[nn.Parameter] = []
    for module in network.modules():
        own = [
            p
            for p in module.parameters(recurse=False)
            if p.requires_grad and (among is None or id(p) in among)
        ]
        if any(p.dim() >= 2 for p in own):
            last = own
    return last
