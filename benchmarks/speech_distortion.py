"""Where does a conversion's mel-cepstral distortion come from?

``speech_distortion`` (mdt eval) gives one number per model: MCD against the target
speaker's own reading, DTW-aligned, averaged over every held-out pair. This prints it per
speaker pair, and per band of coefficients, for conversions that bracket a model:

- the unconverted source, and the identity conversion (per-speaker standardisation: each
  coefficient's mean and deviation moved from the source speaker's to the target's, which
  is what StarGAN-VC's generator starts from);
- the identity shrunk towards the target speaker's mean frame (``--shrink``): no
  conversion at all, only flatter envelopes, to show how much distortion rewards them;
- a least-squares map per target speaker fitted on the parallel training sentences (a
  conversion known to be good, trained with the truth StarGAN-VC never sees);
- each ``--checkpoint``'s conversions, whole sentences as ``mdt eval`` converts them.

The bands are mean squared errors of standardised coefficients along the DTW path of the
identity conversion (one alignment for all rows, so they compare like with like): 1.0 is
what always answering the target's mean frame would score, 2.0 what an unrelated frame of
the target speaker would.

    python benchmarks/speech_distortion.py --root data/espeak_vc --checkpoint runs/stargan_vc_quickstart
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speech_judge import least_squares_maps, mapped

BANDS = {"c1-c3": slice(1, 4), "c4-c12": slice(4, 13), "c13-c35": slice(13, 36)}
TIME_STEP = 4  # the generator halves time twice


def model_conversion(translator, names: list[str], values: np.ndarray, target: str) -> np.ndarray:
    """(36, T) standardised mel-cepstra converted whole by a StarGAN-VC model."""
    from mdt_stargan_vc.datasets import SCALE

    frames = values.shape[1]
    padded = np.pad(values, ((0, 0), (0, -(-frames // TIME_STEP) * TIME_STEP - frames)), mode="edge")
    x = torch.from_numpy(np.clip(padded / SCALE, -1, 1).astype(np.float32))[None, None]
    wanted = torch.nn.functional.one_hot(torch.tensor([names.index(target)]), len(names)).float()
    with torch.no_grad():
        out = translator.to_labels(x, wanted, 0)
    return out[0, 0, :, :frames].numpy().astype(np.float64) * SCALE


def measure(test, conversions) -> tuple[dict, dict]:
    """MCD per (row, source, target) and band errors per row, over every held-out pair.
    ``conversions``: row -> f(standardised source, source index, target) -> standardised (36, T)."""
    from mdt_stargan_vc.distortion import dtw_path, mel_cepstral_distortion

    by_sentence: dict[str, dict[str, int]] = {}
    for i, recording in enumerate(test.recordings):
        by_sentence.setdefault(recording.utterance, {})[recording.speaker] = i
    mcd: dict[tuple[str, str, str], list[float]] = {}
    bands: dict[str, list[np.ndarray]] = {}
    for readings in by_sentence.values():
        for (a, i), (b, j) in itertools.permutations(readings.items(), 2):
            truth, (mean, deviation) = test.features[j].mcep, test.mcep[b]
            values = test.standardised(i)
            path = dtw_path(values.T[:, 1:] * deviation[1:] + mean[1:], truth[:, 1:])
            for row, convert in conversions.items():
                converted = test.features[i].mcep if convert is None else convert(values, b).T * deviation + mean
                mcd.setdefault((row, a, b), []).append(mel_cepstral_distortion(converted, truth)[0])
                error = ((converted[path[0]] - truth[path[1]]) / deviation) ** 2
                bands.setdefault(row, []).append(error.mean(axis=0))
    return mcd, bands


def main() -> None:
    from mdt_stargan_vc.datasets import EspeakSpeech

    from mdt.inference import load_translator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/espeak_vc", help="the espeak corpus (made here on first use)")
    parser.add_argument("--shrink", default="0.75,0.5", help="factors for the shrunk identity")
    parser.add_argument("--checkpoint", action="append", type=Path, default=[], help="a StarGAN-VC run to measure too")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = (EspeakSpeech(args.root, split, frames=32) for split in ("train", "test"))
    names = list(test.schema.names)
    maps = least_squares_maps(train)
    conversions: dict = {"source": None, "identity": lambda v, t: v}
    for factor in (float(f) for f in args.shrink.split(",") if f):
        conversions[f"identity x {factor:g}"] = lambda v, t, k=factor: k * v
    conversions["least squares"] = lambda v, t: mapped(maps, v, t)
    for n, checkpoint in enumerate(args.checkpoint, 1):
        translator = load_translator(checkpoint, device="cpu").translator
        conversions[f"model {n}"] = lambda v, t, model=translator: model_conversion(model, names, v, t)
    described = {
        "source": "unconverted source",
        "identity": "identity (per-speaker standardisation)",
        **{row: f"{row} (flatter, no conversion)" for row in conversions if row.startswith("identity x")},
        "least squares": "least squares per target, parallel-trained",
        **{f"model {n}": f"model {n}: {checkpoint}" for n, checkpoint in enumerate(args.checkpoint, 1)},
    }
    mcd, bands = measure(test, conversions)

    console = Console()
    table = Table(title="mean over all held-out pairs")
    for column in ("conversion", "MCD dB", *BANDS):
        table.add_column(column, justify="left" if column == "conversion" else "right")
    for row in conversions:
        mean_mcd = np.mean([np.mean(v) for (r, _, _), v in mcd.items() if r == row])
        errors = np.mean(bands[row], axis=0)
        table.add_row(described[row], f"{mean_mcd:.2f}", *(f"{errors[band].mean():.2f}" for band in BANDS.values()))
    console.print(table)
    pairs = Table(title="MCD dB per pair")
    pairs.add_column("source -> target")
    for row in conversions:
        pairs.add_column(row, justify="right")
    for a, b in itertools.permutations(names, 2):
        pairs.add_row(f"{a} -> {b}", *(f"{np.mean(mcd[(row, a, b)]):.2f}" for row in conversions))
    console.print(pairs)


if __name__ == "__main__":
    main()
