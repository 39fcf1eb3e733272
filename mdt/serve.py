"""``mdt serve``: a local web page to try a trained model (Gradio, the ``mdt[demo]`` extra).

The page is built from the checkpoint: StarGAN gets one radio group per set of labels
that exclude each other (hair colours, expressions) and a keep/yes/no choice per other
attribute; StarGAN v2 gets its domains, a seed slider and an optional reference image.
Every problem with an input is shown in the page (``gr.Error``); the server goes on.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

from mdt.errors import MdtError

KEEP = "keep"
# Model outputs are small (128 px): show them large and sharp; downloads keep their size.
CSS = "#input-image img, #result img, #full-grid img {image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain}"
MAX_PIXELS = 4096 * 4096  # an upload larger than this is refused, not resized


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local demo
    try:
        import gradio as gr
    except ImportError:
        raise MdtError("mdt serve needs Gradio: pip install -e '.[demo]' (or pip install 'mdt[demo]')") from None
    return gr


def label_controls(translator) -> list[tuple[str, list[str]]]:
    """StarGAN: (title, choices) per control. A group of exclusive labels (or a
    categorical dataset) is one choice among its names; any other label is keep/yes/no."""
    controls = []
    for schema in translator.encoder.schemas:
        prefix = f"{schema.dataset}." if len(translator.encoder.schemas) > 1 else ""
        if schema.categorical:
            controls.append((f"{schema.dataset}", [KEEP, *[prefix + n for n in schema.names]]))
            continue
        grouped = set()
        for group in schema.exclusive:
            controls.append((" / ".join(group), [KEEP, *[prefix + n for n in group]]))
            grouped |= set(group)
        for name in schema.names:
            if name not in grouped:
                controls.append((prefix + name, [KEEP, "yes", "no"]))
    return controls


def request_from(controls: list[tuple[str, list[str]]], choices: list[str]) -> dict[str, float]:
    """The ``to`` of a StarGAN translation from the chosen radio values."""
    to: dict[str, float] = {}
    for (title, options), choice in zip(controls, choices):
        if choice in (None, KEEP):
            continue
        if options[1:] == ["yes", "no"]:
            to[title] = 1.0 if choice == "yes" else 0.0
        else:
            to[choice] = 1.0
    return to


def _picture(value: Any, what: str) -> Image.Image:
    if value is None:
        raise MdtError(f"upload {what}, or pick a sample")
    if not isinstance(value, Image.Image):
        raise MdtError(f"{what} is not an image")
    if value.width * value.height > MAX_PIXELS:
        raise MdtError(f"{what} is {value.width}x{value.height} pixels; the limit is {MAX_PIXELS:,} pixels")
    return value.convert("RGB")


def _in_page(gr, handler):
    """``handler`` with every failure shown in the page (gr.Error) instead of ending the request with a traceback."""

    @functools.wraps(handler)
    def shown(*values):
        try:
            return handler(*values)
        except MdtError as exc:
            raise gr.Error(str(exc)) from None
        except Exception as exc:  # unexpected: still a message in the page, and the server stays up
            raise gr.Error(f"translation failed: {exc}") from None

    return shown


def sample_files(translator, count: int = 6) -> list[Path]:
    """Held-out images of the model's recipe, as PNG files for the page's examples;
    none when its data is not on this machine."""
    from mdt.data import first_items
    from mdt.images import to_pil

    components = translator.components
    folder = Path(tempfile.mkdtemp(prefix="mdt-serve-"))
    files: list[Path] = []
    try:
        from mdt.build import instantiate
        from mdt.plugins import get_registry

        recipe, size = translator.recipe, components.settings.image_size
        tests = [instantiate(recipe, t, get_registry(), {"split": "test", "image_size": size}) for t in recipe.section("datasets")]
        for test in tests:
            raw = first_items(test, count, skip_bad_files=True)
            for k, image in enumerate(raw.images):
                path = folder / f"sample_{len(files)}.png"
                to_pil(components.augmentation(image[None].to(components.device), train=False)[0]).save(path)
                files.append(path)
                if k + 1 >= count:
                    break
    except MdtError:
        return []
    return files


def build_app(translator, max_file_mb: int = 20):
    """The Gradio Blocks of the page for a loaded :class:`mdt.inference.ImageTranslator`."""
    gr = _gradio()
    inner = translator.translator
    v2 = "latent" in inner.modes
    out_dir = Path(tempfile.mkdtemp(prefix="mdt-serve-out-"))

    def save(picture: Image.Image, name: str) -> str:
        path = out_dir / name
        picture.save(path)
        return str(path)

    with gr.Blocks(title="mdt: translate") as app:
        gr.Markdown(f"## mdt · {Path(translator.checkpoint_path).name} (step {translator.step})")
        with gr.Row():
            with gr.Column():
                source = gr.Image(type="pil", label="input image", sources=["upload", "clipboard"], elem_id="input-image", height=280)
                samples = sample_files(translator)
                if samples:
                    gr.Examples([[str(p)] for p in samples], inputs=[source], label="samples")
                if v2:
                    domain = gr.Radio(list(inner.domain_names), value=inner.domain_names[0], label="target domain", elem_id="domain")
                    seed = gr.Slider(0, 999, value=0, step=1, label="style seed", elem_id="seed")
                    reference = gr.Image(type="pil", label="reference image (optional: its style instead of the seed's)", sources=["upload"])
                    inputs = [source, domain, seed, reference]
                else:
                    controls = label_controls(inner)
                    radios = [gr.Radio(options, value=KEEP, label=title, elem_id=f"label-{i}") for i, (title, options) in enumerate(controls)]
                    inputs = [source, *radios]
                translate_button = gr.Button("Translate", variant="primary", elem_id="translate")
                grid_button = gr.Button("Show the full grid", elem_id="grid")
            with gr.Column():
                result = gr.Image(type="pil", label="result", interactive=False, elem_id="result", format="png", height=280, buttons=["download"])
                download = gr.File(label="download the result", interactive=False, elem_id="download")
                grid = gr.Image(type="pil", label="every target", interactive=False, elem_id="full-grid", format="png", height=320, buttons=["download"])

        def request(values: list[Any]) -> tuple[Image.Image, dict[str, Any]]:
            picture = _picture(values[0], "the input")
            if v2:
                domain_name, seed_value, ref = values[1:]
                wanted: dict[str, Any] = {"domain": domain_name, "seed": int(seed_value)}
                if ref is not None:
                    wanted = {"domain": domain_name, "ref": _picture(ref, "the reference")}
                return picture, wanted
            to = request_from(controls, list(values[1:]))
            if not to:
                raise MdtError("choose at least one target label")
            return picture, {"to": to}

        def translate(*values):
            picture, wanted = request(list(values))
            output = translator(picture, **wanted)
            return output, save(output, "result.png")

        def full_grid(*values):
            picture = _picture(values[0], "the input")
            if not v2:
                return translator.grid(picture)
            domain_name, seed_value, ref = values[1:]
            if ref is not None:
                return translator.grid(picture, refs=[_picture(ref, "the reference")], ref_domains=[domain_name])
            return translator.grid(picture, domain=domain_name, seed=int(seed_value), num=8)

        translate_button.click(_in_page(gr, translate), inputs=inputs, outputs=[result, download])
        grid_button.click(_in_page(gr, full_grid), inputs=inputs, outputs=[grid])
    app.max_file_size = max_file_mb * 1024 * 1024
    return app


def serve(checkpoint: Path, host: str = "127.0.0.1", port: int = 7860, device: str = "auto", max_file_mb: int = 20) -> None:
    from mdt.inference import load_translator

    translator = load_translator(checkpoint, device)
    app = build_app(translator, max_file_mb)
    app.queue().launch(server_name=host, server_port=port, share=False, max_file_size=f"{max_file_mb}mb", quiet=False,
                       footer_links=[], css=CSS)
