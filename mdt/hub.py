"""Model folders on the Hugging Face Hub: ``hf://OWNER/NAME[@REVISION]``, read through
huggingface_hub's cache, and the files a model folder holds (mdt/pretrained.py writes them)."""

from __future__ import annotations

from pathlib import Path

from mdt import checkpoint as ckpt
from mdt.errors import MdtError

SAMPLE = "sample.png"
METRICS = "metrics.json"
HUB = "hf://"
FOLDER_FILES = [ckpt.PRETRAINED_FILE, "recipe.toml", "labels.json", "README.md", SAMPLE, METRICS]
HUB_FILES = FOLDER_FILES


def hub_location(path: str | Path) -> str | None:
    """``hf://OWNER/NAME`` when ``path`` names one (a Path made of it reads ``hf:/OWNER/NAME``), else None."""
    text = str(path)
    if text in ("hf:", "hf:/"):  # "hf://" with nothing after it, as a Path writes it
        return HUB
    return HUB + text[len("hf:/") :].lstrip("/") if text.startswith("hf:/") else None


def local(path: str | Path) -> Path:
    """``path`` itself, or the local folder of a model folder on the Hub (:func:`from_hub`)."""
    location = hub_location(path)
    return from_hub(location) if location else Path(path)


def from_hub(location: str) -> Path:
    """The local folder of ``hf://owner/name[@revision]``: downloaded into (or, with
    ``HF_HUB_OFFLINE=1``, only read from) huggingface_hub's cache."""
    from huggingface_hub import snapshot_download  # a dependency of mdt's (and of timm's)
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, _, revision = location[len(HUB) :].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise MdtError(f"'{location}': expected hf://OWNER/NAME[@REVISION]")
    try:
        return Path(snapshot_download(repo, revision=revision or None, allow_patterns=HUB_FILES))
    except LocalEntryNotFoundError:
        raise MdtError(
            f"'{location}' is not in the Hugging Face cache and cannot be downloaded now (HF_HUB_OFFLINE is set, or there is no network)"
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as exc:
        raise MdtError(f"'{location}': {str(exc).splitlines()[0]}") from None
