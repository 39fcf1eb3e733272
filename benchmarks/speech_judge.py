"""Which judge can tell whether speech was converted to a speaker?

A judge of voice conversion must read real held-out speech as its speaker, the
unconverted source as *not* the target, and a good conversion as the target. The last
needs a conversion known to be good: on the espeak corpus, which is parallel, a
least-squares map per target speaker fitted on the DTW-aligned training sentences of
every other speaker (mel-cepstra standardised per speaker, as StarGAN-VC converts them)
gives one, trained with the truth that StarGAN-VC never sees. Its distortion from the
target's own reading is printed beside the source's.

Each judge trains as ``mdt eval`` trains it (its recipe table's defaults, on the training
clips of the dataset) and reads the test split's clips the way ``translation_accuracy``
gives them (centre crops of ``--frames``). ``--checkpoint RUN`` adds the conversions of a
trained StarGAN-VC model.

    python benchmarks/speech_judge.py                              # data/espeak_vc, two seeds
    python benchmarks/speech_judge.py --checkpoint runs/stargan_vc_quickstart
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table


def least_squares_maps(train) -> dict[str, np.ndarray]:
    """Per target speaker, the (37, 36) map from any other speaker's standardised frame
    (and a constant) to the target's aligned frame, fitted on the parallel training sentences."""
    from mdt_stargan_vc.distortion import dtw_path

    by_sentence: dict[str, dict[str, int]] = {}
    for i, recording in enumerate(train.recordings):
        by_sentence.setdefault(recording.utterance, {})[recording.speaker] = i
    maps = {}
    for target in train.schema.names:
        inputs, outputs = [], []
        for readings in by_sentence.values():
            for source, i in readings.items():
                if source == target or target not in readings:
                    continue
                j = readings[target]
                path_i, path_j = dtw_path(train.features[i].mcep[:, 1:], train.features[j].mcep[:, 1:])
                x = train.standardised(i).T
                inputs.append(np.c_[x, np.ones(len(x))][path_i])
                outputs.append(train.standardised(j).T[path_j])
        x, y = np.concatenate(inputs), np.concatenate(outputs)
        maps[target] = np.linalg.solve(x.T @ x + np.eye(x.shape[1]), x.T @ y)
    return maps


def mapped(maps: dict[str, np.ndarray], values: np.ndarray, target: str) -> np.ndarray:
    """(36, T) standardised mel-cepstra of a source -> the target's, by its map."""
    return (np.c_[values.T, np.ones(values.shape[1])] @ maps[target]).T


def distortion(test, maps) -> tuple[float, float]:
    """Mean MCD (dB) of the mapped and of the unconverted test readings against the target's."""
    from mdt_stargan_vc.distortion import mel_cepstral_distortion

    by_sentence: dict[str, dict[str, int]] = {}
    for i, recording in enumerate(test.recordings):
        by_sentence.setdefault(recording.utterance, {})[recording.speaker] = i
    ours, source = [], []
    for readings in by_sentence.values():
        for (_, i), (b, j) in itertools.permutations(readings.items(), 2):
            converted = mapped(maps, test.standardised(i), b).T * test.mcep[b][1] + test.mcep[b][0]
            ours.append(mel_cepstral_distortion(converted, test.features[j].mcep)[0])
            source.append(mel_cepstral_distortion(test.features[i].mcep, test.features[j].mcep)[0])
    return float(np.mean(ours)), float(np.mean(source))


def crops(test) -> tuple[torch.Tensor, list[str], list[np.ndarray]]:
    """The test clips as translation_accuracy reads them (the split's centre crops, in [-1, 1]), their
    speakers, and the whole standardised recordings."""
    from mdt_stargan_vc.datasets import SCALE

    clips = torch.stack([test[i]["image"] for i in range(len(test))]) / SCALE
    speakers = [r.speaker for r in test.recordings]
    return clips, speakers, [test.standardised(i) for i in range(len(test))]


def rows(test, maps, frames: int, checkpoints: list[Path]) -> dict[str, list[tuple[torch.Tensor, int]]]:
    """Clips to judge, each with the speaker it should be read as, by row of the table."""
    from mdt_stargan_vc.datasets import SCALE

    clips, speakers, whole = crops(test)
    names = list(test.schema.names)
    out: dict[str, list[tuple[torch.Tensor, int]]] = {"real held-out clips (as their speaker)": []}
    out["unconverted source (as the target)"] = []
    out["least-squares conversion, parallel-trained (as the target)"] = []
    for i, speaker in enumerate(speakers):
        out["real held-out clips (as their speaker)"].append((clips[i], names.index(speaker)))
        total = whole[i].shape[1]
        start = (max(total, frames) - frames) // 2
        for target in names:
            if target == speaker:
                continue
            out["unconverted source (as the target)"].append((clips[i], names.index(target)))
            values = np.pad(whole[i], ((0, 0), (0, max(0, frames - total))), mode="edge")
            converted = mapped(maps, values, target)[:, start : start + frames]
            clip = torch.from_numpy(np.clip(converted / SCALE, -1, 1).astype(np.float32))[None]
            out["least-squares conversion, parallel-trained (as the target)"].append((clip, names.index(target)))
    for checkpoint in checkpoints:
        from mdt.inference import load_translator

        model = load_translator(checkpoint, device="cpu")
        key = f"{checkpoint}: conversions (as the target)"
        out[key] = []
        for t, target in enumerate(names):
            wanted = torch.nn.functional.one_hot(torch.full((len(clips),), t), len(names)).float()
            with torch.no_grad():
                converted = model.translator.to_labels(clips, wanted, 0)
            out[key] += [(converted[i], t) for i, speaker in enumerate(speakers) if speaker != target]
    return out


def main() -> None:
    from mdt_datasets.augment import StandardAugmentation
    from mdt_metrics.classifier import TimmClassifier
    from mdt_stargan_vc.datasets import EspeakSpeech
    from mdt_stargan_vc.judge import SpeakerJudge

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data/espeak_vc", help="the espeak corpus (made here on first use)")
    parser.add_argument("--frames", type=int, default=32, help="clip length, as the model's dataset crops")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--checkpoint", action="append", type=Path, default=[], help="a StarGAN-VC run to judge too")
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, test = (EspeakSpeech(args.root, split, frames=args.frames) for split in ("train", "test"))
    maps = least_squares_maps(train)
    mcd, mcd_source = distortion(test, maps)
    table_rows = rows(test, maps, args.frames, args.checkpoint)
    sample = EspeakSpeech.samples({"frames": args.frames}, 0)
    augmentation = StandardAugmentation(sample, flip=False)
    judges = {"timm resnet18 (image judge)": TimmClassifier, "speaker (x-vector style)": SpeakerJudge}
    results: dict[str, dict[str, list[float]]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for title, factory in judges.items():
            judge = factory([train.schema], seed=seed, sample=sample)
            judge.fit([train], augmentation, torch.device("cpu"))
            for row, items in table_rows.items():
                clips = torch.stack([clip for clip, _ in items])
                wanted = torch.tensor([speaker for _, speaker in items])
                read = judge.predict(clips, 0).argmax(dim=1)
                results.setdefault(row, {}).setdefault(title, []).append(float((read == wanted).float().mean()))
    table = Table(title=f"speaker accuracy on {args.root} (test split, {args.frames}-frame centre clips), seeds {args.seeds}")
    table.add_column("clips")
    for title in judges:
        table.add_column(title, justify="right")
    for row, by_judge in results.items():
        table.add_row(row, *(f"{statistics.mean(v):.3f} ({min(v):.3f}-{max(v):.3f})" for v in by_judge.values()))
    console = Console()
    console.print(table)
    console.print(f"least-squares conversion: MCD {mcd:.2f} dB against the target's reading; unconverted source {mcd_source:.2f} dB")


if __name__ == "__main__":
    main()
