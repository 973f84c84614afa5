"""The values rw_mtl's own settings may take, and the checks that need nothing but those values — a
plain module (no torch, no Lightning), so that config validation and dry runs start fast."""

from __future__ import annotations

#: ``weighting.grad.mode``: where a gradient method sees the per-task gradients
GRAD_MODES = ("param", "rep", "last_layer")

#: ``weighting.grad.rep_gram``: the Gram matrix of rep-mode gradients — of their sums over the batch
#: (LibMTL's ``_get_grads``, the paper's runs) or of the flattened per-sample gradients (the original MGDA-UB)
REP_GRAMS = ("batch_sum", "per_sample")

#: ``on_nonfinite``: what a NaN/inf task loss or gradient does (rw_mtl.training.nonfinite)
NONFINITE_POLICIES = ("raise", "skip", "off")


def check_rep_gram(rep_gram: str) -> None:
    """Refuse an unknown ``weighting.grad.rep_gram``, naming the choices."""
    if rep_gram not in REP_GRAMS:
        raise ValueError(f"weighting.grad.rep_gram must be one of {list(REP_GRAMS)}, got `{rep_gram}`")


def check_precision(precision: str, gradient_method: bool) -> None:
    """fp16 training scales the losses by a dynamic factor, which corrupts the per-task gradients a
    gradient method compares: refuse that pair, naming the precisions that work."""
    if gradient_method and str(precision).startswith("16"):
        raise ValueError(
            f"trainer.precision={precision} scales losses by a dynamic factor that corrupts the per-task "
            "gradients a gradient method compares; use trainer.precision=bf16-mixed or 32-true"
        )
