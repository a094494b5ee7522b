"""Real filesystems that fail on demand, for the fault tests: a small tmpfs (fills up) and an
ext4 image on a loop device mounted errors=remount-ro (the kernel turns it read-only under
a running server, as it does on a disk error). Each needs root and a kernel that allows it;
otherwise the test is skipped with the reason."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (mount)")


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "12m") -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` (unmounted afterwards)."""
    _need_root("a small tmpfs")
    where.mkdir(parents=True, exist_ok=True)
    r = _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where))
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        if _run("umount", str(where)).returncode != 0:
            _run("umount", "-l", str(where))


def fill(folder: Path, leave: int) -> Path:
    """Write a filler file until about `leave` bytes are free on folder's filesystem."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    filler = folder / "filler"
    with filler.open("ab") as f:
        left = max(0, free - leave)
        block = b"\0" * (1 << 20)
        while left > 0:
            n = min(left, len(block))
            try:
                f.write(block[:n])
                f.flush()
            except OSError:
                break
            left -= n
    return filler


def free_bytes(folder: Path) -> int:
    st = os.statvfs(folder)
    return int(st.f_bavail * st.f_frsize)


class Ext4:
    """An ext4 image on a loop device, mounted with errors=remount-ro."""

    def __init__(self, image: Path, mountpoint: Path) -> None:
        self.image = image
        self.mountpoint = mountpoint
        self.device = ""

    def make_read_only(self) -> None:
        """Report a filesystem error: the kernel remounts it read-only, as after a disk
        error, with the server's files open."""
        name = Path(self.device).name
        (Path("/sys/fs/ext4") / name / "trigger_fs_error").write_text("dakera fault test\n")

    def read_only(self) -> bool:
        """Whether creating a file fails as on a read-only filesystem (the mount flags may
        not say so after an error)."""
        try:
            (self.mountpoint / "probe").touch()
        except OSError as exc:
            return exc.errno == errno.EROFS
        (self.mountpoint / "probe").unlink()
        return False


@contextlib.contextmanager
def ext4_loop(tmp: Path, size_mb: int = 64) -> Iterator[Ext4]:
    _need_root("an ext4 loop device")
    for tool in ("mkfs.ext4", "losetup"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (e2fsprogs, mount)")
    image, mountpoint = tmp / "ext4.img", tmp / "ext4"
    mountpoint.mkdir(parents=True, exist_ok=True)
    with image.open("wb") as f:
        f.truncate(size_mb << 20)
    r = _run("mkfs.ext4", "-q", "-F", str(image))
    if r.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {r.stderr.strip()}")
    r = _run("losetup", "--find", "--show", str(image))
    if r.returncode != 0:
        pytest.skip(f"no loop device here: {r.stderr.strip()}")
    fs = Ext4(image, mountpoint)
    fs.device = r.stdout.strip()
    try:
        r = _run("mount", "-t", "ext4", "-o", "errors=remount-ro", fs.device, str(mountpoint))
        if r.returncode != 0:
            pytest.skip(f"cannot mount an ext4 loop device here: {r.stderr.strip()}")
        if not (Path("/sys/fs/ext4") / Path(fs.device).name / "trigger_fs_error").exists():
            _run("umount", str(mountpoint))
            pytest.skip("this kernel has no /sys/fs/ext4/*/trigger_fs_error")
        try:
            yield fs
        finally:
            if _run("umount", str(mountpoint)).returncode != 0:
                _run("umount", "-l", str(mountpoint))
    finally:
        _run("losetup", "-d", fs.device)
        image.unlink(missing_ok=True)
