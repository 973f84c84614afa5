"""DSelect-k, Hazimeh et al. (NeurIPS 2021): MMoE whose gates select at most k experts, as LibMTL builds it
(LibMTL/architecture/DSelect_k.py@3928656, itself modified from the authors' TensorFlow gate,
google-research/dselect_k_moe/dselect_k_moe.py, example-conditioned routing).

With E experts and m = ⌈log₂ E⌉ bits, each of the k "single-expert selectors" of task t reads m logits
z_i = Z_i x (a Linear on the flattened input x) and puts weight

    r_i(x)_e = Π_j [S(z_ij) if bit j of e is 1 else 1 − S(z_ij)]                          (Eq. 5)

on expert e, with the smooth-step S(t) = 0 for t ≤ −γ/2, 1 for t ≥ γ/2, and −2t³/γ³ + 3t/(2γ) + ½ between
(Eq. 4). The gate mixes the selectors by softmax weights of k more logits w(x) = W x:

    g_t(x) = Σ_i softmax(w(x))_i r_i(x),        y_t = h_t(Σ_e g_t(x)_e f_e(x)).

Once S saturates every r_i is one-hot, so at most k experts get weight. When E is a power of two, the r_i
sum to 1 over the experts; otherwise codes ≥ E are unreachable and the penalty Σ 1/Σ_e r_i(x)_e keeps the
selectors on reachable experts. Training adds ``entropy_reg`` · (−Σ r log(r + 10⁻⁶)) (+ that penalty) for
every task's gate, summed over samples and selectors (``regularization``; the authors' gate adds it per
gate; LibMTL adds it for the last task's gate only).

Defaults: ``num_nonzeros`` 2, ``gamma`` 1.0 (LibMTL's ``--num_nonzeros``, ``--kgamma``, config.py@3928656;
the authors' γ default too), ``entropy_reg`` 1e-6 (LibMTL's fixed weight; the authors' layer has none by
default: 0 here), ``num_experts`` 2 (LibMTL's runs, tests/test_nyu.py@ed7022f). Initialisation as LibMTL
and the authors: Z's weights and biases U(−γ/100, γ/100), W's U(−0.05, 0.05).

θ (shared) = the experts; ψ_t = gate t (Z, W) and head t.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rw_mtl.arch.experts import GatedExperts, check_count

#: ε in the entropy term's log (the authors' EPSILON; LibMTL's 1e-6)
ENTROPY_EPSILON = 1e-6


def smooth_step(t: Tensor, gamma: float) -> Tensor:
    """S(t) (DSelect-k Eq. 4): 0 below −γ/2, 1 above γ/2, the cubic −2t³/γ³ + 3t/(2γ) + ½ between."""
    cubic = -2 / gamma**3 * t**3 + 3 / (2 * gamma) * t + 0.5
    return torch.where(
        t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), cubic)
    )


class DSelectKGate(nn.Module):
    """Task t's gate: k single-expert selectors r_i(x) over E experts, mixed by softmax weights."""

    def __init__(self, in_features: int, num_experts: int, num_nonzeros: int, gamma: float) -> None:
        super().__init__()
        self.num_nonzeros, self.gamma = num_nonzeros, gamma
        self.num_bits = math.ceil(math.log2(num_experts))
        self.power_of_two = num_experts == 2**self.num_bits
        self.z_logits = nn.Linear(in_features, num_nonzeros * self.num_bits)
        self.w_logits = nn.Linear(in_features, num_nonzeros)
        with torch.no_grad():
            for param in self.z_logits.parameters():
                param.uniform_(-gamma / 100, gamma / 100)
            for param in self.w_logits.parameters():
                param.uniform_(-0.05, 0.05)
        # codes[e, j] = bit j of e, most significant first (the authors' np.binary_repr)
        shifts = torch.arange(self.num_bits - 1, -1, -1)
        codes = (torch.arange(num_experts)[:, None] >> shifts) & 1
        self.register_buffer("codes", codes.bool(), persistent=False)

    def selectors(self, flat: Tensor) -> Tensor:
        """r(x) [B, k, E]: each selector's weight on each expert (Eq. 5)."""
        logits = self.z_logits(flat).view(-1, self.num_nonzeros, 1, self.num_bits)
        steps = smooth_step(logits, self.gamma)
        return torch.where(self.codes, steps, 1 - steps).prod(dim=-1)

    def forward(self, flat: Tensor) -> Tensor:
        """g(x) [B, E] = Σ_i softmax(w(x))_i r_i(x)."""
        return torch.einsum("bk,bke->be", F.softmax(self.w_logits(flat), dim=-1), self.selectors(flat))

    def penalty(self, flat: Tensor, entropy_reg: float) -> Tensor:
        """entropy_reg · (−Σ r log(r + ε)) (+ Σ 1/Σ_e r unless E is a power of two), over samples and
        selectors."""
        selectors = self.selectors(flat)
        penalty = -entropy_reg * (selectors * torch.log(selectors + ENTROPY_EPSILON)).sum()
        if not self.power_of_two:
            penalty = penalty + (1 / selectors.sum(dim=-1)).sum()
        return penalty


class DSelectK(GatedExperts):
    """``num_experts`` shared experts; per task a DSelect-k gate choosing at most ``num_nonzeros`` of them."""

    def __init__(
        self,
        task_outputs: Mapping[str, int],
        encoder: Callable[[], nn.Module],
        head: Callable[[int, int], nn.Module],
        img_size: Sequence[int] | None = None,
        num_experts: int = 2,
        num_nonzeros: int = 2,
        gamma: float = 1.0,
        entropy_reg: float = 1e-6,
    ) -> None:
        count = check_count(num_experts, "num_experts", 2)
        self.num_nonzeros = check_count(num_nonzeros, "num_nonzeros", 1)
        if not gamma > 0:
            raise ValueError(f"arch.model.gamma must be positive, got {gamma}")
        if not entropy_reg >= 0:
            raise ValueError(f"arch.model.entropy_reg must be ≥ 0, got {entropy_reg}")
        self.gamma, self.entropy_reg = float(gamma), float(entropy_reg)
        super().__init__(task_outputs, encoder, head, img_size, count, dict.fromkeys(task_outputs, 0))

    def make_gate(self, num_experts: int) -> nn.Module:
        return DSelectKGate(self.input_features, num_experts, self.num_nonzeros, self.gamma)

    def regularization(self, inputs: Tensor, tasks: Sequence[str] | None = None) -> Tensor:
        """The gates' penalties on ``inputs``, summed over the tasks predicted from them."""
        flat = self.flat_inputs(inputs)
        return torch.stack(
            [self.gates[name].penalty(flat, self.entropy_reg) for name in tasks or self.task_names]
        ).sum()
