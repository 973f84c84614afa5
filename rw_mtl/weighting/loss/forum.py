"""FORUM, Ye, Lin, Cao, Zhang & Tsang (2024), "A First-Order Multi-Gradient Algorithm for
Multi-Objective Bi-Level Optimization", ECAI."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rw_mtl.weighting.base import LossWeighting
from rw_mtl.weighting.interface import MetaStep, surrogate_loss
from rw_mtl.weighting.jacobian import task_gradients
from rw_mtl.weighting.loss.virtual_params import flat_gradient, moved
from rw_mtl.weighting.simplex import fista_on_simplex

_EPS = 1e-8  # in the gradient normalisation and the constraint's denominators, as the official code
_DIVERGED = 1e5  # the inner loop stops once the lower-level loss exceeds this, as the official code
QP_ITERATIONS = 300


class FORUM(LossWeighting):
    """λ = softmax(α), α learnt on validation data by FORUM's first-order multi-gradient bilevel step.

    FORUM solves min_{α, ω} (ℓ_1^val(ω), …, ℓ_T^val(ω)) subject to q(α, ω) = f(α, ω) − f(α, ω^K) ≤ 0,
    f(α, ω) = Σ_t softmax(α)_t ℓ_t^train(ω) the lower level and ω^K its minimiser approximated by K SGD
    steps (value-function reformulation, their Eq. 5). Each training step, before θ (= ω, every trainable
    parameter) moves (``meta_step``):

    1. g_q = ∇_{(α, ω)} q: [Jᵀ_softmax (ℓ^train(ω) − ℓ^train(ω^K)), ∇ω f(α, ω)], with ω^K after
       ``inner_steps`` SGD steps of size ``inner_lr`` on f (stopped early if f exceeds 1e5);
    2. the upper level's normalised task gradients ĝ_t = ∇ω ℓ_t^val / ‖∇ω ℓ_t^val‖ (zero in α);
    3. π_t = φ − ⟨g_q, ĝ_t⟩ / ‖g_q‖²; the weights w of the subproblem min_{w ∈ Δ, μ ≥ 0, μ ≥ Σ_t w_t π_t}
       ‖Σ_t w_t ĝ_t + μ g_q‖² − μ φ ‖g_q‖² (their Eq. 14), solved on the device: for w fixed the best μ
       is a clamp in closed form, and the remaining convex problem in w runs ``QP_ITERATIONS`` FISTA
       steps over the simplex (the official code calls cvxpy on the host every step);
    4. λ̄ ← λ̄ + (e + 1)^{−3/4} (w − λ̄) at epoch e (a buffer), ν = max(Σ_t λ̄_t π_t, 0) and α's update
       direction ν g_q[α] (their Eq. 12), returned as a surrogate loss; α moves in its own optimizer
       group (``learning_rate``, no weight decay).

    FORUM's update of ω is Σ_t λ̄_t ĝ_t + ν ∇ω f: it also trains the model on the upper level's data. In
    the official code that data is a second half of each training batch; here the upper level is the
    validation split (never the test split; ``rw_mtl/conf/method/forum.yaml`` sets ``held_out``), which
    must stay held out for model selection, so θ is trained as under every loss method, by
    Σ_t λ_t ℓ_t^train with λ = softmax(α) (f itself), and only α follows FORUM. With data-parallel ranks
    every gradient and loss value is averaged over them (``MetaStep.mean_over_ranks``): each rank solves
    the same subproblem and keeps the same λ̄. Costs T + K + 1 backward and K + 2 forward passes per step.

    Defaults ``phi`` (the official ``--rho``) = 0.1, ``inner_lr`` (``--eta``) = 0.1, ``inner_steps``
    (``--inner_step``) = 5, ``learning_rate`` of α = 1e-3 (Adam): the official ``LibMTL/config.py`` and
    ``LibMTL/trainer.py`` (``train_FORUM``) of github.com/Baijiong-Lin/FORUM and its README's NYUv2 and
    Office commands.
    """

    needs_validation_batch = True

    def __init__(
        self,
        task_num: int,
        learning_rate: float = 1e-3,
        inner_lr: float = 0.1,
        inner_steps: int = 5,
        phi: float = 0.1,
    ) -> None:
        super().__init__(task_num)
        if phi <= 0:
            raise ValueError(f"FORUM phi must be positive (weighting.loss.hparams.phi), got {phi}")
        if not isinstance(inner_steps, int) or inner_steps < 1:
            raise ValueError(
                "FORUM inner_steps must be an int >= 1 (weighting.loss.hparams.inner_steps), "
                f"got {inner_steps!r}"
            )
        self.learning_rate, self.weight_decay = learning_rate, 0.0
        self.inner_lr, self.inner_steps, self.phi = inner_lr, inner_steps, phi
        self.logits = nn.Parameter(torch.zeros(task_num))
        self.register_buffer("weight_average", torch.zeros(task_num))
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def weights(self, losses: Tensor) -> Tensor:
        self._check_task_dim(losses.shape[0], "losses")
        return torch.softmax(self.logits, dim=0).detach().to(losses.dtype)

    def epoch_end(self, mean_losses: Tensor) -> None:
        self.epoch += 1

    def meta_step(self, meta: MetaStep) -> Tensor:
        """The surrogate loss whose gradient w.r.t. α is ν g_q[α]; the subproblem's weights, π and ν are
        kept as ``last_subproblem``."""
        params = meta.params
        z = torch.softmax(self.logits.detach(), dim=0)
        softmax_jacobian = torch.diag(z) - z[:, None] * z[None, :]
        lower = (z.to(meta.losses.dtype) * meta.losses).sum()
        lower_gradient = flat_gradient(lower, params, meta, retain_graph=True)
        inner = self._inner_solution(meta, z)
        with torch.no_grad():
            inner_losses = meta.mean_over_ranks(meta.training_losses(inner))
        current = _leaves(params)
        upper = task_gradients(meta.validation_losses(current), list(current.values()))
        upper = meta.mean_over_ranks(upper)
        dtype = torch.promote_types(upper.dtype, torch.float32)
        with torch.autocast(upper.device.type, enabled=False):  # float32 algebra under bf16-mixed
            losses_change = meta.losses.detach().to(dtype) - inner_losses.to(dtype)
            constraint_alpha = softmax_jacobian.to(dtype) @ losses_change
            upper = upper.to(dtype) / (upper.to(dtype).norm(dim=1, keepdim=True) + _EPS)
            lower_gradient = lower_gradient.to(dtype)
            constraint = torch.cat([constraint_alpha, lower_gradient])
            gram = torch.empty(self.task_num + 1, self.task_num + 1, device=upper.device, dtype=dtype)
            gram[:-1, :-1] = upper @ upper.T
            gram[:-1, -1] = gram[-1, :-1] = upper @ lower_gradient
            gram[-1, -1] = constraint @ constraint
            pi = self.phi - gram[:-1, -1] / (gram[-1, -1] + _EPS)
            weights = subproblem_weights(gram, pi, self.phi * (gram[-1, -1] + _EPS))
            rate = (self.epoch.to(dtype) + 1) ** -0.75
            average = self.weight_average.to(dtype)
            self.weight_average.copy_(average + rate * (weights - average))
            nu = (self.weight_average.to(dtype) @ pi).clamp_min(0.0)
        self.last_subproblem = {"weights": weights, "pi": pi, "nu": nu}
        return surrogate_loss(self.logits, nu * constraint_alpha)

    def _inner_solution(self, meta: MetaStep, z: Tensor) -> dict[str, Tensor]:
        """ω^K: ``inner_steps`` SGD steps on f(α, ·) from ω, frozen (on the device) once f > 1e5."""
        inner = _leaves(meta.params)
        running = torch.ones((), device=z.device, dtype=torch.bool)
        for _ in range(self.inner_steps):
            lower = (z.to(meta.losses.dtype) * meta.training_losses(inner)).sum()
            running = running & (meta.mean_over_ranks(lower) <= _DIVERGED)
            step = flat_gradient(lower, inner, meta)
            inner = moved(inner, step, -self.inner_lr * running.to(step.dtype), trainable=True)
        return inner


def _leaves(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """The parameters' current values as new leaves that require grad (functional evaluations at ω)."""
    return {name: t.detach().requires_grad_(True) for name, t in params.items()}


def subproblem_weights(gram: Tensor, pi: Tensor, c: Tensor, iterations: int = QP_ITERATIONS) -> Tensor:
    """argmin over w ∈ Δ of min_{μ ≥ max(0, wᵀπ)} vᵀ M v − μ c, v = [w; μ] (FORUM's Eq. 14 in Gram form,
    M = A Aᵀ for A = [ĝ_1; …; ĝ_T; g_q]).

    For w fixed the objective is a convex parabola in μ, so μ(w) = max(0, wᵀπ, μ*(w)) with μ*(w) =
    (c − 2 M_{T,:T} w) / (2 M_TT); what remains is convex in w (a partial minimum of a convex function over
    a convex set) and is solved by FISTA over the simplex with step 1/L, L = 2 max(‖M_ww‖_F, ‖Pᵀ M P‖_F)
    for P = [I; πᵀ] (the curvature of both pieces)."""
    task_num = pi.shape[0]
    block, cross, last = gram[:-1, :-1], gram[:-1, -1], gram[-1, -1].clamp_min(1e-12)
    identity = torch.eye(task_num, device=gram.device, dtype=gram.dtype)
    tangent = identity - 1.0 / task_num  # differences of points of the simplex live in 1ᵀd = 0
    lift = torch.cat([identity, pi[None, :]])
    pieces = torch.stack([block, lift.T @ gram @ lift])
    curvature = torch.linalg.matrix_norm(tangent @ pieces @ tangent).max()
    step = 1.0 / (2 * curvature + 1e-12)

    def gradient(w: Tensor) -> Tensor:
        bound = (w @ pi).clamp_min(0.0)
        free = (c - 2 * cross @ w) / (2 * last)
        mu = torch.maximum(bound, free)
        mixed = block @ w + mu * cross
        along_mu = 2 * (cross @ w + mu * last) - c  # ∂/∂μ, zero where μ = μ*
        return 2 * mixed + (bound >= free).to(w.dtype) * (w @ pi > 0).to(w.dtype) * along_mu * pi

    return fista_on_simplex(gradient, task_num, gram, step_size=lambda w: step, iterations=iterations)
