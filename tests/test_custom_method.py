"""A user's own weighting method runs through the same contracts without touching the package:
``weighting/<kind>=custom weighting.<kind>.target=<module>.<Class>``."""

from __future__ import annotations

import re
import shlex
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rw_mtl.build import build_grad_weighting, build_loss_weighting
from rw_mtl.config_checks import validate_config
from rw_mtl.train import run

REPOSITORY = Path(__file__).resolve().parents[1]

USER_MODULE = textwrap.dedent(
    """
    import torch
    from rw_mtl.weighting.base import GramWeighting, LossWeighting

    SEEN = []

    class FirstTaskDouble(LossWeighting):
        \"\"\"λ = (2, 1, …, 1) / (T + 1): the first task counts double.\"\"\"

        def __init__(self, task_num, boost=2.0):
            super().__init__(task_num)
            self.boost = boost

        def weights(self, losses):
            weights = torch.ones_like(losses.detach())
            weights[0] = self.boost
            return weights / weights.sum()

    class NormalisedGradients(GramWeighting):
        \"\"\"w_t = 1 / ‖g_t‖: every task gradient scaled to unit norm.\"\"\"

        def gram_weights(self, gram, losses):
            weights = gram.diagonal().clamp_min(1e-12).rsqrt()
            SEEN.append((gram.detach().clone(), weights.clone()))
            return weights
    """
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_methods.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_methods", None)  # another test's module of that name, imported in this worker
    yield "my_methods"
    sys.modules.pop("my_methods", None)


def test_custom_loss_method_is_built_with_its_hparams(user_module, fast_config):
    config = fast_config(
        "weighting/loss=custom",
        f"weighting.loss.target={user_module}.FirstTaskDouble",
        "+weighting.loss.hparams.boost=3",
    )
    validate_config(config)
    method = build_loss_weighting(config, 3)
    torch.testing.assert_close(method.weights(torch.ones(3)), torch.tensor([0.6, 0.2, 0.2]))


def test_custom_gradient_method_trains_and_is_named_in_results(user_module, fast_config):
    config = fast_config(
        "weighting/loss=ew",
        "weighting/grad=custom",
        f"weighting.grad.target={user_module}.NormalisedGradients",
        "weighting.grad.mode=rep",
    )
    results = run(config)
    assert results["grad_method"] == f"{user_module}.NormalisedGradients"
    seen = sys.modules[user_module].SEEN
    assert len(seen) == 2 * (3000 // 64)  # one call per training step of the two epochs
    gram, weights = seen[-1]
    torch.testing.assert_close(weights, gram.diagonal().rsqrt())


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("???", r"weighting.grad.target=<module>.<Class>"),
        ("no_such_package.Method", r"weighting.grad.target=no_such_package.Method cannot be imported"),
        ("torch.nn.Linear", r"not a subclass of rw_mtl.weighting.base.GradWeighting"),
    ],
)
def test_bad_custom_target_names_the_key(fast_config, target, message):
    overrides = ["weighting/grad=custom"] + ([] if target == "???" else [f"weighting.grad.target={target}"])
    config = fast_config(*overrides)
    with pytest.raises(ValueError, match=message):
        validate_config(config)
    with pytest.raises(ValueError, match=message):
        build_grad_weighting(config, 3)


def _readme_example() -> tuple[str, list[str]]:
    """README's "Your own weighting method": the module's source and the command's overrides."""
    text = (REPOSITORY / "README.md").read_text()
    section = text.split("## Your own weighting method", 1)[1].split("\n## ", 1)[0]
    (source,) = re.findall(r"^```python\n(.*?)^```", section, re.M | re.S)
    (command,) = re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)
    words = shlex.split(command)
    assert words[0] == "rw-mtl", command
    return source, words[1:]


def test_readme_example_method_trains(tmp_path, monkeypatch, fast_config):
    source, overrides = _readme_example()
    module_name = next(word for word in overrides if "target=" in word).split("=")[1].rsplit(".", 1)[0]
    (tmp_path / f"{module_name}.py").write_text(source)  # a module outside the package
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        config = fast_config(*overrides, "trainer.max_epochs=1")
        validate_config(config)
        results = run(config)
        assert results["grad_method"] == "my_pkg.MyMethod"
        method = build_grad_weighting(config, 2)
        # ‖g‖ = (3, 1): w ∝ (1/3, 1) = (0.25, 0.75)
        direction = method.aggregate(torch.tensor([[3.0, 0.0], [0.0, 1.0]]))
        torch.testing.assert_close(method.last_weights, torch.tensor([0.25, 0.75]))
        torch.testing.assert_close(direction, torch.tensor([0.75, 0.75]))
    finally:
        sys.modules.pop(module_name, None)
