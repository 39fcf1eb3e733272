"""Distances between sets of image features: Fréchet (FID) and kernel (KID).

Both take features (N, D) from any network — Inception for the standard numbers, a
classifier trained on the data when those weights are not available. Computed in
float64 on the CPU: the matrix square root is where FID implementations lose precision.
"""

from __future__ import annotations

import torch


def gaussian_statistics(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), as numpy.cov does."""
    x = features.detach().to("cpu", torch.float64)
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"need features of shape (N >= 2, D), got {tuple(x.shape)}")
    mean = x.mean(dim=0)
    centred = x - mean
    return mean, centred.T @ centred / (x.shape[0] - 1)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mean1: torch.Tensor, cov1: torch.Tensor, mean2: torch.Tensor, cov2: torch.Tensor) -> float:
    """||m1 - m2||² + Tr(C1 + C2 - 2 (C1 C2)^½) between two Gaussians.

    Tr (C1 C2)^½ equals Tr (C1^½ C2 C1^½)^½, a symmetric positive semi-definite matrix,
    so it is taken from eigenvalues instead of a general (and unstable) matrix root.
    """
    mean1, mean2, cov1, cov2 = (t.to(torch.float64) for t in (mean1, mean2, cov1, cov2))
    root1 = _psd_sqrt(cov1)
    middle = root1 @ cov2 @ root1
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    diff = mean1 - mean2
    return float(diff @ diff + torch.trace(cov1) + torch.trace(cov2) - 2 * trace_root)


def fid(features1: torch.Tensor, features2: torch.Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*gaussian_statistics(features1), *gaussian_statistics(features2))


def kid(
    features1: torch.Tensor, features2: torch.Tensor, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel distance: unbiased MMD² with the kernel (x·y / D + 1)³, averaged over
    random subsets; returns (mean, standard deviation over subsets)."""
    x = features1.detach().to("cpu", torch.float64)
    y = features2.detach().to("cpu", torch.float64)
    m = min(subset_size, x.shape[0], y.shape[0])
    if m < 2:
        raise ValueError("KID needs at least 2 features in each set")
    dim = x.shape[1]
    generator = torch.Generator().manual_seed(seed)
    estimates = []
    for _ in range(subsets):
        a = x[torch.randperm(x.shape[0], generator=generator)[:m]]
        b = y[torch.randperm(y.shape[0], generator=generator)[:m]]
        kxx = (a @ a.T / dim + 1) ** 3
        kyy = (b @ b.T / dim + 1) ** 3
        kxy = (a @ b.T / dim + 1) ** 3
        within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        estimates.append(float(within - 2 * kxy.mean()))
    values = torch.tensor(estimates, dtype=torch.float64)
    return float(values.mean()), float(values.std()) if subsets > 1 else 0.0
