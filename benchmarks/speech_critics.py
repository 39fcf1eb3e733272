"""Do StarGAN-VC's losses lead a generator to a conversion it can represent?

The quickstart's generator gains little distortion (docs/speech.md). This probe asks
whether the losses, not the generator, are the reason. Its generator is one linear map
per target speaker over standardised mel-cepstral frames, starting as the identity: the
form of the parallel-trained least-squares conversion (benchmarks/speech_judge.py), which
comes within about 7 dB of the target's reading where the source is about 11 dB away and
which the speaker judge reads as the target more than 0.9 of the time. If the losses
pointed at the conversion, this generator would move towards it within a few thousand
cheap steps (about 25 s per 1,000 on two cores).

Each variant trains the probe against the plugin's own discriminator and domain
classifier (the quickstart's sizes) with the method's loss sum (docs/speech.md) and one
change, and prints, every ``--every`` steps, the mel-cepstral distortion of whole
held-out readings converted to every other speaker (against the target's reading) and
the speaker judge's accuracy on their centre clips; the identity and the least-squares
conversion are printed first, for scale.

    python benchmarks/speech_critics.py --root data/espeak_vc
    python benchmarks/speech_critics.py --variants quickstart,no_identity --steps 4000
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speech_judge import least_squares_maps, mapped


class LinearPerTarget(torch.nn.Module):
    """G(x, c) = x + A_c x + b_c frame by frame, A and b zero at the start."""

    def __init__(self, speakers: int, coefficients: int = 36) -> None:
        super().__init__()
        self.speakers, self.coefficients = speakers, coefficients
        self.maps = torch.nn.Conv1d(coefficients, coefficients * speakers, 1)
        torch.nn.init.zeros_(self.maps.weight)
        torch.nn.init.zeros_(self.maps.bias)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        batch, _, _, frames = x.shape
        changes = self.maps(x[:, 0]).view(batch, self.speakers, self.coefficients, frames)
        return x + (changes * condition[:, :, None, None]).sum(dim=1)[:, None]


@dataclass(frozen=True)
class Variant:
    """One change to the quickstart's losses."""

    identity: float = 5.0  # λ_id
    cycle: float = 10.0  # λ_cyc
    classification: float = 3.0  # λ_cls
    shuffled: bool = False  # D and C read clips whose frames are shuffled (no timing to go by)
    conversions_as_source: float = 0.0  # C also learns that a conversion is still its source speaker


VARIANTS = {
    "quickstart": Variant(),
    "no_identity": Variant(identity=0.0),
    "no_identity_no_cycle": Variant(identity=0.0, cycle=0.0),
    "shuffled_critics": Variant(shuffled=True),
    "conversions_as_source": Variant(conversions_as_source=1.0),
}


def crops(dataset, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    from mdt_stargan_vc.datasets import SCALE

    items = [dataset[random.randrange(len(dataset))] for _ in range(count)]
    return torch.stack([i["image"] for i in items]) / SCALE, torch.stack([i["label"] for i in items]).argmax(dim=1)


def measure(convert, test, judge) -> tuple[float, float]:
    """Mean MCD of whole held-out readings converted to every other speaker, and the judge's
    accuracy on their centre clips; ``convert(values (36, T), target)`` -> (36, T)."""
    from mdt_stargan_vc.datasets import SCALE
    from mdt_stargan_vc.distortion import mel_cepstral_distortion

    by_sentence: dict[str, dict[str, int]] = {}
    for i, recording in enumerate(test.recordings):
        by_sentence.setdefault(recording.utterance, {})[recording.speaker] = i
    names = list(test.schema.names)
    distortions, right = [], []
    for readings in by_sentence.values():
        for (_, i), (target, j) in itertools.permutations(readings.items(), 2):
            converted = convert(test.standardised(i), target)
            mcep = converted.T * test.mcep[target][1] + test.mcep[target][0]
            distortions.append(mel_cepstral_distortion(mcep, test.features[j].mcep)[0])
            start = max(0, (converted.shape[1] - test.frames) // 2)
            clip = torch.from_numpy(np.clip(converted[:, start : start + test.frames] / SCALE, -1, 1).astype(np.float32))[None, None]
            right.append(int(judge.predict(clip, 0).argmax(dim=1)) == names.index(target))
    return float(np.mean(distortions)), float(np.mean(right))


def train(variant: Variant, train_set, test, judge, steps: int, every: int, seed: int) -> list[tuple[int, float, float]]:
    from mdt_stargan_vc.networks import VCDiscriminator, VCDomainClassifier

    random.seed(seed)
    torch.manual_seed(seed)
    names = list(train_set.schema.names)
    k = len(names)
    generator = LinearPerTarget(k)
    discriminator, classifier = VCDiscriminator(k, 16, "instance"), VCDomainClassifier(k, 8, 36, "instance")
    g_optimizer = torch.optim.Adam(generator.parameters(), 5e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam([*discriminator.parameters(), *classifier.parameters()], 5e-4, betas=(0.5, 0.999))

    def critics_see(x: torch.Tensor) -> torch.Tensor:
        return x[..., torch.randperm(x.shape[-1])] if variant.shuffled else x

    def convert(values: np.ndarray, target: str) -> np.ndarray:
        from mdt_stargan_vc.datasets import SCALE

        x = torch.from_numpy((values / SCALE).astype(np.float32))[None, None]
        with torch.no_grad():
            return generator(x, F.one_hot(torch.tensor([names.index(target)]), k).float())[0, 0].numpy() * SCALE

    points = []
    for step in range(1, steps + 1):
        x, labels = crops(train_set, 8)
        targets = labels[torch.randperm(len(labels))]
        own, wanted = F.one_hot(labels, k).float(), F.one_hot(targets, k).float()
        with torch.no_grad():
            fake = generator(x, wanted)
        d_loss = (
            F.softplus(-discriminator(critics_see(x), own)).mean()
            + F.softplus(discriminator(critics_see(fake), wanted)).mean()
            + variant.classification * F.cross_entropy(classifier(critics_see(x)), labels)
            + variant.conversions_as_source * F.cross_entropy(classifier(critics_see(fake)), labels)
        )
        d_optimizer.zero_grad()
        d_loss.backward()
        d_optimizer.step()
        fake = generator(x, wanted)
        g_loss = (
            F.softplus(-discriminator(critics_see(fake), wanted)).mean()
            + variant.classification * F.cross_entropy(classifier(critics_see(fake)), targets)
            + variant.cycle * (generator(fake, own) - x).abs().mean()
            + variant.identity * (generator(x, own) - x).abs().mean()
        )
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        if step % every == 0:
            points.append((step, *measure(convert, test, judge)))
    return points


def main() -> None:
    from mdt_datasets.augment import StandardAugmentation
    from mdt_stargan_vc.datasets import EspeakSpeech
    from mdt_stargan_vc.judge import SpeakerJudge

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/espeak_vc", help="the espeak corpus (made here on first use)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of: {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    torch.set_num_threads(2)
    train_set, test = (EspeakSpeech(args.root, split, frames=32) for split in ("train", "test"))
    sample = EspeakSpeech.samples({"frames": 32}, 0)
    judge = SpeakerJudge([train_set.schema], seed=args.seed, sample=sample)
    judge.fit([train_set], StandardAugmentation(sample, flip=False), torch.device("cpu"))
    maps = least_squares_maps(train_set)
    table = Table(title=f"a linear generator per target trained by StarGAN-VC's losses ({args.root}, seed {args.seed})")
    for column in ("variant", "step", "MCD dB", "speaker judge"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, convert in (
        ("identity (per-speaker standardisation)", lambda v, t: v),
        ("least squares, parallel-trained", lambda v, t: mapped(maps, v, t)),
    ):
        mcd, accuracy = measure(convert, test, judge)
        table.add_row(name, "-", f"{mcd:.2f}", f"{accuracy:.3f}")
    for name in args.variants.split(","):
        for step, mcd, accuracy in train(VARIANTS[name], train_set, test, judge, args.steps, args.every, args.seed):
            table.add_row(name, str(step), f"{mcd:.2f}", f"{accuracy:.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
