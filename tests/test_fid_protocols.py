"""FID protocols: StarGAN v2's, step by step against an independent computation, and how
`mdt eval` names the protocol, the weights and the images it measured."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from test_recipe_errors import one_line_error

from mdt.evaluation import Evaluation
from mdt.labels import LabelSchema
from mdt.method import Translator

DOMAINS = ("a", "b", "c")


def random_imagenet_inception(path):
    """torchvision's Inception v3 with random weights and batch-norm statistics, saved
    as its published file is (aux logits included)."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=True, init_weights=True)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return net.eval()


class _Translator(Translator):
    """Shifts each channel by an amount that depends on the target domain: values between
    the uint8 steps, so the protocol's PNG quantisation matters."""

    def to_labels(self, images, labels, dataset, base=None):
        shift = labels @ torch.tensor([[0.013, -0.21, 0.3], [0.25, 0.017, -0.1], [-0.3, 0.2, 0.011]])
        return (images * 0.9 + shift[:, :, None, None]).clamp(-1, 1)


def _items(seed: int, per_domain: int):
    g = torch.Generator().manual_seed(seed)
    items = []
    for d in range(len(DOMAINS)):
        for _ in range(per_domain):
            image = (torch.rand(3, 24, 24, generator=g) * 120 + 60 * d).to(torch.uint8)
            items.append({"image": image, "label": torch.nn.functional.one_hot(torch.tensor(d), len(DOMAINS)).float()})
    return items


def _evaluation(weights):
    schema = LabelSchema("toy", DOMAINS, categorical=True)
    encoder = SimpleNamespace(targets=lambda: [(d, 0, {d: 1.0}) for d in DOMAINS])
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[schema],
        test_sets=[_items(1, 2)],
        train_sets=[_items(2, 3)],
        label_encoder=encoder,
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=_Translator),
    )
    return Evaluation(components, make_classifier=None, classifier=SimpleNamespace(feature_space="unused"), weights=weights, batch_size=4)


def _official_steps(net, images: torch.Tensor) -> np.ndarray:
    """StarGAN v2's metrics/fid.py, spelled out: uint8 PNG pixels, PIL resize to 299
    (bilinear), ImageNet normalisation, torchvision's blocks, average pool."""
    pixels = np.floor(((images.numpy() + 1) / 2 * 255 + 0.5).clip(0, 255)).astype(np.uint8)
    batch = []
    for p in pixels:
        resized = Image.fromarray(p.transpose(1, 2, 0)).resize((299, 299), Image.BILINEAR)
        x = np.asarray(resized, dtype=np.float64) / 255
        batch.append(((x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1))
    x = torch.tensor(np.stack(batch), dtype=torch.float32)
    blocks = torch.nn.Sequential(
        net.Conv2d_1a_3x3,
        net.Conv2d_2a_3x3,
        net.Conv2d_2b_3x3,
        torch.nn.MaxPool2d(3, 2),
        net.Conv2d_3b_1x1,
        net.Conv2d_4a_3x3,
        torch.nn.MaxPool2d(3, 2),
        net.Mixed_5b,
        net.Mixed_5c,
        net.Mixed_5d,
        net.Mixed_6a,
        net.Mixed_6b,
        net.Mixed_6c,
        net.Mixed_6d,
        net.Mixed_6e,
        net.Mixed_7a,
        net.Mixed_7b,
        net.Mixed_7c,
        torch.nn.AdaptiveAvgPool2d(1),
    )
    with torch.no_grad():
        return blocks(x).flatten(1).double().numpy()


def _frechet(a: np.ndarray, b: np.ndarray) -> float:
    """||m1 - m2||² + Tr C1 + Tr C2 - 2 Tr (C1 C2)^½. With C = XᵀX / (n - 1) for centred
    features X, the eigenvalues of C1 C2 are the squared singular values of X1 X2ᵀ / √((n1-1)(n2-1)):
    the trace of the root is their sum (the official scipy.linalg.sqrtm of a 2048 x 2048
    product gives the same, in minutes on two cores)."""
    x1, x2 = a - a.mean(0), b - b.mean(0)
    n1, n2 = len(a), len(b)
    trace_root = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    traces = (x1**2).sum() / (n1 - 1) + (x2**2).sum() / (n2 - 1)
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + traces - 2 * trace_root)


def test_stargan_v2_protocol_equals_the_official_steps(tmp_path):
    from mdt_metrics.frechet import FrechetDistance

    net = random_imagenet_inception(tmp_path / "inception_v3_google.pth")
    evaluation = _evaluation({"inception": tmp_path / "inception_v3_google.pth"})
    metric = FrechetDistance(protocol="stargan-v2", kid_subsets=2, kid_subset_size=2, unverified_weights=True)
    metric.prepare(evaluation)
    ours = metric(evaluation)

    to_float = lambda items: torch.stack([i["image"] for i in items]).float() / 127.5 - 1  # noqa: E731
    test, train = _items(1, 2), _items(2, 3)
    expected = {}
    for t, target in enumerate(DOMAINS):
        real = _official_steps(net, to_float(train[3 * t : 3 * t + 3]))
        for s, source in enumerate(DOMAINS):
            if s != t:
                wanted = torch.nn.functional.one_hot(torch.tensor([t] * 2), 3).float()
                fakes = _Translator().to_labels(to_float(test[2 * s : 2 * s + 2]), wanted, 0)
                expected[f"{source}->{target}"] = _frechet(real, _official_steps(net, fakes))
    assert len(expected) == 6
    for task, value in expected.items():
        assert ours[f"fid/pair/{task}"] == pytest.approx(value, rel=1e-4, abs=1e-4), task
    assert ours["fid_mean"] == pytest.approx(sum(expected.values()) / 6, rel=1e-4)
    assert ours["protocol"] == "stargan-v2"
    assert ours["feature_weights_sha256"] == hashlib.sha256((tmp_path / "inception_v3_google.pth").read_bytes()).hexdigest()
    assert ours["real_images/a"] == 3 and ours["translated_images/a"] == 4  # b and c's two held-out images each
    assert ours["weights"] == "unverified weights" and ours["feature_space"].endswith(", unverified weights")


def test_weights_that_are_not_the_published_file_are_refused_by_their_hash(tmp_path, monkeypatch):
    """Random weights in Inception's layout measure an FID near 0; under a protocol's name
    that is a false result. The published files carry the start of their SHA-256 in their
    names (torch.hub's convention), so the hash tells them apart."""
    from mdt_metrics import inception
    from mdt_metrics.frechet import FrechetDistance

    from mdt.errors import MdtError

    random_imagenet_inception(tmp_path / "inception_v3_google-0cc3c7bd.pth")  # the published name, other weights
    digest = hashlib.sha256((tmp_path / "inception_v3_google-0cc3c7bd.pth").read_bytes()).hexdigest()
    assert not digest.startswith(("0cc3c7bd", "1a9a5a14"))
    metric = FrechetDistance(protocol="stargan-v2")
    with pytest.raises(MdtError) as refused:
        metric.prepare(_evaluation({"inception": tmp_path / "inception_v3_google-0cc3c7bd.pth"}))
    line = str(refused.value)
    assert "\n" not in line and digest[:8] in line and "0cc3c7bd…" in line and "1a9a5a14…" in line
    assert "--unverified-weights" in line and "inception_v3_google-0cc3c7bd.pth" in line
    # The same file, were its hash the published one, is measured and called published.
    monkeypatch.setitem(inception.PUBLISHED_SHA256, "stargan-v2", (digest[:8],))
    evaluation = _evaluation({"inception": tmp_path / "inception_v3_google-0cc3c7bd.pth"})
    metric = FrechetDistance(protocol="stargan-v2", kid_subsets=2, kid_subset_size=2)
    metric.prepare(evaluation)
    ours = metric(evaluation)
    assert ours["weights"] == "published" and "unverified" not in ours["feature_space"]
    assert ours["fid_mean"] > 0


def test_the_other_protocols_weights_are_refused_with_the_right_advice(tmp_path):
    from mdt_metrics.frechet import FrechetDistance
    from mdt_metrics.inception import FidInception

    from mdt.errors import MdtError

    random_imagenet_inception(tmp_path / "tv.pth")
    with pytest.raises(MdtError, match="use --fid-protocol stargan-v2 with it"):
        FrechetDistance(protocol="pytorch-fid").prepare(_evaluation({"inception": tmp_path / "tv.pth"}))
    torch.save(FidInception().net.state_dict(), tmp_path / "pt.pth")
    with pytest.raises(MdtError, match="use --fid-protocol pytorch-fid with it"):
        FrechetDistance(protocol="stargan-v2").prepare(_evaluation({"inception": tmp_path / "pt.pth"}))
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(MdtError, match="holds neither pytorch-fid's Inception"):
        FrechetDistance().prepare(_evaluation({"inception": tmp_path / "other.pth"}))


def test_eval_records_protocol_weights_images_and_seed_spread(trained, cli, tmp_path):
    random_imagenet_inception(tmp_path / "tv.pth")
    arguments = [
        "eval",
        "--checkpoint",
        trained,
        "--out",
        tmp_path / "report",
        "--metric",
        "fid",
        "--max-images",
        "2",
        "--inception",
        tmp_path / "tv.pth",
        "--fid-protocol",
        "stargan-v2",
        "--seeds",
        "2",
    ]
    from test_eval import _error

    line = _error(cli(*arguments))  # random weights in torchvision's layout: not the published file
    assert "--unverified-weights" in line and "tv.pth" in line and not (tmp_path / "report").exists()
    result = cli(*arguments, "--unverified-weights")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    assert metrics["fid/protocol"] == "stargan-v2"
    assert metrics["fid/feature_weights_sha256"] == hashlib.sha256((tmp_path / "tv.pth").read_bytes()).hexdigest()
    assert metrics["fid/feature_space"].startswith("torchvision inception v3")
    assert metrics["fid/weights"] == "unverified weights"
    assert "unverified weights" in (tmp_path / "report" / "report.html").read_text()
    assert all(metrics[f"fid/translated_images/{t}"] >= 1 for t in ("Black_Hair", "Smiling"))
    # --max-images 2 of the 4 held-out faces: 0 and 2 (evenly spread). A flip changes both;
    # a hair colour those of another colour. Real: every training face that shows the target.
    from mdt_datasets.synthetic import ATTRIBUTES, HAIR, SyntheticFaces

    test = SyntheticFaces("test", 32, size=16, test_size=4).labels[[0, 2]]
    train = SyntheticFaces("train", 32, size=16, test_size=4).labels
    for column, title in enumerate(ATTRIBUTES):
        hair = title in HAIR
        assert metrics[f"fid/translated_images/{title}"] == (int((test[:, column] == 0).sum()) if hair else 2), title
        assert metrics[f"fid/real_images/{title}"] == (int(train[:, column].sum()) if hair else 16), title
    # StarGAN's translations do not depend on the seed: the spread over seeds is zero.
    assert metrics["fid/fid_mean_std"] == pytest.approx(0.0, abs=1e-9)
    line = one_line_error(cli("eval", "--checkpoint", trained, "--out", tmp_path / "again", "--seeds", "0"))
    assert "--seeds 0" in line


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def test_an_unknown_protocol_is_named_with_the_choices(trained, cli, tmp_path):
    line = one_line_error(cli("eval", "--checkpoint", trained, "--out", tmp_path / "r", "--metric", "fid", "--fid-protocol", "tf-fid"))
    assert line == 'error: --fid-protocol "tf-fid": metric \'fid\' takes protocol one of "pytorch-fid", "stargan-v2"'
    assert not (tmp_path / "r").exists()
