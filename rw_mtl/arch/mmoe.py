"""Multi-gate Mixture-of-Experts (MMoE), Ma et al. (KDD 2018), as LibMTL builds it
(LibMTL/architecture/MMoE.py@3928656).

E experts f_1 … f_E, each a whole copy of the dataset's encoder, are shared by every task; task t mixes
them with its own softmax gate on the flattened input x (Ma et al., Eqs. 5–6):

    y_t = h_t(Σ_e g_t(x)_e f_e(x)),        g_t(x) = softmax(W_t x + b_t).

θ (shared) = the experts (LibMTL's ``get_share_params``); ψ_t = gate t and head t. Default ``num_experts``
2: LibMTL's own runs of MMoE (tests/test_nyu.py@ed7022f, ``--num_experts 2``; LibMTL has no default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from torch import nn

from rw_mtl.arch.experts import GatedExperts, check_count


class MMoE(GatedExperts):
    """``num_experts`` shared experts, one softmax gate per task on inputs of shape ``img_size``."""

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        img_size: Sequence[int] | None = None,
        num_experts: int = 2,
    ) -> None:
        count = check_count(num_experts, "num_experts", 1)
        super().__init__(task_outputs, encoder, head, img_size, count, dict.fromkeys(task_outputs, 0))
