"""RLW/RGW sampling: every scheme lands on the simplex with E[λ] = 1/T (Section 5.3, Appendix A)."""

from __future__ import annotations

import math

import pytest
import torch

from rw_mtl.weighting import get
from rw_mtl.weighting.random_weights import DISTRIBUTIONS, sample_simplex_weights

DRAWS = 20_000


def draws(distribution: str, task_num: int, n: int = DRAWS) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.stack([sample_simplex_weights(distribution, task_num) for _ in range(n)])


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("task_num", [2, 3, 7])
def test_weights_on_simplex_with_mean_one_over_t(distribution, task_num):
    lam = draws(distribution, task_num)
    assert lam.shape == (DRAWS, task_num)
    assert (lam >= 0).all()
    torch.testing.assert_close(lam.sum(dim=1), torch.ones(DRAWS), atol=1e-6, rtol=0)
    # Monte-Carlo: each coordinate has variance <= 1/4, so 5 standard errors < 5 * 0.5 / sqrt(20000) = 0.018.
    torch.testing.assert_close(lam.mean(dim=0), torch.full((task_num,), 1 / task_num), atol=0.018, rtol=0)


def test_dirichlet_second_moment_matches_dir_1():
    # λ_t ~ Beta(1, T-1) for Dir(1,…,1): E[λ_t²] = 2 / (T (T+1)).
    task_num = 4
    lam = draws("dirichlet", task_num)
    torch.testing.assert_close(lam.square().mean(dim=0), torch.full((task_num,), 2 / 20), atol=4e-3, rtol=0)


def test_bernoulli_is_uniform_over_non_empty_subsets():
    task_num = 3
    lam = draws("bernoulli", task_num)
    subsets = (lam > 0).long() @ torch.tensor([1, 2, 4])
    assert (subsets > 0).all(), "an all-zero Bernoulli draw reached the normalisation"
    frequencies = torch.bincount(subsets, minlength=8)[1:].float() / DRAWS
    torch.testing.assert_close(frequencies, torch.full((7,), 1 / 7), atol=0.012, rtol=0)
    # non-zero entries are equal: λ = λ̃ / Σ λ̃
    chosen = lam[subsets == 7]
    torch.testing.assert_close(chosen, torch.full_like(chosen, 1 / 3))


def test_bernoulli_many_tasks_draws_normalised_masks():
    """Beyond 62 tasks (the coordinate-wise fallback) each draw is a 0/1 mask divided by its count. An
    all-zero draw (probability 2^-70) is never sampled here: tests/test_planted_bugs.py forces one."""
    torch.manual_seed(0)
    counts = []
    for _ in range(200):
        lam = sample_simplex_weights("bernoulli", 70)
        chosen = lam > 0
        counts.append(chosen.sum().item())
        torch.testing.assert_close(lam, chosen.float() / chosen.sum())
    assert 20 < min(counts) and max(counts) < 50  # Binomial(70, ½): mean 35, sd 4.2


def test_constrained_bernoulli_trains_exactly_one_task():
    lam = draws("constrained_bernoulli", 5, n=2000)
    assert ((lam == 1).sum(dim=1) == 1).all()
    assert ((lam == 0).sum(dim=1) == 4).all()


def test_normal_softmax_is_softmax_of_a_standard_normal_draw():
    torch.manual_seed(123)
    expected = torch.softmax(torch.randn(4), dim=0)
    torch.manual_seed(123)
    torch.testing.assert_close(sample_simplex_weights("normal", 4), expected)


def test_unknown_distribution_names_the_choices():
    with pytest.raises(ValueError, match="constrained_bernoulli"):
        get("rlw")(3, distribution="gaussian")


def test_same_seed_same_weights():
    torch.manual_seed(7)
    first = get("rlw")(3).weights(torch.ones(3))
    torch.manual_seed(7)
    torch.testing.assert_close(get("rlw")(3).weights(torch.ones(3)), first)
    torch.manual_seed(8)
    assert not torch.allclose(get("rlw")(3).weights(torch.ones(3)), first)  # the seed is what fixed them


def test_the_authors_code_variants_of_fig1_samplers():
    """LibMTL's RLW.py: the Dirichlet draw goes through a softmax, the Bernoulli draw stays unnormalised."""
    torch.manual_seed(5)
    draw = torch.empty(4).exponential_()
    torch.manual_seed(5)
    torch.testing.assert_close(
        sample_simplex_weights("dirichlet_softmax", 4), torch.softmax(draw / draw.sum(), dim=0)
    )
    lam = draws("dirichlet_softmax", 4)
    torch.testing.assert_close(lam.sum(dim=1), torch.ones(DRAWS))
    # softmax of a point of the simplex stays within [1/(3 + e), e/(3 + e)] for T = 4
    assert lam.min() >= 1 / (3 + math.e) - 1e-6 and lam.max() <= math.e / (3 + math.e) + 1e-6
    assert lam.var(dim=0).max() < draws("dirichlet", 4).var(dim=0).min() / 10

    lam = draws("bernoulli_unnormalized", 3)
    assert set(lam.unique().tolist()) == {0.0, 1.0} and (lam.sum(dim=1) >= 1).all()
    # E[λ_t] = 2^{T-1} / (2^T − 1) = 4/7: every non-empty subset equally likely, none normalised
    torch.testing.assert_close(lam.mean(dim=0), torch.full((3,), 4 / 7), atol=0.012, rtol=0)
    torch.manual_seed(9)
    text = sample_simplex_weights("bernoulli", 3)
    torch.manual_seed(9)
    torch.testing.assert_close(sample_simplex_weights("bernoulli_unnormalized", 3), (text > 0).float())


def test_fig1_can_be_drawn_with_the_code_samplers():
    from hydra import compose, initialize_config_dir

    from rw_mtl.resources import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for variant in ("dirichlet_softmax", "bernoulli_unnormalized"):
            config = compose(config_name="config", overrides=[f"+method=rlw_{variant}"])
            assert config.weighting.loss.hparams.distribution == variant
            assert config.run_name == f"rlw_{variant}-none"
            get("rlw")(3, distribution=variant).weights(torch.ones(3))
