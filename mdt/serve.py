"""``mdt serve``: a local web page to try a trained model (Gradio, the ``demo`` extra).

The page's controls come from the translator's own options (:mod:`mdt.options`): labels
become one radio group per set of labels that exclude each other (hair colours,
expressions) and a keep/yes/no choice per other attribute (a keep/set choice and a
slider for a continuous one); a choice becomes radios; a number with a range a slider;
an image an upload. A model whose outputs vary gets a "how many" slider for its grid.
Every problem with an input is shown in the page (``gr.Error``); the server goes on.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from PIL import Image

from mdt.errors import MdtError
from mdt.extras import install_hint

KEEP = "keep"
SET = "set"
# Model outputs are small (128 px): show them large and sharp; downloads keep their size.
CSS = "#input-image img, #result img, #full-grid img {image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain}"
MAX_PIXELS = 4096 * 4096  # an upload larger than this is refused, not resized


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home from a local demo
    try:
        import gradio as gr
    except ImportError:
        raise MdtError(f"mdt serve needs Gradio: {install_hint('demo')}") from None
    return gr


def image_upload(gr, **settings):
    """Gradio's image upload, with a file it cannot open shown as a message in the page
    that names the file (Gradio itself shows a bare "Error" and prints a traceback). The
    upload's own reader is wrapped: a subclass of a Gradio component would make Gradio
    write a type-stub file beside this module."""
    upload = gr.Image(**settings)
    read = upload.preprocess

    def preprocess(payload):
        try:
            return read(payload)
        except gr.Error:
            raise
        except Exception:
            name = f"'{payload.orig_name}'" if payload is not None and payload.orig_name else "the upload"
            message = f"{name} is not a picture that can be read (PNG, JPEG, WebP, BMP, ...); upload another"
            raise gr.Error(message, print_exception=False) from None  # the user's mistake, not the server's

    upload.preprocess = preprocess  # type: ignore[method-assign]  # this upload's reader only
    return upload


def audio_input(gr, **settings):
    """Gradio's audio input (an upload or a recording from the microphone), given to the
    handler as a file path: the modality reads it as it reads ``mdt translate``'s files."""
    return gr.Audio(type="filepath", sources=["upload", "microphone"], **settings)


def label_controls(schemas) -> list[tuple[str, list[str]]]:
    """(title, choices) per control of a labels option. A group of exclusive labels (or a
    categorical dataset) is one choice among its names; a continuous label is keep/set
    (with a slider); any other label is keep/yes/no."""
    controls = []
    for schema in schemas:
        prefix = f"{schema.dataset}." if len(schemas) > 1 else ""
        if schema.categorical:
            controls.append((f"{schema.dataset}", [KEEP, *[prefix + n for n in schema.names]]))
            continue
        grouped = {name for group in schema.exclusive for name in group}
        controls += [(" / ".join(group), [KEEP, *[prefix + n for n in group]]) for group in schema.exclusive]
        controls += [
            (prefix + name, [KEEP, SET] if schema.continuous else [KEEP, "yes", "no"]) for name in schema.names if name not in grouped
        ]
    return controls


def request_from(controls: list[tuple[str, list[str]]], choices: list[str], amounts: list[float] | None = None) -> dict[str, float]:
    """A labels option's value from the chosen radio values (and, for continuous labels,
    their sliders' values, one per control)."""
    to: dict[str, float] = {}
    for index, ((title, options), choice) in enumerate(zip(controls, choices, strict=True)):
        if choice in (None, KEEP):
            continue
        if options[1:] == ["yes", "no"]:
            to[title] = 1.0 if choice == "yes" else 0.0
        elif options[1:] == [SET]:
            to[title] = float(amounts[index]) if amounts else 1.0
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


def _recording(modality, value: Any) -> Any:
    if value is None:
        raise MdtError("upload a recording, or record one")
    return modality.read(Path(value))


def _in_page(gr, handler):
    """``handler`` with every failure shown in the page (gr.Error) instead of ending the request with a traceback."""

    @functools.wraps(handler)
    def shown(*values):
        try:
            return handler(*values)
        except MdtError as exc:  # the user's mistake: in the page only, no traceback on the console
            raise gr.Error(str(exc), print_exception=False) from None
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
            raw = first_items(test, count, components.sample, skip_bad_files=True)
            for k, image in enumerate(raw.images):
                path = folder / f"sample_{len(files)}.png"
                to_pil(components.augmentation(image[None].to(components.device), train=False)[0]).save(path)
                files.append(path)
                if k + 1 >= count:
                    break
    except MdtError:
        return []
    return files


class Control:
    """One option's widgets on the page, and how their values make the option's value."""

    def __init__(self, gr, option, translator) -> None:
        self.option = option
        label = f"{option.name}: {option.help}"
        if option.type == "labels":
            self.labels = label_controls(translator.schemas)
            radios = [
                gr.Radio(choices, value=KEEP, label=title, elem_id=f"{option.name}-{i}") for i, (title, choices) in enumerate(self.labels)
            ]
            sliders = [
                gr.Slider(0, 1, value=1, step=0.05, label=f"{title} value", elem_id=f"{option.name}-{i}-value")
                for i, (title, choices) in enumerate(self.labels)
                if choices[1:] == [SET]
            ]
            self.widgets = [*radios, *sliders]
        elif option.type == "choice":
            self.widgets = [gr.Radio(list(option.choices), value=option.default or option.choices[0], label=label, elem_id=option.name)]
        elif option.type in ("int", "float"):
            step = 1 if option.type == "int" else 0.01
            if option.minimum is not None and option.maximum is not None:
                widget = gr.Slider(option.minimum, option.maximum, value=option.default, step=step, label=label, elem_id=option.name)
            else:
                widget = gr.Number(value=option.default, precision=0 if option.type == "int" else None, label=label, elem_id=option.name)
            self.widgets = [widget]
        else:  # an image: optional, so the page can leave it out
            self.widgets = [image_upload(gr, type="pil", label=f"{label} (optional)", sources=["upload"], elem_id=option.name)]

    def value(self, values: list[Any]) -> Any:
        """The option's value (None: not given) from this control's widgets' values."""
        if self.option.type == "labels":
            radios = values[: len(self.labels)]
            amounts = iter(values[len(self.labels) :])
            # the sliders' values (a widget's value is untyped), None for a control without one
            per_control: list[Any] = [next(amounts) if choices[1:] == [SET] else None for _, choices in self.labels]
            return request_from(self.labels, radios, per_control) or None
        if self.option.type == "image":
            return None if values[0] is None else [_picture(values[0], f"the {self.option.name} image")]
        return values[0]


class Media:
    """The page's input and output widgets for the model's modality (``Modality.page``):
    a picture upload and picture, or an audio upload/recording and a player."""

    def __init__(self, gr, translator, out_dir: Path) -> None:
        self.modality, self.out_dir = translator.modality, out_dir
        self.audio = self.modality.page == "audio"
        if self.audio:
            self.source = audio_input(gr, label=f"input {self.modality.noun}", elem_id="input-audio")
        else:
            self.source = image_upload(
                gr, type="pil", label="input image", sources=["upload", "clipboard"], elem_id="input-image", height=280
            )

    def result(self, gr):
        if self.audio:
            return gr.Audio(type="filepath", label="result", interactive=False, elem_id="result")
        return gr.Image(type="pil", label="result", interactive=False, elem_id="result", format="png", height=280, buttons=["download"])

    def given(self, value: Any) -> Any:
        """The input widget's value as what the modality translates."""
        return _recording(self.modality, value) if self.audio else _picture(value, "the input")

    def shown(self, output: Any) -> tuple[Any, str]:
        """A translation written as the modality writes it, and what the result widget shows."""
        path = self.out_dir / f"result{self.modality.output_suffix}"
        self.modality.write(output, path)
        return (str(path) if self.audio else output), str(path)


def build_app(translator, max_file_mb: int = 20):
    """The Gradio Blocks of the page for a loaded :class:`mdt.inference.ImageTranslator`."""
    gr = _gradio()
    inner = translator.translator
    with gr.Blocks(title="mdt: translate") as app:
        gr.Markdown(f"## mdt · {Path(translator.checkpoint_path).name} (step {translator.step})")
        with gr.Row():
            with gr.Column():
                media = Media(gr, translator, Path(tempfile.mkdtemp(prefix="mdt-serve-out-")))
                samples = [] if media.audio else sample_files(translator)
                if samples:
                    gr.Examples([[str(p)] for p in samples], inputs=[media.source], label="samples")
                controls = [Control(gr, option, inner) for option in translator.options if option.page]
                count = gr.Slider(1, 16, value=8, step=1, label="outputs in the grid", elem_id="grid-count") if inner.varies else None
                translate_button = gr.Button("Translate", variant="primary", elem_id="translate")
                grid_button = gr.Button("Show the full grid", elem_id="grid")
            with gr.Column():
                result = media.result(gr)
                download = gr.File(label="download the result", interactive=False, elem_id="download")
                grid = gr.Image(
                    type="pil", label="every target", interactive=False, elem_id="full-grid", format="png", height=320, buttons=["download"]
                )

        inputs = [media.source, *(w for c in controls for w in c.widgets), *([count] if count else [])]

        def request(values: list[Any], for_grid: bool) -> dict[str, Any]:
            wanted, position = {}, 1
            for control in controls:
                value = control.value(values[position : position + len(control.widgets)])
                position += len(control.widgets)
                if value is not None and (control.option.grid or not for_grid):
                    wanted[control.option.name] = value if control.option.type != "image" or for_grid else value[0]
            for option in (c.option for c in controls):
                if option.needed_by("grid" if for_grid else "translate") and option.name not in wanted:
                    raise MdtError(f"choose {option.help}")
            return wanted

        def translate(*values):
            return media.shown(translator(media.given(values[0]), **request(list(values), for_grid=False)))

        def full_grid(*values):
            num = int(values[-1]) if count else None
            return translator.grid(media.given(values[0]), num=num, **request(list(values), for_grid=True))

        translate_button.click(_in_page(gr, translate), inputs=inputs, outputs=[result, download], api_name="translate")
        grid_button.click(_in_page(gr, full_grid), inputs=inputs, outputs=[grid], api_name="grid")
    app.max_file_size = max_file_mb * 1024 * 1024
    return app


def serve(checkpoint: Path, host: str = "127.0.0.1", port: int = 7860, device: str = "auto", max_file_mb: int = 20) -> None:
    from mdt.inference import ResizeNotice, load_translator

    warnings.simplefilter("ignore", ResizeNotice)  # the page shows the result at the model's size; the console needs no line each time
    translator = load_translator(checkpoint, device)
    app = build_app(translator, max_file_mb)
    try:  # quiet: Gradio's own lines advise share=True in launch(), which is not a flag of mdt's
        app.queue().launch(
            server_name=host,
            server_port=port,
            share=False,
            max_file_size=f"{max_file_mb}mb",
            quiet=True,
            footer_links=[],
            css=CSS,
            prevent_thread_lock=True,
        )
    except OSError as exc:  # Gradio's "Cannot find empty port in range: 7860-7860"
        raise MdtError(f"--port {port}: cannot listen on {host}:{port} ({exc}); give another --port") from None
    print(f"mdt serve: http://{host}:{port} (Ctrl+C stops it)", flush=True)
    app.block_thread()
