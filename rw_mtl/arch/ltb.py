"""Learning to Branch (LTB), Guo, Lee & Ulbricht (ICML 2020), as LibMTL builds it
(LibMTL/architecture/LTB.py@3928656).

One column per task, each a copy of the dataset's encoder cut into levels (``encoder_levels``: a ResNet's
stem, layer1, …, layer4, as LibMTL; other encoders' stages). Before every level l ≥ 1 each task's column
picks the parent column whose output it reads, by a Gumbel-softmax sample over learnable logits α_l ∈ R^{T×T}
(initialised to ones):

    x_t^{l} = Σ_j b_l[t, j] f_j^{l−1}(x_j^{l−1}),    b_l[t] = gumbel_softmax(α_l[t], τ, hard)  (one-hot;
                                                     gradients through the soft sample, straight-through)

with the schedule of LibMTL: during warm-up (epoch < ``warmup_fraction`` · epochs) b = all ones (every
column reads the sum of all parents), then τ = ``temperature_scale`` · epochs / √(epoch + 1) (LibMTL:
epochs/100 warm-up epochs and τ = (epochs/20)/√(epoch+1), so the defaults 0.01 and 0.05). Head t reads
column t's last level (through the encoder's tail). The epoch comes from the training loop
(``epoch_start``) and is saved with the weights, so a checkpoint evaluates with its own schedule.

LibMTL samples the branching in evaluation too (``eval_branching: sample``, the default); ``argmax`` reads
the most likely tree instead, deterministic. θ (shared) = every column and α (LibMTL's
``get_share_params``: the whole encoder); ψ_t = head t. The tasks' columns differ, so rep mode is
unavailable. LibMTL at the paper's time also ran multi-input data (every column on the asked task's
input); it refuses such data since d3883aa.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rw_mtl.arch.base import MTLArchitecture, last_weight_layer
from rw_mtl.arch.experts import encoder_levels

EVAL_BRANCHINGS = ("sample", "argmax")


class LTB(MTLArchitecture):
    """T encoder columns whose levels branch from one another by Gumbel-softmax samples of α."""

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        warmup_fraction: float = 0.01,
        temperature_scale: float = 0.05,
        eval_branching: str = "sample",
    ) -> None:
        super().__init__(list(task_outputs))
        if not 0 <= warmup_fraction <= 1:
            raise ValueError(f"arch.model.warmup_fraction must be in [0, 1], got {warmup_fraction}")
        if not temperature_scale > 0:
            raise ValueError(f"arch.model.temperature_scale must be positive, got {temperature_scale}")
        if eval_branching not in EVAL_BRANCHINGS:
            raise ValueError(
                f"arch.model.eval_branching must be one of {list(EVAL_BRANCHINGS)}, got {eval_branching!r}"
            )
        self.warmup_fraction, self.temperature_scale = float(warmup_fraction), float(temperature_scale)
        self.eval_branching = eval_branching
        columns = [encoder() for _ in task_outputs]
        self.require_stages(columns[0])
        cut = [encoder_levels(column) for column in columns]
        if len(cut[0]) < 2:
            raise ValueError(
                f"LTB branches between the encoder's stages, but {type(columns[0]).__name__} has one; "
                "use an encoder with several stages or arch=hps"
            )
        self.levels = nn.ModuleList(
            [nn.ModuleList([levels[index] for levels in cut]) for index in range(len(cut[0]))]
        )
        self.alpha = nn.Parameter(torch.ones(len(self.levels) - 1, len(columns), len(columns)))
        self.heads = self.make_heads(task_outputs, head, columns[0].out_features)
        self.epoch, self.epochs = 0, None

    # ------------------------------------------------------------------------------------------ schedule
    def epoch_start(self, epoch: int, max_epochs: int) -> None:
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(
                f"LTB's temperature schedule needs the number of training epochs, got {max_epochs!r}: set "
                "trainer.max_epochs (training by max_steps alone leaves it open)"
            )
        self.epoch, self.epochs = epoch, max_epochs

    def warming_up(self) -> bool:
        """epoch < warmup_fraction · epochs (epoch 0 before any ``epoch_start``, when the fraction is > 0)."""
        if self.epochs is None:
            return self.warmup_fraction > 0
        return self.epoch < self.warmup_fraction * self.epochs

    def temperature(self) -> float:
        """τ = temperature_scale · epochs / √(epoch + 1)."""
        if self.epochs is None:
            raise ValueError(
                "LTB's temperature needs the number of training epochs, which the training loop passes "
                "to epoch_start(epoch, max_epochs): set trainer.max_epochs"
            )
        return self.temperature_scale * self.epochs / math.sqrt(self.epoch + 1)

    def branch_probabilities(self) -> Tensor:
        """The relaxed branching without noise, softmax(α / τ) [L−1, T, T] (all ones during warm-up). A hard
        sample's parent is argmax(α + g) for Gumbel noise g, drawn from softmax(α) at any τ; τ shapes the
        relaxation softmax((α + g) / τ) the straight-through gradient of α flows through."""
        if self.warming_up():
            return torch.ones_like(self.alpha)
        return F.softmax(self.alpha.detach() / self.temperature(), dim=-1)

    def branching(self) -> Tensor:
        """b [L−1, T, T] for this forward: ones in warm-up, else a hard Gumbel-softmax sample of α (in
        evaluation with ``eval_branching=argmax``: the one-hot of α's largest entry per row)."""
        if self.warming_up():
            return torch.ones_like(self.alpha)
        if self.training or self.eval_branching == "sample":
            return F.gumbel_softmax(self.alpha, tau=self.temperature(), hard=True, dim=-1)
        return F.one_hot(self.alpha.argmax(dim=-1), self.alpha.shape[-1]).to(self.alpha.dtype)

    def get_extra_state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "epochs": self.epochs}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.epoch, self.epochs = state["epoch"], state["epochs"]

    # ------------------------------------------------------------------------------------------- network
    def forward(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        tasks = list(tasks or self.task_names)
        branching = self.branching()
        features = torch.stack([column(inputs) for column in self.levels[0]])
        for index in range(1, len(self.levels) - 1):
            parents = torch.einsum("tj,j...->t...", branching[index - 1], features).unbind(0)
            features = torch.stack([column(x) for column, x in zip(self.levels[index], parents, strict=True)])
        wanted = [self.task_names.index(name) for name in tasks]  # the last level: asked tasks only
        parents = torch.einsum("tj,j...->t...", branching[-1][wanted], features).unbind(0)
        return {
            name: self.heads[name](self.levels[-1][t](x))
            for name, t, x in zip(tasks, wanted, parents, strict=True)
        }

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.levels.parameters(), self.alpha]

    def task_parameters(self) -> list[nn.Parameter]:
        return list(self.heads.parameters())

    def last_shared_layer(self) -> list[nn.Parameter]:
        """The last weight layer of every column at the last level before the final branching: the last
        layers whose outputs every task's final level may read."""
        return [p for column in self.levels[-2] for p in last_weight_layer(column)]
