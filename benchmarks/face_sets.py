"""A sheet of the synthetic faces and their true translations, for a person to look at.

Each row is one held-out face of ``synthetic_celeba`` (drawn into a scratch folder), then its exact counterfactual for each target, as the
counterfactual metric compares translations with: each hair colour, Male flipped, Young
flipped. Writes a PNG (nearest-neighbour enlarged).

    python benchmarks/face_sets.py --out docs/images/synthetic_celeba.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from mdt_datasets.synthetic_celeba import ATTRIBUTES, HAIR, SyntheticCelebA
from PIL import Image


def targets(label: torch.Tensor) -> list[torch.Tensor]:
    """The label of each target: the three hair colours, then Male and Young flipped."""
    wanted = []
    for colour in range(len(HAIR)):
        hair = label.clone()
        hair[: len(HAIR)] = torch.eye(len(HAIR))[colour]
        wanted.append(hair)
    for name in ("Male", "Young"):
        flipped = label.clone()
        flipped[ATTRIBUTES.index(name)] = 1 - flipped[ATTRIBUTES.index(name)]
        wanted.append(flipped)
    return wanted


def sheet(faces: SyntheticCelebA, rows: int) -> Image.Image:
    lines = []
    for index in range(rows):
        item = faces[index]
        row = [item["image"], *(faces.counterfactual(index, wanted) for wanted in targets(item["label"]))]
        lines.append(torch.cat([torch.nn.functional.pad(image, (1, 1, 1, 1), value=255) for image in row], dim=2))
    return Image.fromarray(torch.cat(lines, dim=1).permute(1, 2, 0).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("synthetic_celeba.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        faces = SyntheticCelebA("test", args.size, root=str(Path(scratch) / "faces"), size=32, test_size=args.rows, seed=args.seed)
        picture = sheet(faces, args.rows)
    picture.resize((picture.width * args.scale, picture.height * args.scale), Image.Resampling.NEAREST).save(args.out)
    print(f"wrote {args.out}: input, then Black_Hair, Blond_Hair, Brown_Hair, Male flipped, Young flipped")


if __name__ == "__main__":
    main()
