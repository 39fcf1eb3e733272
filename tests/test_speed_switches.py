"""The speed switches change speed, not results: cache, bf16 autocast, batched D."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from conftest import REPO, small
from rich.console import Console

from mdt.cache import ImageCache
from mdt.data import Batch
from mdt.interfaces import Dataset
from mdt.logbook import read_log


class CountingDataset(Dataset):
    """Items like a file dataset's; counts how often an image is decoded."""

    def __init__(self, broken: int | None = None) -> None:
        from mdt.labels import LabelSchema

        self.schema = LabelSchema("counting", ("a",))
        self.decoded = 0
        self.broken = broken

    def __len__(self):
        return 6

    def __getitem__(self, index):
        self.decoded += 1
        if index == self.broken:
            return {"error": f"cannot read image 'img{index}.jpg'"}
        return {"image": torch.full((3, 4, 4), index, dtype=torch.uint8), "label": torch.tensor([float(index % 2)])}


def test_the_cache_decodes_each_image_once(tmp_path):
    dataset = CountingDataset()
    cache = ImageCache(dataset, tmp_path, "counting")
    first = [cache[i] for i in range(6)]
    decoded_in_first_epoch = dataset.decoded
    second = [cache[i] for i in range(6)]
    assert dataset.decoded == decoded_in_first_epoch  # later epochs read the cache
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    reopened = ImageCache(CountingDataset(), tmp_path, "counting")  # a resumed run reuses the files
    assert torch.equal(reopened[3]["image"], first[3]["image"])


def test_the_cache_never_stores_a_bad_file(tmp_path):
    dataset = CountingDataset(broken=2)
    cache = ImageCache(dataset, tmp_path, "broken")
    assert "error" in cache[2] and "error" in cache[2]
    # Read again each time it is asked for (a file may be fixed while a run goes on), ...
    decoded = dataset.decoded
    assert "error" in cache[2] and "error" in cache[2] and dataset.decoded == decoded + 2
    assert torch.equal(cache[3]["image"], torch.full((3, 4, 4), 3, dtype=torch.uint8))  # a good one beside it: decoded, stored
    # ... and a dataset that reads it (the file fixed, a resumed run) gets its own image
    # from the same cache files, decoded, not an empty slot.
    fixed = CountingDataset()
    reopened = ImageCache(fixed, tmp_path, "broken")
    before = fixed.decoded
    assert torch.equal(reopened[2]["image"], torch.full((3, 4, 4), 2, dtype=torch.uint8)) and fixed.decoded == before + 1
    assert torch.equal(reopened[2]["image"], torch.full((3, 4, 4), 2, dtype=torch.uint8)) and fixed.decoded == before + 1  # now stored
    assert torch.equal(reopened[3]["image"], torch.full((3, 4, 4), 3, dtype=torch.uint8)) and fixed.decoded == before + 1  # stored before


def test_batched_discriminator_gives_the_same_loss_and_gradients(registry, tmp_path):
    """D on cat(real, fake) must equal separate calls (D has no batch statistics)."""
    from mdt_stargan.method import StepState
    from test_components import built

    components = built(registry, tmp_path)
    method = components.method
    method.precision = "fp32"  # what is compared is batching, not precision ("auto" may be bf16 here)
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    batch = Batch(components.augmentation(raw, train=False), labels, 0)
    targets = labels.flip(0)
    torch.manual_seed(0)
    state = StepState("discriminator", method, batch, targets)
    together = (state.real_scores, state.fake_scores, state.real_logits)
    with torch.no_grad():
        real_scores, real_logits = method.discriminator(batch.images)
        fake_scores, _ = method.discriminator(state.fake)
    torch.testing.assert_close(together[0], real_scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[1], fake_scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[2], real_logits, rtol=1e-5, atol=1e-6)


def test_bf16_training_runs_with_finite_fp32_losses(cli, tmp_path):
    args = small(
        "datasets.faces.size=16",
        "datasets.faces.test_size=4",
        "classifier.steps=1",
        "metrics.accuracy.max_images=2",
        "run.precision=bf16",
        "run.cache_images=true",
    )
    result = cli("run", REPO / "recipes" / "quickstart.toml", "--out", "run", *args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "cache" / "faces.images").is_file()
    # Every training image the run decoded into the cache is the dataset's own item.
    from mdt_datasets.synthetic import SyntheticFaces

    faces = SyntheticFaces("train", 32, size=16, test_size=4)
    filled, images, labels = cached(tmp_path / "run" / "cache" / "faces", len(faces), (3, 32, 32), 5)
    assert filled.sum() >= 4  # at least the 2 x 2 images of its two batches
    for index in np.flatnonzero(filled):
        item = faces[int(index)]
        assert np.array_equal(images[index], item["image"].numpy()) and np.array_equal(labels[index], item["label"].numpy()), index
    losses = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["event"] == "train"]
    assert losses and all(math.isfinite(v) for r in losses for k, v in r.items() if k.startswith(("D/", "G/")))


def cached(stem, count: int, shape: tuple[int, ...], labels: int):
    """The cache files ``stem``.filled, .images and .labels (mdt/cache.py's layout: one
    flag, one uint8 image and float32 labels per item), read as plain arrays."""
    filled = np.fromfile(f"{stem}.filled", dtype=np.uint8)
    images = np.fromfile(f"{stem}.images", dtype=np.uint8).reshape(count, *shape)
    values = np.fromfile(f"{stem}.labels", dtype=np.float32).reshape(count, labels)
    assert filled.shape == (count,) and set(np.unique(filled)) <= {0, 1}
    return filled, images, values


def one_update_in(precision: str, registry):
    """One D and one G update of the quickstart's networks from the same weights and batch:
    the losses, and the dtype of each network call's output, with whether its input is
    a leaf needing a gradient (only the gradient penalty's mixed images are)."""
    from mdt.build import build
    from mdt.recipe import load_recipe

    overrides = [
        "run.image_size=32",
        "generator.conv_dim=8",
        "generator.residual_blocks=1",
        "discriminator.conv_dim=8",
        "discriminator.layers=3",
        "datasets.faces.size=8",
        "datasets.faces.test_size=2",
        f"run.precision={precision}",
    ]
    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry)
    torch.manual_seed(0)
    method = build(recipe, registry).method
    seen = []  # (network, whether its input is a leaf needing a gradient, its first output's dtype)

    def record(module, inputs, output, role):
        first = output[0] if isinstance(output, tuple) else output
        seen.append((role, inputs[0].requires_grad and inputs[0].is_leaf, first.dtype))

    for role in ("generator", "discriminator"):  # each network's first convolution: what it computes in
        first_conv = next(m for m in getattr(method, role).modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_hook(lambda m, i, o, role=role: record(m, i, o, role))
    torch.manual_seed(1)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    batch = Batch(images, labels, 0)
    losses = {}
    for phase in ("discriminator", "generator"):
        torch.manual_seed(2)
        losses.update({k: float(v) for k, v in method.update_phase(phase, batch, labels.flip(0)).items()})
        if phase == "discriminator":  # D's own gradients (G's update clears them)
            penalty_grads = [p.grad.dtype for p in method.discriminator.parameters() if p.grad is not None]
    return losses, seen, penalty_grads


def test_bf16_runs_networks_in_bf16_and_the_penalty_and_losses_in_fp32(registry):
    fp32, _, _ = one_update_in("fp32", registry)
    bf16, seen, grads = one_update_in("bf16", registry)
    assert {dtype for role, mixed, dtype in seen if role == "generator"} == {torch.bfloat16}
    assert any(mixed for role, mixed, dtype in seen if role == "discriminator")
    assert {dtype for role, mixed, dtype in seen if role == "discriminator" and not mixed} == {torch.bfloat16}
    # The gradient penalty differentiates D at the mixed images: that forward stays fp32.
    assert {dtype for role, mixed, dtype in seen if mixed} == {torch.float32}
    assert grads and set(grads) == {torch.float32}
    assert fp32.keys() == bf16.keys()
    for name, value in fp32.items():
        assert bf16[name] == pytest.approx(value, rel=0.05, abs=0.02), name


def test_precision_must_be_known(cli):
    result = cli("recipe", "check", REPO / "recipes" / "quickstart.toml", "--set", "run.precision=fp8")
    assert result.exit_code == 2 and 'expected one of "auto", "fp32", "bf16"' in result.output
    result = cli("recipe", "check", REPO / "recipes" / "quickstart.toml", "--set", 'run.cache_images="sometimes"')
    assert result.exit_code == 2 and 'cache_images\' = "sometimes": expected true or false or one of "auto"' in result.output


def test_compiling_the_generator_keeps_the_discriminator_gradients(registry):
    """Compilation must never touch the penalty's double backward: D's gradients agree."""
    from mdt.build import build
    from mdt.recipe import load_recipe

    grads = []
    for compiled in (False, True):
        overrides = [
            "run.image_size=16",
            "generator.conv_dim=4",
            "generator.residual_blocks=1",
            "discriminator.conv_dim=4",
            "discriminator.layers=2",
            "datasets.faces.size=8",
            "datasets.faces.test_size=2",
            "run.precision=fp32",
            f"run.compile_generator={'true' if compiled else 'false'}",
        ]
        recipe = load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry)
        torch.manual_seed(0)
        components = build(recipe, registry)
        method = components.method
        assert (getattr(method.generator, "_compiled_call_impl", None) is not None) == compiled
        assert getattr(method.discriminator, "_compiled_call_impl", None) is None
        raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
        labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
        batch = Batch(components.augmentation(raw, train=False), labels, 0)
        torch.manual_seed(1)
        method.update_phase("discriminator", batch, labels.flip(0))
        grads.append({n: p.grad.clone() for n, p in method.discriminator.named_parameters()})
        assert set(method.generator.state_dict()) == set(components.method.networks()["generator"].state_dict())
        assert not any(k.startswith("_orig_mod") for k in method.generator.state_dict())
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5, msg=name)


# -- "auto": what a recipe gets when it does not say -------------------------------------


def fake_hardware(monkeypatch, amx=False, avx512_bf16=False, cuda_bf16=False, bf16_speedup=None):
    """Pretend the machine has these features; ``bf16_speedup`` is what timing a bf16
    convolution against fp32 would measure (None: measuring it fails the test)."""
    from mdt import precision

    def measured() -> float:
        assert bf16_speedup is not None, "auto measured bf16 where the hardware alone decides"
        return bf16_speedup

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: cuda_bf16)
    monkeypatch.setattr(precision, "bf16_convolution_speedup", measured)


@pytest.mark.parametrize(
    ("device", "hardware", "expected"),
    [
        ("cpu", {"amx": True}, "bf16"),
        ("cpu", {"amx": True, "avx512_bf16": True}, "bf16"),
        # bf16 dot products without AMX: slower than fp32 on one Xeon, twice as fast on one EPYC
        # (docs/performance.md), so "auto" times a convolution both ways
        ("cpu", {"avx512_bf16": True, "bf16_speedup": 0.55}, "fp32"),
        ("cpu", {"avx512_bf16": True, "bf16_speedup": 1.1}, "fp32"),  # not worth bf16's rounding
        ("cpu", {"avx512_bf16": True, "bf16_speedup": 2.0}, "bf16"),
        ("cpu", {}, "fp32"),
        ("cpu", {"cuda_bf16": True}, "fp32"),  # a GPU's bf16 says nothing of the CPU
        ("cuda", {"cuda_bf16": True}, "bf16"),
        ("cuda", {"amx": True}, "fp32"),  # an old GPU on a new CPU
        ("mps", {"amx": True}, "fp32"),
    ],
)
def test_auto_precision_is_bf16_only_where_the_device_computes_in_bf16(monkeypatch, device, hardware, expected):
    from mdt.precision import choose_precision

    fake_hardware(monkeypatch, **hardware)
    precision, why = choose_precision("auto", torch.device(device))
    assert precision == expected and why.startswith("auto:")


def test_auto_precision_reads_cpuinfo_where_torch_cannot_tell(monkeypatch, tmp_path):
    from mdt import precision

    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_vnni\n")
    assert precision.choose_precision("auto", torch.device("cpu"))[0] == "fp32"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16\n")
    monkeypatch.setattr(precision, "bf16_convolution_speedup", lambda: 0.55)
    assert precision.choose_precision("auto", torch.device("cpu"))[0] == "fp32"
    monkeypatch.setattr(precision, "bf16_convolution_speedup", lambda: 2.0)
    assert precision.choose_precision("auto", torch.device("cpu"))[0] == "bf16"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert precision.choose_precision("auto", torch.device("cpu")) == ("bf16", "auto: cpu has AMX")
    cpuinfo.unlink()  # not Linux
    assert precision.choose_precision("auto", torch.device("cpu"))[0] == "fp32"


def test_measuring_bf16_times_a_real_convolution_without_touching_the_run(monkeypatch):
    """The measurement "auto" makes on a CPU with avx512_bf16 and no AMX: a ratio of two
    real timings, taken once per process, and invisible to the run that follows — the
    global random stream, the thread count and autocast are as they were."""
    from mdt import precision

    calls = []
    real_conv2d = torch.nn.functional.conv2d
    monkeypatch.setattr(
        torch.nn.functional, "conv2d", lambda *a, **k: calls.append(torch.is_autocast_enabled("cpu")) or real_conv2d(*a, **k)
    )
    precision.bf16_convolution_speedup.cache_clear()
    torch.manual_seed(3)
    expected_next = torch.rand(4)
    torch.manual_seed(3)
    threads = torch.get_num_threads()
    ratio = precision.bf16_convolution_speedup()
    assert 0.05 < ratio < 20 and ratio == precision.bf16_convolution_speedup()
    assert set(calls) == {False, True}  # timed in fp32 and under bf16 autocast
    n = len(calls)
    assert precision.bf16_convolution_speedup() == ratio and len(calls) == n  # measured once
    assert torch.equal(torch.rand(4), expected_next)
    assert torch.get_num_threads() == threads and not torch.is_autocast_enabled("cpu")
    precision.bf16_convolution_speedup.cache_clear()


def test_a_written_precision_is_kept_and_a_resumed_run_keeps_its_own(monkeypatch):
    from mdt.precision import choose_precision

    fake_hardware(monkeypatch, amx=True)
    assert choose_precision("fp32", torch.device("cpu"))[0] == "fp32"
    assert choose_precision("auto", torch.device("cpu"), resumed="fp32") == ("fp32", "what the resumed checkpoint used")
    fake_hardware(monkeypatch)
    assert choose_precision("bf16", torch.device("cpu"))[0] == "bf16"  # asked for: slow, but the user's choice


def run_lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(("precision:", "image cache:", "run folder:"))]


def test_a_run_says_first_what_auto_chose_and_records_it(cli, tmp_path, monkeypatch):
    """The run's first lines say what "auto" became; recipe.toml and the checkpoints record
    the choice, and resuming an fp32 run (as every run before "auto" was) stays fp32 on
    hardware where a new run would be bf16."""
    from mdt import checkpoint as ckpt

    fake_hardware(monkeypatch, avx512_bf16=True, bf16_speedup=0.55)  # bf16 dot products, slower than fp32
    args = small(
        "datasets.faces.size=8", "datasets.faces.test_size=2", "classifier.steps=1", "metrics.accuracy.max_images=2", "run.precision='auto'"
    )  # the recipes' default, which small() names
    first = cli("run", REPO / "recipes" / "quickstart.toml", "--out", "run", *args)
    assert first.exit_code == 0, first.output
    assert run_lines(first)[:2] == [
        "precision: fp32 (auto: cpu has avx512_bf16 without AMX; a bf16 convolution ran 0.55x as fast as fp32)",
        run_lines(first)[1],
    ]
    assert run_lines(first)[1].startswith("image cache: on (auto:")
    assert (tmp_path / "run" / "cache" / "faces.images").is_file()
    assert 'precision = "fp32"' in (tmp_path / "run" / "recipe.toml").read_text()
    newest = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1]
    assert ckpt.saved_run_setting(newest, "precision") == "fp32"
    assert ckpt.saved_run_setting(newest, "cache_images") is True

    fake_hardware(monkeypatch, amx=True)
    resumed = cli("run", REPO / "recipes" / "quickstart.toml", "--resume", "run", *args, "--set", "run.iterations=3")
    assert resumed.exit_code == 0, resumed.output
    assert run_lines(resumed)[0] == "precision: fp32 (what the resumed checkpoint used)"
    fresh = cli("run", REPO / "recipes" / "quickstart.toml", "--out", "new", *args)
    assert fresh.exit_code == 0, fresh.output
    assert run_lines(fresh)[0] == "precision: bf16 (auto: cpu has AMX)"
    assert 'precision = "bf16"' in (tmp_path / "new" / "recipe.toml").read_text()


class Drawn(CountingDataset):
    deterministic_items = True


def test_auto_cache_only_for_datasets_that_give_the_same_image_each_time(tmp_path):
    from mdt.cache import choose_cache
    from mdt.samples import square_images

    assert choose_cache("auto", [Drawn()], square_images(4), tmp_path) == (
        True,
        choose_cache("auto", [Drawn()], square_images(4), tmp_path)[1],
    )
    cache, why = choose_cache("auto", [Drawn(), CountingDataset()], square_images(4), tmp_path)  # may draw a random crop per call
    assert not cache and "CountingDataset does not declare deterministic_items" in why
    assert choose_cache(True, [CountingDataset()], square_images(4), tmp_path)[0] is True  # asked for
    assert choose_cache(False, [Drawn()], square_images(4), tmp_path)[0] is False


def test_auto_cache_leaves_the_disk_room(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from mdt.cache import GiB, cache_bytes, choose_cache
    from mdt.samples import square_images

    assert cache_bytes(Drawn(), square_images(4)) == 6 * (3 * 4 * 4 + 4 * 1 + 1)  # 6 images, 1 label each, one flag each
    usage = namedtuple("usage", "total used free")

    class Large(Drawn):
        def __len__(self):
            return 200_000  # CelebA at 128 px: 9.8 GB of uint8

    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * GiB, 82 * GiB, 18 * GiB))
    cache, why = choose_cache("auto", [Large()], square_images(128), tmp_path / "run" / "cache")
    assert not cache and "needs 9.2 GiB and 9.0 GiB can be spared" in why  # half of what is free
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * GiB, 80 * GiB, 20 * GiB))
    assert choose_cache("auto", [Large()], square_images(128), tmp_path / "run" / "cache")[0] is True
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * GiB, 98.5 * GiB, 1.5 * GiB))
    cache, why = choose_cache("auto", [Drawn()], square_images(4), tmp_path)
    assert not cache and "0.0 GiB can be spared" in why  # 2 GiB stay free, however small the cache


# -- every speed switch keeps the gradient penalty's gradients ---------------------------

GP_TOLERANCE = {"rtol": 1e-4, "atol": 1e-6}  # float reassociation only (docs/performance.md)


def penalty_gradients(registry, *switches: str) -> dict[str, torch.Tensor]:
    """D's gradients from the gradient penalty alone, for fixed real and fake images and
    mixing weights, with ``switches`` set: whatever they speed up must not change these."""
    from mdt_stargan.method import StepState

    from mdt.build import build
    from mdt.recipe import load_recipe

    overrides = [
        "run.image_size=32",
        "generator.conv_dim=8",
        "generator.residual_blocks=1",
        "discriminator.conv_dim=8",
        "discriminator.layers=3",
        "datasets.faces.size=8",
        "datasets.faces.test_size=2",
        "run.precision=fp32",
        *switches,
    ]
    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry)
    torch.manual_seed(0)
    components = build(recipe, registry)
    method = components.method
    torch.manual_seed(1)
    real, fake = torch.rand(2, 4, 3, 32, 32) * 2 - 1
    if recipe.run.channels_last:
        real, fake = (t.contiguous(memory_format=torch.channels_last) for t in (real, fake))
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    state = StepState("discriminator", method, Batch(real, labels, 0), labels.flip(0))
    state.__dict__.update(fake=fake, mix_weights=torch.linspace(0.1, 0.9, 4).view(4, 1, 1, 1))
    penalty, _ = method.losses["gradient_penalty"]("discriminator", state)
    penalty.backward()
    return {name: p.grad.clone() for name, p in method.discriminator.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("switch", ["run.precision=bf16", "run.channels_last=true", "run.compile_generator=true"])
def test_every_speed_switch_keeps_the_gradient_penalty_gradients(registry, switch):
    reference = penalty_gradients(registry)
    switched = penalty_gradients(registry, switch)
    assert reference.keys() == switched.keys()
    assert {"trunk.0.weight", "real_fake_head.weight"} <= reference.keys()  # the class head is not in the penalty
    for name, grad in reference.items():
        # it reaches every weight; D is piecewise linear, so not the biases
        assert (grad.abs().sum() > 0) == name.endswith("weight"), name
        torch.testing.assert_close(switched[name], grad, **GP_TOLERANCE, msg=name)


def test_a_method_that_computes_in_fp32_only_gets_fp32_and_the_run_says_why(tmp_path, monkeypatch):
    """A method declares what it can compute in (Method.precisions): asked for bf16 in so
    many words, the check refuses the recipe; where "auto" would choose bf16, the run
    computes in fp32 and its first line says why."""
    from conftest import plugin_module
    from mdt_stargan.method import StarGAN

    from mdt.engine import train
    from mdt.errors import MdtError
    from mdt.plugins import load_plugins
    from mdt.recipe import load_recipe

    class Fp32Only(StarGAN):
        """StarGAN as a third party wrote it before bf16."""

        precisions = ("fp32",)

    registry = load_plugins(extra={"fp32": plugin_module("fp32", ("method", "fp32_only", Fp32Only))}).registry
    sets = [a for a in small("datasets.faces.size=8", "datasets.faces.test_size=2", "method.type='fp32_only'") if a != "--set"]
    with pytest.raises(MdtError) as caught:
        load_recipe(REPO / "recipes" / "quickstart.toml", [*sets, "run.precision='bf16'"], registry)
    assert str(caught.value) == "--set run.precision: key 'precision' = 'bf16': method 'fp32_only' computes in fp32 only"
    fake_hardware(monkeypatch, amx=True)  # where auto chooses bf16
    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", [*sets, "run.precision='auto'", "run.iterations=1"], registry)
    recipe.data.pop("metrics"), recipe.data.pop("classifier")
    out = io.StringIO()
    train(recipe, registry, tmp_path / "run", console=Console(file=out, width=200))
    assert "precision: fp32 (method 'fp32_only' computes in fp32 only; auto: cpu has AMX)" in out.getvalue()
    assert 'precision = "fp32"' in (tmp_path / "run" / "recipe.toml").read_text()
