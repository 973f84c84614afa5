"""What the mixture-of-experts architectures (MMoE, CGC, PLE, DSelect-k) and Learning to Branch share:
experts built from the dataset's encoder, gates that read the flattened input, the gated sum of expert
outputs, the encoder's levels (where PLE gates and LTB branches) and the split of θ and ψ.

As in LibMTL (LibMTL/architecture/{MMoE,CGC,PLE,DSelect_k,LTB}.py@3928656), every expert is a whole copy of
the dataset's encoder and every gate reads the flattened input, whose size LibMTL takes from ``--img_size``;
here that is ``arch.model.img_size``, by default the dataset's ``img_size`` (rw_mtl/conf/dataset/<name>.yaml).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from rw_mtl.arch.base import MTLArchitecture, last_weight_layer


def check_img_size(img_size: Sequence[int] | None, arch: str) -> tuple[int, ...]:
    """The per-sample input shape the gates are built for, e.g. (3, 288, 384); a missing one names the key."""
    if img_size is None:
        raise ValueError(
            f"{arch} gates on the flattened input, so it needs the input's size: set dataset.img_size (or "
            "arch.model.img_size) to the per-sample shape, e.g. [3, 288, 384]; datasets without fixed-size "
            "inputs (token ids) cannot use it"
        )
    shape = tuple(int(size) for size in img_size)
    if not shape or any(size < 1 for size in shape):
        raise ValueError(f"arch.model.img_size must be positive sizes such as [3, 288, 384], got {img_size}")
    return shape


def check_count(value: int, key: str, minimum: int) -> int:
    """An integer hyperparameter ≥ ``minimum``, or an error naming its key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"arch.model.{key} must be an integer ≥ {minimum}, got {value!r}")
    return value


def task_expert_counts(task_experts: int | Sequence[int], task_names: Sequence[str]) -> dict[str, int]:
    """Each task's number of own experts: one count for every task, or one per task in task order (LibMTL's
    ``--num_experts`` after the shared count)."""
    counts = [task_experts] * len(task_names) if isinstance(task_experts, int) else list(task_experts)
    if len(counts) != len(task_names):
        raise ValueError(
            f"arch.model.task_experts must be one count or one per task ({len(task_names)}: "
            f"{list(task_names)}), got {task_experts!r}"
        )
    return {
        name: check_count(count, "task_experts", 0) for name, count in zip(task_names, counts, strict=True)
    }


def softmax_gate(in_features: int, num_experts: int) -> nn.Sequential:
    """A task's gate over ``num_experts`` experts: Linear on the flattened input, then a softmax (Ma et al.,
    2018, Eq. 5; LibMTL's ``gate_specific``, PyTorch's default Linear initialisation)."""
    return nn.Sequential(nn.Linear(in_features, num_experts), nn.Softmax(dim=-1))


def mix(expert_outputs: Sequence[Tensor], weights: Tensor) -> Tensor:
    """Σ_e w_be f_e(x)_b: the gated sum of E expert outputs (each [B, ...]) with per-sample weights [B, E]."""
    return torch.einsum("be...,be->b...", torch.stack(list(expert_outputs), dim=1), weights)


def encoder_levels(encoder: nn.Module) -> list[nn.Module]:
    """The encoder cut where PLE gates and LTB branches, the encoder's tail (pooling, Office's hidden layer)
    joining the last piece.

    LibMTL's PLE and LTB run a ResNet as five levels: the stem (conv1, bn1, relu, maxpool), layer1, …,
    layer4. Encoders that mark their stem (``stem_length``: the stem's modules at the start of stage 0, as
    ``TimmResNet``) are cut the same way; others into their ``stages``.
    """
    stages = list(encoder.stages)
    stem = getattr(encoder, "stem_length", None)
    if stem is not None:
        stages = [stages[0][:stem], stages[0][stem:], *stages[1:]]
    tail = getattr(encoder, "tail", None)
    if tail is not None:
        stages[-1] = nn.Sequential(stages[-1], tail)
    return stages


def build_experts(encoder: Callable[[], nn.Module], count: int) -> nn.ModuleList:
    """``count`` independently initialised copies of the dataset's encoder."""
    return nn.ModuleList([encoder() for _ in range(count)])


class ExpertArchitecture(MTLArchitecture):
    """A gated mixture of experts on inputs of the fixed per-sample shape ``img_size``.

    θ (shared) = the experts every task's gate reads (``shared_experts``), as LibMTL's ``get_share_params``;
    ψ = everything else: the gates, any task-specific experts and the heads. Every task mixes the experts
    with its own weights, so the tasks' representations differ and rep mode is unavailable (use
    ``weighting.grad.mode=param``).
    """

    def __init__(self, task_outputs: Mapping[str, int], img_size: Sequence[int] | None) -> None:
        super().__init__(list(task_outputs))
        self.img_size = check_img_size(img_size, type(self).__name__)
        self.input_features = math.prod(self.img_size)

    def shared_experts(self) -> nn.Module:
        """The module holding every shared expert."""
        raise NotImplementedError

    def last_shared_experts(self) -> list[nn.Module]:
        """The shared experts whose outputs the gates mix last (GradNorm's last shared layer lies in them)."""
        raise NotImplementedError

    def flat_inputs(self, inputs: Tensor) -> Tensor:
        """The gates' input [B, prod(img_size)]; an input of another shape names the key to fix."""
        if tuple(inputs.shape[1:]) != self.img_size:
            raise ValueError(
                f"{type(self).__name__} was built for inputs of shape {list(self.img_size)} but got "
                f"{list(inputs.shape[1:])}; set dataset.img_size (or arch.model.img_size) to the latter"
            )
        return inputs.flatten(1)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared_experts().parameters())

    def task_parameters(self) -> list[nn.Parameter]:
        shared = {id(p) for p in self.shared_parameters()}
        return [p for p in self.parameters() if id(p) not in shared]

    def last_shared_layer(self) -> list[nn.Parameter]:
        """Every last shared expert's last weight layer: all tasks' gates mix these outputs."""
        return [p for expert in self.last_shared_experts() for p in last_weight_layer(expert)]


class GatedExperts(ExpertArchitecture):
    """One level of experts mixed per task: head t reads Σ_e g_t(x)_e f_e(x) over the shared experts and
    task t's own ones (CGC), with g_t = ``make_gate(number of experts)`` on the flattened input x.

    ``shared_count`` shared experts, ``task_counts[t]`` experts of task t only; the shared experts run once
    per batch, a task's own experts only when that task is predicted.
    """

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        img_size: Sequence[int] | None,
        shared_count: int,
        task_counts: Mapping[str, int],
    ) -> None:
        super().__init__(task_outputs, img_size)
        self.experts = build_experts(encoder, shared_count)
        self.task_experts = nn.ModuleDict(
            {name: build_experts(encoder, task_counts[name]) for name in task_outputs}
        )
        self.gates = nn.ModuleDict(
            {name: self.make_gate(shared_count + task_counts[name]) for name in task_outputs}
        )
        self.heads = self.make_heads(task_outputs, head, self.experts[0].out_features)

    def make_gate(self, num_experts: int) -> nn.Module:
        """A module mapping the flattened input [B, prod(img_size)] to expert weights [B, num_experts]."""
        return softmax_gate(self.input_features, num_experts)

    def forward(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        flat = self.flat_inputs(inputs)
        shared = [expert(inputs) for expert in self.experts]
        predictions = {}
        for name in tasks or self.task_names:
            outputs = shared + [expert(inputs) for expert in self.task_experts[name]]
            predictions[name] = self.heads[name](mix(outputs, self.gates[name](flat)))
        return predictions

    def shared_experts(self) -> nn.Module:
        return self.experts

    def last_shared_experts(self) -> list[nn.Module]:
        return list(self.experts)
