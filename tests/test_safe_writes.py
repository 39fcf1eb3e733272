"""Writers never destroy or mix a user's files: an output that is, or lies inside, its
input is refused whatever --overwrite says, and the refusal does not advise --overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import random_image
from test_recipe_errors import one_line_error


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def photos(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("grid", [False, True])
def test_translating_a_folder_into_itself_is_refused_and_the_originals_stay(cli, trained, tmp_path, grid):
    for i in range(3):
        random_image(tmp_path / "same" / f"p{i}.png", 50, 50, seed=i)
    before = photos(tmp_path / "same")
    flags = ["--grid"] if grid else ["--to", "Blond_Hair"]
    for output in ("same", "same/translated", "./same/../same"):
        line = one_line_error(cli("translate", "--checkpoint", trained, "--input", "same", "--output", output, *flags, "--overwrite"))
        assert "the input 'same'" in line and "whatever --overwrite says" in line, line
        assert "pass --overwrite" not in line
    assert photos(tmp_path / "same") == before  # not one byte changed, nothing added


def test_translating_a_file_onto_itself_is_refused(cli, trained, tmp_path):
    random_image(tmp_path / "x.png", 50, 50, seed=1)
    before = (tmp_path / "x.png").read_bytes()
    (tmp_path / "link.png").symlink_to(tmp_path / "x.png")
    for output in ("x.png", "link.png"):  # the same file under another name: resolved first
        line = one_line_error(
            cli("translate", "--checkpoint", trained, "--input", "x.png", "--output", output, "--to", "Glasses", "--overwrite")
        )
        assert f"output '{output}' is the input 'x.png'" in line and "pass --overwrite" not in line, line
    assert (tmp_path / "x.png").read_bytes() == before


def test_aligning_a_folder_into_itself_is_refused(cli, trained, tmp_path):
    for i in range(2):
        random_image(tmp_path / "inside" / f"p{i}.png", 60, 40, seed=i)
    before = photos(tmp_path / "inside")
    line = one_line_error(cli("align", "inside", "inside", "--checkpoint", trained, "--overwrite"))
    assert "the input 'inside'" in line and "pass --overwrite" not in line, line
    assert photos(tmp_path / "inside") == before


def test_a_read_only_output_folder_is_named_not_the_hidden_temporary_file(cli, trained, tmp_path, monkeypatch):
    """On a read-only file system both the write of the temporary file and its clean-up
    fail (unlink says EROFS even for a file that is not there): the line names the output
    the user asked for. Injected, as a test run by root can write anywhere."""
    import builtins
    import errno
    import pathlib

    import mdt.writing

    locked = tmp_path / "locked"
    locked.mkdir()
    refusal = OSError(errno.EROFS, "Read-only file system")

    def refused_open(file, *args, **kwargs):
        if Path(file).resolve().parent == locked:
            raise OSError(refusal.errno, refusal.strerror, str(file))
        return builtins.open(file, *args, **kwargs)

    real_unlink = pathlib.Path.unlink

    def refused_unlink(self, missing_ok=False):
        if self.resolve().parent == locked:
            raise OSError(refusal.errno, refusal.strerror, str(self))
        return real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(mdt.writing, "open", refused_open, raising=False)
    monkeypatch.setattr(pathlib.Path, "unlink", refused_unlink)
    random_image(tmp_path / "in" / "a.png", 60, 40, seed=0)
    line = one_line_error(cli("align", "in/a.png", "locked/a.png", "--checkpoint", trained))
    assert line == "error: cannot use 'locked/a.png': Read-only file system", line
    line = one_line_error(cli("align", "in", "locked", "--checkpoint", trained, "--overwrite"))
    assert line == f"error: cannot use '{Path('locked') / 'a.png'}': Read-only file system", line


def test_a_full_disk_under_a_model_folder_or_an_export_is_one_line_naming_the_users_path(cli, trained, tmp_path, monkeypatch):
    """A full disk while the files are staged: one line naming the file inside the output
    the user gave (not the hidden scratch folder), no traceback (safetensors reports it as
    its own SafetensorError), and nothing left behind. Injected where the bytes are
    written, as a test cannot fill a disk."""
    import builtins
    import errno

    from safetensors import SafetensorError

    import mdt.checkpoint
    import mdt.export

    def full(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    def full_open(file, mode="r", *args, **kwargs):
        if "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(mdt.checkpoint, "save_file", full)
    monkeypatch.setattr(mdt.export, "open", full_open, raising=False)
    line = one_line_error(cli("save-pretrained", trained, "model", "--license", "mit"))
    assert line == f"error: cannot use '{Path('model') / 'model.safetensors'}': No space left on device", line
    line = one_line_error(cli("export", "--checkpoint", trained, "--format", "onnx", "--out", "exported"))
    assert line.startswith(f"error: cannot use '{Path('exported')}") and line.endswith(".onnx': No space left on device"), line
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".model", ".exported", "model", "exported"))) == []


def test_an_empty_path_is_refused_not_taken_for_the_current_folder(cli, trained, tmp_path):
    random_image(tmp_path / "x.png", 40, 40, seed=2)
    before = sorted(p.name for p in tmp_path.iterdir())
    for args, named in (
        (["translate", "--checkpoint", trained, "--input", "x.png", "--output", "", "--to", "Glasses"], "--output"),
        (["translate", "--checkpoint", trained, "--input", "", "--output", "o.png", "--to", "Glasses"], "--input"),
        (["align", "x.png", "", "--checkpoint", trained], "OUTPUT"),
        (["export", "--checkpoint", trained, "--format", "onnx", "--out", ""], "--out"),
        (["run", "quickstart", "--out", " "], "--out"),
    ):
        line = one_line_error(cli(*args))
        assert f"{named} is empty" in line, (args, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written here


def test_an_existing_folder_with_a_dot_in_its_name_is_a_folder(cli, trained, tmp_path):
    for i in range(2):
        random_image(tmp_path / "in" / f"p{i}.png", 40, 40, seed=i)
    (tmp_path / "exp.v2").mkdir()
    result = cli("translate", "--checkpoint", trained, "--input", "in", "--output", "exp.v2", "--grid")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "exp.v2").iterdir()) == ["p0.png", "p1.png"]  # a grid per input, inside it
    (tmp_path / "onnx.v2").mkdir()
    result = cli("export", "--checkpoint", trained, "--format", "torchscript", "--out", "onnx.v2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "onnx.v2").iterdir()) == ["discriminator.pt", "generator.pt"]


def test_a_folder_says_which_files_it_left_out(cli, trained, tmp_path):
    from PIL import Image

    for i in range(2):
        random_image(tmp_path / "in" / f"p{i}.png", 40, 40, seed=i)
    Image.open(tmp_path / "in" / "p0.png").save(tmp_path / "in" / "moving.gif")  # read as a single file: so in a folder
    (tmp_path / "in" / "notes.txt").write_text("not a picture")
    (tmp_path / "in" / "more.txt").write_text("nor this")
    result = cli("translate", "--checkpoint", trained, "--input", "in", "--output", "out", "--to", "Glasses")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["moving.png", "p0.png", "p1.png"]
    assert "left out 2 files of 'in' that are not images: .txt (2)" in result.output


def test_a_model_folder_is_never_written_into_a_run_folder(cli, trained, tmp_path):
    """A model.safetensors in a run folder would be what every command reads, while the
    run's checkpoints/ moves on when it resumes."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = sorted(p.name for p in run.iterdir())
    line = one_line_error(cli("save-pretrained", "run", "run", "--overwrite"))
    assert "'run' is a run folder" in line and "pass --overwrite" not in line, line
    assert sorted(p.name for p in run.iterdir()) == before


def test_a_file_that_appears_while_writing_is_never_replaced_unless_asked(tmp_path):
    """The last step of every write of a user's file takes its name exclusively: another
    process's file there stays whole, and the refusal names the file as given."""
    from mdt.errors import MdtError
    from mdt.writing import write_file

    target = tmp_path / "out" / "a.png"
    write_file(target, lambda f: f.write(b"first"), replace=False)
    with pytest.raises(MdtError, match=r"'.*/out/a\.png' appeared while this command was writing: another process writes there"):
        write_file(target, lambda f: f.write(b"second"), replace=False)
    assert target.read_bytes() == b"first"
    write_file(target, lambda f: f.write(b"third"))  # asked to replace: it does
    assert target.read_bytes() == b"third"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]  # no temporary left behind


def test_two_translations_into_one_new_folder_leave_one_complete_result(trained, tmp_path):
    """Started together: one writes every file, the other stops in one line (at the check
    before writing, or at its first file if both passed it), and no file is the loser's."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    from mdt.inference import load_translator

    for i in range(24):
        random_image(tmp_path / "in" / f"p{i:02d}.png", 40, 40, seed=i)
    runs = {
        hair: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mdt.cli",
                "translate",
                "--checkpoint",
                str(trained),
                "--input",
                "in",
                "--output",
                "out",
                "--to",
                hair,
                "--batch-size",
                "1",
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hair in ("Blond_Hair", "Black_Hair")
    }
    done = {hair: (process.wait(timeout=600), process.stderr.read()) for hair, process in runs.items()}
    codes = sorted(code for code, _ in done.values())
    assert codes == [0, 2], done
    winner = next(hair for hair, (code, _) in done.items() if code == 0)
    loser_error = next(err for code, err in done.values() if code == 2).strip().splitlines()[-1]
    assert loser_error.startswith("error: ") and ("another process writes there" in loser_error or "exists" in loser_error), loser_error
    translator = load_translator(trained, device="cpu")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == [f"p{i:02d}.png" for i in range(24)]
    for name in files:
        expected = np.asarray(translator(Image.open(tmp_path / "in" / name).convert("RGB"), to={winner: 1}), dtype=int)
        assert np.abs(np.asarray(Image.open(tmp_path / "out" / name), dtype=int) - expected).max() <= 1, name


def _one_model(folder) -> int:
    """The step of the model in ``folder``, after checking that every file of it is of that
    model: the weights, the recipe, the card and the sample grid."""
    import tomllib

    from mdt import checkpoint as ckpt

    saved = ckpt.read(folder / "model.safetensors", training=False)
    assert tomllib.loads((folder / "recipe.toml").read_text()) == tomllib.loads(saved.recipe_text)
    assert f"trained with mdt for {saved.step} iterations" in (folder / "README.md").read_text()
    return saved.step


@pytest.mark.slow
def test_a_model_folder_killed_while_saved_is_the_old_one_or_the_new_one(trained, tmp_path):
    """Ten kills at random moments of `mdt save-pretrained --overwrite`, each replacing a
    model of one step with the other's: the folder is always one whole model, and the next
    save removes what the killed ones left beside it."""
    import random
    import subprocess
    import sys
    import time

    steps = {1: trained / "checkpoints" / "step_00000001.safetensors", 2: trained / "checkpoints" / "step_00000002.safetensors"}

    def save(step: int) -> subprocess.Popen:
        command = [sys.executable, "-m", "mdt.cli", "save-pretrained", str(steps[step]), "shared", "--overwrite"]
        return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    started = time.perf_counter()
    assert save(1).wait(timeout=300) == 0
    whole = time.perf_counter() - started  # kills fall in its last third, where the files are written
    samples = {step: (trained / "samples" / f"step_{step:08d}.png").read_bytes() for step in steps}
    chance, seen = random.Random(11), set()
    for kill in range(10):
        process = save(2 if kill % 2 == 0 else 1)
        time.sleep(chance.uniform(0.67, 1.0) * whole)
        process.kill()
        process.wait(timeout=60)
        step = _one_model(tmp_path / "shared")
        assert (tmp_path / "shared" / "sample.png").read_bytes() == samples[step]
        seen.add(step)
    process = save(2)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert _one_model(tmp_path / "shared") == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # the killed saves' scratch is gone
    assert seen == {1, 2}, seen  # kills landed before the new folder took its place, and after


KILL_AT_RENAME = """
import os, signal, sys
import mdt.writing
kill_at, calls = int(sys.argv[1]), [0]

def counted(real):
    def call(*args, **kwargs):
        result = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == kill_at:  # right after it: between it and the next
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    return call

os.replace, os.rename = counted(os.replace), counted(os.rename)
mdt.writing._exchange = counted(mdt.writing._exchange)
from mdt.cli import main
try:
    main(sys.argv[2:])
finally:
    print("renames:", calls[0], file=sys.stderr)
"""


def test_a_kill_between_any_two_renames_of_a_model_folder_leaves_one_whole_model(trained, tmp_path):
    """The process killed right after each rename (and exchange) that saving a model folder
    makes, in turn: the folder is the old model or the new one every time, and the next
    save removes what the killed ones left beside it."""
    import subprocess
    import sys

    def save(step: int, kill_at: int) -> subprocess.CompletedProcess:
        source = trained / "checkpoints" / f"step_{step:08d}.safetensors"
        command = [sys.executable, "-c", KILL_AT_RENAME, str(kill_at), "save-pretrained", str(source), "shared", "--overwrite"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)

    first = save(1, 0)  # no kill: how many renames a save makes
    assert first.returncode == 0, first.stderr
    renames = int(first.stderr.rsplit("renames:", 1)[1])
    assert renames >= 2
    outcomes = []
    for kill_at in range(1, renames + 1):
        there = _one_model(tmp_path / "shared")
        assert save(3 - there, kill_at).returncode == -9  # the other model, killed after this rename
        outcomes.append(_one_model(tmp_path / "shared") != there)
    assert outcomes[-1] and not outcomes[0]  # the old model until the last rename, the new one after it
    done = save(2, 0)
    assert done.returncode == 0 and _one_model(tmp_path / "shared") == 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_export_killed_after_any_rename_is_the_old_export_or_the_new_one(trained, tmp_path):
    """The same for `mdt export --overwrite` into a folder: its files are all of one model."""
    import subprocess
    import sys

    def export(step: int, out: str, kill_at: int = 0) -> subprocess.CompletedProcess:
        source = trained / "checkpoints" / f"step_{step:08d}.safetensors"
        command = [sys.executable, "-c", KILL_AT_RENAME, str(kill_at), "export", "--checkpoint", str(source), "--format", "torchscript"]
        return subprocess.run(
            [*command, "--out", out, "--overwrite"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
        )

    def files(folder: str) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((tmp_path / folder).iterdir())}

    for step in (1, 2):
        assert export(step, f"ref{step}").returncode == 0
    models = {step: files(f"ref{step}") for step in (1, 2)}
    assert export(1, "ref1").returncode == 0 and files("ref1") == models[1]  # the same model exports the same bytes
    assert models[1] != models[2]
    first = export(1, "exp")
    renames = int(first.stderr.rsplit("renames:", 1)[1])
    (tmp_path / "exp" / "notes.txt").write_text("mine")  # a file of the user's in the folder stays
    outcomes = []
    for kill_at in range(1, renames + 1):
        there = next(step for step, model in models.items() if model.items() <= files("exp").items())
        assert export(3 - there, "exp", kill_at).returncode == -9
        now = files("exp")
        assert now.pop("notes.txt") == b"mine"
        assert now in (models[1], models[2])  # one model's files, all of them, nothing else
        outcomes.append(now != models[there])
    assert outcomes[-1] and not outcomes[0]
    assert export(2, "exp").returncode == 0 and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_two_loggers_writing_to_one_place_are_refused_before_a_run(cli):
    line = one_line_error(cli("recipe", "check", "quickstart", "--set", "loggers.a.type=csv", "--set", "loggers.b.type=csv"))
    assert "[loggers.a] and [loggers.b] both write to log.csv in the run folder" in line, line
    line = one_line_error(
        cli("recipe", "check", "quickstart", "--set", "loggers.tb.type=tensorboard", "--set", "loggers.tb2.type=tensorboard")
    )
    assert "both write to the folder tensorboard/ in the run folder" in line, line
    apart = cli(
        "recipe", "check", "quickstart", "--set", "loggers.a.type=csv", "--set", "loggers.b.type=csv", "--set", "loggers.b.file=b.csv"
    )
    assert apart.exit_code == 0, apart.output


def test_a_checkpoint_pruned_while_it_is_read_is_found_again(trained, tmp_path, monkeypatch):
    """A command reading a run that trains: the newest checkpoint it found is pruned (a
    newer one saved) before it reads it; it reads the newer one instead of saying that a
    file does not exist."""
    import shutil

    from mdt import checkpoint as ckpt
    from mdt.inference import read_model

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    newest = run / "checkpoints" / "step_00000002.safetensors"
    real_read, calls = ckpt.read, []

    def read_while_the_run_saves_and_prunes(path, *args, **kwargs):
        calls.append(Path(path).name)
        if len(calls) == 1:  # the run saves step 3 and prunes step 2 in between
            shutil.copyfile(newest, run / "checkpoints" / "step_00000003.safetensors")
            newest.unlink()
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(ckpt, "read", read_while_the_run_saves_and_prunes)
    file, saved = read_model(run)
    assert calls == ["step_00000002.safetensors", "step_00000003.safetensors"]
    assert file.name == "step_00000003.safetensors" and saved.step == 2  # a copy of step 2's file, as saved here
    from mdt.errors import MdtError

    with pytest.raises(MdtError, match="does not exist"):  # a file the user names is not replaced by another
        read_model(newest)


def test_a_new_folder_filled_by_another_writer_meanwhile_is_left_as_it_is(tmp_path):
    """A model folder or export made for a new place stops in one line where another
    process has put files there since, rather than swapping them away."""
    from mdt.errors import MdtError
    from mdt.writing import scratch_folder, swap_in

    out = tmp_path / "shared"
    ready = scratch_folder(out)
    (ready / "model.safetensors").write_bytes(b"ours")
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"theirs")  # the other writer, first
    with pytest.raises(MdtError, match=r"'.*shared' was filled while this command was writing: another process writes there"):
        swap_in(ready, out, replace=False)
    assert (out / "model.safetensors").read_bytes() == b"theirs"
    swap_in(ready, out, replace=True)  # asked to replace: it does, at once
    assert (out / "model.safetensors").read_bytes() == b"ours" and not ready.exists()


def _started_together(commands: dict[str, list[str]], cwd) -> dict[str, tuple[int, str]]:
    """Each command as its own `mdt` process, all started before any is waited for:
    {name: (exit code, its last line on stderr)}."""
    import subprocess
    import sys

    processes = {
        name: subprocess.Popen([sys.executable, "-m", "mdt.cli", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in commands.items()
    }
    done = {}
    for name, process in processes.items():
        _, err = process.communicate(timeout=600)
        done[name] = (process.returncode, (err.strip().splitlines() or [""])[-1])
    return done


def _one_winner(done: dict[str, tuple[int, str]]) -> str:
    """Exactly one writer finished; the other stopped with exit code 2 and one error line:
    the output is taken while it writes, or exists, or already holds the finisher's files
    when the other starts only after it finished (which of the three is timing)."""
    assert sorted(code for code, _ in done.values()) == [0, 2], done
    loser_line = next(line for code, line in done.values() if code == 2)
    reasons = ("another process writes there", "exists", "already holds files")
    assert loser_line.startswith("error: ") and any(reason in loser_line for reason in reasons), loser_line
    return next(name for name, (code, _) in done.items() if code == 0)


@pytest.mark.parametrize("command", ["save-pretrained", "export", "align"])
def test_two_writers_into_one_new_output_leave_one_complete_result(trained, tmp_path, command):
    """Two saves of different models, two exports of different models, two alignments at
    different sizes, into one output that does not exist yet: one finishes, the other stops
    in one line, and the output is wholly the finisher's."""
    import numpy as np
    from PIL import Image

    steps = {name: str(trained / "checkpoints" / f"step_{step:08d}.safetensors") for name, step in (("one", 1), ("two", 2))}
    if command == "save-pretrained":
        commands = {name: ["save-pretrained", source, "shared"] for name, source in steps.items()}
    elif command == "export":
        for name, source in steps.items():  # each model's export, made alone, to compare with
            alone = _started_together(
                {name: ["export", "--checkpoint", source, "--format", "torchscript", "--out", f"ref_{name}"]}, tmp_path
            )
            assert alone[name][0] == 0, alone
        commands = {
            name: ["export", "--checkpoint", source, "--format", "torchscript", "--out", "shared"] for name, source in steps.items()
        }
    else:
        for i in range(12):
            random_image(tmp_path / "in" / f"p{i:02d}.png", 60, 44, seed=i)
        commands = {
            name: ["align", "in", "shared", "--checkpoint", steps[name], "--size", str(size)] for name, size in (("one", 24), ("two", 40))
        }
    winner = _one_winner(_started_together(commands, tmp_path))
    if command == "save-pretrained":
        assert _one_model(tmp_path / "shared") == {"one": 1, "two": 2}[winner]
    elif command == "export":
        assert photos(tmp_path / "shared") == photos(tmp_path / f"ref_{winner}")
    else:
        size = {"one": 24, "two": 40}[winner]
        assert sorted(photos(tmp_path / "shared")) == [f"p{i:02d}.png" for i in range(12)]
        assert all(np.asarray(Image.open(p)).shape[:2] == (size, size) for p in (tmp_path / "shared").iterdir())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch left behind


@pytest.mark.slow
def test_an_export_killed_at_random_moments_is_the_old_export_or_the_new_one(trained, tmp_path):
    """Ten kills at random moments of `mdt export --overwrite`, each replacing one model's
    export with the other's: the folder always holds one model's files, all of them, and
    the next export removes what the killed ones left beside it."""
    import random
    import subprocess
    import sys
    import time

    def export(step: int, out: str) -> subprocess.Popen:
        source = trained / "checkpoints" / f"step_{step:08d}.safetensors"
        command = [
            sys.executable,
            "-m",
            "mdt.cli",
            "export",
            "--checkpoint",
            str(source),
            "--format",
            "torchscript",
            "--out",
            out,
            "--overwrite",
        ]
        return subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    models = {}
    for step in (1, 2):
        assert export(step, f"ref{step}").wait(timeout=300) == 0
        models[step] = photos(tmp_path / f"ref{step}")
    started = time.perf_counter()
    assert export(1, "exp").wait(timeout=300) == 0
    whole = time.perf_counter() - started  # kills fall in its last third, where the files are written
    chance, seen = random.Random(7), set()
    for kill in range(10):
        process = export(2 if kill % 2 == 0 else 1, "exp")
        time.sleep(chance.uniform(0.67, 1.0) * whole)
        process.kill()
        process.wait(timeout=60)
        now = photos(tmp_path / "exp")
        step = next((step for step, files in models.items() if files == now), None)
        assert step is not None, sorted(now)  # one model's files, all of them, nothing else
        seen.add(step)
    process = export(2, "exp")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert photos(tmp_path / "exp") == models[2]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert seen == {1, 2}, seen


def test_a_file_system_without_locks_still_takes_an_export(tmp_path, monkeypatch):
    """Where flock is refused (some network shares), the folder is still written whole."""
    import errno
    import fcntl

    from mdt.export import write_folder

    def refused(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refused)
    write_folder(tmp_path / "exp", {tmp_path / "exp" / "generator.pt": b"model"}, overwrite=False, suffix=".pt")
    assert photos(tmp_path / "exp") == {"generator.pt": b"model"}


def test_an_error_while_staging_names_the_file_in_the_users_output(tmp_path):
    """Errors raised while a model folder is staged name the output as the user gave it:
    a staged file's own path, a copy's destination (its error names the source first),
    and ``out`` itself where the system names no file (write_text on a full disk)."""
    import errno

    from mdt.writing import staged_as

    ready, out = tmp_path / ".model.123.abcd0123.tmp", tmp_path / "model"

    def raised(error: OSError) -> OSError:
        with pytest.raises(OSError) as caught, staged_as(ready, out):
            raise error
        return caught.value

    full = (errno.ENOSPC, "No space left on device")
    assert raised(OSError(*full, str(ready / "model.safetensors"))).filename == str(out / "model.safetensors")
    assert raised(OSError(*full, str(tmp_path / "run" / "grid.png"), None, str(ready / "sample.png"))).filename == str(out / "sample.png")
    assert raised(OSError(*full)).filename == str(out)
    elsewhere = raised(OSError(errno.EACCES, "Permission denied", str(tmp_path / "run" / "grid.png")))
    assert elsewhere.filename == str(tmp_path / "run" / "grid.png")  # not a staged file: left as it is
