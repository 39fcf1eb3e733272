"""mdt eval and mdt train-classifier: metrics with known answers, reference implementations
of the pretrained feature networks, and the report end to end."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import CHROMIUM_FLAGS, REPO, small
from mdt_datasets.synthetic import ATTRIBUTES, HAIR, SyntheticFaces
from test_recipe_errors import one_line_error

from mdt.evaluation import Evaluation
from mdt.labels import LabelSchema
from mdt.method import Translator

QUICKSTART = REPO / "recipes" / "quickstart.toml"
V2_QUICKSTART = REPO / "recipes" / "stargan_v2_quickstart.toml"
TINY = (
    "datasets.faces.size=16",
    "datasets.faces.test_size=6",
    "classifier.steps=2",
    "classifier.batch_size=4",
    "metrics.accuracy.max_images=6",
)


# ---------------------------------------------------------------- known answers


class _Translator(Translator):
    """Writes the target domain into pixel (0, 0, 0): +1 for 'b', -1 for 'a'; input 0 is left as it was."""

    def to_labels(self, images, labels, dataset, base=None):
        out = images.clone()
        out[1:, 0, 0, 0] = labels[1:, 1] * 2 - 1
        return out

    def reconstruct(self, translated, originals, labels, dataset, translated_labels=None):
        return originals + 0.5  # off by exactly 0.5 everywhere


class _Judge:
    """Reads the domain from pixel (0, 0, 0); reads real image 3 wrongly."""

    feature_space = "test"

    def predict(self, images, dataset):
        b = (images[:, 0, 0, 0] > 0).float()
        return torch.stack([1 - b, b], dim=1)


def _evaluation(domains, translator=_Translator, classifier=None):
    """Held-out images whose pixel (0, 0, 0) says their domain ('a' or 'b')."""
    schema = LabelSchema("toy", ("a", "b"), categorical=True)
    items = []
    for d in domains:
        image = torch.full((3, 4, 4), 0, dtype=torch.uint8)
        image[0, 0, 0] = 255 if d == "b" else 0
        items.append({"image": image, "label": torch.tensor([d == "a", d == "b"], dtype=torch.float32)})
    encoder = SimpleNamespace(targets=lambda: [("a", 0, {"a": 1.0}), ("b", 0, {"b": 1.0})])
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[schema],
        test_sets=[items],
        train_sets=[items],
        label_encoder=encoder,
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=translator),
    )
    return Evaluation(components, make_classifier=None, classifier=classifier or _Judge(), batch_size=8)


def test_accuracy_and_cycle_error_on_constructed_translations_are_exact():
    from mdt_metrics.accuracy import TranslationAccuracy
    from mdt_metrics.cycle import CycleError

    evaluation = _evaluation(["a", "a", "b", "b"])
    values = TranslationAccuracy()(evaluation)
    # Real images: all four read right. Translations: image 0 ('a') is never changed, so
    # its trip to 'b' fails; images 1..3 are written right. Changed inputs: to 'a' images
    # 2, 3 (both right); to 'b' images 0, 1 (one right).
    assert values["real_accuracy"] == 1.0 and values["real_error"] == 0.0
    assert values["target_accuracy"] == 3 / 4 and values["target_error"] == 1 / 4
    assert values["target/a"] == 1.0 and values["target/b"] == 0.5
    assert values["pair/a->b"] == 0.5 and values["pair/b->a"] == 1.0
    # Domain accuracy counts every translation, copies included: 7 of 8 show their domain.
    assert values["domain_accuracy"] == 7 / 8
    cycle = CycleError()(evaluation)
    assert cycle["l1"] == pytest.approx(0.5) and set(cycle) == {"l1", "l1/a", "l1/b", "pair/a->b", "pair/b->a"}


class _Reader(_Translator):
    """Reads every image's domain as 'a', as a StarGAN reads its inputs with D."""

    def reads_labels(self):
        return True

    def read_labels(self, images, dataset):
        return torch.tensor([[1.0, 0.0]]).repeat(len(images), 1)


class _NoJudge:
    feature_space = "test"

    def predict(self, images, dataset):
        raise AssertionError("label_reading reads with the model, not with the judge")


def test_label_reading_scores_the_model_s_own_reading_of_real_images():
    from mdt_metrics.label_reading import LabelReading

    metric = LabelReading()
    assert metric.applies(_Reader()) and not metric.applies(_Translator())  # a model that reads no labels: nothing to measure
    values = metric(_evaluation(["a", "a", "b", "b", "b"], translator=_Reader, classifier=_NoJudge()))
    # Two of five images are 'a' and read right; per class, the recall: every 'a', no 'b'.
    assert values == {"label_reading_accuracy": 2 / 5, "label_reading/a": 1.0, "label_reading/b": 0.0}
    # Asked by name (`mdt eval --metric label_reading`) of a model that reads nothing: no values, no error.
    assert metric(_evaluation(["a", "b"], classifier=_NoJudge())) == {}


class _FirstClassJudge:
    """Reads every image as the first class."""

    feature_space = "test"

    def predict(self, images, dataset):
        return torch.nn.functional.one_hot(torch.zeros(len(images), dtype=torch.long), 4).float()


def test_a_judge_of_one_class_per_image_is_scored_per_image_and_per_class_on_a_spread_sample():
    """RaFD-like held-out images in folder order (three of each of four classes): with
    --max-images 4 every class is sampled, not only the first; a judge that always reads
    the first class is right on that class's images alone (1 of 4), and per class it is
    its recall: 1 for the first, 0 for the others."""
    from mdt.evaluation import real_accuracy, spread

    assert spread(12, 4) == [0, 3, 6, 9] and spread(5, 9) == [0, 1, 2, 3, 4] and spread(10, 3) == [0, 3, 6]
    schema = LabelSchema("expressions", ("angry", "happy", "sad", "calm"), categorical=True)
    items = [
        {"image": torch.zeros((3, 4, 4), dtype=torch.uint8), "label": torch.nn.functional.one_hot(torch.tensor(c), 4).float()}
        for c in range(4)
        for _ in range(3)
    ]
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[schema],
        test_sets=[items],
        train_sets=[items],
        augmentation=lambda x, train: x.float() / 127.5 - 1,
    )
    evaluation = Evaluation(components, make_classifier=None, classifier=_FirstClassJudge(), batch_size=3)
    values = real_accuracy(evaluation, 4)
    assert values == {"real_accuracy": 0.25, "real/angry": 1.0, "real/happy": 0.0, "real/sad": 0.0, "real/calm": 0.0}


def test_inception_features_match_pytorch_fid(tmp_path, monkeypatch):
    """Same weights file, same images: the same 2048 features and the same FID as pytorch-fid."""
    pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
    from mdt_metrics.distances import fid
    from mdt_metrics.inception import FidInception
    from pytorch_fid.fid_score import calculate_frechet_distance

    torch.manual_seed(0)
    random = FidInception()
    for module in random.modules():  # batch-norm statistics that matter
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    file = tmp_path / "pt_inception.pth"
    torch.save(random.net.state_dict(), file)
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *a, **k: torch.load(file, weights_only=True))
    theirs = pytorch_fid_inception.InceptionV3([3]).eval()
    ours = FidInception.from_file(file).eval()
    images = torch.rand(6, 3, 40, 40)  # pytorch-fid takes [0, 1], mdt [-1, 1]
    with torch.no_grad():
        expected = theirs(images)[0].flatten(1)
    got = ours(images * 2 - 1)
    assert torch.allclose(got, expected, atol=1e-5)
    a, b = got[:3].double(), got[3:].double()
    reference = calculate_frechet_distance(a.mean(0).numpy(), torch.cov(a.T).numpy(), b.mean(0).numpy(), torch.cov(b.T).numpy())
    assert fid(a, b) == pytest.approx(reference, rel=1e-4, abs=1e-6)


def test_lpips_matches_the_lpips_package(tmp_path):
    lpips = pytest.importorskip("lpips")
    from mdt_metrics.lpips import Lpips
    from torchvision.models import alexnet

    torch.manual_seed(0)
    backbone = alexnet(weights=None)
    torch.save(backbone.state_dict(), tmp_path / "alexnet.pth")
    theirs = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    features = backbone.features
    for k in range(1, 6):
        for index, module in getattr(theirs.net, f"slice{k}").named_children():
            if hasattr(module, "weight"):
                module.load_state_dict(features[int(index)].state_dict())
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    ours = Lpips.from_files(linear, tmp_path / "alexnet.pth").eval()
    a, b = torch.rand(3, 3, 48, 48) * 2 - 1, torch.rand(3, 3, 48, 48) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(ours(a, b), theirs(a, b).flatten(), atol=1e-6)
    assert torch.all(ours(a, a) == 0)
    from mdt.errors import MdtError

    with pytest.raises(MdtError, match="give --alexnet"):
        Lpips.from_files(linear, None)
    with pytest.raises(MdtError, match="not torchvision's AlexNet"):
        Lpips.from_files(linear, linear)


# ---------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-iteration quickstart run, with its judge classifier."""
    from click.testing import CliRunner

    from mdt.cli import main

    folder = tmp_path_factory.mktemp("eval")
    old = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["run", str(QUICKSTART), "--out", "run", *small(*TINY)])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.output
    return folder / "run"


def _open_in_browser(html: Path, screenshot: Path) -> bool:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        return False
    subprocess.run(
        [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={screenshot.parent / 'profile'}",
            "--window-size=1000,1600",
            f"--screenshot={screenshot}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return True


def test_eval_writes_json_and_a_self_contained_report(trained, cli, tmp_path):
    assert (trained / "classifier" / "classifier.safetensors").is_file()  # kept by the run for mdt eval
    result = cli("eval", "--checkpoint", trained, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    metrics = data["metrics"]
    for title in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"):
        assert f"fid/fid/{title}" in metrics and f"accuracy/target/{title}" in metrics and f"cycle_error/l1/{title}" in metrics
    assert metrics["fid/feature_space"].startswith("classifier")  # no Inception weights given: said so
    assert data["about"]["judge classifier"] == str(trained / "classifier")
    # The same checkpoint, judge and held-out images as the run's own measurement at its end.
    at_the_end = json.loads((trained / "metrics.json").read_text())
    assert at_the_end.keys() == {k for k in metrics if k.startswith("accuracy/")}
    for key, value in at_the_end.items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    # The judge's file recorded its accuracy on the same six held-out images.
    from mdt import checkpoint

    recorded = checkpoint.read(trained / "classifier" / "classifier.safetensors", content=checkpoint.CLASSIFIER).accuracy
    assert recorded.keys() == {"real_accuracy", *(f"real/{t}" for t in ATTRIBUTES)}
    for key, value in recorded.items():
        assert metrics[f"accuracy/{key}"] == pytest.approx(value, abs=1e-12), key
    assert data["about"]["judge accuracy on real held-out images"] == f"{recorded['real_accuracy']:.4f}"
    # FID: the mean over targets, each measured on the held-out images it changes against
    # the training images that show it (a flip changes every image, and every image shows it).
    test_labels, train_labels = (SyntheticFaces(split, 32, size=16, test_size=6).labels for split in ("test", "train"))
    for column, title in enumerate(ATTRIBUTES):
        hair = title in HAIR
        assert metrics[f"fid/translated_images/{title}"] == (int((test_labels[:, column] == 0).sum()) if hair else 6), title
        assert metrics[f"fid/real_images/{title}"] == (int(train_labels[:, column].sum()) if hair else 16), title
    for name in ("fid", "kid"):
        per_target = [metrics[f"fid/{name}/{t}"] for t in ATTRIBUTES]
        assert metrics[f"fid/{name}_mean"] == pytest.approx(sum(per_target) / 5, rel=1e-12), name
    # The cycle error by hand: each held-out image to each target and back, counted where
    # the target changes it.
    from mdt.inference import load_translator

    translator = load_translator(trained, device="cpu").translator
    faces = SyntheticFaces("test", 32, size=16, test_size=6)
    images = torch.stack([faces[i]["image"] for i in range(6)]).float() / 127.5 - 1
    every = []
    with torch.no_grad():
        for column, title in enumerate(ATTRIBUTES):
            wanted = test_labels.clone()
            if title in HAIR:
                wanted[:, :3] = 0.0
                wanted[:, column] = 1.0
            else:
                wanted[:, column] = 1.0 - wanted[:, column]
            changed = (wanted != test_labels).any(dim=1)
            fake = translator.to_labels(images, wanted, 0, base=test_labels)
            back = translator.reconstruct(fake, images, test_labels, 0, translated_labels=wanted)
            errors = (back - images).abs().flatten(1).mean(1)[changed]
            assert metrics[f"cycle_error/l1/{title}"] == pytest.approx(errors.mean().item(), rel=1e-5), title
            every.append(errors)
    assert metrics["cycle_error/l1"] == pytest.approx(torch.cat(every).mean().item(), rel=1e-5)
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<table" in page and "per target domain" in page and "Black_Hair" in page
    assert page.count('src="data:image/png;base64,') >= 1 and "<polyline" in page and "D/total" in page
    assert "http" not in page.replace(' xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from elsewhere
    shot = tmp_path / "report.png"
    if _open_in_browser(tmp_path / "report" / "report.html", shot):
        from PIL import Image

        with Image.open(shot) as image:
            assert len(np.unique(np.asarray(image.convert("L")))) > 20  # a page was drawn, not a blank
    elif os.environ.get("MDT_REQUIRE_BROWSER"):
        pytest.fail("MDT_REQUIRE_BROWSER is set but no chromium is installed")


def test_the_report_fits_a_1280_px_window_and_says_what_each_value_is(trained, cli, tmp_path):
    """In a real browser at 1280 px: nothing runs off the page sideways (a wide table
    scrolls in its own box), every summary value says which way is better and what it is,
    and the grid's titles are whole words."""
    from conftest import grid_width

    if not shutil.which("chromium") or importlib.util.find_spec("playwright") is None:
        if os.environ.get("MDT_REQUIRE_BROWSER"):
            pytest.fail("MDT_REQUIRE_BROWSER is set but chromium or playwright is missing")
        pytest.skip("chromium or playwright is not installed")
    from playwright.sync_api import sync_playwright

    assert cli("eval", "--checkpoint", trained, "--out", tmp_path / "report").exit_code == 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto((tmp_path / "report" / "report.html").as_uri())
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        rows = page.evaluate("[...document.querySelectorAll('table.summary tbody tr')].map(r => [...r.cells].map(c => c.textContent))")
        headers = page.evaluate("[...document.querySelectorAll('table th')].map(h => h.textContent)")
        grid = page.evaluate("[...document.querySelectorAll('figure img')].map(i => i.naturalWidth)")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert overflow <= 0, f"the page is {overflow} px wider than the window"
    summary = {row[0]: row[1:] for row in rows}
    assert summary["accuracy/target_accuracy"][1] == "higher" and "target" in summary["accuracy/target_accuracy"][2]
    assert summary["accuracy/real_error"][1] == "lower"
    assert summary["fid/kid_mean"][1] == "lower" and "below 0" in summary["fid/kid_mean"][2]
    assert summary["fid/feature_space"][1] == "" and "never with published" in summary["fid/feature_space"][2]
    assert "fid/fid (lower is better)" in headers and "accuracy/target (higher is better)" in headers
    assert grid == [grid_width(["input", *ATTRIBUTES])]  # each column as wide as its title's words


def test_label_reading_is_what_the_discriminator_reads_off_the_held_out_faces(trained, cli, tmp_path):
    """``mdt eval`` measures how well a StarGAN's D reads real faces (what ``mdt translate``
    takes for labels not given), computed here from D's logits: the hair colour is the
    largest of its three, glasses and smile are read where their logit is positive."""
    from mdt.inference import load_translator

    result = cli("eval", "--checkpoint", trained, "--metric", "label_reading", "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    faces = SyntheticFaces("test", 32, size=16, test_size=6)
    images = torch.stack([faces[i]["image"] for i in range(len(faces))]).float() / 127.5 - 1
    truth = torch.stack([faces[i]["label"] for i in range(len(faces))])
    model = load_translator(trained, device="cpu").translator
    assert model.reads_labels()  # so a plain `mdt eval` measures it too
    discriminator = model.discriminator.eval()
    with torch.no_grad():
        logits = discriminator(images)[1]
    hair = [ATTRIBUTES.index(h) for h in HAIR]
    read = (logits > 0).float()
    read[:, hair] = torch.nn.functional.one_hot(logits[:, hair].argmax(dim=1), len(hair)).float()
    right = read == truth
    # Of all labels (each face has five), the share read right; with one class per image it
    # would be of the images (the known-answer test above).
    assert metrics["label_reading/label_reading_accuracy"] == pytest.approx(right.double().mean().item(), abs=1e-9)
    for column, name in enumerate(ATTRIBUTES):
        assert metrics[f"label_reading/label_reading/{name}"] == pytest.approx(right[:, column].double().mean().item(), abs=1e-9), name
    model.missing_networks = frozenset({"discriminator"})  # an imported generator without its D reads nothing
    assert not model.reads_labels()


def test_train_classifier_then_eval_with_it(trained, cli, tmp_path):
    result = cli("train-classifier", QUICKSTART, "--out", tmp_path / "judge", *small(*TINY))
    assert result.exit_code == 0, result.output
    assert "real_accuracy" in result.output and (tmp_path / "judge" / "classifier.safetensors").is_file()
    accuracy = float(re.search(r"real_accuracy\D*([0-9.]+)", result.output).group(1))
    for folder in (tmp_path / "judge", trained / "classifier"):  # the folder train-classifier wrote, and a run's
        shown = cli("checkpoint", "info", folder)
        assert shown.exit_code == 0, shown.output
        assert f"{folder / 'classifier.safetensors'}  classifier" in shown.output
    info = cli("checkpoint", "info", tmp_path / "judge").output
    assert f"accuracy on 6 real held-out images, real_accuracy: {accuracy:.4f}" in info  # TINY: test_size=6
    per_label = re.findall(r"accuracy on (\d+) real held-out images, (\w+):", info)
    assert {name: int(n) for n, name in per_label} == {
        "real_accuracy": 6,
        "Black_Hair": 6,
        "Blond_Hair": 6,
        "Brown_Hair": 6,
        "Glasses": 6,
        "Smiling": 6,
    }
    result = cli("eval", "--checkpoint", trained, "--classifier", tmp_path / "judge", "--out", tmp_path / "out", "--metric", "accuracy")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert {k.split("/")[0] for k in data["metrics"]} == {"accuracy"}
    assert data["about"]["judge classifier"] == str(tmp_path / "judge")
    # The judge read the same six real held-out images when train-classifier scored it:
    # eval's real accuracy, overall and per label, is what its file recorded.
    from mdt import checkpoint

    saved = checkpoint.read(tmp_path / "judge" / "classifier.safetensors", content=checkpoint.CLASSIFIER)
    assert saved.accuracy["real_accuracy"] == pytest.approx(accuracy, abs=5e-5)  # what train-classifier printed
    assert saved.accuracy.keys() == {"real_accuracy", *(f"real/{t}" for t in ATTRIBUTES)}
    for key, value in saved.accuracy.items():
        assert data["metrics"][f"accuracy/{key}"] == pytest.approx(value, abs=1e-12), key
    assert data["metrics"]["accuracy/real_error"] == pytest.approx(1 - saved.accuracy["real_accuracy"], abs=1e-12)
    assert data["about"]["judge accuracy on real held-out images"] == f"{saved.accuracy['real_accuracy']:.4f}"


def test_an_extended_run_keeps_its_judge(trained, cli, tmp_path):
    """Metrics of a run's two stretches are comparable only by one judge: a resumed run that
    goes on to more iterations reuses the judge its first stretch trained, unless its
    [classifier] changed."""
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    judge = run / "classifier" / "classifier.safetensors"
    before = judge.read_bytes()
    result = cli("run", QUICKSTART, "--resume", "run", *small(*TINY, "run.iterations=3"))  # relative: one line
    assert result.exit_code == 0, result.output
    assert "training the judge classifier" not in result.output and "judge classifier: run/classifier" in result.output
    assert judge.read_bytes() == before
    result = cli("run", QUICKSTART, "--resume", "run", *small(*TINY, "run.iterations=4", "classifier.steps=3"))
    assert result.exit_code == 0, result.output
    assert "[classifier] is not the one the run's judge was trained with (steps: 2 -> 3); training a new judge" in result.output
    assert "training the judge classifier" in result.output and judge.read_bytes() != before


def test_a_run_whose_judge_file_is_damaged_trains_a_new_one_and_says_why(trained, cli, tmp_path):
    """The end of a long run is no place to stop for a judge: a kept judge that cannot be
    read is named with the reason, and a new one is trained and kept in its place."""
    from mdt import checkpoint

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    judge = run / "classifier" / "classifier.safetensors"
    judge.write_bytes(judge.read_bytes()[:200])  # cut short, as by a full disk
    result = cli("run", QUICKSTART, "--resume", "run", *small(*TINY, "run.iterations=3"))
    assert result.exit_code == 0, result.output
    said = next(line for line in result.output.splitlines() if line.startswith("the run's judge cannot be used"))
    assert said.startswith(
        "the run's judge cannot be used ('run/classifier/classifier.safetensors' is not a readable safetensors checkpoint"
    ), said
    assert said.endswith("; training a new judge"), said
    assert "training the judge classifier" in result.output
    assert checkpoint.read(judge, content=checkpoint.CLASSIFIER).network("classifier")  # whole again


def _error(result) -> str:
    """The one error line (progress lines may come before it), exit code 2, no traceback."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.output.rstrip().endswith(errors[0]), result.output
    return errors[0]


def test_eval_refuses_to_overwrite_and_names_bad_inputs(trained, cli, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.json").write_text("keep me")
    line = one_line_error(cli("eval", "--checkpoint", trained, "--out", tmp_path / "out"))
    assert "already holds files" in line and (tmp_path / "out" / "metrics.json").read_text() == "keep me"
    classifier = trained / "classifier" / "classifier.safetensors"
    assert "is a judge classifier" in one_line_error(cli("eval", "--checkpoint", classifier))
    assert "--inception" in one_line_error(
        cli("eval", "--checkpoint", trained, "--out", tmp_path / "a", "--inception", tmp_path / "none.pth")
    )
    torch.save({"x": torch.zeros(2)}, tmp_path / "bad.pth")
    line = _error(cli("eval", "--checkpoint", trained, "--out", tmp_path / "b", "--inception", tmp_path / "bad.pth", "--metric", "fid"))
    assert "bad.pth" in line and "holds neither pytorch-fid's Inception" in line
    line = _error(cli("eval", "--checkpoint", trained, "--out", tmp_path / "c", "--metric", "no_such_metric"))
    assert "no_such_metric" in line and "translation_accuracy" in line
    assert "--max-images 0" in one_line_error(cli("eval", "--checkpoint", trained, "--max-images", "0"))
    assert "give --inception too" in one_line_error(cli("eval", "--checkpoint", trained, "--unverified-weights"))
    assert "give --lpips too" in one_line_error(cli("eval", "--checkpoint", trained, "--alexnet", tmp_path / "bad.pth"))


def test_a_judge_of_other_labels_is_refused(trained, cli, tmp_path):
    result = cli(
        "train-classifier", QUICKSTART, "--out", tmp_path / "judge", *small(*TINY, "datasets.faces.attributes=['Smiling', 'Glasses']")
    )
    assert result.exit_code == 0, result.output
    line = _error(cli("eval", "--checkpoint", trained, "--classifier", tmp_path / "judge", "--out", tmp_path / "out"))
    assert "reads labels" in line and "train one on the same recipe" in line
    line = one_line_error(cli("train-classifier", QUICKSTART, "--out", tmp_path / "judge", *small(*TINY)))
    assert "already holds files" in line


def test_eval_of_stargan_v2_measures_both_modes(cli, tmp_path, monkeypatch):
    import mdt_metrics.diversity
    from conftest import SMALL_V2  # noqa: F401  (the reduced v2 sizes)

    args = small(
        "datasets.faces.size=16",
        "datasets.faces.test_size=6",
        "classifier.steps=1",
        "classifier.batch_size=4",
        "metrics.accuracy.max_images=4",
        "metrics.diversity.samples=2",
        "metrics.diversity.max_images=4",
        v2=True,
    )
    assert cli("run", V2_QUICKSTART, "--out", "run", *args).exit_code == 0
    drawn = []  # the diversity figures' row titles: which target each row's outputs are of
    real_grid = mdt_metrics.diversity.grid_image
    monkeypatch.setattr(
        mdt_metrics.diversity,
        "grid_image",
        lambda rows, titles, row_titles=None: (drawn.append((len(rows), row_titles)), real_grid(rows, titles, row_titles=row_titles))[1],
    )
    result = cli("eval", "--checkpoint", "run", "--out", "report", "--max-images", "4")
    assert result.exit_code == 0, result.output
    assert len(drawn) == 2  # latent and reference
    for count, row_titles in drawn:
        assert len(row_titles) == count and all(t.startswith("to ") for t in row_titles), row_titles
    document = json.loads(Path("report/metrics.json").read_text())
    metrics = document["metrics"]
    assert document["about"]["images measured per metric, at most"] == "4 (--max-images)"  # the split's size is not what was measured
    for mode in ("latent", "reference"):
        assert metrics[f"diversity/{mode}/feature_distance"] > 0 and metrics[f"diversity/{mode}/pixel_l1"] > 0
        assert f"fid/{mode}/fid_mean" in metrics
        assert any(k.startswith(f"fid/{mode}/fid/pair/") and "->" in k for k in metrics)  # per source -> target task
        # fid_mean: the mean of the targets' FIDs (each target with at least 2 real and 2 translated images).
        per_target = [metrics[f"fid/{mode}/fid/{t}"] for t in HAIR if f"fid/{mode}/fid/{t}" in metrics]
        assert len(per_target) >= 2 and metrics[f"fid/{mode}/fid_mean"] == pytest.approx(sum(per_target) / len(per_target), rel=1e-12)
    # Diversity's pixel L1 by hand. --max-images 4 of 6 held-out images: 0, 1, 3 and 4 (evenly
    # spread); each goes to every domain it is not in, twice (samples=2), with the seeds
    # 0 and 100003 (Diversity's stride); a reference is the next held-out image of the
    # target domain, from the seed-th on (pairs.translations).
    from mdt.inference import load_translator

    translator = load_translator("run", device="cpu").translator
    faces = SyntheticFaces("test", 32, attributes=HAIR, size=16, test_size=6)
    chosen = [0, 1, 3, 4]
    images = torch.stack([faces[i]["image"] for i in chosen]).float() / 127.5 - 1
    labels = faces.labels[chosen]
    everything = torch.stack([faces[i]["image"] for i in range(6)]).float() / 127.5 - 1
    seeds = (0, 100_003)
    for mode in ("latent", "reference"):
        distances = []
        for d, domain in enumerate(HAIR):
            wanted = torch.nn.functional.one_hot(torch.full((4,), d), 3).float()
            changed = labels[:, d] == 0
            pool = everything[faces.labels[:, d] == 1]
            outputs = []
            for seed in seeds:
                refs = pool[(torch.arange(4) + seed) % len(pool)] if mode == "reference" else None
                request = {"ref": refs} if mode == "reference" else {"seed": seed}
                outputs.append(translator.to_labels(images, wanted, 0, base=labels, **request))
            values = (outputs[0] - outputs[1]).abs().flatten(1).mean(1)[changed]
            assert metrics[f"diversity/{mode}/pixel_l1/{domain}"] == pytest.approx(values.mean().item(), rel=1e-5), (mode, domain)
            distances.append(values)
        assert metrics[f"diversity/{mode}/pixel_l1"] == pytest.approx(torch.cat(distances).mean().item(), rel=1e-5), mode
    page = Path("report/report.html").read_text()
    assert "latent-guided" in page and "reference-guided" in page


def test_two_models_side_by_side_on_the_same_images_and_judge(trained, cli, tmp_path):
    """--compare measures another model exactly as mdt eval measures it alone."""
    other = tmp_path / "other"
    result = cli("run", QUICKSTART, "--out", other, *small(*TINY, "run.seed=7", "generator.residual_blocks=2"))
    assert result.exit_code == 0, result.output
    judge = trained / "classifier"
    both = cli(
        "eval",
        "--checkpoint",
        trained,
        "--compare",
        other,
        "--classifier",
        judge,
        "--out",
        tmp_path / "both",
        "--metric",
        "accuracy",
        "--metric",
        "cycle_error",
    )
    assert both.exit_code == 0, both.output
    alone = cli(
        "eval", "--checkpoint", other, "--classifier", judge, "--out", tmp_path / "alone", "--metric", "accuracy", "--metric", "cycle_error"
    )
    assert alone.exit_code == 0, alone.output
    data = json.loads((tmp_path / "both" / "metrics.json").read_text())
    expected = json.loads((tmp_path / "alone" / "metrics.json").read_text())["metrics"]
    compared = data["compared"]["other"]["metrics"]
    assert compared.keys() == expected.keys()
    for key, value in expected.items():
        assert compared[key] == pytest.approx(value, abs=1e-9), key
    assert compared["cycle_error/l1"] != data["metrics"]["cycle_error/l1"]  # two different models
    page = (tmp_path / "both" / "report.html").read_text()
    assert "models side by side" in page and "<th>run</th><th>other</th>" in page


def test_compare_refuses_a_model_of_other_data(trained, cli, tmp_path):
    other = tmp_path / "other"
    assert cli("run", QUICKSTART, "--out", other, *small(*TINY, "datasets.faces.seed=3")).exit_code == 0
    line = _error(
        cli(
            "eval",
            "--checkpoint",
            trained,
            "--compare",
            other,
            "--classifier",
            trained / "classifier",
            "--out",
            tmp_path / "x",
            "--metric",
            "cycle_error",
        )
    )
    assert "was trained on other data or another image size" in line
    assert "does not exist" in one_line_error(
        cli("eval", "--checkpoint", trained, "--compare", tmp_path / "nothing", "--out", tmp_path / "y")
    )


def test_real_images_of_a_continuous_target_are_those_within_the_tolerance():
    """GANimation's targets set a strength to 1; real strengths drawn from [0, 1] are never
    exactly 1, so FID against 'the real images of the target' found none."""
    from mdt.evaluation import Target
    from mdt.labels import LabelSchema

    schema = LabelSchema("faces", ("smile", "brow_raise"), continuous=True)
    labels = torch.tensor([[0.95, 0.1], [0.81, 0.9], [0.79, 0.0], [0.2, 1.0]])
    assert Target("smile", 0, {"smile": 1.0}).holds(schema, labels).tolist() == [True, True, False, False]
    assert Target("no brow", 0, {"brow_raise": 0.0}).holds(schema, labels).tolist() == [True, False, True, False]


def test_a_translation_counts_right_only_when_the_new_domain_is_read():
    """a -> b read as a third class c: the judge missed the old domain but did not read the
    new one. Scored entry by entry that was half right (the 0.5 of a judge that reads no
    domain at all); a translation is right when every label the target sets is."""
    from mdt_metrics.accuracy import TranslationAccuracy

    class ThirdClassJudge:
        feature_space = "test"

        def predict(self, images, dataset):
            return torch.nn.functional.one_hot(torch.full((len(images),), 2), 3).float()

    schema = LabelSchema("toy", ("a", "b", "c"), categorical=True)
    items = [
        {"image": torch.zeros((3, 4, 4), dtype=torch.uint8), "label": torch.nn.functional.one_hot(torch.tensor(c), 3).float()}
        for c in (0, 1)
    ]
    encoder = SimpleNamespace(targets=lambda: [("a", 0, {"a": 1.0}), ("b", 0, {"b": 1.0})])
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[schema],
        test_sets=[items],
        train_sets=[items],
        label_encoder=encoder,
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=_Translator),
    )
    values = TranslationAccuracy()(Evaluation(components, make_classifier=None, classifier=ThirdClassJudge(), batch_size=8))
    assert values["target_accuracy"] == 0.0 and values["target/a"] == 0.0 and values["target/b"] == 0.0
    assert values["pair/a->b"] == 0.0 and values["pair/b->a"] == 0.0


def test_pairs_of_an_exclusive_group_name_each_images_own_member():
    """A hair-colour target's pairs read Black_Hair->Blond_Hair, not faces->Blond_Hair:
    a model of one generator per pair (CycleGAN) is judged per pair."""
    from mdt_metrics.pairs import source_names

    from mdt.evaluation import Target

    schema = LabelSchema("faces", ("Black_Hair", "Blond_Hair", "Glasses"), exclusive=(("Black_Hair", "Blond_Hair"),))
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert source_names(schema, labels, Target("Blond_Hair", 0, {"Blond_Hair": 1.0})) == ["Black_Hair", "Blond_Hair", "faces"]
    assert source_names(schema, labels, Target("Glasses", 0, {"Glasses": 1.0})) == ["faces"] * 3


def test_per_target_tables_split_rather_than_cut_in_a_narrow_terminal():
    """At 80 columns one table of nine metric columns cut every header to "tar…"; the
    columns go into several tables instead, each repeating the target column."""
    from rich.console import Console

    from mdt.report import print_tables

    targets = ["Black_Hair", "Blond_Hair"]
    columns = [f"metric_{k}/target_accuracy" for k in range(9)]
    results = {f"{c}/{t}": 0.5 + k / 100 for k, c in enumerate(columns) for t in targets}
    console = Console(width=80, record=True, color_system=None)
    print_tables(console, results, targets)
    text = console.export_text()
    assert "…" not in text
    for k, column in enumerate(columns):
        assert column in text and f"{0.5 + k / 100:.4g}" in text
    assert "per target (1 of" in text and all(len(line) <= 80 for line in text.splitlines())


@pytest.mark.parametrize(
    "overrides,expected",
    [
        # resnet18's batch norm at 32 px leaves 1x1 maps: batches of one cannot train it
        (
            ["classifier.batch_size=1"],
            "[classifier] backbone 'resnet18' cannot train on the run's 32x32 images in batches of 1: "
            "Expected more than 1 value per channel when training",
        ),
        (
            ["run.image_size=16", 'classifier.backbone="inception_v3"'],
            "[classifier] backbone 'inception_v3' cannot train on the run's 16x16 images in batches of 2: ",
        ),
        (['classifier.backbone="resnet1000"'], "[classifier] timm: backbone 'resnet1000' is not a timm model name"),
    ],
)
def test_a_judge_that_cannot_train_on_the_run_s_images_is_refused_before_training(cli, tmp_path, overrides, expected):
    """It used to fail with a traceback (or a late error) after the whole run had trained."""
    flags = [f for o in overrides for f in ("--set", o)]
    result = cli("run", QUICKSTART, "--out", "run", *small(*TINY, "run.iterations=100"), *flags)
    line = one_line_error(result)
    assert expected in line, line
    assert not (tmp_path / "run" / "checkpoints").exists() or not any((tmp_path / "run" / "checkpoints").iterdir())


def test_kid_needs_subsets_of_two_and_the_check_says_so(cli, tmp_path):
    """KID compares pairs within a subset: subsets of one used to fail after training."""
    (tmp_path / "fid.toml").write_text(QUICKSTART.read_text() + '\n[metrics.fid]\ntype = "fid"\n')
    line = one_line_error(cli("recipe", "check", "fid.toml", "--set", "metrics.fid.kid_subset_size=1"))
    assert line.endswith("key 'kid_subset_size' = 1: expected an integer of at least 2"), line


def test_checking_the_judge_before_training_leaves_the_training_unchanged(cli, tmp_path):
    """The judge is built before training in a forked random state: a run with metrics
    trains exactly as the same run without them."""
    from mdt import checkpoint
    from mdt.logbook import read_log

    text = QUICKSTART.read_text()
    (tmp_path / "bare.toml").write_text(text[: text.index("[metrics.accuracy]")])
    args = small(*TINY[:4], "run.iterations=3")
    assert cli("run", QUICKSTART, "--out", "with", *args).exit_code == 0
    assert cli("run", "bare.toml", "--out", "without", *args).exit_code == 0
    losses = [
        [{k: v for k, v in r.items() if "/" in k} for r in read_log(tmp_path / run / "log.jsonl") if r["event"] == "train"]
        for run in ("with", "without")
    ]
    assert losses[0] == losses[1] and len(losses[0]) == 3
    weights = [checkpoint.read(tmp_path / run / "checkpoints" / "step_00000003.safetensors").tensors for run in ("with", "without")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])


def test_the_report_embeds_media_files_with_a_player_for_sound(tmp_path):
    """Files a metric adds to Evaluation.media are embedded whole: sound and video with a
    player, a picture shown, anything else as a download; each under its own title."""
    import base64
    import html as html_module
    import io
    import re

    from PIL import Image

    from mdt.evaluation import Medium
    from mdt.report import write_html

    picture = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(picture, format="PNG")
    sound = b"RIFF" + bytes(range(256)) * 3  # any bytes: the report does not decode them
    media = {
        "a <conversion>": [
            Medium("source & reading", "audio/wav", sound),
            Medium("its picture", "image/png", picture.getvalue()),
            Medium("raw.bin", "application/octet-stream", b"\x00\x01"),
        ]
    }
    page = write_html(tmp_path / "report.html", "t", {}, {}, [], {}, [], media=media).read_text()

    def embedded(pattern: str) -> tuple[str, bytes]:
        found = re.search(pattern, page)
        assert found, pattern
        return html_module.unescape(found.group(1)), base64.b64decode(found.group(2))

    assert embedded(r'<div>([^<]*)</div><audio controls preload="none" src="data:audio/wav;base64,([^"]+)"') == ("source & reading", sound)
    assert embedded(r'<div>([^<]*)</div><img src="data:image/png;base64,([^"]+)"') == ("its picture", picture.getvalue())
    assert embedded(r'<a download="([^"]*)" href="data:application/octet-stream;base64,([^"]+)"') == ("raw.bin", b"\x00\x01")
    assert "<figcaption>a &lt;conversion&gt;</figcaption>" in page
