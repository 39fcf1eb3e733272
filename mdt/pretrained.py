"""Model folders to share, in the layout of the Hugging Face Hub: ``model.safetensors``
(the networks, no optimizer or random state), ``recipe.toml``, ``labels.json``, a sample
grid and a ``README.md`` model card whose YAML front matter names the library, licence,
datasets, labels and metrics. ``load_translator(FOLDER)`` and ``mdt translate
--checkpoint FOLDER`` read it like a run folder."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

from mdt import checkpoint as ckpt
from mdt.errors import MdtError
from mdt.hub import FOLDER_FILES, METRICS, SAMPLE, local
from mdt.logbook import metrics_step
from mdt.recipe import model_recipe_text

NOT_STATED = "not stated"  # the card of a model saved without a licence: "other" on the Hub, named so
LICENCE = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # the form of the Hub's licence identifiers: mit, cc-by-nc-4.0, llama3.1
# The identifiers the Hub's licence list names (its docs, repositories-licenses.md); the Hub
# shows any other as no licence, so a typo would publish weights as unlicensed.
HUB_LICENCES = frozenset(
    [
        "apache-2.0",
        "mit",
        "openrail",
        "bigscience-openrail-m",
        "creativeml-openrail-m",
        "bigscience-bloom-rail-1.0",
        "bigcode-openrail-m",
        "afl-3.0",
        "artistic-2.0",
        "bsl-1.0",
        "bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "c-uda",
        "cc",
        "cc0-1.0",
        "cc-by-2.0",
        "cc-by-2.5",
        "cc-by-3.0",
        "cc-by-4.0",
        "cc-by-sa-3.0",
        "cc-by-sa-4.0",
        "cc-by-nc-2.0",
        "cc-by-nc-3.0",
        "cc-by-nc-4.0",
        "cc-by-nd-4.0",
        "cc-by-nc-nd-3.0",
        "cc-by-nc-nd-4.0",
        "cc-by-nc-sa-2.0",
        "cc-by-nc-sa-3.0",
        "cc-by-nc-sa-4.0",
        "cdla-sharing-1.0",
        "cdla-permissive-1.0",
        "cdla-permissive-2.0",
        "wtfpl",
        "ecl-2.0",
        "epl-1.0",
        "epl-2.0",
        "etalab-2.0",
        "eupl-1.1",
        "eupl-1.2",
        "agpl-3.0",
        "gfdl",
        "gpl",
        "gpl-2.0",
        "gpl-3.0",
        "lgpl",
        "lgpl-2.1",
        "lgpl-3.0",
        "isc",
        "lppl-1.3c",
        "ms-pl",
        "mpl-2.0",
        "odc-by",
        "odbl",
        "openrail++",
        "osl-3.0",
        "postgresql",
        "ofl-1.1",
        "ncsa",
        "unlicense",
        "zlib",
        "pddl",
        "lgpl-lr",
        "deepfloyd-if-license",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "gemma",
        "unknown",
        "other",
    ]
)


def save_pretrained(source: str | Path, out: Path, *, licence: str | None = None, overwrite: bool = False, say=lambda line: None) -> Path:
    """Write the model folder ``out`` from a run folder, checkpoint file or model folder;
    returns the card's path. The licence defaults to the one the checkpoint records (an
    import's upstream terms), else "other". The card's metrics and sample grid are the
    checkpoint's own step's (a model folder's are carried over); ``say`` hears what was
    left out and why. Everything is read and checked first and written into a temporary
    folder beside ``out``, so a failure leaves ``out`` as it was."""
    file = ckpt.resolve(local(source))
    saved = ckpt.read(file, training=False, content=ckpt.MODEL)
    notes: list[str] = []  # said once every check has passed: a refused command prints one line
    licence = _licence(licence, saved.licence, notes.append)
    if out.exists() and not out.is_dir():
        raise MdtError(f"'{out}' is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MdtError(f"'{out}' already holds files; pass --overwrite to replace them, or choose another folder")
    for name in FOLDER_FILES:
        if (out / name).is_dir():
            raise MdtError(f"'{out / name}' is a folder, where the model folder's file {name} goes; move it away first")
    networks = {name: saved.network(name) for name in saved.network_names()}
    recipe_text = model_recipe_text(saved.recipe_text)
    metrics, sample = _measured(file, saved.step, say)
    grid_flags = _grid_flags(file, notes.append)
    out.parent.mkdir(parents=True, exist_ok=True)
    for folder in (out, out.parent):  # the temporary folder goes beside out, and its files into out
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise MdtError(f"cannot write into '{folder}': permission denied")
    for note in notes:
        say(note)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as scratch:
        ready = Path(scratch)
        ckpt.save_model(
            ready / ckpt.PRETRAINED_FILE,
            networks=networks,
            step=saved.step,
            recipe=recipe_text,
            schemas=saved.schemas,
            origin=saved.origin,
            plugins=saved.plugins,
            licence="" if licence == NOT_STATED else licence,
        )  # a file records only a licence given
        (ready / "recipe.toml").write_text(recipe_text, encoding="utf-8")
        (ready / "labels.json").write_text(json.dumps([s.to_json() for s in saved.schemas], indent=2) + "\n", encoding="utf-8")
        if metrics:
            (ready / METRICS).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        if sample is not None:
            shutil.copyfile(sample, ready / SAMPLE)
        (ready / "README.md").write_text(model_card(saved, out, licence, metrics, sample is not None, grid_flags), encoding="utf-8")
        out.mkdir(exist_ok=True)
        written = {path.name for path in ready.iterdir()}
        for name in sorted(written):
            os.replace(ready / name, out / name)
        for stale in {METRICS, SAMPLE} - written:  # an older folder's must not outlive a model without them
            (out / stale).unlink(missing_ok=True)
    return out / "README.md"


def _licence(given: str | None, recorded: str | None, say) -> str:
    """``--license`` as the Hub's lowercase identifier; an import's upstream licence
    replaced by another is said aloud (the upstream terms still bind the weights)."""
    if given is None:
        if not recorded:
            say(
                f"note: no --license given; the card says the licence is {NOT_STATED} "
                "(pass --license mit, apache-2.0, cc-by-4.0 or another Hub identifier to state one)"
            )
        return recorded or NOT_STATED
    licence = given.strip().lower()
    if not LICENCE.fullmatch(licence):
        raise MdtError(
            f"--license {given!r}: expected a licence identifier of the Hugging Face Hub, such as "
            "mit, apache-2.0, cc-by-4.0, cc-by-nc-4.0 or other"
        )
    if licence not in HUB_LICENCES:
        closest = [f"'{name}'" for name in difflib.get_close_matches(licence, sorted(HUB_LICENCES), n=3, cutoff=0.5)]
        hint = f"did you mean {' or '.join(closest)}? " if closest else ""
        raise MdtError(
            f"--license {given!r}: not a licence identifier of the Hugging Face Hub; {hint}"
            "for a licence the Hub does not list, pass --license other and name it in the card"
        )
    if licence == "other":
        say(
            "note: --license other: add license_name (an id of yours) and license_link (a URL, or LICENSE for a "
            "file you put in the folder) to README.md's front matter; the Hub asks for both"
        )
    if recorded and recorded != licence:
        say(f"note: the weights were imported under {recorded}; the card now says {licence}, which does not lift the upstream terms")
    return licence


def _measured(file: Path, step: int, say) -> tuple[dict[str, float], Path | None]:
    """The metrics and sample grid that belong to the checkpoint ``file`` at ``step``: a run's
    metrics.json only when the run measured it at that step, and the grid of that step; a
    model folder's own."""
    folder = file.parent
    if file.name == ckpt.PRETRAINED_FILE:
        metrics = _read_metrics(folder / METRICS) if (folder / METRICS).is_file() else _card_metrics(folder / "README.md")
        return metrics, folder / SAMPLE if (folder / SAMPLE).is_file() else None
    run = folder.parent if folder.name == "checkpoints" else None
    if run is None:
        return {}, None
    metrics = _read_metrics(run / METRICS) if (run / METRICS).is_file() else {}
    measured_at = metrics_step(run / "log.jsonl")
    if metrics and measured_at != step:
        say(
            f"note: {METRICS} is of step {measured_at if measured_at is not None else '?'}, not this checkpoint's "
            f"step {step}: the card gives no metrics (mdt eval --checkpoint {file} measures them)"
        )
        metrics = {}
    sample = run / "samples" / f"step_{step:08d}.png"
    return metrics, sample if sample.is_file() else None


def _read_metrics(path: Path) -> dict[str, float]:
    """A metrics.json, flat numbers only."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MdtError(f"'{path}' is not valid JSON ({exc}); mend or remove it to share the model without metrics") from None
    if not isinstance(data, dict):
        raise MdtError(f"'{path}' should hold an object of metric names and values, not {type(data).__name__}")
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _card_metrics(card: Path) -> dict[str, float]:
    """The metrics of a card written before model folders held metrics.json: front-matter
    lines ``  "name": value`` under ``metrics:``."""
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    lines = text.split("---\n")[1].splitlines() if text.startswith("---\n") else []
    found, inside = {}, False
    for line in lines:
        if not line.startswith("  "):
            inside = line.strip() == "metrics:"
            continue
        if inside and '": ' in line:
            key, _, value = line.strip().rpartition(": ")
            try:
                found[json.loads(key)] = float(value)
            except ValueError:
                continue
    return found


def _licence_text(licence: str) -> str:
    if licence == NOT_STATED:
        return "not stated by whoever saved the model; ask them before you reuse the weights"
    if licence == "other":
        return "the author's own, named by license_name and license_link in this card's front matter"
    return licence


def _grid_flags(file: Path, say) -> str:
    """The flags the model's translator needs for a grid (its options ``needed`` by
    "grid", each with an example value), for the card's example command."""
    from mdt.inference import load_translator  # builds the networks: only here, for their options

    try:
        options = load_translator(file, "cpu").options
    except MdtError as exc:
        say(f"note: the card's example names no model options: the model cannot be loaded here ({exc})")
        return ""
    return "".join(f" {o.cli_flag} {o.example or o.name.upper()}" for o in options if o.needed_by("grid"))


def model_card(saved: ckpt.Checkpoint, out: Path, licence: str, metrics: dict[str, float], has_sample: bool, grid_flags: str = "") -> str:
    """README.md of a model folder: the Hub's YAML front matter, then what the model is,
    its measurements, and how to translate with it and train it again."""
    recipe = tomllib.loads(saved.recipe_text)
    method = recipe.get("method", {}).get("type", "?")
    datasets = sorted({table.get("type", name) for name, table in recipe.get("datasets", {}).items()})
    name = out.resolve().name
    front = _front_matter(saved, name, method, datasets, licence, metrics)
    made = (
        f"A `{method}` model imported from {saved.origin} (its step {saved.step})"
        if saved.origin
        else f"A `{method}` model trained with mdt for {saved.step} iterations"
    )
    body = [
        f"# {name}",
        "",
        f"{made}, on {', '.join(datasets)}.",
        "",
        f"Licence: {_licence_text(licence)}.",
        "",
        "Labels, by dataset: " + "; ".join(f"{s.dataset}: {', '.join(s.names)}" for s in saved.schemas) + ".",
        "",
    ]
    if metrics:
        body += ["| metric | value |", "| --- | --- |"] + [f"| {k} | {v:.4g} |" for k, v in sorted(metrics.items())] + [""]
    if has_sample:
        body += [f"![samples: each input, then its translation to every target]({SAMPLE})", ""]
    return "\n".join([*front, "", *body, *_usage(saved, name, grid_flags)])


def _front_matter(
    saved: ckpt.Checkpoint, name: str, method: str, datasets: list[str], licence: str, metrics: dict[str, float]
) -> list[str]:
    """The card's YAML front matter; lists and keys in JSON's syntax, which YAML reads as written."""
    labels = [label for schema in saved.schemas for label in schema.names]
    hub_licence = ["license: other", 'license_name: "not-stated"'] if licence == NOT_STATED else [f"license: {json.dumps(licence)}"]
    front = [
        "---",
        "library_name: mdt",
        *hub_licence,
        "pipeline_tag: image-to-image",
        f"tags: {json.dumps(['mdt', method, 'image-to-image'])}",
        f"datasets: {json.dumps(datasets)}",
        f"labels: {json.dumps(labels)}",
    ]
    if metrics:  # the Hub's form: metric ids in "metrics", the values in "model-index"
        kinds = sorted({key.split("/")[0] for key in metrics})
        front.append(f"metrics: {json.dumps(kinds)}")
        front += [
            "model-index:",
            f"- name: {json.dumps(name)}",
            "  results:",
            "  - task: {type: image-to-image}",
            f"    dataset: {json.dumps({'name': ', '.join(datasets), 'type': ', '.join(datasets)})}",
            "    metrics:",
        ]
        front += [f"    - {json.dumps({'name': key, 'type': metric_type(key), 'value': value})}" for key, value in sorted(metrics.items())]
    return [*front, "---"]


def _usage(saved: ckpt.Checkpoint, name: str, grid_flags: str) -> list[str]:
    """The card's instructions: the plugins to install first, then translate and train again."""
    lines = []
    packages = sorted({p["distribution"] for p in saved.plugins})
    if packages:
        uses = ", ".join(
            f"{p['kind']} `{p['name']}` ({p['distribution']} {p.get('version', '')})".replace(" )", ")") for p in saved.plugins
        )
        lines += [
            f"It uses components of mdt plugins ({uses}); install them first:",
            "",
            "```bash",
            f"pip install mdt-translate {' '.join(packages)}",
            "```",
            "",
        ]
    lines += [
        f"From the folder that holds `{name}` (downloaded from the Hub: `--checkpoint hf://OWNER/{name}`), translate "
        f"(the model's own options: `mdt translate --checkpoint {name} --help`):",
        "",
        "```bash",
        f"mdt translate --checkpoint {name} --input photo.jpg --output out.png --grid{grid_flags}",
        "```",
        "",
        "and train it again (the recipe names the data it was trained on):",
        "",
        "```bash",
        f"mdt run {name}/recipe.toml",
        "```",
        "",
    ]
    return lines


ERROR_KINDS = ("error", "mae", "l1")  # a value's own kind, where its name says it: lower is better


def metric_type(key: str) -> str:
    """The Hub's metric type of a metrics.json key: its metric's name ("accuracy/target/smile"
    is an accuracy), unless the value names an error of its own ("accuracy/real_error" is
    an error, not an accuracy, and a card would show 1.0 as a perfect score)."""
    metric, *rest = key.split("/")
    for part in rest:
        kind = next((k for k in ERROR_KINDS if part == k or part.endswith("_" + k)), None)
        if kind:
            return kind
    return metric


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
    assert model_folder is not None, "refused above: neither --out nor --model-folder"
    with tempfile.TemporaryDirectory() as scratch:
        return [save_pretrained(write_run(Path(scratch) / "run"), model_folder)]
