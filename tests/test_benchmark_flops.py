"""benchmarks/train_speed.py's floor divides each dtype's FLOPs by that dtype's rate; the
split must put each product under the precision it computes in (checked against FLOPs
counted by hand)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "train_speed.py"


@pytest.fixture
def train_speed(monkeypatch):
    monkeypatch.setenv("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")  # the script sets it on import; undone after the test
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("train_speed_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("train_speed_under_test", None)


def test_flops_are_split_by_the_dtype_each_product_computes_in(train_speed):
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(6, 4, 3, 3, requires_grad=True)
    a, b = torch.randn(5, 7), torch.randn(7, 3)
    with train_speed.FlopCount() as counter:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = F.conv2d(x, w, padding=1)  # bf16 under autocast
        y.float().sum().backward()  # its input and weight gradients: bf16 too
        a @ b  # fp32
    conv = 2 * (2 * 8 * 8) * 6 * (4 * 9)  # output positions x outputs x (inputs x kernel), a multiply and an add each
    assert counter.by_dtype == {torch.bfloat16: 3 * conv, torch.float32: 2 * 5 * 7 * 3}
    assert counter.total == 3 * conv + 2 * 5 * 7 * 3


def test_the_floor_is_each_dtypes_flops_at_its_rate(train_speed):
    seconds = train_speed.floor_seconds({torch.bfloat16: 4e9, torch.float32: 1e9}, {torch.bfloat16: 400e9, torch.float32: 200e9})
    assert seconds == pytest.approx(4 / 400 + 1 / 200)
