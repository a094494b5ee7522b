#!/usr/bin/env python3
"""Wrap a PyInstaller one-folder build into one self-extracting file (see build/launcher.c).

    python build/pack.py --launcher .build/launcher --onedir .build/dist/dakera \
        --version 0.1.0 --out dist/dakera

Each file is xz-compressed on its own (in parallel; results are cached by content hash in
.build/xz-cache, so a rebuild after a code change recompresses only what changed): LZMA2 at
preset 9e with a dictionary as large as the file, behind the x86 BCJ filter for x86-64 ELF
files (machine code compresses about 10% smaller once its call and jump targets are made
absolute; liblzma's stream decoder in the launcher undoes it). The build id, which names
the cache dir the launcher unpacks into, is the version plus a hash of every path, mode and
content: a new build never reuses an old build's unpacked files.
"""

from __future__ import annotations

import argparse
import hashlib
import lzma
import os
import stat
import struct
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MAGIC = b"DAKERA-SFX-1"
HEADER = struct.Struct("<BBHIQQQ")  # type, method, path_len, mode, raw_size, data_size, 0
TRAILER = struct.Struct("<16sQQQ64s24x")
T_DIR, T_FILE, T_LINK = 1, 2, 3
M_STORED, M_XZ = 0, 1
STORE_BELOW = 512  # bytes: not worth an xz header
XZ_PRESET = 9 | lzma.PRESET_EXTREME
EM_X86_64 = 62
CACHE_TAG = "9e-bcj"  # names the cached results of these settings (a change recompresses)

assert HEADER.size == 32 and TRAILER.size == 128


def filters(data: bytes) -> list[dict[str, int]]:
    """The filter chain for one file: BCJ x86 for x86-64 ELF, then LZMA2 with a dictionary
    no larger than the file (the decoder allocates what the header declares)."""
    dict_size = 1 << 16
    while dict_size < len(data) and dict_size < 1 << 26:
        dict_size <<= 1
    chain = [{"id": lzma.FILTER_LZMA2, "preset": XZ_PRESET, "dict_size": dict_size}]
    if data[:4] == b"\x7fELF" and int.from_bytes(data[18:20], "little") == EM_X86_64:
        chain.insert(0, {"id": lzma.FILTER_X86})
    return chain


def compress(args: tuple[str, str]) -> tuple[str, int]:
    """xz one file into the cache (keyed by its sha256 and the filters); returns (cache
    path, size)."""
    src, cached = args
    out = Path(cached)
    if not out.exists():
        raw = Path(src).read_bytes()
        data = lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32,
                             filters=filters(raw))
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(out)
    return cached, out.stat().st_size


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack(launcher: Path, onedir: Path, version: str, out: Path, cache: Path) -> str:
    cache.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[int, str, int, Path]] = []  # type, relative path, mode, source
    for dirpath, dirnames, filenames in os.walk(onedir):
        dirnames.sort()
        base = Path(dirpath)
        for name in dirnames + sorted(filenames):
            path = base / name
            rel = path.relative_to(onedir).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                entries.append((T_LINK, rel, 0o777, path))
            elif stat.S_ISDIR(st.st_mode):
                entries.append((T_DIR, rel, 0o755, path))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                entries.append((T_FILE, rel, mode, path))
            else:
                sys.exit(f"unsupported file type: {path}")
    if not any(t == T_FILE and rel == "dakera" for t, rel, _, _ in entries):
        sys.exit(f"{onedir}/dakera not found: is this a PyInstaller one-folder build?")

    build = hashlib.sha256()
    hashes: dict[str, str] = {}
    for kind, rel, mode, path in entries:
        content = os.readlink(path) if kind == T_LINK else sha256(path) if kind == T_FILE else ""
        hashes[rel] = content
        build.update(f"{kind}\0{rel}\0{mode:o}\0{content}\n".encode())
    build_id = f"{version}-{build.hexdigest()[:16]}"

    jobs = [(str(path), str(cache / f"{hashes[rel]}-{CACHE_TAG}.xz"))
            for kind, rel, _, path in entries
            if kind == T_FILE and path.stat().st_size >= STORE_BELOW]
    jobs.sort(key=lambda job: -Path(job[0]).stat().st_size)  # biggest first: shortest wall time
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        compressed = dict(zip((src for src, _ in jobs), pool.map(compress, jobs), strict=True))

    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        f.write(launcher.read_bytes())
        offset = f.tell()
        for kind, rel, mode, path in entries:
            name = rel.encode()
            if kind == T_LINK:
                data, method, raw = os.readlink(path).encode(), M_STORED, None
            elif kind == T_DIR:
                data, method, raw = b"", M_STORED, None
            else:
                raw_size = path.stat().st_size
                xz = compressed.get(str(path))
                if xz is not None and xz[1] < raw_size * 0.98:
                    data, method, raw = Path(xz[0]).read_bytes(), M_XZ, raw_size
                else:
                    data, method, raw = path.read_bytes(), M_STORED, None
            f.write(HEADER.pack(kind, method, len(name), mode,
                                len(data) if raw is None else raw, len(data), 0))
            f.write(name)
            f.write(data)
        size = f.tell() - offset
        f.write(TRAILER.pack(MAGIC, offset, size, len(entries), build_id.encode()))
    tmp.chmod(0o755)
    tmp.replace(out)
    return build_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launcher", type=Path, required=True)
    parser.add_argument("--onedir", type=Path, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(".build/xz-cache"))
    args = parser.parse_args()
    build_id = pack(args.launcher, args.onedir, args.version, args.out, args.cache)
    size = args.out.stat().st_size
    print(f"{args.out}: {size / 1e6:.1f} MB, build {build_id}")


if __name__ == "__main__":
    main()
