"""Customized Gate Control (CGC), Tang et al. (RecSys 2020, Section 4.2), as LibMTL builds it
(LibMTL/architecture/CGC.py@3928656): MMoE with experts of each task's own besides the shared ones.

Task t mixes the S shared experts and its own E_t experts (each a copy of the dataset's encoder) with its
own softmax gate on the flattened input x (Tang et al., Eqs. 2–3):

    y_t = h_t(Σ_e g_t(x)_e f_e(x)),   e over [shared experts; task t's experts],   g_t(x) = softmax(W_t x).

θ (shared) = the shared experts (LibMTL's ``get_share_params``, inherited from MMoE); ψ_t = task t's
experts, gate and head. Defaults ``shared_experts`` 1, ``task_experts`` 1: LibMTL's own runs of CGC
(tests/test_nyu.py@ed7022f, ``--num_experts 1 1 1 1``; LibMTL has no default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import nn

from rw_mtl.arch.experts import GatedExperts, check_count, task_expert_counts


class CGC(GatedExperts):
    """``shared_experts`` shared experts and ``task_experts`` of each task's own (one count for every task, or
    a list in task order), one softmax gate per task on inputs of shape ``img_size``."""

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        img_size: Sequence[int] | None = None,
        shared_experts: int = 1,
        task_experts: int | Sequence[int] = 1,
    ) -> None:
        shared = check_count(shared_experts, "shared_experts", 1)
        counts = task_expert_counts(task_experts, list(task_outputs))
        super().__init__(task_outputs, encoder, head, img_size, shared, counts)
