"""Progressive Layered Extraction (PLE), Tang et al. (RecSys 2020, Section 4.3), as LibMTL builds it
(LibMTL/architecture/PLE.py@3928656): CGC stacked level by level through the encoder.

The experts — S shared ones and E_t of each task t, each a copy of the dataset's encoder — are cut into
levels (``encoder_levels``: a ResNet's stem, layer1, …, layer4, as LibMTL; other encoders' stages). Task t
keeps its own path x_t^0 = x and, at every level l,

    x_t^{l+1} = Σ_e g_t^l(x_t^l)_e f_e^l(x_t^l),   e over [shared experts; task t's experts],
    g_t^l(x) = softmax(W_t^l flatten(x) + b_t^l),

and head t reads x_t^L (through the encoder's tail, part of the last level). As in LibMTL, the shared
experts of a level run on every task's path (Tang et al. also give them a path of their own, mixed by a
shared gate over all experts; LibMTL has no such gate); on the first level every path is the input, so
they run once. A gate's input size is the flattened size of its level's input, measured by one
evaluation-mode pass of zeros of shape ``img_size`` through the first shared expert (LibMTL measures the
same with a random input).

θ (shared) = the shared experts of every level (LibMTL's ``get_share_params``); ψ_t = task t's experts,
gates and head. Defaults ``shared_experts`` 1, ``task_experts`` 1: LibMTL's own runs of PLE
(tests/test_nyu.py@ed7022f, ``--num_experts 1 1 1 1``). LibMTL at the paper's time ran multi-input data
by computing only the asked task's path (``forward_task``), as here; it refuses such data since d3883aa.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from rw_mtl.arch.experts import (
    ExpertArchitecture,
    check_count,
    encoder_levels,
    mix,
    softmax_gate,
    task_expert_counts,
)


def level_major(encoders: list[nn.Module], num_levels: int) -> nn.ModuleList:
    """[level][expert]: the levels of every expert, grouped by level."""
    cut = [encoder_levels(encoder) for encoder in encoders]
    return nn.ModuleList([nn.ModuleList([levels[index] for levels in cut]) for index in range(num_levels)])


def level_input_sizes(levels: Sequence[nn.Module], img_size: Sequence[int]) -> list[int]:
    """The flattened per-sample size of every level's input, from one evaluation-mode pass of zeros (no
    statistics updated, no random numbers drawn)."""
    sizes, features = [], torch.zeros(1, *img_size)
    chain = nn.ModuleList(levels)
    chain.eval()
    with torch.no_grad():
        for level in levels:
            sizes.append(math.prod(features.shape[1:]))
            features = level(features)
    chain.train()
    return sizes


class PLE(ExpertArchitecture):
    """``shared_experts`` shared experts and ``task_experts`` of each task's own (one count, or a list in
    task order) at every level of the encoder, mixed per task and level by softmax gates."""

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        img_size: Sequence[int] | None = None,
        shared_experts: int = 1,
        task_experts: int | Sequence[int] = 1,
    ) -> None:
        super().__init__(task_outputs, img_size)
        counts = task_expert_counts(task_experts, self.task_names)
        shared = [encoder() for _ in range(check_count(shared_experts, "shared_experts", 1))]
        self.require_stages(shared[0])
        self.num_levels = len(encoder_levels(shared[0]))
        self.shared = level_major(shared, self.num_levels)
        self.task_experts = nn.ModuleDict(
            {
                name: level_major([encoder() for _ in range(counts[name])], self.num_levels)
                for name in task_outputs
            }
        )
        sizes = level_input_sizes([level[0] for level in self.shared], self.img_size)
        self.gates = nn.ModuleDict(
            {
                name: nn.ModuleList([softmax_gate(size, len(shared) + counts[name]) for size in sizes])
                for name in task_outputs
            }
        )
        self.heads = self.make_heads(task_outputs, head, shared[0].out_features)

    def forward(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        tasks = list(tasks or self.task_names)
        self.flat_inputs(inputs)
        paths = dict.fromkeys(tasks, inputs)
        first_shared = [expert(inputs) for expert in self.shared[0]]
        for level in range(self.num_levels):
            for name in tasks:
                features = paths[name]
                shared = first_shared if level == 0 else [expert(features) for expert in self.shared[level]]
                own = [expert(features) for expert in self.task_experts[name][level]]
                paths[name] = mix(shared + own, self.gates[name][level](features.flatten(1)))
        return {name: self.heads[name](paths[name]) for name in tasks}

    def shared_experts(self) -> nn.Module:
        return self.shared

    def last_shared_experts(self) -> list[nn.Module]:
        return list(self.shared[-1])
