"""Speech datasets: one class per speaker, each item a crop of mel-cepstra.

An item is ``{"image": float32 (1, 36, frames), "label": one-hot speaker}``: mel-cepstra
standardised per speaker, by the mean and deviation of each coefficient over that
speaker's training recordings (the paper's normalisation), so that the generator learns
what a speaker adds beyond its average envelope. The training split gives a random crop
of ``frames`` frames (5 ms each) per call; the test split the centre crop. The model keeps
what translation needs of the corpus (:meth:`statistics`): every speaker's mel-cepstral
mean and deviation and log-F0 mean and deviation.

Layouts: one folder per speaker (``speaker_folders``); VCTK as downloaded (``vctk``:
``wav48/p225/p225_001.wav``, or the 0.92 release's
``wav48_silence_trimmed/p225/p225_001_mic1.flac``, with ``speaker-info.txt``); and
``espeak_speech``, the parallel quickstart corpus made by espeak-ng on first use
(mdt_stargan_vc/corpus.py).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch

from mdt.errors import MdtError, did_you_mean
from mdt.interfaces import Dataset
from mdt.labels import LabelSchema
from mdt.ranges import AtLeast, Between
from mdt.samples import SampleSpec
from mdt_stargan_vc.corpus import ensure_corpus, held_out_ids
from mdt_stargan_vc.features import Features, Recording, all_features
from mdt_stargan_vc.world import COEFFICIENTS, SUFFIXES, log_f0_statistics, mcep_statistics

SCALE = 4.0  # standardised coefficients within +-4 deviations are the networks' [-1, 1]
Split = Literal["train", "test"]
Frames = Annotated[int, AtLeast(16)]


class SpeechCorpus(Dataset):
    """Recordings of several speakers, one class each (the module's docstring)."""

    requires = ("pyworld", "pysptk", "soundfile", "scipy")
    extra = "audio"
    deterministic_items = False  # a training item is a random crop

    @classmethod
    def samples(cls, arguments: Mapping[str, Any], image_size: int) -> SampleSpec:
        frames = int(arguments.get("frames", 128))
        return SampleSpec(1, COEFFICIENTS, frames, "float32", -SCALE, SCALE, "speech")

    def __init__(self, root: Path, recordings: Sequence[Recording], split: Split, frames: int, held_out: set[str]) -> None:
        if frames < 16:
            raise ValueError(f"frames = {frames}: a crop of at least 16 frames (80 ms)")
        speakers = sorted({r.speaker for r in recordings})
        if len(speakers) < 2:
            raise MdtError(f"'{root}' gives {len(speakers)} speaker(s); conversion needs at least two")
        self.root, self.frames, self.split = root, frames, split
        training = [r for r in recordings if r.utterance not in held_out]
        chosen = [r for r in recordings if (r.utterance in held_out) == (split == "test")]
        if not chosen:
            raise MdtError(f"'{root}' has no {split} recordings (held out: {len(held_out)} utterance ids)")
        self.recordings = chosen
        self.schema = LabelSchema("speakers", tuple(speakers), (), categorical=True)
        index = {s: i for i, s in enumerate(speakers)}
        self.labels = torch.nn.functional.one_hot(torch.tensor([index[r.speaker] for r in chosen]), len(speakers)).float()
        self.features = all_features(chosen, root)
        kept = self.features if split == "train" else all_features(training, root)
        by_speaker: dict[str, list[Features]] = {}
        for recording, features in zip(training, kept, strict=True):  # the training split's, in either split
            by_speaker.setdefault(recording.speaker, []).append(features)
        self.mcep = {s: mcep_statistics(np.concatenate([f.mcep for f in fs])) for s, fs in by_speaker.items()}
        self.log_f0 = {s: log_f0_statistics(np.concatenate([f.f0 for f in fs])) for s, fs in by_speaker.items()}

    def __len__(self) -> int:
        return len(self.recordings)

    def standardised(self, index: int) -> np.ndarray:
        """Recording ``index``'s (36, T) mel-cepstra standardised by its speaker's statistics."""
        mean, std = self.mcep[self.recordings[index].speaker]
        return ((self.features[index].mcep - mean) / std).T

    def __getitem__(self, index: int) -> dict:
        values = self.standardised(index)
        total = values.shape[1]
        if total < self.frames:
            values = np.pad(values, ((0, 0), (0, self.frames - total)), mode="edge")
            total = self.frames
        start = random.randrange(total - self.frames + 1) if self.split == "train" else (total - self.frames) // 2
        crop = torch.from_numpy(np.ascontiguousarray(values[:, start : start + self.frames], dtype=np.float32))
        return {"image": crop[None], "label": self.labels[index]}

    def statistics(self) -> dict[str, torch.Tensor]:
        stats = {f"mcep/{speaker}": torch.tensor(np.stack(values), dtype=torch.float64) for speaker, values in self.mcep.items()}
        for speaker, (mean, std) in self.log_f0.items():
            stats[f"log_f0/{speaker}"] = torch.tensor([mean, std], dtype=torch.float64)
        return stats


def _utterance(stem: str, speaker: str) -> str:
    """``p225_001_mic1`` of speaker ``p225`` -> ``001``: the sentence, without the speaker or microphone."""
    name = stem.removeprefix(f"{speaker}_")
    return name.rsplit("_mic", 1)[0]


def _speaker_folders(folder: Path, speakers: Sequence[str], suffixes: Sequence[str] = SUFFIXES) -> list[Recording]:
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = list(speakers) or found
    recordings = []
    for speaker in wanted:
        directory = folder / speaker
        if not directory.is_dir():
            raise MdtError(
                f"speaker folder '{directory}' does not exist{did_you_mean(speaker, found)}; found: {', '.join(found) or 'none'}"
            )
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in suffixes and not p.name.startswith("."))
        if not files:
            raise MdtError(f"speaker folder '{directory}' holds no recordings ({', '.join(suffixes)})")
        recordings += [Recording(p, speaker, _utterance(p.stem, speaker)) for p in files]
    return recordings


def _held_out(recordings: Sequence[Recording], held_out: Sequence[str], test_fraction: float, seed: int = 1234) -> set[str]:
    """The utterance ids of the test split: those given, else a fixed share of all ids."""
    if held_out:
        return set(held_out)
    ids = sorted({r.utterance for r in recordings})
    random.Random(seed).shuffle(ids)
    return set(ids[: max(1, round(len(ids) * test_fraction))])


class SpeakerFolders(SpeechCorpus):
    """One folder of recordings (.wav, .flac, .ogg) per speaker; files named alike in
    several folders are the same sentence (``held_out`` names the test utterances, else
    ``test_fraction`` of them are held out)."""

    def __init__(
        self,
        root: str,
        split: Split,
        speakers: Sequence[str] = (),
        frames: Frames = 128,
        held_out: Sequence[str] = (),
        test_fraction: Annotated[float, Between(0, 1, below_maximum=True)] = 0.1,
    ) -> None:
        folder = Path(root)
        if not folder.is_dir():
            raise MdtError(
                f"speech folder '{root}' does not exist"
                if not folder.exists()
                else f"'{root}' is a file; give the folder of speaker folders"
            )
        recordings = _speaker_folders(folder, speakers)
        super().__init__(folder, recordings, split, frames, _held_out(recordings, held_out, test_fraction))


class VCTK(SpeechCorpus):
    """The CSTR VCTK corpus as downloaded: ``wav48_silence_trimmed/<speaker>/*_mic1.flac``
    (release 0.92) or ``wav48/<speaker>/*.wav``, with ``speaker-info.txt``."""

    terms = "CSTR VCTK corpus: Creative Commons Attribution 4.0 (cite the corpus)"
    shows_people = True  # recordings of real people's voices

    def __init__(
        self,
        root: str,
        split: Split,
        speakers: Sequence[str] = (),
        frames: Frames = 128,
        microphone: Literal["mic1", "mic2"] = "mic1",
        held_out: Sequence[str] = (),
        test_fraction: Annotated[float, Between(0, 1, below_maximum=True)] = 0.1,
    ) -> None:
        base = Path(root)
        audio = next((base / name for name in ("wav48_silence_trimmed", "wav48") if (base / name).is_dir()), None)
        if audio is None:
            raise MdtError(f"'{base}' is not VCTK as downloaded: it has no wav48_silence_trimmed/ or wav48/ folder")
        known = _vctk_speakers(base / "speaker-info.txt")
        for speaker in speakers:
            if known and speaker not in known:
                raise MdtError(f"speaker '{speaker}' is not in {base / 'speaker-info.txt'}{did_you_mean(speaker, known)}")
        recordings = _speaker_folders(audio, speakers)
        if audio.name == "wav48_silence_trimmed":  # two microphones per sentence: keep one
            recordings = [r for r in recordings if r.path.stem.endswith(f"_{microphone}")]
        super().__init__(base, recordings, split, frames, _held_out(recordings, held_out, test_fraction))


def _vctk_speakers(info: Path) -> list[str]:
    """Speaker ids of ``speaker-info.txt`` (``ID AGE GENDER ...``; 0.92 writes ``p225``, older ``225``)."""
    if not info.is_file():
        return []
    ids = []
    for line in info.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        fields = line.split()
        if fields:
            ids.append(fields[0] if fields[0].startswith(("p", "s")) else f"p{fields[0]}")
    return ids


class EspeakSpeech(SpeechCorpus):
    """The quickstart's parallel corpus: four espeak-ng voices reading the same 40
    sentences, made into ``root`` on first use; the last 8 sentences are the test split."""

    terms = "made by espeak-ng (GPL-3.0 program; its speech output is free to use)"

    def __init__(self, root: str, split: Split, frames: Frames = 128) -> None:
        folder = ensure_corpus(Path(root))
        super().__init__(folder, _speaker_folders(folder, ()), split, frames, held_out_ids())
