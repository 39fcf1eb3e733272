"""Model folders to share, in the layout of the Hugging Face Hub: ``model.safetensors``
(the networks, no optimizer or random state), ``recipe.toml``, ``labels.json``, a sample
grid and a ``README.md`` model card whose YAML front matter names the library, licence,
datasets, labels and metrics. ``load_translator(FOLDER)`` and ``mdt translate
--checkpoint FOLDER`` read it like a run folder."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

from mdt import checkpoint as ckpt
from mdt.errors import MdtError
from mdt.recipe import model_recipe_text

SAMPLE = "sample.png"
HUB = "hf://"
HUB_FILES = [ckpt.PRETRAINED_FILE, "recipe.toml", "labels.json", "README.md", SAMPLE]


def hub_location(path: str | Path) -> str | None:
    """``hf://OWNER/NAME`` when ``path`` names one (a Path made of it reads ``hf:/OWNER/NAME``), else None."""
    text = str(path)
    return HUB + text[len("hf:/"):].lstrip("/") if text.startswith("hf:/") else None


def from_hub(location: str) -> Path:
    """The local folder of ``hf://owner/name[@revision]``: downloaded into (or, with
    ``HF_HUB_OFFLINE=1``, only read from) huggingface_hub's cache."""
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise MdtError(f"'{location}' is on the Hugging Face Hub: pip install -e '.[hub]' to read it") from None
    repo, _, revision = location[len(HUB):].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise MdtError(f"'{location}': expected hf://OWNER/NAME[@REVISION]")
    try:
        return Path(snapshot_download(repo, revision=revision or None, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise MdtError(f"'{location}' is not in the Hugging Face cache and cannot be downloaded now "
                       "(HF_HUB_OFFLINE is set, or there is no network)") from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise MdtError(f"'{location}': {str(exc).splitlines()[0]}") from None


def save_pretrained(source: str | Path, out: Path, *, licence: str | None = None, overwrite: bool = False) -> Path:
    """Write the model folder ``out`` from a run folder or checkpoint file; returns the
    card's path. The licence defaults to the one the checkpoint records (an import's
    upstream terms), else "other". Everything is read and checked first and written into
    a temporary folder beside ``out``, so a failure leaves ``out`` as it was."""
    file = ckpt.resolve(source)
    saved = ckpt.read(file, training=False, content=ckpt.MODEL)
    licence = licence or saved.licence or "other"
    if out.exists() and not out.is_dir():
        raise MdtError(f"'{out}' is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MdtError(f"'{out}' already holds files; pass --overwrite to replace them, or choose another folder")
    run = file.parent.parent if file.parent.name == "checkpoints" else None
    networks = {name: saved.network(name) for name in saved.network_names()}
    recipe_text = model_recipe_text(saved.recipe_text)
    metrics = _metrics(run)
    samples = sorted((run / "samples").glob("step_*.png")) if run else []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as scratch:
        ready = Path(scratch)
        ckpt.save_model(ready / ckpt.PRETRAINED_FILE, networks=networks, step=saved.step, recipe=recipe_text,
                        schemas=saved.schemas, origin=saved.origin, licence=licence)
        (ready / "recipe.toml").write_text(recipe_text, encoding="utf-8")
        (ready / "labels.json").write_text(json.dumps([s.to_json() for s in saved.schemas], indent=2) + "\n", encoding="utf-8")
        if samples:
            shutil.copyfile(samples[-1], ready / SAMPLE)
        (ready / "README.md").write_text(model_card(saved, out, licence, metrics, bool(samples)), encoding="utf-8")
        out.mkdir(exist_ok=True)
        (out / SAMPLE).unlink(missing_ok=True)  # an older folder's sample must not outlive a model without one
        for written in ready.iterdir():
            os.replace(written, out / written.name)
    return out / "README.md"


def _metrics(run: Path | None) -> dict[str, float]:
    """The run's metrics.json (what `mdt run` measured at its end), flat numbers only."""
    if run is None or not (run / "metrics.json").is_file():
        return {}
    path = run / "metrics.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MdtError(f"'{path}' is not valid JSON ({exc}); mend or remove it to share the model without metrics") from None
    if not isinstance(data, dict):
        raise MdtError(f"'{path}' should hold an object of metric names and values, not {type(data).__name__}")
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def model_card(saved: ckpt.Checkpoint, out: Path, licence: str, metrics: dict[str, float], has_sample: bool) -> str:
    recipe = tomllib.loads(saved.recipe_text)
    method = recipe.get("method", {}).get("type", "?")
    datasets = sorted({table.get("type", name) for name, table in recipe.get("datasets", {}).items()})
    labels = [name for schema in saved.schemas for name in schema.names]
    # YAML front matter; lists and keys in JSON's syntax, which YAML reads as written
    front = ["---", "library_name: mdt", f"license: {json.dumps(licence)}", "pipeline_tag: image-to-image",
             f"tags: {json.dumps(['mdt', method, 'image-to-image'])}", f"datasets: {json.dumps(datasets)}",
             f"labels: {json.dumps(labels)}"]
    if metrics:
        front.append("metrics:")
        front += [f"  {json.dumps(key)}: {value:.6g}" for key, value in sorted(metrics.items())]
    front.append("---")
    body = [f"# {out.name}", "",
            f"A `{method}` model trained with mdt for {saved.step} iterations"
            + (f" (imported from {saved.origin})" if saved.origin else "") + f", on {', '.join(datasets)}.", "",
            f"Licence: {licence}.", "",
            "Labels, by dataset: " + "; ".join(f"{s.dataset}: {', '.join(s.names)}" for s in saved.schemas) + ".", ""]
    if metrics:
        body += ["| metric | value |", "| --- | --- |"] + [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())] + [""]
    if has_sample:
        body += [f"![samples: each input, then its translation to every target]({SAMPLE})", ""]
    body += ["Translate (the model's own options: `mdt translate --checkpoint . --help`):", "", "```bash",
             f"mdt translate --checkpoint {out.name} --input photo.jpg --output out.png --grid", "```", "",
             "Train it again (the recipe names the data it was trained on):", "", "```bash",
             "mdt run recipe.toml", "```", ""]
    return "\n".join(front + [""] + body)


def imported(write_run, out: Path | None, model_folder: Path | None) -> list[Path]:
    """What an importer's command writes: the run folder ``out`` that ``write_run(folder)``
    fills, and/or the model folder ``model_folder`` made from it (the run then lives only
    in a temporary folder). Returns the files written: checkpoint, model card."""
    if out is None and model_folder is None:
        raise MdtError("give --out (a run folder) or --model-folder (a model folder to share), or both")
    if model_folder is not None and model_folder.is_dir() and any(model_folder.iterdir()):
        raise MdtError(f"--model-folder '{model_folder}' already holds files; choose another folder")
    if out is not None:
        checkpoint = write_run(out)
        return [checkpoint, *([save_pretrained(checkpoint, model_folder)] if model_folder is not None else [])]
    with tempfile.TemporaryDirectory() as scratch:
        return [save_pretrained(write_run(Path(scratch) / "run"), model_folder)]
