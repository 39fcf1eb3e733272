"""FID and KID on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mdt_metrics.distances import fid, frechet_distance, gaussian_statistics, kid


def test_identical_sets_are_at_distance_zero():
    features = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    assert abs(fid(features, features)) < 1e-8
    mean, _ = kid(features, features, subsets=20, subset_size=200)
    shifted, _ = kid(features, features + 1.0, subsets=20, subset_size=200)
    # The unbiased estimator on a set against itself is O(1/m), not exactly 0: tiny on the kernel's scale.
    assert abs(mean) < 0.005 * shifted


def test_diagonal_gaussians_match_the_closed_form():
    mean1, mean2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 1.0])
    expected = float(((mean1 - mean2) ** 2).sum() + (var1 + var2 - 2 * (var1 * var2).sqrt()).sum())
    assert frechet_distance(mean1, torch.diag(var1), mean2, torch.diag(var2)) == pytest.approx(expected, rel=1e-12)
    # And from samples of those Gaussians.
    g = torch.Generator().manual_seed(1)
    a = mean1 + var1.sqrt() * torch.randn(200_000, 3, generator=g, dtype=torch.float64).float()
    b = mean2 + var2.sqrt() * torch.randn(200_000, 3, generator=g, dtype=torch.float64).float()
    assert fid(a, b) == pytest.approx(expected, rel=0.02)


def test_full_covariances_match_an_independent_computation():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(8), b @ b.T + 0.1 * np.eye(8)
    mean1, mean2 = rng.normal(size=8), rng.normal(size=8)
    # Tr (C1 C2)^½ from the (real, positive) eigenvalues of the non-symmetric product.
    trace_root = np.sqrt(np.linalg.eigvals(cov1 @ cov2).real.clip(min=0)).sum()
    expected = ((mean1 - mean2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_root
    ours = frechet_distance(*(torch.from_numpy(t) for t in (mean1, cov1, mean2, cov2)))
    assert ours == pytest.approx(expected, rel=1e-9)


def test_statistics_match_numpy():
    features = torch.randn(50, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    mean, cov = gaussian_statistics(features)
    np.testing.assert_allclose(mean.numpy(), features.numpy().mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(features.numpy(), rowvar=False), rtol=1e-12)


def test_kid_grows_with_a_shift_and_is_unbiased_near_zero():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g)
    same, spread = kid(a, b, subsets=50, subset_size=200)
    shifted, _ = kid(a, b + 1.0, subsets=50, subset_size=200)
    # Two samples of one distribution: zero within the estimate's spread, tiny beside a real shift.
    assert abs(same) < 3 * spread and abs(same) < 0.01 * shifted


class _Features(torch.nn.Module):
    """Hands torchmetrics the features themselves: a 'network' that reads the first D
    numbers of each input (also of the dummy image it probes the feature size with)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)[:, : self.dim].double()


def test_fid_and_kid_arithmetic_match_torchmetrics():
    """torchmetrics computes both from the same features on its own: means and covariances,
    its matrix square root, its polynomial-kernel MMD (one subset of all features)."""
    tm_fid = pytest.importorskip("torchmetrics.image.fid")
    tm_kid = pytest.importorskip("torchmetrics.image.kid")
    g = torch.Generator().manual_seed(4)
    real = torch.randn(60, 12, generator=g, dtype=torch.float64)
    fake = 0.7 * torch.randn(50, 12, generator=g, dtype=torch.float64) + 0.3
    theirs = tm_fid.FrechetInceptionDistance(feature=_Features(12))
    theirs.update(real, real=True)
    theirs.update(fake, real=False)
    assert fid(real, fake) == pytest.approx(float(theirs.compute()), rel=1e-6)
    theirs = tm_kid.KernelInceptionDistance(feature=_Features(12), subsets=1, subset_size=50)
    theirs.update(real[:50], real=True)
    theirs.update(fake, real=False)
    mean, _ = theirs.compute()
    assert kid(real[:50], fake, subsets=1, subset_size=50)[0] == pytest.approx(float(mean), rel=1e-6)
