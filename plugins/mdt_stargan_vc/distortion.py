"""How close a conversion comes to the target speaker's own recording of the sentence.

A parallel corpus holds the truth: speaker A's sentence converted to speaker B is
compared with B's recording of that sentence. Both are aligned by dynamic time warping
on mel-cepstra (c1-c35), and the mel-cepstral distortion of the aligned frames is

    MCD = (10 / ln 10) · sqrt(2 · Σ_{d=1..35} (c_d − c'_d)²)   dB, averaged over the path,

c0 (energy) left out as usual. The unconverted source against the same recording gives
the scale: a conversion should be well below it. Log-F0 error is the RMSE of log F0 over
the aligned frames voiced in both.
"""

from __future__ import annotations

import math

import numpy as np

MCD_FACTOR = 10.0 / math.log(10.0) * math.sqrt(2.0)


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frames (i, j) of the cheapest monotonic alignment of ``a`` (T1, D) and ``b``
    (T2, D) under Euclidean distance, steps (1, 0), (0, 1) and (1, 1)."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for k in range(2, rows + cols + 1):  # anti-diagonals i + j = k (1-based), each from the two before
        i = np.arange(max(1, k - cols), min(rows, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(total[i - 1, j], total[i, j - 1]), total[i - 1, j - 1])
        total[i, j] = cost[i - 1, j - 1] + best
    path_i, path_j = [rows - 1], [cols - 1]
    i, j = rows, cols
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min((s for s in steps if s[0] >= 1 and s[1] >= 1), key=lambda s: total[s])
        path_i.append(i - 1)
        path_j.append(j - 1)
    return np.array(path_i[::-1]), np.array(path_j[::-1])


def mel_cepstral_distortion(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    """MCD (dB) of mel-cepstra ``a`` against ``b`` (frames x coefficients, c0 first) after
    DTW on c1.., and the path."""
    path = dtw_path(a[:, 1:], b[:, 1:])
    differences = a[path[0], 1:] - b[path[1], 1:]
    return float(MCD_FACTOR * np.sqrt((differences**2).sum(axis=1)).mean()), path


def log_f0_rmse(f0: np.ndarray, reference: np.ndarray, path: tuple[np.ndarray, np.ndarray]) -> float | None:
    """RMSE of log F0 along ``path`` over the frames voiced in both; None when none is."""
    a, b = f0[path[0]], reference[path[1]]
    voiced = (a > 0) & (b > 0)
    if not voiced.any():
        return None
    return float(np.sqrt(((np.log(a[voiced]) - np.log(b[voiced])) ** 2).mean()))
