"""RotoGrad, Javaloy & Valera (2022): gradient homogenisation by rotating and rescaling."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import orthogonal

from rw_mtl.weighting.base import GradWeighting
from rw_mtl.weighting.interface import Combination, TaskGradients


def rotate_channels(points: Tensor, rotation: Tensor, dim: int) -> Tensor:
    """R applied to the channel vector at every position of ``points`` (its channels on ``dim``): the first k
    channels (k = size of R) are rotated, the rest untouched — adrianjav/rotograd's ``rotate`` on each
    sample's, pixel's or token's feature vector."""
    moved = points.movedim(dim, -1)
    size = rotation.shape[0]
    rotated = moved[..., :size] @ rotation.T
    if moved.shape[-1] > size:
        rotated = torch.cat([rotated, moved[..., size:]], dim=-1)
    return rotated.movedim(-1, dim)


class RotoGrad(GradWeighting):
    """Each head sees its own rotation r_t = R_t z of the shared representation (R_t orthogonal, learnt),
    and the shared part receives task gradients rescaled to a common magnitude.

    * Rotations (their Section 3.2): R_t minimises E_p ‖R_t v_p − R̄_t g_{t,p}‖², v the mean of the task
      gradients ∇_z ℓ_t rescaled to the mean gradient's norm, R̄_t = R_t held fixed: it turns the mean
      direction towards task t's own. R_t acts on z's feature channels and p runs over every position that
      has a channel vector — each sample of a [B, C] z, each pixel of a [B, C, H, W] map, each token of a
      [B, L, C] sequence — keeping the spatial and token dimensions, as adrianjav/rotograd rotates the
      latent vector (``rotograd.py``: ``rotate``, ``RotateOnly._rep_grad``). R_t = exp(A_t) (A
      skew-symmetric, adrianjav's ``triv='expm'``) through torch's orthogonal parametrisation, initially I.
      ``rotation_size``: null (default) rotates all C channels (adrianjav's ``latent_size`` = z's size);
      k < C rotates the first k. The channel count and dimension come from the architecture
      (``bind``: ``representation_layout``). The rotations have their own optimizer group when
      ``learning_rate`` is set; the rotation loss is returned as the method loss that trains them.
    * Scaling (Section 3.1): d = Σ_t g_t / ‖g_t‖ · Σ_s α_s ‖g_s‖ with α_s ∝ ‖g_s‖ / ‖g_s(0)‖, the norm at the
      first step and again after ``burn_in_period`` (20, adrianjav's default) steps (buffers, saved in
      checkpoints).

    Needs rep mode on an architecture with a single shared representation (HPS). With a loss method, g_t
    is the gradient of λ_t ℓ_t.
    """

    def __init__(
        self,
        task_num: int,
        rotation_size: int | None = None,
        burn_in_period: int = 20,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(task_num)
        if rotation_size is not None and rotation_size < 1:
            raise ValueError(
                "rotation_size must be null (every channel) or >= 1 "
                f"(rw_mtl/conf/weighting/grad/rotograd.yaml), got {rotation_size}"
            )
        self.rotation_size, self.burn_in_period, self.learning_rate = (
            rotation_size,
            burn_in_period,
            learning_rate,
        )
        self.channel_dim = 1
        self.rotations = nn.ModuleList()
        if rotation_size is not None:
            self._build_rotations(rotation_size)
        self.register_buffer("initial_norms", torch.full((task_num,), float("nan")))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def _build_rotations(self, size: int) -> None:
        for _ in range(self.task_num):
            layer = nn.Linear(size, size, bias=False)
            with torch.no_grad():
                layer.weight.copy_(torch.eye(size))
            self.rotations.append(orthogonal(layer, "weight", orthogonal_map="matrix_exp"))

    def bind(self, arch) -> None:
        """z's channels (their count and dimension) from the architecture; all of them unless
        ``rotation_size`` says fewer."""
        channels, self.channel_dim = arch.representation_layout()
        if self.rotation_size is None:
            if not len(self.rotations):
                self._build_rotations(channels)
        elif self.rotation_size > channels:
            raise ValueError(
                f"RotoGrad rotates {self.rotation_size} channels but z has {channels}; set "
                "weighting.grad.hparams.rotation_size=null (every channel) or lower it"
            )

    def _size(self) -> int:
        if not len(self.rotations):
            raise ValueError(
                "RotoGrad has no rotations yet: give weighting.grad.hparams.rotation_size, or build it "
                "inside an MTLModule (which binds it to z's channels)"
            )
        return self.rotations[0].weight.shape[0]

    def _channel_dim(self, dims: int) -> int:
        """The channel dimension of a [B, *F] tensor with ``dims`` dimensions, counted from the front."""
        return self.channel_dim % dims

    def task_representations(self, rep: Tensor) -> list[Tensor]:
        dim = self._channel_dim(rep.dim())
        if rep.shape[dim] < self._size():
            raise ValueError(
                f"RotoGrad rotates {self._size()} channels but the representation has {rep.shape[dim]} on "
                f"dimension {dim}; lower weighting.grad.hparams.rotation_size"
            )
        return [rotate_channels(rep, r.weight.detach(), dim) for r in self.rotations]

    def combine(self, grads: TaskGradients, losses: Tensor | None) -> Combination:
        # samples in the rows: the local batch, or every rank's when data-parallel ranks gathered G
        per_sample = grads.per_sample() if grads.sample_shape is not None else grads.matrix[:, None]
        dim = 1 + self._channel_dim(per_sample.dim() - 1)  # per_sample is [T, N, *F]
        if per_sample.shape[dim] < self._size():
            raise ValueError(
                f"RotoGrad rotates {self._size()} channels but each gradient has {per_sample.shape[dim]}; "
                "lower weighting.grad.hparams.rotation_size"
            )
        points = per_sample.movedim(dim, -1).reshape(self.task_num, -1, per_sample.shape[dim])
        rotation_loss = self._rotation_loss(points)
        grads = grads.matrix

        norms = grads.norm(dim=1).clamp_min(1e-15)
        reset = self.initial_norms.isnan() | (self.steps == self.burn_in_period)
        self.initial_norms.copy_(torch.where(reset, norms.detach(), self.initial_norms))
        self.steps += 1
        ratios = norms / self.initial_norms
        target_norm = ((ratios / ratios.sum()) * norms).sum()
        weights = target_norm / norms
        return Combination(weights=weights.detach(), method_loss=rotation_loss)

    def _rotation_loss(self, grads: Tensor) -> Tensor:
        """The rotation loss on the [T, P, C] gradients w.r.t. z at its P positions (its gradient trains
        R_t): Σ_t mean_p ‖R_t v_p − R̄_t g_{t,p}‖²."""
        norms = grads.flatten(1).norm(dim=1).clamp_min(1e-15)
        mean_norm = grads.mean(dim=0).norm()
        reference = (grads * (mean_norm / norms).view(-1, 1, 1)).mean(dim=0).detach()
        with torch.enable_grad():
            loss = grads.new_zeros(())
            for task, layer in enumerate(self.rotations):
                rotation = layer.weight
                own = rotate_channels(grads[task], rotation.detach(), -1)
                loss = loss + (rotate_channels(reference, rotation, -1) - own).square().sum(dim=1).mean()
        return loss
