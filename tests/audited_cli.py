"""``mdt`` with every file this process writes into the current folder recorded by a
Python audit hook, written at exit to ``writes_rank<R>.json`` beside the run: the
distributed test reads it to check that only rank 0 writes. ``group_rank<R>.txt`` says
whether the process group was still open at exit ("open" or "closed")."""

import atexit
import json
import os
import sys

CHANGES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
here = os.getcwd()
writes: list[str] = []


def inside(path) -> bool:
    return isinstance(path, (str, bytes, os.PathLike)) and os.path.abspath(os.fsdecode(path)).startswith(here + os.sep)


def record(event: str, args: tuple) -> None:
    if event == "open" and args[2] is not None and args[2] & CHANGES and inside(args[0]):
        writes.append(os.fsdecode(args[0]))
    elif event in ("os.rename", "os.mkdir", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree") and inside(args[0]):
        writes.append(f"{event} {os.fsdecode(args[0])}")


def save() -> None:
    path = os.path.join(here, f"writes_rank{os.environ.get('RANK', '0')}.json")
    text = json.dumps(writes)
    writes.clear()
    with open(path, "w") as f:  # recorded into the cleared list, never saved: harmless
        f.write(text)
    import torch.distributed as dist

    with open(os.path.join(here, f"group_rank{os.environ.get('RANK', '0')}.txt"), "w") as f:
        f.write("open" if dist.is_initialized() else "closed")


sys.addaudithook(record)
atexit.register(save)

from mdt.cli import main  # noqa: E402

main(prog_name="mdt")
