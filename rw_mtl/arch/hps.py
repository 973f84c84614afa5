"""Hard Parameter Sharing (Caruana, 1993): one shared encoder, one head per task."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import Tensor, nn

from rw_mtl.arch.base import MTLArchitecture


class HPS(MTLArchitecture):
    """θ = the encoder, ψ_t = head t; z = encoder(x) is the shared representation used in rep mode.

    ``encoder`` builds the backbone (it must expose ``out_features``), ``head(in_features, num_outputs)``
    builds one head; ``task_outputs`` maps each task name to its head's output size.
    """

    supports_rep_mode = True

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
    ) -> None:
        super().__init__(list(task_outputs))
        self.encoder = encoder()
        self.heads = self.make_heads(task_outputs, head, self.encoder.out_features)

    def encode(self, inputs: Tensor) -> Tensor:
        return self.encoder(inputs)

    def decode(self, rep: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        return {name: self.heads[name](rep) for name in (tasks or self.task_names)}

    def forward(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        return self.decode(self.encode(inputs), tasks)

    def representation_layout(self) -> tuple[int, int]:
        """The encoder's ``out_features`` channels, on its ``channel_dim`` (default 1)."""
        return self.encoder.out_features, getattr(self.encoder, "channel_dim", 1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def task_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())
