"""Output written under a temporary name beside its target and renamed into place, so nothing half-written is seen.

A temporary name says which process made it: `.NAME.partial-PID@MACHINE-XXXXXXXX`. A process that stops where
Python keeps control (an error, Ctrl-C, SIGTERM under the command line) removes its own temporary output. One
killed outright (SIGKILL, a crash) cannot: the next process that stages output in the same folder removes the
temporary output of processes of this machine that no longer run. Another machine's, or a running process's, is
never touched.

A full disk, however a writer reports it (Python's OSError, safetensors' SafetensorError, ...), becomes one
DiskFullError that names the folder and its disk.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What follows ".partial-" in a temporary name: the owner, then mkdtemp's random suffix (which has no "-").
TEMPORARY_NAME = re.compile(r"^\..+\.partial-(?P<pid>\d+)@(?P<machine>.+)-[^-]+$")
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
# How writers that are not Python's report a full disk: only in their message (safetensors: "... No space left on
# device (os error 28)").
DISK_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")
# Writers that report only a short write: torch.save ("[enforce fail at inline_container.cc:672] . unexpected pos
# 704 vs 598"), NumPy's tofile, which gguf uses ("3216448 requested and 1205792 written"). A short write is a full
# disk when the disk is (nearly) full once it failed.
SHORT_WRITE = re.compile(r"unexpected pos \d+ vs \d+|\d+ requested and \d+ written")
NEARLY_FULL_BYTES = 1 << 20


class DiskFullError(OSError):
    """The disk filled up while writing; the message names the folder and its disk."""


def machine() -> str:
    """This machine, as temporary names record it: the host name, and on Linux the process-id namespace, since
    containers on one host may share a host name but not their process ids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return socket.gethostname()
    return f"{socket.gethostname()}~{namespace}"


def temporary_prefix(target: Path) -> str:
    """The start of a temporary name for `target`; tempfile adds a random suffix."""
    return f".{target.name}.partial-{os.getpid()}@{machine()}-"


def has_exited(pid: int) -> bool:
    """Whether no process `pid` runs on this machine (False when in doubt: another user's process, a bad pid)."""
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary output in `folder` left by processes of this machine that no longer run."""
    removed = []
    here = machine()
    for path in folder.iterdir() if folder.is_dir() else []:
        owner = TEMPORARY_NAME.match(path.name)
        if owner is None or owner["machine"] != here or not has_exited(int(owner["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def is_disk_full(error: BaseException, folder: Path) -> bool:
    """Whether `error`, met while writing into `folder`, means that its disk is full."""
    if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
        return True
    if any(text in str(error) for text in DISK_FULL_MESSAGES):
        return True
    free = free_bytes(folder)
    return SHORT_WRITE.search(str(error)) is not None and free is not None and free < NEARLY_FULL_BYTES


def free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(folder: Path) -> DiskFullError:
    folder = Path(folder).absolute()
    mount = next((p for p in [folder, *folder.parents] if os.path.ismount(p)), Path("/"))
    return DiskFullError(
        f"the disk is full: no space left to write into {folder} (on the file system mounted at {mount}). Free some "
        "space there, or write to a folder on another disk, then run again."
    )


@contextmanager
def reporting_full_disk(folder: Path) -> Iterator[None]:
    """Turn a full disk met by any writer inside the block into one DiskFullError naming `folder` and its disk."""
    try:
        yield
    except DiskFullError:
        raise  # already named by an inner block, which knows the folder better
    except Exception as error:
        if is_disk_full(error, folder):
            raise disk_full_error(folder) from error
        raise


@contextmanager
def temporary_folder(beside: Path) -> Iterator[Path]:
    """A new empty folder, under a temporary name beside `beside` (what is about to be written), for the block to
    write in; it is removed with whatever is left in it when the block ends, however it ends."""
    beside = Path(beside)
    remove_stale(beside.parent)
    work = Path(tempfile.mkdtemp(prefix=temporary_prefix(beside), dir=beside.parent))
    try:
        with reporting_full_disk(beside.parent):
            yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def staged_folder(target: Path, replace: bool = False) -> Iterator[Path]:
    """A new folder beside `target` to build it in, renamed to `target` when the block ends; removed, with
    whatever was written in it, when the block fails or is interrupted.

    `target` must not exist yet or be an empty folder, unless `replace` (then the old one is removed only once the
    new one is complete)."""
    target = Path(target)
    if target.exists() and not replace and (not target.is_dir() or any(target.iterdir())):
        raise ValueError(f"{target} already exists and is not an empty folder; choose a new destination.")
    target.parent.mkdir(parents=True, exist_ok=True)
    with temporary_folder(target) as work:
        work.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
        yield work
        if replace and target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif replace and target.exists():
            target.unlink()
        elif target.exists():
            target.rmdir()  # the empty folder checked above (this fails if something was put in it meanwhile)
        work.rename(target)


@contextmanager
def staged_file(target: Path) -> Iterator[Path]:
    """A new temporary file beside `target` to write it in, renamed to `target` when the block ends and removed
    when it fails or is interrupted."""
    target = Path(target)
    remove_stale(target.parent)
    fd, name = tempfile.mkstemp(prefix=temporary_prefix(target), dir=target.parent)
    os.close(fd)
    work = Path(name)
    try:
        work.chmod(0o644)  # mkstemp makes it private; the finished file is an ordinary one
        with reporting_full_disk(target.parent):
            yield work
        os.replace(work, target)
    except BaseException:
        work.unlink(missing_ok=True)
        raise
