"""docs/api.md's example, run as written: the public names `import mdt` offers train a
recipe, measure the model and translate with it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import REPO, grid_width
from PIL import Image


def test_the_documented_example_runs_as_written(tmp_path, monkeypatch, capsys):
    import mdt

    code = re.search(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)
    run, metrics, translator = namespace["run"], namespace["metrics"], namespace["translator"]
    assert run.step == 20 and run.run_dir.resolve() == tmp_path / "runs" / "api-example"
    assert run.metrics == json.loads((run.run_dir / "metrics.json").read_text())  # what the run wrote
    assert metrics == json.loads((tmp_path / namespace["report"] / "metrics.json").read_text())["metrics"]
    # What it wrote is what the translator gives: the blond picture and the grid of every target.
    blond = np.asarray(Image.open(tmp_path / "blond.png"))
    again = np.asarray(translator(namespace["picture"], to={"Blond_Hair": 1}))
    assert blond.shape == (32, 32, 3) and np.array_equal(blond, again)
    titles = ["input", "Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"]
    assert Image.open(tmp_path / "grid.png").size == (grid_width(titles), 60)
    out = capsys.readouterr().out
    assert "trained to step 20" in out and "what this model takes: to, known" in out
    assert sorted(mdt.__all__) == sorted(
        [
            "evaluate",
            "load_recipe",
            "load_translator",
            "train",
            "Augmentation",
            "Classifier",
            "Component",
            "Dataset",
            "LabelEncoder",
            "Logger",
            "Loss",
            "Method",
            "Metric",
            "Network",
            "Role",
            "Sampler",
            "Translator",
            "__version__",
            "hookimpl",
        ]
    )


def test_a_bad_request_from_python_is_one_line(tmp_path):
    import mdt
    from mdt.errors import MdtError

    with pytest.raises(MdtError, match=r"no built-in recipe is named 'quickstrat' \(did you mean 'quickstart'\?\)"):
        mdt.load_recipe("quickstrat")
