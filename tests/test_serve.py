"""mdt serve: the page, driven in a real headless Chromium (Debian's package; nothing
downloaded). Without Gradio, Playwright or Chromium the test is skipped, unless
MDT_REQUIRE_BROWSER is set (CI sets it), where a missing piece fails it."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import CHROMIUM_FLAGS, REPO, random_image, small
from PIL import Image

from mdt import checkpoint as ckpt

QUICKSTART = REPO / "recipes" / "quickstart.toml"


def _need(available: bool, what: str) -> None:
    if not available:
        if os.environ.get("MDT_REQUIRE_BROWSER"):
            pytest.fail(f"MDT_REQUIRE_BROWSER is set but {what} is missing")
        pytest.skip(f"{what} is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(model: str, folder: Path, env: dict, attempts: int = 5):
    """`mdt serve` on a free port. The port is free when chosen, but another process may
    take it before the server binds it: then the server exits and another port is tried.
    The page counts as up only while this server is alive (not someone else's on the port)."""
    for attempt in range(attempts):
        port = _free_port()
        log = open(folder / f"serve-{attempt}.log", "w")  # noqa: SIM115 (the server writes to it for the whole test)
        process = subprocess.Popen(
            [sys.executable, "-m", "mdt.cli", "serve", "--checkpoint", model, "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while process.poll() is None and time.time() < deadline:
            try:
                urllib.request.urlopen(url, timeout=5)
                if process.poll() is None:
                    return process, url, log
            except OSError:
                time.sleep(1)
        process.kill()
        process.wait(timeout=30)
        log.close()
        output = (folder / f"serve-{attempt}.log").read_text()
        if "cannot find empty port" not in output.lower() and "address already in use" not in output.lower():  # a real failure
            pytest.fail("mdt serve did not start:\n" + output)
    pytest.fail(f"mdt serve found no free port in {attempts} attempts:\n" + output)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A 2-iteration quickstart model behind `mdt serve`, in its own process."""
    import importlib.util

    _need(importlib.util.find_spec("gradio") is not None, "gradio (pip install -e '.[demo]')")
    _need(importlib.util.find_spec("playwright") is not None, "playwright")
    _need(shutil.which("chromium") is not None, "chromium (apt install chromium)")
    folder = tmp_path_factory.mktemp("serve")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    model = os.environ.get("MDT_SERVE_CHECKPOINT")  # the README's screenshot: a trained quickstart run
    if not model:
        args = small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2")
        subprocess.run(
            [sys.executable, "-m", "mdt.cli", "run", str(QUICKSTART), "--out", "run", *args],
            cwd=folder,
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        model = str(folder / "run")
    process, url, log = _start_server(model, folder, env)
    yield url, Path(model), Path(log.name)
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _fetch(page, src: str) -> Image.Image:
    body = page.request.get(src).body()
    return Image.open(io.BytesIO(body)).convert("RGB")


def test_upload_choose_translate_in_a_real_browser(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, model, _ = server
    size = tomllib.loads(ckpt.read(ckpt.resolve(model), training=False).recipe_text)["run"]["image_size"]
    face = random_image(tmp_path / "face.png", 48, 48, seed=3)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        page.goto(url, wait_until="networkidle")
        # Controls come from the checkpoint's label names.
        for name in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"):
            expect(page.get_by_text(name).first).to_be_visible()
        # Nothing chosen: the page says so and the server carries on.
        page.locator("#input-image input[type=file]").set_input_files(str(face))
        page.click("#translate")
        expect(page.get_by_text("choose the target labels").first).to_be_visible(timeout=30_000)
        page.locator("[data-testid=toast-close]").first.click()
        page.get_by_label("Blond_Hair").first.check()
        page.click("#translate")
        page.wait_for_selector("#result img", timeout=60_000)
        result = _fetch(page, page.locator("#result img").get_attribute("src"))
        link = page.locator("#download a").first.get_attribute("href")
        assert link.endswith("result.png") and _fetch(page, link).tobytes() == result.tobytes()  # the download is the result
        # A sample from the page instead of an upload: translated too, to another picture.
        uploaded = page.locator("#input-image img").first.get_attribute("src")
        page.locator(".gallery-item").first.click()
        expect(page.locator("#input-image img").first).not_to_have_attribute(
            "src", uploaded, timeout=60_000
        )  # not a fixed wait: CI is slow
        sample = _fetch(page, page.locator("#input-image img").first.get_attribute("src"))
        before = page.locator("#result img").get_attribute("src")  # read before the click: a fast reply would race it
        page.click("#translate")
        expect(page.locator("#result img")).not_to_have_attribute("src", before, timeout=60_000)
        from_sample = _fetch(page, page.locator("#result img").get_attribute("src"))
        page.click("#grid")
        page.wait_for_selector("#full-grid img", timeout=60_000)
        if os.environ.get("MDT_SCREENSHOT"):
            page.screenshot(path=os.environ["MDT_SCREENSHOT"], full_page=True)
        browser.close()
    assert result.size == (size, size) and from_sample.size == (size, size)  # the model's image size
    # The page's result is mdt's own translation of the upload to Blond_Hair (a trained
    # model may leave a noise picture nearly as it was, so "it changed" would not do).
    from mdt.inference import load_translator

    own = load_translator(model, "cpu")
    option = next(o for o in own.options if o.type == "labels")
    with Image.open(face) as original:
        expected = own(original.convert("RGB"), **{option.name: option.parse("Blond_Hair")})
    assert np.abs(np.asarray(result, dtype=np.int16) - np.asarray(expected, dtype=np.int16)).max() <= 1
    assert np.abs(np.asarray(from_sample, dtype=np.float32) - np.asarray(result, dtype=np.float32)).mean() > 5  # another picture
    shown = np.asarray(sample.resize((size, size)), dtype=np.float32)
    assert np.abs(np.asarray(from_sample, dtype=np.float32) - shown).mean() > 5  # the sample translated, not given back


def test_bad_upload_is_an_error_in_the_page(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, _, log = server
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.goto(url, wait_until="networkidle")
        page.locator("#input-image input[type=file]").set_input_files(str(text))
        page.get_by_label("Blond_Hair").first.check()
        page.click("#translate")
        # the message names the file and what is wrong with it, in the page's own words
        expect(page.get_by_text("'notes.png' is not a picture that can be read").first).to_be_visible(timeout=30_000)
        assert page.locator("#result img").count() == 0
        # with every label on "keep": what to do on this page, without command-line syntax
        page.reload(wait_until="networkidle")
        page.locator("#input-image input[type=file]").set_input_files(str(random_image(tmp_path / "face.png", 40, 40, seed=1)))
        page.click("#translate")
        expect(page.get_by_text("choose the target labels; the others keep the input's").first).to_be_visible(timeout=30_000)
        assert page.get_by_text("e.g.").count() == 0
        browser.close()
    assert urllib.request.urlopen(url, timeout=10).status == 200  # still serving
    served = log.read_text()
    assert "Traceback" not in served, served[-3000:]  # a user's mistake is not the server's error
    assert "share=True" not in served and "mdt serve: http://127.0.0.1:" in served


def test_a_port_in_use_is_one_line(server):
    url, model, _ = server
    port = int(url.rsplit(":", 1)[1])
    done = subprocess.run(
        [sys.executable, "-m", "mdt.cli", "serve", "--checkpoint", str(model), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip().startswith(f"error: --port {port}: cannot listen on 127.0.0.1:{port}"), done.stderr
    assert "give another --port" in done.stderr and "Traceback" not in done.stderr and "http://" not in done.stdout


def test_the_page_names_its_api_endpoints(server):
    """Scripts call the page by name (gradio_client's predict(api_name="/translate"))."""
    import json

    url, _, _ = server
    info = json.loads(urllib.request.urlopen(f"{url}/gradio_api/info", timeout=10).read())
    assert {"/translate", "/grid"} <= set(info["named_endpoints"])


def test_serve_without_a_model_is_a_one_line_error(cli, tmp_path):
    from test_recipe_errors import one_line_error

    assert "does not exist" in one_line_error(cli("serve", "--checkpoint", tmp_path / "nothing"))


def test_page_controls_come_from_the_label_names_and_uploads_are_checked():
    from mdt.errors import MdtError
    from mdt.labels import LabelSchema
    from mdt.serve import _picture, label_controls, request_from

    celeba = LabelSchema("celeba", ("Black_Hair", "Blond_Hair", "Male"), exclusive=(("Black_Hair", "Blond_Hair"),))
    rafd = LabelSchema("rafd", ("happy", "sad"), categorical=True)
    controls = label_controls([celeba, rafd])
    assert controls == [
        ("Black_Hair / Blond_Hair", ["keep", "celeba.Black_Hair", "celeba.Blond_Hair"]),
        ("celeba.Male", ["keep", "yes", "no"]),
        ("rafd", ["keep", "rafd.happy", "rafd.sad"]),
    ]
    assert request_from(controls, ["celeba.Blond_Hair", "no", "keep"]) == {"celeba.Blond_Hair": 1.0, "celeba.Male": 0.0}
    # A continuous label: keep, or set to its slider's value.
    aus = LabelSchema("faces", ("smile", "brow_raise"), continuous=True)
    continuous = label_controls([aus])
    assert continuous == [("smile", ["keep", "set"]), ("brow_raise", ["keep", "set"])]
    assert request_from(continuous, ["set", "keep"], [0.35, 0.9]) == {"smile": 0.35}
    with pytest.raises(MdtError, match="5000x5000 pixels; the limit"):
        _picture(Image.new("RGB", (5000, 5000)), "the input")
    with pytest.raises(MdtError, match="upload the input"):
        _picture(None, "the input")


def test_stargan_v2_page_translates_by_seed_and_by_reference(cli, tmp_path):
    """The v2 page's handlers (domain, seed slider, optional reference), called as the page calls them."""
    pytest.importorskip("gradio")
    from mdt.inference import load_translator
    from mdt.serve import build_app

    args = small(
        "datasets.faces.size=12",
        "datasets.faces.test_size=2",
        "classifier.steps=1",
        "metrics.accuracy.max_images=2",
        "metrics.diversity.samples=2",
        "metrics.diversity.max_images=2",
        v2=True,
    )
    assert cli("run", REPO / "recipes" / "stargan_v2_quickstart.toml", "--out", "run", *args).exit_code == 0
    translator = load_translator(tmp_path / "run", "cpu")
    app = build_app(translator)
    handlers = {f.fn.__name__: f.fn for f in app.fns.values() if f.fn is not None}
    translate, full_grid = handlers["translate"], handlers["full_grid"]
    face = Image.open(random_image(tmp_path / "face.png", 40, 40, seed=1)).convert("RGB")
    reference = Image.open(random_image(tmp_path / "ref.png", 40, 40, seed=2)).convert("RGB")

    def same(page_picture: Image.Image, api_picture: Image.Image) -> bool:
        """Equal within one grey level, and of one size."""
        a, b = np.asarray(page_picture, dtype=np.int16), np.asarray(api_picture, dtype=np.int16)
        return a.shape == b.shape and np.abs(a - b).max() <= 1

    # The page's widgets in order: input, domain, seed, reference, outputs in the grid.
    first, path = translate(face, "Blond_Hair", 1, None, 8)
    assert first.size == (32, 32) and Path(path).is_file()
    with Image.open(path) as downloaded:  # the download is the result shown (read now: the next translation replaces it)
        assert np.array_equal(np.asarray(downloaded.convert("RGB")), np.asarray(first))
    second, _ = translate(face, "Blond_Hair", 2, None, 8)
    by_reference, _ = translate(face, "Blond_Hair", 1, reference, 8)
    # each is the Python API's translation of the same request (the reference takes the seed's place)
    assert same(first, translator(face, domain="Blond_Hair", seed=1))
    assert same(second, translator(face, domain="Blond_Hair", seed=2))
    assert same(by_reference, translator(face, domain="Blond_Hair", ref=reference))
    assert not same(first, translator(face, domain="Black_Hair", seed=1))  # the domain matters in the comparison
    assert first.tobytes() != second.tobytes() and first.tobytes() != by_reference.tobytes()  # seeds and references matter
    styles, one_reference = full_grid(face, "Blond_Hair", 1, None, 8), full_grid(face, "Blond_Hair", 1, reference, 8)
    assert styles.width == 9 * 34 + 2 and one_reference.width == 2 * 34 + 2  # the input and 8 styles; the input and 1 reference
    assert same(styles, translator.grid(face, domain="Blond_Hair", seed=1, num=8))  # seeds 1 to 8
    assert same(one_reference, translator.grid(face, domain="Blond_Hair", ref=[reference]))
    three = full_grid(face, "Blond_Hair", 1, None, 3)
    assert three.width == 4 * 34 + 2 and same(three, translator.grid(face, domain="Blond_Hair", seed=1, num=3))
    import gradio as gr

    with pytest.raises(gr.Error, match="'Purple_Hair' is not one of Black_Hair, Blond_Hair, Brown_Hair"):
        translate(face, "Purple_Hair", 1, None, 8)
