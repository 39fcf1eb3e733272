"""The ``speech`` modality: recordings in, converted recordings out.

A recording is read at 16 kHz and analysed by WORLD; its mel-cepstra, standardised by
the recording's own mean and deviation per coefficient (a file does not say who speaks;
for a speaker of the corpus they come close to that speaker's own, by which training
standardised), are the sample the generator converts, padded to a multiple of 4 frames
(the generator halves time twice). The output takes the converted mel-cepstra, given the
target speaker's mean and deviation (which the model keeps), the input's F0 moved to the
target speaker's log-F0 mean and deviation, and the input's own aperiodicity, and WORLD
synthesises it: a WAV file of the input's duration. A sample is pictured as its mel-cepstrogram (low coefficients at the
bottom), twice as tall, for grids and reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mdt.errors import MdtError
from mdt.images import to_pil
from mdt.interfaces import Modality
from mdt.samples import SampleSpec
from mdt.writing import write_file
from mdt_stargan_vc.world import (
    SUFFIXES,
    Analysis,
    analyse,
    convert_f0,
    log_f0_statistics,
    mcep_statistics,
    read_wave,
    synthesise,
    write_wave,
)

TIME_STEP = 4  # the generator halves time twice


@dataclass
class Recording:
    """An input recording: its waveform (16 kHz) and, once made a sample, its analysis."""

    wave: np.ndarray
    analysis: Analysis | None = field(default=None, repr=False)


@dataclass
class Speech:
    """A converted recording: a 16 kHz waveform."""

    wave: np.ndarray


class SpeechModality(Modality):
    """WAV, FLAC or Ogg recordings, converted through WORLD (the module's docstring)."""

    requires = ("pyworld", "pysptk", "soundfile", "scipy")
    extra = "audio"
    suffixes = SUFFIXES
    output_suffix = ".wav"
    noun = "recording"
    task = "audio-to-audio"
    page = "audio"

    def __init__(self, sample: SampleSpec, statistics: Mapping[str, torch.Tensor] | None = None) -> None:
        super().__init__(sample, statistics)
        self.mcep = {k.split("/mcep/", 1)[1]: v.numpy() for k, v in self.statistics.items() if "/mcep/" in k}
        self.speakers = {k.split("/log_f0/", 1)[1]: tuple(v.tolist()) for k, v in self.statistics.items() if "/log_f0/" in k}

    def read(self, path: Path) -> Recording:
        return Recording(read_wave(path))

    def to_sample(self, given: Recording, crop_size: int = 0) -> torch.Tensor:
        if given.analysis is None:
            given.analysis = analyse(given.wave)
        mean, std = mcep_statistics(given.analysis.mcep)
        values = ((given.analysis.mcep - mean) / std).T
        padded = -(-values.shape[1] // TIME_STEP) * TIME_STEP
        values = np.pad(values, ((0, 0), (0, padded - values.shape[1])), mode="edge")
        return self.sample.to_unit(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))[None])

    def target_speaker(self, request: Mapping[str, Any]) -> str:
        """The one speaker the request names (a value, or a label set to 1)."""
        named = set()
        for value in request.values():
            if isinstance(value, str) and value in self.speakers:
                named.add(value)
            elif isinstance(value, Mapping):
                named |= {str(k).rsplit(".", 1)[-1] for k, v in value.items() if v and str(k).rsplit(".", 1)[-1] in self.speakers}
        if len(named) != 1:
            raise MdtError(f"name one target speaker of {', '.join(sorted(self.speakers))}, not {len(named)}")
        return named.pop()

    def from_sample(self, values: torch.Tensor, given: Recording, request: Mapping[str, Any]) -> Speech:
        if given.analysis is None:
            given.analysis = analyse(given.wave)
        analysis = given.analysis
        speaker = self.target_speaker(request)
        if speaker not in self.mcep:
            raise MdtError(f"this model keeps no mel-cepstral statistics of '{speaker}'; it was not trained on a speech dataset of mdt's")
        mean, std = self.mcep[speaker]
        standardised = self.sample.from_unit(values[0, :, : analysis.frames].detach().cpu())  # within the stored range
        mcep = standardised.numpy().T.astype(np.float64) * std + mean
        f0 = convert_f0(analysis.f0, log_f0_statistics(analysis.f0), self.speakers[speaker])
        return Speech(synthesise(f0, mcep, analysis.aperiodicity)[: analysis.samples])

    def write(self, output: Speech, path: Path, replace: bool = True) -> None:
        write_file(path, lambda handle: write_wave(output.wave, handle), replace)

    def preview(self, values: torch.Tensor) -> Image.Image:
        picture = to_pil(values.flip(-2))
        return picture.resize((picture.width, picture.height * 2), Image.Resampling.NEAREST)
