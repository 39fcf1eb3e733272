"""FID and KID per target: do translations into a domain look like its real images?

StarGAN v2's protocol: for each target, the held-out images translated into it from
elsewhere are compared with the real training images of that target, in Inception's
feature space when the user gave the FID Inception weights (``mdt eval --inception``),
otherwise in the judge classifier's — always available offline, and named in
``feature_space`` so the numbers are never mistaken for standard FIDs. StarGAN v2's
two modes, latent- and reference-guided, are measured separately.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation
from mdt.ranges import Positive
from mdt_metrics.distances import fid, kid
from mdt_metrics.features import feature_space, image_features, inception, real_features
from mdt_metrics.pairs import translations


class FrechetDistance:
    """FID and KID between real images of each target and held-out images translated into it."""

    def __init__(self, max_images: Positive = 256, real_images: Positive = 1000, kid_subsets: Positive = 100, kid_subset_size: Positive = 1000) -> None:
        if min(max_images, real_images, kid_subsets, kid_subset_size) < 1:
            raise ValueError("max_images, real_images, kid_subsets and kid_subset_size must be at least 1")
        self.max_images, self.real_images = max_images, real_images
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size

    def prepare(self, evaluation: Evaluation) -> None:
        if "inception" in evaluation.weights:
            inception(evaluation)  # load the weights now: a wrong file fails before any work

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float | str]:
        results: dict[str, float | str] = {"feature_space": feature_space(evaluation)}
        modes = evaluation.translator.modes
        for mode in modes:
            prefix = f"{mode}/" if len(modes) > 1 else ""
            fakes: dict[str, list[torch.Tensor]] = {}
            by_pair: dict[str, list[torch.Tensor]] = {}
            for t in translations(evaluation, self.max_images, mode):
                if t.changed.any():
                    features = image_features(evaluation, t.fake[t.changed], t.target.dataset)
                    fakes.setdefault(t.target.title, []).append(features)
                    pairs = [p for p, changed in zip(t.pairs, t.changed.tolist()) if changed]
                    for row, pair in enumerate(pairs):
                        by_pair.setdefault(pair, []).append(features[row : row + 1])
            fids, kids = [], []
            for target in evaluation.targets:
                real = real_features(evaluation, target, self.real_images)
                fake = torch.cat(fakes.get(target.title, [torch.empty(0, dtype=torch.float64)]))
                if real.shape[0] < 2 or fake.shape[0] < 2:
                    evaluation.console.print(f"fid: '{target.title}' has {real.shape[0]} real and {fake.shape[0]} translated images; at least 2 each are needed", markup=False)
                    continue
                fids.append(fid(real, fake))
                kids.append(kid(real, fake, self.kid_subsets, self.kid_subset_size)[0])
                results[f"{prefix}fid/{target.title}"] = fids[-1]
                results[f"{prefix}kid/{target.title}"] = kids[-1]
                # StarGAN v2 reports FID per source -> target task; with one source per target
                # (StarGAN's attributes) a pair is its target, already measured.
                several_sources = len(by_pair) > len(evaluation.targets)
                for pair, rows in by_pair.items():
                    fake_pair = torch.cat(rows)
                    if several_sources and pair.endswith(f"->{target.title}") and fake_pair.shape[0] >= 2:
                        results[f"{prefix}fid/pair/{pair}"] = fid(real, fake_pair)
            if fids:
                results[f"{prefix}fid_mean"] = sum(fids) / len(fids)
                results[f"{prefix}kid_mean"] = sum(kids) / len(kids)
        return results
