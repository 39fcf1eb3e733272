"""StarGAN-VC as a plugin: speech datasets in their real layouts, WORLD features, the speech
modality through `mdt run`, `mdt translate` (a WAV in, a WAV out) and `mdt eval`.

The recordings are written by the tests as real audio files: harmonic tones with a
speaker's own pitch and formant, a few hundred milliseconds each, so that WORLD analyses
them in well under a second.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import RATE, REPO, write_speakers, write_vctk
from test_recipe_errors import one_line_error


def test_f0_moves_by_the_log_gaussian_transform():
    from mdt_stargan_vc.world import convert_f0, log_f0_statistics

    f0 = np.array([0.0, 100.0, 110.0, 0.0, 121.0])
    mean, std = log_f0_statistics(f0)
    assert mean == pytest.approx(np.log([100.0, 110.0, 121.0]).mean())
    moved = convert_f0(f0, (mean, std), (math.log(200.0), std))
    assert moved[0] == 0 and moved[3] == 0  # unvoiced frames stay unvoiced
    assert moved[1:3].tolist() == pytest.approx((f0[1:3] * 200.0 / math.exp(mean)).tolist())  # same deviation: a ratio


def test_mel_cepstral_distortion_of_a_known_offset():
    """One coefficient off by d in every frame: MCD = 10/ln10 * sqrt(2) * |d| (DTW keeps the
    diagonal); c0 does not count; a recording against itself is 0."""
    from mdt_stargan_vc.distortion import mel_cepstral_distortion

    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 36)) * 3
    b = a.copy()
    b[:, 5] += 0.1
    b[:, 0] += 7.0
    mcd, path = mel_cepstral_distortion(a, b)
    assert mcd == pytest.approx(10 / math.log(10) * math.sqrt(2) * 0.1, rel=1e-9)
    assert path[0].tolist() == path[1].tolist() == list(range(50))
    assert mel_cepstral_distortion(a, a)[0] == 0.0


def test_the_espeak_corpus_is_parallel_and_made_once(tmp_path):
    """Skipped without Debian's espeak-ng, unless MDT_REQUIRE_ESPEAK is set (CI sets it and
    installs espeak-ng), where its absence fails the test."""
    import os

    from mdt_stargan_vc.corpus import HELD_OUT, SENTENCES, VOICES, ensure_corpus

    if shutil.which("espeak-ng") is None:
        if os.environ.get("MDT_REQUIRE_ESPEAK"):
            pytest.fail("MDT_REQUIRE_ESPEAK is set but espeak-ng is missing")
        pytest.skip("espeak-ng makes the quickstart corpus (apt install espeak-ng)")

    root = ensure_corpus(tmp_path / "espeak")
    for voice_name in VOICES:
        files = sorted(p.name for p in (root / voice_name).iterdir())
        assert files == [f"s{i + 1:03d}.wav" for i in range(len(SENTENCES))]
    info = soundfile.info(str(root / "us_male" / "s001.wav"))
    assert info.samplerate == RATE and 1.0 < info.duration < 8.0
    stamp = (root / "us_male" / "s001.wav").stat().st_mtime_ns
    ensure_corpus(root)
    assert (root / "us_male" / "s001.wav").stat().st_mtime_ns == stamp  # there: used as it is
    assert len((root / "sentences.txt").read_text().splitlines()) == len(SENTENCES) and len(SENTENCES) > HELD_OUT


def test_vctk_as_downloaded_gives_one_microphone_and_sentence_ids(tmp_path):
    from mdt_stargan_vc.datasets import VCTK

    root = write_vctk(tmp_path / "VCTK-Corpus-0.92")
    train = VCTK(str(root), "train", held_out=["003"])
    test = VCTK(str(root), "test", held_out=["003"])
    assert train.schema.names == ("high", "low")
    assert sorted((r.speaker, r.utterance) for r in test.recordings) == [("high", "003"), ("low", "003")]
    assert all(r.path.stem.endswith("_mic1") for r in [*train.recordings, *test.recordings])
    item = train[0]
    assert item["image"].shape == (1, 36, 128) and item["image"].dtype == torch.float32
    stats = train.statistics()
    assert set(stats) == {"mcep/high", "mcep/low", "log_f0/high", "log_f0/low"}
    for speaker in ("high", "low"):  # standardised per speaker: each speaker's frames have mean 0, deviation 1
        frames = np.concatenate([train.standardised(i) for i, r in enumerate(train.recordings) if r.speaker == speaker], axis=1)
        assert np.abs(frames.mean(axis=1)).max() < 1e-6 and np.abs(frames.std(axis=1) - 1).max() < 1e-6
    assert (stats["mcep/high"][0] - stats["mcep/low"][0]).abs().max() > 0.1  # the two voices' envelopes differ
    assert math.exp(stats["log_f0/low"][0]) == pytest.approx(110.0, rel=0.05)  # the tone's own pitch
    assert math.exp(stats["log_f0/high"][0]) == pytest.approx(220.0, rel=0.05)
    from mdt.errors import MdtError

    with pytest.raises(MdtError, match="speaker 'p999' is not in"):
        VCTK(str(root), "train", speakers=["p999"])


RECIPE = """
[run]
iterations = 2
batch_size = 2
sample_every = 2
sample_count = 2
checkpoint_every = 2
log_every = 1
precision = "fp32"

[datasets.voices]
type = "speaker_folders"
root = "{root}"
frames = 32
held_out = ["003"]

[labels]
type = "one_hot"

[augmentation]
type = "standard"
flip = false

[networks.generator]
type = "stargan_vc"
width = 4

[networks.discriminator]
type = "stargan_vc"
width = 4

[networks.classifier]
type = "stargan_vc"
width = 2

[losses.adversarial]
type = "nonsaturating"

[losses.classification]
type = "domain_classification"

[losses.reconstruction]
type = "cycle_l1"

[losses.identity]
type = "identity_l1"

[method]
type = "stargan_vc"

[metrics.distortion]
type = "speech_distortion"

[metrics.accuracy]
type = "translation_accuracy"
max_images = 4

[classifier]
type = "timm"
backbone = "resnet18"
steps = 1
batch_size = 2
"""


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory) -> Path:
    from click.testing import CliRunner

    from mdt.cli import main

    root = tmp_path_factory.mktemp("speech")
    write_speakers(root / "voices")
    (root / "vc.toml").write_text(RECIPE.format(root=root / "voices"))
    result = CliRunner().invoke(main, ["run", str(root / "vc.toml"), "--out", str(root / "run")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root


def test_a_speech_model_trains_and_its_grid_pictures_the_cepstra(speech_run):
    from PIL import Image

    from mdt import checkpoint as ckpt

    saved = ckpt.read(ckpt.resolve(speech_run / "run"), training=False)
    assert sorted(saved.network_names()) == ["classifier", "discriminator", "generator"]
    stats = saved.statistics()
    assert stats["voices/mcep/low"].shape == (2, 36) and {k for k in stats if "log_f0" in k} == {"voices/log_f0/high", "voices/log_f0/low"}
    with Image.open(speech_run / "run" / "samples" / "step_00000002.png") as grid:
        # two rows of (36 coefficients x 2) pixel cells: the preview doubles the height
        assert 2 * (72 + 2) <= grid.height < 2 * (72 + 2) + 40


def test_translate_turns_a_wav_into_a_wav_of_its_duration(speech_run, cli):
    source = speech_run / "voices" / "low" / "low_001.wav"
    out = speech_run / "converted.wav"
    result = cli("translate", "--checkpoint", speech_run / "run", "--input", source, "--output", out, "--to", "high")
    assert result.exit_code == 0, result.output
    wave, rate = soundfile.read(str(out))
    given = soundfile.info(str(source))
    assert rate == RATE and wave.ndim == 1
    assert abs(len(wave) / rate - given.duration) <= 0.05 * given.duration
    assert np.abs(wave).max() > 0.01  # sound, not silence

    folder = speech_run / "converted"
    result = cli(
        "translate", "--checkpoint", speech_run / "run", "--input", speech_run / "voices" / "high", "--output", folder, "--to", "low"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in folder.iterdir()) == [f"high_{k:03d}.wav" for k in range(4)]

    line = cli("translate", "--checkpoint", speech_run / "run", "--input", source, "--output", speech_run / "x.png", "--to", "high")
    assert line.exit_code == 2 and "must be a .wav file for a single input recording" in line.output


def test_eval_measures_distortion_against_the_target_speakers_reading(speech_run, cli):
    import json

    result = cli("eval", "--checkpoint", speech_run / "run", "--out", speech_run / "eval")
    assert result.exit_code == 0, result.output
    values = json.loads((speech_run / "eval" / "metrics.json").read_text())["metrics"]
    assert values["distortion/conversions"] == 2.0  # sentence 003: low -> high and high -> low
    assert values["distortion/mcd_source"] > 5.0  # two different voices
    assert values["distortion/mcd_gain"] == pytest.approx(values["distortion/mcd_source"] - values["distortion/mcd"])
    assert set(values) >= {"distortion/pair/low->high", "distortion/pair/high->low", "distortion/log_f0_rmse"}
    assert 0.0 <= values["accuracy/target_accuracy"] <= 1.0


def test_serve_converts_an_uploaded_clip_in_a_real_browser(speech_run, tmp_path):
    """mdt serve on a speech model: an audio upload (not a picture upload), the target
    speaker as radios from the model's own option, a player and a download of mdt's own
    conversion."""
    import importlib.util
    import os

    from test_serve import _need, _start_server

    _need(importlib.util.find_spec("gradio") is not None, "gradio (pip install -e '.[demo]')")
    _need(importlib.util.find_spec("playwright") is not None, "playwright")
    _need(shutil.which("chromium") is not None, "chromium (apt install chromium)")
    from conftest import CHROMIUM_FLAGS
    from playwright.sync_api import sync_playwright

    from mdt.inference import load_translator

    model = speech_run / "run"
    source = speech_run / "voices" / "low" / "low_002.wav"
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    process, url, log = _start_server(str(model), tmp_path, env)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.goto(url, wait_until="networkidle")
            assert page.locator("#input-image").count() == 0  # no picture upload for speech
            page.locator("#input-audio input[type=file]").set_input_files(str(source))
            page.get_by_label("high").first.check()
            page.click("#translate")
            page.wait_for_selector("#download a", timeout=120_000)
            body = page.request.get(page.locator("#download a").first.get_attribute("href")).body()
            page.wait_for_selector("#result audio", state="attached", timeout=60_000)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    (tmp_path / "downloaded.wav").write_bytes(body)
    wave, rate = soundfile.read(str(tmp_path / "downloaded.wav"))
    own = load_translator(model, "cpu")
    expected = np.clip(own(own.modality.read(source), to="high").wave, -1, 1)
    assert rate == RATE and len(wave) == len(expected)
    assert np.abs(wave - expected).max() < 2e-3  # mdt's own conversion, up to the file's 16-bit samples


def test_the_report_plays_a_conversion_beside_both_readings(speech_run, cli):
    """report.html embeds the source reading, its conversion and the target's reading as
    WAV players; the conversion lasts as long as its source."""
    import base64
    import io
    import re

    result = cli("eval", "--checkpoint", speech_run / "run", "--out", speech_run / "eval-players", "--metric", "distortion")
    assert result.exit_code == 0, result.output
    page = (speech_run / "eval-players" / "report.html").read_text()
    players = re.findall(r'<div>([^<]*)</div><audio controls preload="none" src="data:audio/wav;base64,([^"]+)"', page)
    assert [title for title, _ in players][:3] == ["high (source)", "converted to low", "low (target)"]
    waves = [soundfile.read(io.BytesIO(base64.b64decode(data))) for _, data in players[:3]]
    assert all(rate == RATE for _, rate in waves)
    source = soundfile.info(str(speech_run / "voices" / "high" / "high_003.wav"))
    assert len(waves[0][0]) == source.frames  # the source reading as it is
    assert abs(len(waves[1][0]) - source.frames) <= 0.05 * source.frames
    assert np.abs(waves[1][0]).max() > 0.01  # sound, not silence


def test_a_missing_audio_package_is_one_line_naming_the_audio_extra(cli, monkeypatch):
    """Without pyworld, `mdt recipe check` on the quickstart names the table, the package
    and the command that installs the audio extra (with its setuptools cap), not a bare
    `pip install pyworld`."""
    import importlib.util

    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyworld" else found(name, *a))
    result = cli("recipe", "check", REPO / "recipes" / "stargan_vc_quickstart.toml")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "[datasets.voices]" in line and "'pyworld', which is not installed" in line
    assert "'setuptools<81'" in line and "(the audio extra)" in line


def test_a_residual_generator_starts_as_the_identity_and_c_reads_only_its_coefficients():
    from mdt_stargan_vc.networks import VCDomainClassifier, VCGenerator

    torch.manual_seed(0)
    x = torch.randn(2, 1, 36, 32) / 4
    condition = torch.eye(4)[[1, 3]]
    assert torch.equal(VCGenerator(4, width=8, bottleneck=16, residual=True, norm="instance")(x, condition), x)
    plain = VCGenerator(4, width=8, norm="instance")(x, condition)
    assert (plain - x).abs().mean() > 0.05  # the paper's generator starts anywhere
    for coefficients in (8, 36):
        classifier = VCDomainClassifier(4, width=4, coefficients=coefficients, norm="instance").eval()
        changed = x.clone()
        changed[:, :, coefficients - 1] += 1.0  # the highest coefficient it reads
        above = x.clone()
        above[:, :, coefficients:] += 1.0  # the ones above it
        assert not torch.allclose(classifier(changed), classifier(x))
        assert torch.equal(classifier(above), classifier(x))


def test_bad_speech_inputs_are_one_line_naming_the_file_or_value(speech_run, cli, tmp_path, monkeypatch):
    """Every refusal a user of the speech plugin can meet: exit code 2 and one line through
    the CLI; the same messages from the classes where the CLI cannot reach them."""
    from mdt_stargan_vc.datasets import VCTK, SpeakerFolders

    from mdt.errors import MdtError

    model = speech_run / "run"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF not really a wave file")
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0), RATE)
    for given, expected in ((junk, f"cannot read recording '{junk}'"), (empty, f"recording '{empty}' holds no samples")):
        result = cli("translate", "--checkpoint", model, "--input", given, "--output", tmp_path / "out.wav", "--to", "high")
        assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
    source = speech_run / "voices" / "low" / "low_001.wav"
    result = cli("translate", "--checkpoint", model, "--input", source, "--output", tmp_path / "out.wav")
    assert result.exit_code == 2 and "--to" in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out.wav").exists()  # nothing written for a refused input

    one = write_speakers(tmp_path / "one")
    shutil.rmtree(one / "high")
    with pytest.raises(MdtError, match="gives 1 speaker\\(s\\); conversion needs at least two"):
        SpeakerFolders(str(one), "train", held_out=["003"])
    write_speakers(tmp_path / "two")
    (tmp_path / "two" / "silent").mkdir()
    with pytest.raises(MdtError, match=r"speaker folder '.*silent' holds no recordings"):
        SpeakerFolders(str(tmp_path / "two"), "train")
    with pytest.raises(MdtError, match="has no test recordings"):
        SpeakerFolders(str(speech_run / "voices"), "test", held_out=["099"])
    with pytest.raises(MdtError, match="is not VCTK as downloaded"):
        VCTK(str(speech_run / "voices"), "train")

    from mdt_stargan_vc import corpus

    monkeypatch.setattr(corpus.shutil, "which", lambda name: None)
    with pytest.raises(MdtError, match="made with espeak-ng, which is not installed"):
        corpus.ensure_corpus(tmp_path / "no-espeak")
    assert not (tmp_path / "no-espeak").exists()


def test_the_speech_modality_and_api_refuse_what_they_cannot_convert(speech_run):
    from mdt_stargan_vc.modality import SpeechModality

    from mdt.errors import MdtError
    from mdt.inference import load_translator
    from mdt.samples import SampleSpec
    from mdt.serve import _recording

    translator = load_translator(speech_run / "run", "cpu")
    modality = translator.modality
    short, long = (modality.read(speech_run / "voices" / "low" / f"low_00{k}.wav") for k in (0, 3))
    with pytest.raises(MdtError, match="samples of different shapes"):
        translator.grid([short, long])
    assert [len(out.wave) for out in translator([short, long], to="high")] == [len(short.wave), len(long.wave)]  # a call takes both
    with pytest.raises(MdtError, match="name one target speaker of high, low, not 0"):
        modality.target_speaker({})
    bare = SpeechModality(SampleSpec(1, 36, 32, "float32", -4, 4, "speech"), {"voices/log_f0/high": torch.tensor([5.0, 0.1])})
    with pytest.raises(MdtError, match="keeps no mel-cepstral statistics of 'high'"):
        bare.from_sample(torch.zeros(1, 36, 8), short, {"to": "high"})
    with pytest.raises(MdtError, match="upload a recording, or record one"):
        _recording(modality, None)


def test_the_speaker_judge_reads_each_held_out_clip_as_its_speaker(tmp_path):
    """The `speaker` judge (x-vector style) trained on two tone speakers' training clips
    reads every held-out clip as its speaker, the other speaker's clip as the other, and
    gives one embedding per clip; its weights round-trip."""
    import random

    from mdt_datasets.augment import StandardAugmentation
    from mdt_stargan_vc.datasets import SCALE, SpeakerFolders
    from mdt_stargan_vc.judge import SpeakerJudge

    random.seed(0)  # the training crops' places
    write_speakers(tmp_path / "voices", sentences=4)
    train, test = (SpeakerFolders(str(tmp_path / "voices"), split, frames=32, held_out=["003"]) for split in ("train", "test"))
    sample = SpeakerFolders.samples({"frames": 32}, 0)
    judge = SpeakerJudge([train.schema], steps=60, batch_size=8, sample=sample)
    judge.fit([train], StandardAugmentation(sample, flip=False), torch.device("cpu"))
    clips = torch.stack([test[i]["image"] for i in range(len(test))]) / SCALE
    truth = [train.schema.names.index(r.speaker) for r in test.recordings]
    assert sorted(truth) == [0, 1]
    read = judge.predict(clips, 0)
    assert read.argmax(dim=1).tolist() == truth and read.sum(dim=1).tolist() == [1.0, 1.0]
    assert judge.features(clips, 0).shape == (2, 64)
    again = SpeakerJudge([train.schema], steps=30, batch_size=8, seed=5, sample=sample)
    assert not torch.equal(again.predict(clips, 0), read) or not torch.equal(again.features(clips, 0), judge.features(clips, 0))
    again.load_state_dict(judge.state_dict())
    assert torch.equal(again.features(clips, 0), judge.features(clips, 0))
    one = SpeakerJudge([train.schema], batch_size=1, sample=sample).images_problem(0)
    assert one is not None and "batch_size 1 must be at least 2" in one


def test_a_speaker_judge_for_pictures_is_refused_before_training(cli, tmp_path):
    data = (REPO / "recipes" / "quickstart.toml").read_text().replace('type = "timm"\nbackbone = "resnet18"\n', 'type = "speaker"\n')
    assert 'type = "speaker"' in data
    (tmp_path / "faces.toml").write_text(data)
    line = one_line_error(cli("run", str(tmp_path / "faces.toml"), "--out", str(tmp_path / "run")))
    assert "[classifier]" in line and "the speaker judge reads (1, coefficients, frames) clips" in line, line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_conversion_source_teaches_c_that_a_conversion_is_still_its_source_speaker():
    """The ``conversion_source`` loss is −log C(c' | G(x, c)) in the discriminator phase:
    computed here apart from the plugin, and its update moves C alone (G is a constant
    there: the phase converts without gradient)."""
    import torch.nn.functional as F
    from mdt_labels.encoders import OneHot
    from mdt_stargan_vc.losses import ConversionSource
    from mdt_stargan_vc.method import StarGANVC, VCState
    from mdt_stargan_vc.networks import VCDiscriminator, VCDomainClassifier, VCGenerator

    from mdt.data import Batch
    from mdt.labels import LabelSchema

    torch.manual_seed(0)
    speakers = ("p1", "p2", "p3", "p4")
    encoder = OneHot([LabelSchema("voices", speakers, categorical=True)])
    generator = VCGenerator(4, width=8, norm="instance")  # the paper's: it converts from the start
    classifier = VCDomainClassifier(4, width=4, norm="instance")
    loss = ConversionSource(weight=1.0)
    method = StarGANVC(generator, VCDiscriminator(4, width=4, norm="instance"), classifier, encoder,
                       {"conversion_source": loss}, iterations=10, lr_discriminator=1e-2)  # fmt: skip
    x = torch.randn(6, 1, 36, 64) / 4
    own, target = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([2, 3, 0, 1, 1, 0])
    batch = Batch(x, F.one_hot(own, 4).float(), 0)
    state = VCState("discriminator", method, batch, F.one_hot(target, 4).float())

    with torch.no_grad():
        conversions = generator(x, F.one_hot(target, 4).float())
        expected = F.cross_entropy(classifier(conversions), own)
    value, _ = loss("discriminator", state)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert "generator" not in loss.reads  # G's own classification loss is left as it was

    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in method.networks().items()}
    method.update.start(0, {"generator": 0.0, "discriminator": 1e-2})
    for _ in range(5):
        method.update("discriminator", {"D": VCState("discriminator", method, batch, F.one_hot(target, 4).float())}, step=["discriminator"])
    moved = {name: any(not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True))
             for name, net in method.networks().items()}  # fmt: skip
    assert moved == {"generator": False, "discriminator": False, "classifier": True}
    assert all(p.grad is None for p in generator.parameters())  # no gradient reached G: a constant there
    with torch.no_grad():
        assert F.cross_entropy(classifier(conversions), own).item() < expected.item() - 0.05  # C now reads the source


def test_ema_decay_converts_with_a_moving_average_of_the_generator():
    """With ``ema_decay`` d the conversions use A ← d·A + (1 − d)·G after every update of
    G, computed here from the weights before and after one iteration; without it the
    checkpoint's networks are the three they always were (older runs load unchanged)."""
    import torch.nn.functional as F
    from mdt_labels.encoders import OneHot
    from mdt_stargan.losses import IdentityL1
    from mdt_stargan_vc.losses import ConversionSource
    from mdt_stargan_vc.method import StarGANVC
    from mdt_stargan_vc.networks import VCDiscriminator, VCDomainClassifier, VCGenerator

    from mdt.data import Batch
    from mdt.labels import LabelSchema

    def method(ema_decay: float) -> StarGANVC:
        torch.manual_seed(0)
        encoder = OneHot([LabelSchema("voices", ("p1", "p2"), categorical=True)])
        return StarGANVC(VCGenerator(2, width=4, norm="instance"), VCDiscriminator(2, width=4, norm="instance"),
                         VCDomainClassifier(2, width=4, norm="instance"), encoder,
                         {"identity": IdentityL1(1.0), "conversion_source": ConversionSource(1.0)},
                         iterations=4, lr_generator=1e-2, ema_decay=ema_decay)  # fmt: skip

    plain = method(0.0)
    assert set(plain.networks()) == {"generator", "discriminator", "classifier"}
    assert plain.inference_networks == ("generator",) and plain.translator().generator is plain.generator

    averaged = method(0.75)
    assert set(averaged.networks()) == {"generator", "discriminator", "classifier", "generator_ema"}  # saved, resumed
    assert averaged.inference_networks == ("generator_ema",) and averaged.translator().generator is averaged.generator_ema
    start = [p.detach().clone() for p in averaged.generator.parameters()]
    batch = Batch(torch.randn(4, 1, 36, 64) / 4, F.one_hot(torch.tensor([0, 1, 0, 1]), 2).float(), 0)
    averaged.train_step([batch], 0)
    trained = list(averaged.generator.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(start, trained, strict=True))
    for before, after, average in zip(start, trained, averaged.generator_ema.parameters(), strict=True):
        torch.testing.assert_close(average, 0.75 * before + 0.25 * after.detach())


def test_features_analysed_now_are_the_numbers_read_back_later(tmp_path):
    """A corpus's first run analyses each recording and keeps the result (float32); every
    later run reads it back. Both must train on the same numbers, or a rerun of the same
    recipe and seed takes another path: measured on the quickstart, 0.6 dB of distortion
    apart between the run that built the corpus and the next."""
    from mdt_stargan_vc.features import Recording, features_of

    write_speakers(tmp_path / "voices", sentences=1)
    path = next((tmp_path / "voices").rglob("*.wav"))
    recording = Recording(path, path.parent.name, "000")
    analysed = features_of(recording, tmp_path / "voices")
    assert (tmp_path / "voices" / ".mdt-features" / recording.speaker / f"{path.name}.npz").is_file()
    read_back = features_of(recording, tmp_path / "voices")
    assert np.array_equal(analysed.mcep, read_back.mcep) and np.array_equal(analysed.f0, read_back.f0)
    assert analysed.mcep.dtype == read_back.mcep.dtype == np.float64
