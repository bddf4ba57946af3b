"""Every expected failure of the command line is one line on stderr that names the file and the fix, with exit
status 2 and no traceback; and nothing half-written is left behind, whether the command fails, is interrupted
(Ctrl-C, SIGTERM) or is killed outright (the next run removes what a dead process left)."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from malicious import RunsCode
from oracles import random_gpt2

from gpt2_scratch.cli import main
from gpt2_scratch.conversion import from_transformers_gpt2
from gpt2_scratch.staging import remove_stale, temporary_prefix


def run_cli(capsys, *argv) -> tuple[int, list[str]]:
    """The exit status, and the lines written to stderr."""
    try:
        status = main([str(word) for word in argv])
    except KeyboardInterrupt:  # would stop pytest itself
        pytest.fail("Ctrl-C reached the user as a traceback")
    return status, stderr_lines(capsys.readouterr().err)


def stderr_lines(stderr: str) -> list[str]:
    """The lines of stderr other than progress bars (tqdm draws them there too)."""
    return [line for line in stderr.replace("\r", "\n").splitlines() if line.strip() and "%|" not in line]


def assert_one_line_error(status: int, lines: list[str], *names) -> str:
    assert status == 2 and len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    for name in names:
        assert str(name) in lines[0], lines
    return lines[0]


def leftovers(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if ".partial-" in name)


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tokenizer):
    """A checkpoint folder as save_pretrained writes it: config.json, model.safetensors, the tokenizer."""
    folder = tmp_path_factory.mktemp("model")
    from_transformers_gpt2(random_gpt2(3)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def model(model_folder, tmp_path):
    """A copy of the checkpoint folder that a test may damage."""
    return shutil.copytree(model_folder, tmp_path / "model")


# ------------------------------------------------------------------------------------------- corrupt checkpoints


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_a_truncated_or_empty_safetensors_file_is_one_line_for_every_command(model, tmp_path, capsys, monkeypatch,
                                                                             damage):
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2] if damage == "truncated" else b"")
    monkeypatch.setenv("HF_TOKEN", "hf_not_used")  # push fails on the file before it would reach the Hub
    for argv in [("generate", model, "Every effort"), ("classify", model, "Every effort"),
                 ("convert", model, tmp_path / "out"), ("verify", model, model), ("card", model),
                 ("push", model, "user/repo")]:
        assert_one_line_error(*run_cli(capsys, *argv), weights)  # the reader's own words say what is wrong
    assert not (tmp_path / "out").exists()


def test_an_invalid_config_json_is_one_line_with_the_fix(model, capsys):
    (model / "config.json").write_text('{"model_type": "scratch-gpt2",')
    for argv in [("generate", model, "Every effort"), ("classify", model, "Every effort"), ("card", model)]:
        message = assert_one_line_error(*run_cli(capsys, *argv), model / "config.json")
        assert "not valid JSON" in message and ("restore it" in message or "fix or remove it" in message)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the test's own pickle
def test_a_pickle_with_code_is_refused_in_one_line_and_never_run(model, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    (model / "model.safetensors").unlink()
    torch.save({"weights": torch.zeros(2), "payload": RunsCode(marker)}, model / "pytorch_model.bin")
    for argv in [("generate", model, "Every effort"), ("convert", model, tmp_path / "out")]:
        message = assert_one_line_error(*run_cli(capsys, *argv), model / "pytorch_model.bin")
        assert "refusing to load" in message and "GLOBAL posix.system" in message
    assert not marker.exists()


def test_text_that_is_not_utf8_is_one_line(model, capsys):
    # The shell passes bytes; Python decodes those that are not UTF-8 to lone surrogates ("\xff" -> "\udcff").
    prompt = os.fsdecode(b"caf\xe9")
    for argv in [("generate", model, prompt), ("classify", model, prompt), ("tokenize", prompt)]:
        message = assert_one_line_error(*run_cli(capsys, *argv))
        assert "not valid UTF-8 (byte 0xe9 at character 3)" in message


# ------------------------------------------------------------------------------------------- resuming a run


@pytest.fixture(scope="module")
def tiny_run(shared_data, tokenizer_dir, tmp_path_factory) -> list[str]:
    """`pretrain` arguments of a tiny run: the GPT-2 tokenizer, a tiny model, a checkpoint after every step."""
    return ["pretrain", "--data", str(shared_data / "the-verdict.txt"), "--tokenizer", str(tokenizer_dir),
            "--cache-dir", str(tmp_path_factory.mktemp("cache")), "--context", "64", "--max-length", "32",
            "--batch-size", "4", "--eval-every", "0", "--eval-batches", "1", "--max-new-tokens", "2",
            "--save-every", "1", "--no-progress"]


@pytest.fixture(scope="module")
def run_folder(tiny_run, tmp_path_factory):
    """A run of two steps, with checkpoint-1 and checkpoint-2."""
    folder = tmp_path_factory.mktemp("run") / "run"
    assert main([*tiny_run, "--max-steps", "2", "--out", str(folder)]) == 0
    return folder


@pytest.fixture
def run(run_folder, tmp_path):
    return shutil.copytree(run_folder, tmp_path / "run")


def test_resume_skips_a_damaged_checkpoint_for_the_newest_intact_one(run, tiny_run, capsys):
    optimizer = run / "checkpoint-2" / "optimizer.pt"
    optimizer.write_bytes(b"")
    status, lines = run_cli(capsys, *tiny_run, "--max-steps", "2", "--save-every", "0", "--out", run, "--resume")
    assert status == 0 and "Traceback" not in "".join(lines)
    assert lines[0] == (f"resuming from {run / 'checkpoint-1'}, the newest intact checkpoint; skipped: {optimizer} is "
                        "empty: it cannot be read as a torch checkpoint; restore it from a good copy.")
    assert (run / "checkpoint-2" / "optimizer.pt").stat().st_size > 0  # step 2 again, saved whole


def damage(checkpoint, what: str, tmp_path):
    """Damage one file of `checkpoint` as `what` says, and return that file."""
    file = checkpoint / ("model.safetensors" if what == "truncated weights" else
                         "trainer_state.json" if what == "trainer state not JSON" else "optimizer.pt")
    if what == "pickle with code":
        torch.save({"state": {}, "payload": RunsCode(tmp_path / "code-ran")}, file)
    elif what == "trainer state not JSON":
        file.write_text("{")
    else:
        file.write_bytes(file.read_bytes()[:1000] if "truncated" in what else b"")
    return file


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch's note on the test's own pickle
@pytest.mark.parametrize("what", ["empty optimizer", "truncated optimizer", "pickle with code", "truncated weights",
                                  "trainer state not JSON"])
def test_resume_from_a_damaged_checkpoint_is_one_line_naming_the_file(run, tiny_run, tmp_path, capsys, what):
    file = damage(run / "checkpoint-2", what, tmp_path)
    message = assert_one_line_error(*run_cli(capsys, *tiny_run, "--out", run, "--resume", run / "checkpoint-2"), file)
    assert message.startswith("gpt2-scratch pretrain: error: cannot resume: ")
    assert message.endswith("Or start afresh, without resuming.")
    assert not (tmp_path / "code-ran").exists()


def test_resume_with_no_intact_checkpoint_is_one_line(run, tiny_run, capsys):
    for step in (1, 2):
        (run / f"checkpoint-{step}" / "optimizer.pt").write_bytes(b"")
    message = assert_one_line_error(*run_cli(capsys, *tiny_run, "--out", run, "--resume"),
                                    run / "checkpoint-1" / "optimizer.pt", run / "checkpoint-2" / "optimizer.pt")
    assert f"cannot resume: no checkpoint in {run} is intact" in message


# ------------------------------------------------------------------------------------------- full disks


def failing_writes(after_bytes: int):
    """`open` whose files opened for writing take `after_bytes` bytes, then fail as a full disk does."""

    class FullDisk:
        def __init__(self, path, mode="r", **kwargs):
            self.handle, self.room = open(path, mode, **kwargs), after_bytes

        def write(self, data):
            if len(data) > self.room:
                self.handle.write(bytes(data)[: self.room])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.room -= len(data)
            return self.handle.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    def opener(path, mode="r", **kwargs):
        return FullDisk(path, mode, **kwargs) if "w" in mode else open(path, mode, **kwargs)

    return opener


def test_a_full_disk_during_convert_names_the_folder_and_leaves_nothing(model, tmp_path, capsys, monkeypatch):
    import gpt2_scratch.conversion.containers.safetensors_stream as safetensors_stream

    monkeypatch.setattr(safetensors_stream, "open", failing_writes(10_000), raising=False)
    out = tmp_path / "converted" / "out"
    message = assert_one_line_error(*run_cli(capsys, "convert", model, out), out.parent)
    assert message.startswith("gpt2-scratch convert: error: the disk is full") and "another disk" in message
    assert os.listdir(out.parent) == []


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_during_training_names_the_run_folder(run, tiny_run, capsys, monkeypatch):
    import gpt2_scratch.training.loop as loop

    real_save = torch.save

    def save_on_a_full_disk(payload, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt"):
            full_disk()
        return real_save(payload, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_on_a_full_disk)
    message = assert_one_line_error(*run_cli(capsys, *tiny_run, "--max-steps", "3", "--out", run, "--resume"), run)
    assert "the disk is full" in message
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["checkpoint-1", "checkpoint-2"]
    assert leftovers(run) == []

    monkeypatch.setattr(torch, "save", real_save)
    monkeypatch.setattr(loop, "plot_losses", full_disk)  # a write outside any checkpoint: the plots of the run
    message = assert_one_line_error(*run_cli(capsys, *tiny_run, "--max-steps", "3", "--out", run, "--resume"), run)
    assert "the disk is full" in message


TINY_DISK_WRITES = textwrap.dedent(
    """
    import subprocess, sys
    from gpt2_scratch.cli import main

    model, disk = sys.argv[1:3]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", disk], check=True)
    for layout in ["scratch", "book", "llmc", "gguf"]:  # Python's writes, torch.save, llm.c, NumPy's tofile
        print(layout, main(["convert", model, f"{disk}/{layout}", "--to", layout]), flush=True)
    print("pretrain", main([*sys.argv[3:], "--out", f"{disk}/run"]), flush=True)  # safetensors' writer (Rust)
    """
)


@pytest.mark.slow
def test_a_real_full_disk_is_named_whatever_the_writer(tiny_run, tmp_path):
    """A 4 MiB tmpfs in a user and mount namespace (no root needed): each container writer fills it for real."""
    if shutil.which("unshare") is None or subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True
    ).returncode:
        pytest.skip("unprivileged user namespaces are not available here")
    model = tmp_path / "model"
    from_transformers_gpt2(random_gpt2(3, vocab_size=20_000)).save_pretrained(model)  # 5 MiB of embedding
    (tmp_path / "disk").mkdir()
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", sys.executable, "-c", TINY_DISK_WRITES, str(model),
         str(tmp_path / "disk"), *tiny_run, "--max-steps", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    writers = ["scratch", "book", "llmc", "gguf", "pretrain"]
    statuses = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in [[w] for w in writers]]
    assert statuses == [[writer, "2"] for writer in writers]  # pretrain prints its evaluation before its last save
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 5 and "Traceback" not in done.stderr, done.stderr
    for line in errors:
        assert f"the disk is full: no space left to write into {tmp_path / 'disk'}" in line, line


# ------------------------------------------------------------------------------------------- interruptions


def test_ctrl_c_during_convert_leaves_nothing(model, tmp_path, capsys, monkeypatch):
    import gpt2_scratch.conversion.writers as writers

    def interrupted(items, bar):
        yield next(items)
        raise KeyboardInterrupt

    monkeypatch.setattr(writers, "counting", interrupted)
    status, lines = run_cli(capsys, "convert", model, tmp_path / "out")
    assert status == 130 and lines == ["gpt2-scratch convert: interrupted"]
    assert leftovers(tmp_path) == [] and not (tmp_path / "out").exists()


# Converts SRC into DST, stalling after the first tensor so that the test can signal it mid-write.
STALLED_CONVERT = textwrap.dedent(
    """
    import sys, time
    import gpt2_scratch.conversion.writers as writers
    from gpt2_scratch.cli import main

    def stalled(items, bar):
        yield next(items)
        time.sleep(300)
        yield from items

    writers.counting = stalled
    sys.exit(main(["convert", *sys.argv[1:]]))
    """
)


def start_stalled_convert(src, dst) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", STALLED_CONVERT, str(src), str(dst)], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 120
    while not any(name.startswith(f".{dst.name}.partial-") for name in os.listdir(dst.parent)):
        assert process.poll() is None and time.monotonic() < deadline, "the conversion ended before it was stopped"
        time.sleep(0.05)
    return process


@pytest.mark.slow
def test_sigterm_cleans_up_and_the_next_run_removes_what_a_killed_one_left(model, tmp_path):
    killed = start_stalled_convert(model, tmp_path / "first")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    stale = leftovers(tmp_path)
    assert len(stale) == 1 and stale[0].startswith(f".first.partial-{killed.pid}@")

    terminated = start_stalled_convert(model, tmp_path / "second")  # it stages beside the dead process's folder
    assert not (tmp_path / stale[0]).exists()
    running = leftovers(tmp_path)
    assert remove_stale(tmp_path) == [] and leftovers(tmp_path) == running  # a running process's is kept
    terminated.send_signal(signal.SIGTERM)
    assert terminated.wait(timeout=60) == 128 + signal.SIGTERM
    assert stderr_lines(terminated.stderr.read()) == ["gpt2-scratch convert: terminated (SIGTERM)"]
    assert leftovers(tmp_path) == [] and not (tmp_path / "second").exists()


def test_stale_output_of_another_machine_or_a_running_process_is_kept(tmp_path):
    mine = tmp_path / (temporary_prefix(tmp_path / "out") + "abc")
    elsewhere = tmp_path / ".out.partial-1@another-machine-abc"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / (temporary_prefix(tmp_path / "out").replace(f"-{os.getpid()}@", f"-{dead.stdout.strip()}@")
                        + "abc")
    for folder in (mine, elsewhere, stale):
        folder.mkdir()
    (tmp_path / "out.partial-1").mkdir()  # not hidden: not a temporary name
    assert remove_stale(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, elsewhere.name, "out.partial-1"])
