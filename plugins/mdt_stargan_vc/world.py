"""Speech as StarGAN-VC converts it: WORLD analysis (F0, spectral envelope, aperiodicity)
at 16 kHz every 5 ms, the envelope as 36 mel-cepstral coefficients (SPTK), and back.

Only the mel-cepstra go through the generator. F0 is converted by the log-Gaussian
normalised transform (the target speaker's mean and deviation of log F0 replace the
input's), the aperiodicity is the input's own, and WORLD synthesises the waveform.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdt.errors import MdtError

RATE = 16000  # Hz: the paper's
FRAME_MS = 5.0  # WORLD's frame period
COEFFICIENTS = 36  # mel-cepstral coefficients, c0 (energy) included: the paper's
ALPHA = 0.41  # SPTK's frequency warping for 16 kHz (pysptk.util.mcepalpha(16000))
FFT = 1024  # WORLD's CheapTrick FFT size at 16 kHz
F0_FLOOR, F0_CEIL = 71.0, 800.0  # Hz: Harvest's search range
SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass
class Analysis:
    """One recording, analysed: per 5 ms frame its F0 (Hz, 0 where unvoiced), mel-cepstrum
    (T, 36) and aperiodicity (T, FFT/2 + 1); ``samples`` is the recording's length."""

    f0: np.ndarray
    mcep: np.ndarray
    aperiodicity: np.ndarray
    samples: int

    @property
    def frames(self) -> int:
        return len(self.f0)


def read_wave(path: str | Path) -> np.ndarray:
    """A recording as mono float64 at 16 kHz (mixed down and resampled as needed)."""
    import soundfile

    try:
        wave, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as exc:
        raise MdtError(f"cannot read recording '{path}': {exc}") from None
    if wave.shape[0] == 0:
        raise MdtError(f"recording '{path}' holds no samples")
    return resample(wave.mean(axis=1), rate)


def resample(wave: np.ndarray, rate: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz resampled to 16 kHz by a polyphase filter."""
    if rate == RATE:
        return wave
    from scipy.signal import resample_poly

    common = math.gcd(RATE, int(rate))
    return resample_poly(wave, RATE // common, int(rate) // common)


def _signal_packages():
    """pysptk and pyworld, imported without the warning both print on import about
    setuptools' pkg_resources (the audio extra caps setuptools below 81, which keeps it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
        import pysptk
        import pyworld
    return pysptk, pyworld


def analyse(wave: np.ndarray) -> Analysis:
    """WORLD's Harvest (F0), CheapTrick (envelope) and D4C (aperiodicity), and the envelope
    as mel-cepstra."""
    pysptk, pyworld = _signal_packages()
    wave = np.ascontiguousarray(wave, dtype=np.float64)
    f0, times = pyworld.harvest(wave, RATE, frame_period=FRAME_MS, f0_floor=F0_FLOOR, f0_ceil=F0_CEIL)
    envelope = pyworld.cheaptrick(wave, f0, times, RATE, fft_size=FFT)
    aperiodicity = pyworld.d4c(wave, f0, times, RATE, fft_size=FFT)
    mcep = pysptk.sp2mc(envelope, COEFFICIENTS - 1, ALPHA)
    return Analysis(f0, mcep, aperiodicity, len(wave))


def synthesise(f0: np.ndarray, mcep: np.ndarray, aperiodicity: np.ndarray) -> np.ndarray:
    """A waveform at 16 kHz from per-frame F0, mel-cepstra and aperiodicity."""
    pysptk, pyworld = _signal_packages()
    envelope = pysptk.mc2sp(np.ascontiguousarray(mcep, dtype=np.float64), ALPHA, FFT)
    wave = pyworld.synthesize(
        np.ascontiguousarray(f0, dtype=np.float64), envelope, np.ascontiguousarray(aperiodicity, dtype=np.float64), RATE, FRAME_MS
    )
    return np.clip(wave, -1.0, 1.0)


def mcep_statistics(mcep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and deviation of each coefficient over the frames (T, 36); a deviation is at
    least 1e-6, so that standardising never divides by zero."""
    return mcep.mean(axis=0), np.maximum(mcep.std(axis=0), 1e-6)


def log_f0_statistics(f0: np.ndarray) -> tuple[float, float]:
    """Mean and deviation of log F0 over the voiced frames (0, 1 where none is voiced)."""
    voiced = np.log(f0[f0 > 0])
    if voiced.size == 0:
        return 0.0, 1.0
    return float(voiced.mean()), float(max(voiced.std(), 1e-3))


def convert_f0(f0: np.ndarray, source: tuple[float, float], target: tuple[float, float]) -> np.ndarray:
    """The log-Gaussian normalised transform: each voiced frame's log F0 standardised by
    the ``source``'s (mean, deviation) and given the ``target``'s; unvoiced frames stay 0."""
    out = np.zeros_like(f0)
    voiced = f0 > 0
    out[voiced] = np.exp((np.log(f0[voiced]) - source[0]) / source[1] * target[1] + target[0])
    return out


def write_wave(wave: np.ndarray, handle) -> None:
    """16-bit PCM WAV at 16 kHz into an open binary file."""
    import soundfile

    soundfile.write(handle, wave, RATE, subtype="PCM_16", format="WAV")
