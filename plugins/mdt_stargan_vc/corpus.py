"""A parallel speech corpus made by espeak-ng: four voices reading the same sentences.

The quickstart needs speech that any machine can make without a download, and a truth to
measure conversions against: every voice reads every sentence, so a conversion of voice
A's sentence to voice B has B's own recording of it to be compared with (mel-cepstral
distortion), as the synthetic faces have their exact counterfactuals. The corpus is
written on first use in the folder-per-speaker layout (``<root>/<voice>/<sentence>.wav``
at 16 kHz, ``<root>/sentences.txt``), made in a scratch folder and renamed into place.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from mdt.errors import MdtError
from mdt_stargan_vc.world import RATE, resample

# Voice name -> espeak-ng's voice and pitch (0-99): two accents, two registers, each voice
# with its own formants (espeak-ng's variants) and its own pitch.
VOICES: dict[str, tuple[str, int]] = {
    "us_male": ("en-us+m3", 35),
    "uk_male": ("en-gb+m1", 60),
    "us_female": ("en-us+f2", 50),
    "uk_female": ("en-gb-x-rp+f4", 75),
}

SENTENCES = (
    "The old boat drifted slowly towards the northern shore.",
    "Please bring three apples and a loaf of bread from the market.",
    "A cold wind swept across the empty fields at dawn.",
    "She painted the garden fence a bright shade of green.",
    "Our train leaves the station at half past seven tonight.",
    "The children laughed as the puppy chased its own tail.",
    "He found a silver coin buried beneath the oak tree.",
    "Rain fell steadily on the tin roof all afternoon.",
    "The library closes early on the first Monday of each month.",
    "A small bird built its nest above the kitchen window.",
    "They walked along the river until the lights came on.",
    "The soup needs more salt and a little black pepper.",
    "Every morning the baker opens his shop before sunrise.",
    "The mountain path was steep, narrow and covered in stones.",
    "We watched the stars from the roof of the tall building.",
    "Her letter arrived two weeks after she had left the city.",
    "The engine made a strange noise before it stopped for good.",
    "A gentle breeze carried the smell of fresh cut grass.",
    "The teacher wrote the answer in large letters on the board.",
    "Nobody noticed the clock had stopped at a quarter to nine.",
    "The farmer counted his sheep twice before closing the gate.",
    "Bright red leaves covered the path through the quiet park.",
    "The museum shows paintings from many different centuries.",
    "He poured warm milk into a blue cup with a chipped handle.",
    "The ship sailed past the lighthouse in the thick fog.",
    "My brother forgot his umbrella on the crowded bus again.",
    "The festival begins with music and dancing in the square.",
    "A long queue formed outside the theatre before the show.",
    "The kettle whistled loudly while we talked about the trip.",
    "She counted the days until the summer holidays would start.",
    "The cat slept in a patch of sunlight on the wooden floor.",
    "Snow covered the village roofs during the long winter night.",
    "They planted tomatoes, beans and carrots behind the house.",
    "The radio played an old song that everyone seemed to know.",
    "A heavy door creaked open at the end of the dark hallway.",
    "The fisherman mended his nets while the gulls circled above.",
    "Fresh paint and new curtains made the room feel larger.",
    "The bridge was closed after the storm damaged its supports.",
    "Two owls called to each other across the silent valley.",
    "We shared a picnic of cheese, grapes and bread by the lake.",
)
HELD_OUT = 8  # the last sentences: never trained on, spoken by every voice (the conversions' truth)


def sentence_id(index: int) -> str:
    return f"s{index + 1:03d}"


def held_out_ids() -> set[str]:
    return {sentence_id(i) for i in range(len(SENTENCES) - HELD_OUT, len(SENTENCES))}


def ensure_corpus(root: Path) -> Path:
    """The corpus at ``root``, made there first if it is not (a corpus that is there is
    used as it is)."""
    if (root / "sentences.txt").is_file():
        return root
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise MdtError(
            f"the speech corpus '{root}' is made with espeak-ng, which is not installed "
            "(Debian and Ubuntu: apt-get install espeak-ng; macOS: brew install espeak-ng)"
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    scratch = root.with_name(f".{root.name}.{os.getpid()}.building")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        for voice, (name, pitch) in VOICES.items():
            (scratch / voice).mkdir(parents=True)
            for index, text in enumerate(SENTENCES):
                _write(scratch / voice / f"{sentence_id(index)}.wav", _speak(espeak, name, pitch, text))
        lines = [f"{sentence_id(i)}\t{text}" for i, text in enumerate(SENTENCES)]
        (scratch / "sentences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            scratch.rename(root)
        except OSError:  # another process made it meanwhile: theirs is the same corpus
            if not (root / "sentences.txt").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def _speak(espeak: str, voice: str, pitch: int, text: str) -> np.ndarray:
    import soundfile

    done = subprocess.run([espeak, "-v", voice, "-p", str(pitch), "--stdout", text], capture_output=True, timeout=60, check=False)
    if done.returncode != 0 or not done.stdout:
        reason = done.stderr.decode(errors="replace").strip().splitlines()[:1] or [f"exit code {done.returncode}"]
        raise MdtError(f"espeak-ng could not speak with voice '{voice}': {reason[0]}")
    wave, rate = soundfile.read(io.BytesIO(done.stdout), dtype="float64")
    return resample(wave, rate)


def _write(path: Path, wave: np.ndarray) -> None:
    import soundfile

    soundfile.write(str(path), wave, RATE, subtype="PCM_16")
