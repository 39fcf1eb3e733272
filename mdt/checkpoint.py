"""Checkpoints: one safetensors file per save, never pickle. This module alone spells
the files' metadata keys; everything else calls :func:`save_model`,
:func:`save_classifier` and :func:`read`.

A model checkpoint holds network weights under ``<network>/<parameter>``, what the
model keeps of its training data under ``data/<dataset>/<key>`` (Dataset.statistics),
optimizer state tensors under ``optim/<optimizer>/<param index>/<key>``, random-number
states under ``rng/...``, and as string metadata the resolved recipe, the step, the mdt
version, the label schemas and the JSON structure of everything that is not a tensor.
A judge classifier's file (``mdt train-classifier``) holds its weights, the table that
builds it, the label schemas it reads and its accuracy on real held-out images.
Loading either reads tensors and JSON only, so it can never execute code.

Writes are atomic: a temporary file in the same folder is written, flushed and
fsynced, then renamed over the final name, so a kill at any moment leaves either the
old set of checkpoints or the new one, never a torn file.
"""

from __future__ import annotations

import json
import os
import random
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

import mdt
from mdt.errors import MdtError
from mdt.labels import LabelSchema, schemas_from_json, schemas_to_json
from mdt.writing import discard

FORMAT = "mdt-checkpoint-2"
READABLE = ("mdt-checkpoint-1", FORMAT)  # 1: before the generic core; same keys, no 'content'
MODEL, CLASSIFIER = "model", "classifier"
PRETRAINED_FILE = "model.safetensors"  # a model folder's one checkpoint (mdt/pretrained.py)
CLASSIFIER_FILE = "classifier.safetensors"  # a judge's folder's one file (mdt/evaluation.py)
PATTERN = re.compile(r"step_(\d+)\.safetensors$")
TRAINING_PREFIXES = ("optim/", "rng/", "state/")  # what only a resumed run reads
DATA = "data/"  # the datasets' statistics: no network's
JSON_METADATA = ("optimizers", "method_state", "rng", "streams", "table", "accuracy", "accuracy_images", "plugins")


@dataclass
class TrainingState:
    """What a resumed run needs beyond the weights."""

    optimizers: dict[str, dict]  # name -> the optimizer's state_dict()
    method_state: dict[str, Any]  # Method.state(): JSON values and tensors (an image pool)
    streams: list[int]  # batches each data stream has handed out
    rng: tuple[dict[str, torch.Tensor], dict] = field(default_factory=lambda: capture_rng())  # noqa: PLW0108 (defined below)
    recipe: str = ""  # the resolved recipe it was saved with (read back only: save_model writes its own)


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split back into its parts."""

    path: Path
    metadata: dict[str, str]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def content(self) -> str:
        """``model`` (a run's or an import's) or ``classifier`` (a judge)."""
        return self.metadata.get("content", MODEL)

    @property
    def step(self) -> int:
        return int(self.metadata.get("step", 0))

    @property
    def version(self) -> str:
        return self.metadata.get("mdt_version", "?")

    @property
    def recipe_text(self) -> str:
        return self.metadata["recipe"]

    @property
    def schemas(self) -> list[LabelSchema]:
        return schemas_from_json(self.metadata["schemas"])

    @property
    def origin(self) -> str:
        """Where an imported model came from; empty for mdt's own runs."""
        return self.metadata.get("imported_from", "")

    @property
    def licence(self) -> str:
        """The weights' licence when the file records one (imports of official weights do)."""
        return self.metadata.get("license", "")

    @property
    def classifier_table(self) -> dict[str, Any]:
        """The ``[classifier]`` table that builds a judge."""
        return self._json("table", {})

    @property
    def accuracy(self) -> dict[str, float]:
        """A judge's accuracy on real held-out images, per label."""
        return self._json("accuracy", {})

    @property
    def accuracy_images(self) -> dict[str, int]:
        """How many held-out images each of :attr:`accuracy`'s values counts (empty in a
        judge's file written before mdt recorded them)."""
        return self._json("accuracy_images", {})

    @property
    def plugins(self) -> list[dict[str, str]]:
        """The third-party components its recipe uses (save_model); none before they were recorded."""
        entries = self._json("plugins", [])
        return (
            [e for e in entries if isinstance(e, dict) and {"kind", "name", "distribution"} <= set(e)] if isinstance(entries, list) else []
        )

    def missing_plugin(self, has: Callable[[str, str], bool]) -> str | None:
        """What to install before this model can be built, where ``has(kind, name)`` says
        a component is registered here; None when nothing is missing."""
        for entry in self.plugins:
            if not has(entry["kind"], entry["name"]):
                version = f" {entry['version']}" if entry.get("version") else ""
                return (
                    f"it was made with {entry['kind']} '{entry['name']}' of plugin '{entry.get('plugin', '?')}' "
                    f"({entry['distribution']}{version}), which is not installed here: pip install {entry['distribution']}"
                )
        return None

    def network(self, name: str) -> dict[str, torch.Tensor]:
        prefix = f"{name}/"
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def network_names(self) -> list[str]:
        return sorted({k.split("/", 1)[0] for k in self.tensors if not k.startswith((*TRAINING_PREFIXES, DATA))})

    def statistics(self) -> dict[str, torch.Tensor]:
        """What the model keeps of its training data, by ``<dataset>/<key>`` (none before mdt 0.3)."""
        return {k[len(DATA) :]: v for k, v in self.tensors.items() if k.startswith(DATA)}

    def training_state(self) -> TrainingState:
        """Optimizers, method state, stream positions and random states, to resume."""
        structures = self._json("optimizers", {})
        optimizers = {name: unflatten_optimizer(name, structure, self.tensors) for name, structure in structures.items()}
        rng = ({k: v for k, v in self.tensors.items() if k.startswith("rng/")}, self._json("rng", {}))
        method_state = _with_tensors(self._json("method_state", {}), self.tensors)
        return TrainingState(optimizers, method_state, self._json("streams", []), rng, self.recipe_text)

    def _json(self, key: str, default: Any) -> Any:
        return json.loads(self.metadata[key]) if key in self.metadata else default


def save_model(
    path: str | Path,
    *,
    networks: Mapping[str, Mapping[str, torch.Tensor]],
    step: int,
    recipe: str,
    schemas: Sequence[LabelSchema],
    training: TrainingState | None = None,
    origin: str = "",
    licence: str = "",
    plugins: Sequence[Mapping[str, str]] = (),
    statistics: Mapping[str, torch.Tensor] | None = None,
) -> Path:
    """A model checkpoint: each network's state dict, the resolved recipe that rebuilds
    them, the label schemas, the datasets' ``statistics`` and for a run that can resume
    its ``training`` state. ``plugins``: the recipe's components from third-party packages
    (kind, name, plugin, distribution, version), so a machine without one is told what to install."""
    tensors = {f"{name}/{key}": value for name, state in networks.items() for key, value in state.items()}
    tensors.update({DATA + key: value for key, value in (statistics or {}).items()})
    metadata = {"content": MODEL, "mdt_version": mdt.__version__, "step": str(step), "recipe": recipe, "schemas": schemas_to_json(schemas)}
    if origin:
        metadata["imported_from"] = origin
    if licence:
        metadata["license"] = licence  # of the weights, as a Hub identifier: an import's upstream terms
    if plugins:
        metadata["plugins"] = json.dumps([dict(p) for p in plugins])
    if training is not None:
        structures = {}
        for name, state in training.optimizers.items():
            flat, structures[name] = flatten_optimizer(name, state)
            tensors.update(flat)
        rng_tensors, rng = training.rng
        tensors.update(rng_tensors)
        method_state = _without_tensors(training.method_state, "state", tensors)
        metadata.update(
            optimizers=json.dumps(structures),
            method_state=json.dumps(method_state),
            rng=json.dumps(rng),
            streams=json.dumps(training.streams),
        )
    return write(path, tensors, metadata)


def save_classifier(
    path: str | Path,
    *,
    weights: Mapping[str, torch.Tensor],
    table: Mapping[str, Any],
    schemas: Sequence[LabelSchema],
    accuracy: Mapping[str, float],
    accuracy_images: Mapping[str, int],
) -> Path:
    """A judge classifier: its weights, the ``[classifier]`` table that builds it, the
    label schemas it reads and its accuracy on real held-out images (and on how many)."""
    tensors = {f"{CLASSIFIER}/{k}": v for k, v in weights.items()}
    metadata = {
        "content": CLASSIFIER,
        "mdt_version": mdt.__version__,
        "table": json.dumps(dict(table)),
        "schemas": schemas_to_json(schemas),
        "accuracy": json.dumps(dict(accuracy)),
        "accuracy_images": json.dumps(dict(accuracy_images)),
    }
    return write(path, tensors, metadata)


# ---------------------------------------------------------------- flattening


def _without_tensors(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``value`` with every tensor moved into ``tensors`` (under ``path``) and replaced by
    a reference to it, so the rest is JSON."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value
        return {"tensor": path}
    if isinstance(value, Mapping):
        return {str(k): _without_tensors(v, f"{path}/{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_tensors(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    return value


def _with_tensors(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of :func:`_without_tensors`."""
    if isinstance(value, dict):
        if set(value) == {"tensor"} and value["tensor"] in tensors:
            return tensors[value["tensor"]]
        return {k: _with_tensors(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_tensors(v, tensors) for v in value]
    return value


def flatten_optimizer(name: str, state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer ``state_dict`` as tensors plus a JSON structure."""
    tensors: dict[str, torch.Tensor] = {}
    structure: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/{index}/{key}"] = value
                entry[key] = {"tensor": True}
            else:
                entry[key] = {"value": value}
        structure["state"][str(index)] = entry
    return tensors, structure


def unflatten_optimizer(name: str, structure: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict:
    state = {}
    for index, entry in structure["state"].items():
        state[int(index)] = {
            key: tensors[f"optim/{name}/{index}/{key}"] if spec.get("tensor") else spec["value"] for key, spec in entry.items()
        }
    return {"state": state, "param_groups": structure["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """Every random state a run depends on: torch CPU and CUDA, numpy, Python."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    # the legacy tuple, numpy's default for the global MT19937 state; numpy's stubs say a dict without legacy=True
    state = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    kind, keys, pos, has_gauss, cached = state
    tensors["rng/numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss = random.getstate()
    structure = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }
    return tensors, structure


def restore_rng(rng: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]]) -> None:
    """Set every random state to what :func:`capture_rng` captured."""
    tensors, structure = rng
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = structure["numpy"]
    np.random.set_state((n["kind"], tensors["rng/numpy"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = structure["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ---------------------------------------------------------------- files


def system_error(exc: SafetensorError, path: Path) -> Exception:
    """safetensors reports a failed write as "I/O error: <reason> (os error N)": the
    OSError it stands for, naming ``path``; any other error as it is."""
    found = re.search(r"\(os error (\d+)\)", str(exc))
    if found is None:
        return exc
    number = int(found.group(1))
    return OSError(number, os.strerror(number), str(path))


def write(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    """Write a safetensors file atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"format": FORMAT, **{k: str(v) for k, v in metadata.items()}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            save_file(ready, str(tmp), metadata=meta)
        except SafetensorError as exc:  # its I/O errors (a full disk) as the OSError they are
            raise system_error(exc, path) from None
        os.chmod(tmp, 0o666 & ~_umask())  # safetensors creates its files owner-only; a shared model must be readable
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        discard(tmp)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def _umask() -> int:
    """The process's umask, read without setting it where Linux allows: setting it to
    read it would briefly apply to files other threads create."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # elsewhere: the brief mask is the strictest, never a looser one
    os.umask(mask)
    return mask


def read(path: str | Path, training: bool = True, content: str | None = None) -> Checkpoint:
    """Read a checkpoint; ``training=False`` leaves out optimizer and random states.
    With ``content`` ("model" or "classifier"), a file of the other content is refused."""
    path = Path(path)
    if not path.is_file():
        raise MdtError(f"checkpoint '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            written = metadata.get("format", "")
            if written.startswith("mdt-checkpoint-") and written not in READABLE:
                raise MdtError(
                    f"'{path}' is an mdt checkpoint in format '{written}', newer than this mdt reads "
                    f"({', '.join(READABLE)}); upgrade mdt to read it"
                )
            if written not in READABLE:
                raise MdtError(f"'{path}' is a safetensors file but not an mdt checkpoint (no '{FORMAT}' metadata)")
            names = [k for k in f.keys() if training or not k.startswith(TRAINING_PREFIXES)]  # noqa: SIM118 (safe_open is not iterable)
            tensors = {k: f.get_tensor(k) for k in names}
    except SafetensorError as exc:
        raise MdtError(f"'{path}' is not a readable safetensors checkpoint: {exc}") from None
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: torch, on a file cut short under it
        raise MdtError(f"cannot read checkpoint '{path}': {exc}") from None
    saved = Checkpoint(path, dict(metadata), tensors)
    _check_metadata(path, saved.metadata)
    if saved.content not in (MODEL, CLASSIFIER):
        raise MdtError(f"'{path}' holds '{saved.content}', which this mdt cannot read (a model or a judge classifier); a newer mdt may")
    if content is not None and saved.content != content:
        if content == MODEL:
            raise MdtError(
                f"'{path}' is a judge classifier (mdt train-classifier), not a model checkpoint; "
                "give a run folder or its checkpoints/step_*.safetensors"
            )
        raise MdtError(f"'{path}' is an mdt checkpoint but not a classifier; make one with mdt train-classifier")
    if saved.content == MODEL and "recipe" not in metadata:
        raise MdtError(f"'{path}' is an mdt file without a recipe: not a model checkpoint")
    return saved


def read_newest(path: str | Path, training: bool = True, content: str | None = None, attempts: int = 3) -> tuple[Path, Checkpoint]:
    """The checkpoint ``path`` names (:func:`resolve`) and what it holds. A running run may
    prune its newest checkpoint between our finding it and reading it (it has saved a newer
    one): then the newest is found again, rather than saying that a file does not exist."""
    for attempt in range(attempts):
        file = resolve(path)
        try:
            return file, read(file, training, content)
        except MdtError:
            if file.exists() or Path(path).is_file() or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def _check_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    """Parse once what readers parse later, so a damaged header is one line naming the field."""
    key = "step"
    try:
        if int(metadata.get("step", 0)) < 0:
            raise ValueError("a negative step")
        for key in JSON_METADATA:
            if key in metadata:
                json.loads(metadata[key])
        key = "schemas"
        if key in metadata:
            schemas_from_json(metadata[key])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MdtError(f"'{path}': its '{key}' metadata is damaged ({reason}); the file was not written by mdt as it is now") from None


def saved_run_setting(path: str | Path, key: str) -> Any:
    """``[run] key`` of the recipe a model checkpoint was saved with, read from its header
    only (no tensors); None where the file or the key cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as f:
            recipe = (f.metadata() or {}).get("recipe", "")
        return tomllib.loads(recipe).get("run", {}).get(key)
    except (SafetensorError, OSError, ValueError, tomllib.TOMLDecodeError):
        return None


def step_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary files are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.fullmatch(p.name)) and p.is_file()]
    return [p for _, p in sorted(found)]


def prune(directory: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (and stale temporary files)."""
    directory = Path(directory)
    for stale in directory.glob(".step_*.tmp"):
        stale.unlink(missing_ok=True)
    if keep <= 0:
        return
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)


def resolve_any(path: str | Path) -> Path:
    """:func:`resolve`, or the judge classifier of a folder that holds one and no model."""
    try:
        return resolve(path)
    except MdtError:
        if not (Path(path) / CLASSIFIER_FILE).is_file():
            raise
        return Path(path) / CLASSIFIER_FILE


def resolve(path: str | Path) -> Path:
    """A checkpoint file, a model folder's ``model.safetensors``, or the newest
    checkpoint of a run folder or its ``checkpoints/`` (a model folder on the Hub is first
    made local: :func:`mdt.hub.local`)."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / PRETRAINED_FILE).is_file():
        return path / PRETRAINED_FILE
    for directory in (path / "checkpoints", path):
        found = list_checkpoints(directory)
        if found:
            return found[-1]
    if path.exists():
        raise MdtError(f"'{path}' holds no checkpoint (expected checkpoints/step_*.safetensors, or {PRETRAINED_FILE})")
    raise MdtError(f"checkpoint or run folder '{path}' does not exist")
