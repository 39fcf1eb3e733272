"""``speech_distortion``: converted speech against the target speaker's own recordings.

For every held-out sentence that several speakers read (a parallel corpus), each reading
is converted, whole, to every other speaker, and compared with that speaker's reading of
the sentence (mdt_stargan_vc/distortion.py): mel-cepstral distortion (dB) and log-F0
error, each beside the unconverted source's, which gives the scale. The first few
conversions go into the report as sound: the source reading, the conversion (WORLD
resynthesis with the converted F0 and the source's aperiodicity) and the target's reading.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from mdt.errors import MdtError
from mdt.evaluation import Evaluation, Medium
from mdt.interfaces import Metric
from mdt.ranges import Count, Positive
from mdt_stargan_vc.datasets import SpeechCorpus
from mdt_stargan_vc.distortion import log_f0_rmse, mel_cepstral_distortion
from mdt_stargan_vc.features import Recording
from mdt_stargan_vc.world import analyse, convert_f0, log_f0_statistics, read_wave, synthesise, write_wave

TIME_STEP = 4  # the generator halves time twice


class SpeechDistortion(Metric):
    """MCD and log-F0 error of conversions of held-out parallel sentences (the module's docstring)."""

    requires = ("pyworld", "pysptk", "soundfile", "scipy")
    extra = "audio"
    docs = "docs/speech.md, Evaluation"
    meanings = {
        "mcd": ("lower", "mel-cepstral distortion (dB, c1-c35, DTW-aligned) of conversions against the target speaker's recording"),
        "mcd_source": ("lower", "the same for the unconverted source recordings: the distance a conversion starts from"),
        "mcd_gain": ("higher", "mcd_source - mcd: how far conversion brings the speech towards the target speaker"),
        "log_f0_rmse": ("lower", "RMSE of log F0 of conversions against the target's recording, frames voiced in both"),
        "log_f0_rmse_source": ("lower", "the same for the unconverted source"),
        "conversions": ("", "held-out sentences converted and compared"),
        "pair": ("lower", "MCD of this source speaker's conversions to this target"),
    }

    def __init__(self, max_sentences: Positive = 1000, players: Count = 3) -> None:
        self.max_sentences = max_sentences
        self.players = players  # conversions the report plays

    def applies(self, translator) -> bool:
        """Conversions of StarGAN-VC's: a recipe of pictures that names this metric is
        refused before it trains, not after."""
        from mdt_stargan_vc.method import VCTranslator

        return isinstance(translator, VCTranslator)

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for index, dataset in enumerate(evaluation.components.test_sets):
            if not isinstance(dataset, SpeechCorpus):
                raise MdtError(
                    f"speech_distortion measures speech datasets; [datasets.{evaluation.components.dataset_names[index]}] is not one"
                )
            for key, value in self._dataset(evaluation, index, dataset):
                sums.setdefault(key, []).append(value)
        if not sums:
            raise MdtError("speech_distortion found no held-out sentence read by two speakers: it needs a parallel corpus")
        results = {key: float(np.mean(values)) for key, values in sums.items()}
        results["mcd_gain"] = results["mcd_source"] - results["mcd"]
        results["conversions"] = float(len(sums["mcd"]))
        return results

    def _dataset(self, evaluation: Evaluation, index: int, dataset: SpeechCorpus):
        """(key, value) per conversion: every held-out sentence of every speaker to every other."""
        by_sentence: dict[str, dict[str, int]] = {}
        for i, recording in enumerate(dataset.recordings):
            by_sentence.setdefault(recording.utterance, {})[recording.speaker] = i
        names = list(dataset.schema.names)
        sentences = [s for s in sorted(by_sentence) if len(by_sentence[s]) > 1][: self.max_sentences]
        for sentence in sentences:
            readings = by_sentence[sentence]
            for source, i in readings.items():
                converted = self._convert_all(evaluation, index, dataset, i, [t for t in readings if t != source], names)
                for target, mcep in converted.items():
                    truth = dataset.features[readings[target]]
                    mcd, path = mel_cepstral_distortion(mcep, truth.mcep)
                    mcd_source, source_path = mel_cepstral_distortion(dataset.features[i].mcep, truth.mcep)
                    f0 = dataset.features[i].f0
                    moved = convert_f0(f0, log_f0_statistics(f0), dataset.log_f0[target])
                    if len(evaluation.media) < self.players:
                        self._play(evaluation, dataset.recordings[i], dataset.recordings[readings[target]], mcep, moved)
                    yield "mcd", mcd
                    yield "mcd_source", mcd_source
                    yield f"pair/{source}->{target}", mcd
                    for key, value in (
                        ("log_f0_rmse", log_f0_rmse(moved, truth.f0, path)),
                        ("log_f0_rmse_source", log_f0_rmse(f0, truth.f0, source_path)),
                    ):
                        if value is not None:
                            yield key, value

    def _convert_all(self, evaluation: Evaluation, index: int, dataset: SpeechCorpus, i: int, targets: list[str], names: list[str]):
        """The whole recording ``i`` converted to each of ``targets``: mel-cepstra (T, 36)."""
        sample = evaluation.components.sample
        values = dataset.standardised(i)
        frames = values.shape[1]
        padded = -(-frames // TIME_STEP) * TIME_STEP
        values = np.pad(values, ((0, 0), (0, padded - frames)), mode="edge")
        x = sample.to_unit(torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32)))[None, None].to(evaluation.device)
        labels = torch.zeros(len(targets), len(names), device=evaluation.device)
        for row, target in enumerate(targets):
            labels[row, names.index(target)] = 1.0
        out = evaluation.translator.to_labels(x.expand(len(targets), -1, -1, -1), labels, index)
        standardised = sample.from_unit(out[:, 0, :, :frames].float().cpu()).numpy().astype(np.float64)
        return {target: standardised[row].T * dataset.mcep[target][1] + dataset.mcep[target][0] for row, target in enumerate(targets)}

    @staticmethod
    def _play(evaluation: Evaluation, source: Recording, target: Recording, mcep: np.ndarray, f0: np.ndarray) -> None:
        """The source's reading, its conversion and the target's reading, for the report."""
        wave = read_wave(source.path)
        analysis = analyse(wave)
        frames = min(len(f0), len(mcep), analysis.frames)
        converted = synthesise(f0[:frames], mcep[:frames], analysis.aperiodicity[:frames])
        caption = f"held-out sentence {source.utterance}: {source.speaker} converted to {target.speaker}"
        evaluation.media[caption] = [
            Medium(f"{source.speaker} (source)", "audio/wav", _wav(wave)),
            Medium(f"converted to {target.speaker}", "audio/wav", _wav(converted)),
            Medium(f"{target.speaker} (target)", "audio/wav", _wav(read_wave(target.path))),
        ]


def _wav(wave: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    write_wave(np.clip(wave, -1.0, 1.0), buffer)
    return buffer.getvalue()
