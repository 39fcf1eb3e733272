"""A third-party method package (plugins/template_method: Fader Networks), installed for real:
its own kinds of networks, roles, step state, losses and translator options work through
mdt's recipe check, training, mdt translate and its --help with no change to mdt."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, install_package, random_image
from PIL import Image

PACKAGE = REPO / "plugins" / "template_method"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return install_package(PACKAGE, tmp_path_factory.mktemp("site"))


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def mdt(env, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "mdt.cli", *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_a_third_party_method_trains_and_translates(installed, tmp_path):
    listed = mdt(installed, "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "encoder" in listed.stdout and "fader" in listed.stdout  # its own kinds and components
    run = mdt(installed, "run", PACKAGE / "recipe.toml", "--out", "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    from mdt import checkpoint

    saved = checkpoint.read(tmp_path / "run" / "checkpoints" / "step_00000020.safetensors")
    assert saved.network_names() == ["decoder", "encoder", "latent_discriminator"]
    log = (tmp_path / "run" / "log.jsonl").read_text()
    assert '"AE/reconstruction"' in log and '"LD/latent"' in log and '"weight/latent"' in log
    photo = random_image(tmp_path / "face.png", 40, 40, seed=1)
    help_text = mdt(installed, "translate", "--checkpoint", "run", "--help", cwd=tmp_path)
    assert "--to" in help_text.stdout and "--from" in help_text.stdout and "the input's labels" in help_text.stdout
    done = mdt(
        installed,
        "translate",
        "--checkpoint",
        "run",
        "--input",
        photo,
        "--output",
        "blond.png",
        "--to",
        "Blond_Hair",
        "--from",
        "Black_Hair,Glasses=0,Smiling",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "blond.png").is_file()
    # The file is D(E(x), y') with y' the --from labels and Blond_Hair set (which clears Black_Hair), computed
    # by hand from the installed method's networks; the Python API gives the same; and y' with Smiling=0
    # gives another picture, so the comparison sees the --from labels.
    code = """if True:
        import sys
        import torch
        from PIL import Image
        from mdt.images import from_pil, to_pil
        from mdt.inference import load_translator
        translator = load_translator("run")
        method = translator.components.method
        names = method.label_encoder.schemas[0].names
        picture = Image.open(sys.argv[1]).convert("RGB")
        translator(picture, to={"Blond_Hair": 1}, known={"Black_Hair": 1, "Glasses": 0, "Smiling": 1}).save("api.png")
        x = from_pil(picture, translator.image_size)[None]
        for smiling, file in ((1.0, "hand.png"), (0.0, "unsmiling.png")):
            wanted = {"Blond_Hair": 1.0, "Smiling": smiling}
            labels = torch.tensor([[wanted.get(n, 0.0) for n in names]])
            with torch.no_grad():
                method.encoder.eval(), method.decoder.eval()
                out = method.decoder(method.encoder(x), method.label_encoder.encode(labels, 0))
            to_pil(out[0]).save(file)
        print(" ".join(names))
    """
    api = subprocess.run(
        [sys.executable, "-c", code, str(photo)], env=installed, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert api.returncode == 0, api.stderr
    assert api.stdout.split() == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"]
    blond = pixels(tmp_path / "blond.png")
    assert blond.shape == (32, 32, 3)
    assert np.abs(blond - pixels(tmp_path / "api.png")).max() <= 1
    assert np.abs(blond - pixels(tmp_path / "hand.png")).max() <= 1
    assert np.abs(blond - pixels(tmp_path / "unsmiling.png")).max() > 1
    missing = mdt(installed, "translate", "--checkpoint", "run", "--input", photo, "--output", "x.png", "--to", "Blond_Hair", cwd=tmp_path)
    assert missing.returncode == 2 and "give --from" in missing.stderr


def test_the_recipe_check_knows_the_third_party_contract(installed, tmp_path):
    wrong = mdt(installed, "recipe", "check", PACKAGE / "recipe.toml", "--set", "losses.latent.type=wgan", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "loss 'wgan' reads 'real_scores', which method 'fader' does not offer in its discriminator phase" in wrong.stderr
    wrong = mdt(installed, "recipe", "check", PACKAGE / "recipe.toml", "--set", "networks.latent_discriminator.type=stargan", cwd=tmp_path)
    assert wrong.returncode == 2 and "takes (images), but method 'fader' gives its latent_discriminator (codes)" in wrong.stderr


def test_a_role_trained_by_an_optimizer_the_method_lacks_is_refused(tmp_path, monkeypatch):
    """Role.optimizer names the entry of optimizers() that trains the network; a misspelt
    one would leave the network untrained without a word."""
    import dataclasses

    from mdt.method import optimizer_problem

    class Method:
        roles = {"encoder": dataclasses.make_dataclass("R", [("optimizer", str, "autoencodr")])()}

        def optimizers(self):
            return {"autoencoder": None, "latent_discriminator": None}

    assert optimizer_problem(Method()) == (
        "method 'Method' says its encoder is trained by optimizer 'autoencodr', but its optimizers() are: autoencoder, latent_discriminator"
    )
    Method.roles["encoder"].optimizer = "autoencoder"
    assert optimizer_problem(Method()) is None
