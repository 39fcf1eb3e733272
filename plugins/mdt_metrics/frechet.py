"""FID and KID: do translations into a domain look like its real images?

For each target, the held-out images translated into it from elsewhere are compared
with the real *training* images of that target (StarGAN v2's setting), in the feature
space of the Inception file the user gave (``mdt eval --inception``), otherwise in the
judge classifier's — always available offline, and named in ``feature_space`` so the
numbers are never mistaken for published ones. Two protocols, named in the results:

- ``pytorch-fid`` (default): pytorch-fid's TF-Inception; one FID per target over all its
  translations, ``fid_mean`` the mean over targets.
- ``stargan-v2``: torchvision's ImageNet Inception on PNG-quantised images; one FID per
  source -> target task, ``fid_mean`` the mean over tasks (StarGAN v2's ``metrics/eval.py``).

A protocol's name is only given to numbers measured with its published weights: an
Inception file whose SHA-256 is not the published one is refused, unless
``unverified_weights`` (``mdt eval --unverified-weights``) accepts it, and then
``weights`` and ``feature_space`` say "unverified weights".

``seeds`` repeats the measurement with other latent codes and references and reports the
mean, with the spread over seeds (``fid_mean_std``). StarGAN v2's two modes, latent- and
reference-guided, are measured separately.
"""

from __future__ import annotations

import statistics
from typing import Annotated, Literal

import torch

from mdt.errors import MdtError
from mdt.evaluation import Evaluation
from mdt.interfaces import Metric
from mdt.ranges import AtLeast, Positive
from mdt_metrics.distances import fid, kid
from mdt_metrics.features import feature_space, feature_weights, image_features, inception, inception_verified, real_features
from mdt_metrics.pairs import translations, ways

SEED_STRIDE = 1009  # seeds this far apart draw no latent code twice (pairs.translations adds the batch index)
PROTOCOLS = ("pytorch-fid", "stargan-v2")
WEIGHTS_FILE = {
    "pytorch-fid": "pytorch-fid's pt_inception-2015-12-05-6726825d.pth",
    "stargan-v2": "torchvision's inception_v3_google-0cc3c7bd.pth",
}


class FrechetDistance(Metric):
    """FID and KID between real images of each target and held-out images translated into it."""

    docs = "docs/evaluation.md, Feature spaces and FID protocols"
    meanings = {
        "fid_mean": ("lower", "mean FID over targets: how far translations' features lie from real images of their target"),
        "kid_mean": ("lower", "mean KID over targets; unbiased, so near 0 it can fall below 0, which reads as 0"),
        "fid_mean_std": ("", "spread of fid_mean over seeds"),
        "kid_mean_std": ("", "spread of kid_mean over seeds"),
        "fid": ("lower", "FID of the translations into this target against its real training images"),
        "kid": ("lower", "KID of the translations into this target; can fall below 0 near 0"),
        "real_images": ("", "real training images of the target it was measured against (a count)"),
        "translated_images": ("", "translations into the target it measured (a count)"),
        "protocol": ("", "how FID was computed: pytorch-fid's (per target) or StarGAN v2's (per task, PNG-quantised)"),
        "feature_space": (
            "",
            "the features compared: 'classifier' is mdt's judge, not Inception, so the numbers compare "
            "only with other mdt runs judged alike, never with published FIDs",
        ),
        "feature_weights_sha256": ("", "which weights gave the features"),
        "weights": (
            "",
            "'published' when the Inception file's SHA-256 is its protocol's published one, 'unverified weights' "
            "when --unverified-weights accepted another, 'judge classifier' without --inception",
        ),
    }

    def __init__(
        self,
        max_images: Positive = 256,
        real_images: Positive = 1000,
        kid_subsets: Positive = 100,
        kid_subset_size: Annotated[int, AtLeast(2)] = 1000,
        protocol: Literal["pytorch-fid", "stargan-v2"] = "pytorch-fid",
        seeds: Positive = 1,
        unverified_weights: bool = False,
    ) -> None:
        if min(max_images, real_images, kid_subsets, seeds) < 1 or kid_subset_size < 2:
            raise ValueError("max_images, real_images, kid_subsets and seeds must be at least 1, kid_subset_size at least 2")
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol '{protocol}' is not one of {', '.join(PROTOCOLS)}")
        self.max_images, self.real_images = max_images, real_images
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.protocol, self.seeds = protocol, seeds
        self.unverified_weights = unverified_weights

    def prepare(self, evaluation: Evaluation) -> None:
        """Load the weights now: a wrong file, or the other protocol's, fails before any work."""
        if "inception" in evaluation.weights:
            network = inception(evaluation)
            if network.protocol != self.protocol:
                raise MdtError(
                    f"the {self.protocol} FID protocol measures with {WEIGHTS_FILE[self.protocol]}, but "
                    f"--inception '{evaluation.weights['inception']}' is {WEIGHTS_FILE[network.protocol]} "
                    f"(use --fid-protocol {network.protocol} with it)"
                )
            if not inception_verified(evaluation) and not self.unverified_weights:
                from mdt_metrics.inception import published_names

                raise MdtError(
                    f"--inception '{evaluation.weights['inception']}' has the layout of {WEIGHTS_FILE[self.protocol]} "
                    f"but not its weights: its SHA-256 begins {evaluation.cache['inception_sha256'][:8]}, the published "
                    f"file's {published_names(self.protocol)}; give the published file, or --unverified-weights to "
                    "measure with this one, labelled 'unverified weights'"
                )

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float | str]:
        results: dict[str, float | str] = {
            "protocol": self.protocol,
            "feature_space": feature_space(evaluation),
            "feature_weights_sha256": feature_weights(evaluation),
            "weights": self._weights(evaluation),
        }
        modes = list(ways(evaluation.translator))
        for mode in modes:
            prefix = f"{mode}/" if len(modes) > 1 else ""
            runs = [self._measure(evaluation, mode, seed) for seed in range(self.seeds)]
            for key in runs[0]:
                values = [run[key] for run in runs if key in run]
                results[prefix + key] = sum(values) / len(values)
                if self.seeds > 1 and key in ("fid_mean", "kid_mean"):
                    results[f"{prefix}{key}_std"] = statistics.stdev(values)
        return results

    @staticmethod
    def _weights(evaluation: Evaluation) -> str:
        if "inception" not in evaluation.weights:
            return "judge classifier"
        return "published" if inception_verified(evaluation) else "unverified weights"

    def _measure(self, evaluation: Evaluation, mode: str, seed: int) -> dict[str, float]:
        """One seed's values: per target (or task), their mean, and the images counted."""
        by_target, by_pair = self._translated_features(evaluation, mode, seed)
        values: dict[str, float] = {}
        fids, kids = [], []
        for target in evaluation.targets:
            real = real_features(evaluation, target, self.real_images)
            fake = torch.cat(by_target.get(target.title, [torch.empty(0, dtype=torch.float64)]))
            values[f"real_images/{target.title}"] = real.shape[0]
            values[f"translated_images/{target.title}"] = fake.shape[0]
            if real.shape[0] < 2 or fake.shape[0] < 2:
                if seed == 0:
                    evaluation.console.print(
                        f"fid: '{target.title}' has {real.shape[0]} real and {fake.shape[0]} translated images; at least 2 each are needed",
                        markup=False,
                    )
                continue
            tasks = {pair: torch.cat(rows) for pair, rows in by_pair.items() if pair.endswith(f"->{target.title}")}
            if self.protocol == "stargan-v2":  # a FID per task; the target's value is their mean
                scores = self._per_task(real, tasks, values)
                if scores:
                    values[f"fid/{target.title}"] = sum(f for f, _ in scores.values()) / len(scores)
                    values[f"kid/{target.title}"] = sum(k for _, k in scores.values()) / len(scores)
                fids += [f for f, _ in scores.values()]
                kids += [k for _, k in scores.values()]
                continue
            fids.append(fid(real, fake))
            kids.append(self._kid(real, fake))
            values[f"fid/{target.title}"], values[f"kid/{target.title}"] = fids[-1], kids[-1]
            # With one source per target (StarGAN's attributes) a task is its target, already measured.
            if len(by_pair) > len(evaluation.targets):
                for pair, task_fakes in tasks.items():
                    if task_fakes.shape[0] >= 2:
                        values[f"fid/pair/{pair}"] = fid(real, task_fakes)
        if fids:
            values["fid_mean"] = sum(fids) / len(fids)
            values["kid_mean"] = sum(kids) / len(kids)
        return values

    def _translated_features(
        self, evaluation: Evaluation, mode: str, seed: int
    ) -> tuple[dict[str, list[torch.Tensor]], dict[str, list[torch.Tensor]]]:
        """Features of the held-out translations that changed their image's labels, by target
        and by ``source->target`` task."""
        by_target: dict[str, list[torch.Tensor]] = {}
        by_pair: dict[str, list[torch.Tensor]] = {}
        for t in translations(evaluation, self.max_images, mode, seed=seed * SEED_STRIDE):
            if t.changed.any():
                features = image_features(evaluation, t.fake[t.changed], t.target.dataset)
                by_target.setdefault(t.target.title, []).append(features)
                for row, pair in enumerate(p for p, changed in zip(t.pairs, t.changed.tolist(), strict=True) if changed):
                    by_pair.setdefault(pair, []).append(features[row : row + 1])
        return by_target, by_pair

    def _per_task(self, real: torch.Tensor, tasks: dict[str, torch.Tensor], values: dict[str, float]) -> dict[str, tuple[float, float]]:
        """StarGAN v2's protocol: FID and KID of each task (``source->target``) with two
        translations or more, written into ``values`` and returned."""
        scores = {pair: (fid(real, f), self._kid(real, f)) for pair, f in tasks.items() if f.shape[0] >= 2}
        for pair, (f, k) in scores.items():
            values[f"fid/pair/{pair}"], values[f"kid/pair/{pair}"] = f, k
        return scores

    def _kid(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        return kid(real, fake, self.kid_subsets, self.kid_subset_size)[0]
