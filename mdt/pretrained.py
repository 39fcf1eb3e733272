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
from pathlib import Path

from mdt import checkpoint as ckpt
from mdt.errors import MdtError
from mdt.hub import FOLDER_FILES, METRICS, SAMPLE, local
from mdt.logbook import metrics_step, read_log
from mdt.model_card import NOT_STATED, CardFacts, card_metrics, model_card
from mdt.recipe import model_recipe_text
from mdt.writing import carry_over, remove_stale_scratch, scratch_folder, staged_as, swap_in

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
    _check_out(out, overwrite)
    networks = {name: saved.network(name) for name in saved.network_names()}
    recipe_text = model_recipe_text(saved.recipe_text)
    metrics, measured, sample = _measured(file, saved.step, say)
    grid_flags, grid_keywords = _grid_arguments(file, notes.append)
    facts = CardFacts(
        out.resolve().name, saved, licence, metrics, measured, sample is not None, grid_flags, grid_keywords, _training_time(file)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    for folder in (out, out.parent):  # the temporary folder goes beside out, and its files into out
        if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise MdtError(f"cannot write into '{folder}': permission denied")
    for note in notes:
        say(note)
    remove_stale_scratch(out, say)
    ready = scratch_folder(out)
    try:
        with staged_as(ready, out):
            ckpt.save_model(
                ready / ckpt.PRETRAINED_FILE,
                networks=networks,
                step=saved.step,
                recipe=recipe_text,
                schemas=saved.schemas,
                origin=saved.origin,
                plugins=saved.plugins,
                statistics=saved.statistics(),
                licence="" if licence == NOT_STATED else licence,
            )  # a file records only a licence given
            (ready / "recipe.toml").write_text(recipe_text, encoding="utf-8")
            (ready / "labels.json").write_text(json.dumps([s.to_json() for s in saved.schemas], indent=2) + "\n", encoding="utf-8")
            if metrics:
                (ready / METRICS).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
            if sample is not None:
                shutil.copyfile(sample, ready / SAMPLE)
            (ready / "README.md").write_text(model_card(facts), encoding="utf-8")
        carry_over(out, ready, leave=lambda path: path.name in FOLDER_FILES)  # a LICENSE the card links to stays
        swap_in(ready, out, replace=overwrite)  # whole: a kill leaves the old folder or the new one
    finally:
        shutil.rmtree(ready, ignore_errors=True)
    return out / "README.md"


def _check_out(out: Path, overwrite: bool) -> None:
    """``out`` can take a model folder: not a file, not a run folder, not one with files
    unless ``overwrite``, and no folder where one of its files goes."""
    if ckpt.list_checkpoints(out / "checkpoints") or (out / "log.jsonl").is_file():
        raise MdtError(
            f"'{out}' is a run folder: a model folder written into it would hide the run's newer checkpoints from every "
            "command once it resumes; give a folder of its own"
        )
    if out.exists() and not out.is_dir():
        raise MdtError(f"'{out}' is a file; give a folder for the model")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise MdtError(f"'{out}' already holds files; pass --overwrite to replace them, or choose another folder")
    for name in FOLDER_FILES:
        if (out / name).is_dir():
            raise MdtError(f"'{out / name}' is a folder, where the model folder's file {name} goes; move it away first")


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


def _measured(file: Path, step: int, say) -> tuple[dict[str, float], list[str], Path | None]:
    """The metrics and sample grid that belong to the checkpoint ``file`` at ``step``, and
    where the metrics come from in words: a run's metrics.json only when the run measured it
    at that step, with the newest ``mdt eval`` report of that step in the run folder over it
    (its values win where both have one); the grid of that step. A model folder's own."""
    folder = file.parent
    if file.name == ckpt.PRETRAINED_FILE:
        card = folder / "README.md"
        metrics = _read_metrics(folder / METRICS) if (folder / METRICS).is_file() else card_metrics(_text(card))
        return metrics, ["the model folder it was saved from"], folder / SAMPLE if (folder / SAMPLE).is_file() else None
    run = folder.parent if folder.name == "checkpoints" else None
    if run is None:
        return {}, [], None
    metrics = _read_metrics(run / METRICS) if (run / METRICS).is_file() else {}
    measured = ["the run at the end of its training (metrics.json)"] if metrics else []
    measured_at = metrics_step(run / "log.jsonl")
    if metrics and measured_at != step:
        say(
            f"note: {METRICS} is of step {measured_at if measured_at is not None else '?'}, not this checkpoint's "
            f"step {step}: the card gives no metrics from it (mdt eval --checkpoint {file} measures them)"
        )
        metrics, measured = {}, []
    report = _newest_report(run, step)
    if report is not None:
        metrics = {**metrics, **_read_metrics(report, inside="metrics")}
        measured.append(f"mdt eval ({report.parent.name}/{METRICS})")
    sample = run / "samples" / f"step_{step:08d}.png"
    return metrics, measured, sample if sample.is_file() else None


def _newest_report(run: Path, step: int) -> Path | None:
    """The newest metrics.json that ``mdt eval`` wrote into the run folder for ``step``."""
    found = []
    for path in run.glob(f"eval-*/{METRICS}"):
        try:
            about = json.loads(path.read_text(encoding="utf-8")).get("about", {})
        except (ValueError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(about, dict) and about.get("step") == step:
            found.append((path.stat().st_mtime, path))
    return max(found)[1] if found else None


def _training_time(file: Path) -> str:
    """How long the run trained, from its log: the spans between its first and last
    records, one per process (a resumed run's pauses are not counted)."""
    log = file.parent.parent / "log.jsonl" if file.parent.name == "checkpoints" else None
    if log is None or not log.is_file():
        return ""
    records = read_log(log)
    lives, start, last = [], None, None
    for record in records:
        if record.get("event") == "resumed" and start is not None and last is not None:
            lives.append(last - start)
            start = None
        if record.get("event") == "train" and isinstance(record.get("time"), (int, float)):
            start = record["time"] if start is None else start
            last = record["time"]
    if start is not None and last is not None:
        lives.append(last - start)
    seconds = sum(lives)
    if seconds <= 0:
        return ""
    if seconds >= 5400:
        shown = f"{seconds / 3600:.1f} hours"
    else:
        shown = f"{seconds / 60:.1f} minutes" if seconds >= 90 else f"{seconds:.0f} seconds"
    resumed = f", in {len(lives)} processes (resumed {len(lives) - 1} times)" if len(lives) > 1 else ""
    return f"It trained for about {shown} between its first and last logged steps{resumed} (log.jsonl)."


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _read_metrics(path: Path, inside: str = "") -> dict[str, float]:
    """A metrics.json, flat numbers only (``inside``: those under that key, as mdt eval writes them)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MdtError(f"'{path}' is not valid JSON ({exc}); mend or remove it to share the model without metrics") from None
    if inside and isinstance(data, dict):
        data = data.get(inside, {})
    if not isinstance(data, dict):
        raise MdtError(f"'{path}' should hold an object of metric names and values, not {type(data).__name__}")
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _grid_arguments(file: Path, say) -> tuple[str, str]:
    """What the model's translator needs for a grid (its options ``needed`` by "grid", each
    with an example value): as mdt translate flags and as Python keyword arguments, for the
    card's examples."""
    from mdt.inference import load_translator  # builds the networks: only here, for their options

    try:
        options = load_translator(file, "cpu").options
    except MdtError as exc:
        say(f"note: the card's example names no model options: the model cannot be loaded here ({exc})")
        return "", ""
    needed = [o for o in options if o.needed_by("grid")]
    flags = "".join(f" {o.cli_flag} {o.example or o.name.upper()}" for o in needed)
    keywords = "".join(f", {o.name}={o.parse(o.example)!r}" for o in needed if o.example is not None)
    return flags, keywords


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
