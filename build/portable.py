#!/usr/bin/env python3
"""Checks that the binary runs on other machines than the one that built it.

    python build/portable.py hnswlib [--fix]   # hnswlib built for this CPU only? (x86_64)
    python build/portable.py glibc PATH...      # lowest glibc the ELF files under PATHs need

hnswlib builds from source with -march=native unless HNSWLIB_NO_NATIVE is set, and pip
caches the wheel it built, so a native build can come back from the cache long after.
A portable x86_64 build uses the baseline instruction set (SSE2): any AVX register
(ymm/zmm) in its machine code means it was built for this CPU, and would die with SIGILL
on an older one. --fix rebuilds it from source with HNSWLIB_NO_NATIVE=1, bypassing the cache.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path


def hnswlib_native_instructions() -> int | None:
    """How many AVX instructions hnswlib's extension has (None: cannot tell here)."""
    if platform.machine() not in ("x86_64", "AMD64") or not shutil.which("objdump"):
        return None
    spec = importlib.util.find_spec("hnswlib")
    if spec is None or spec.origin is None:
        sys.exit("hnswlib is not installed")
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", spec.origin],
                         capture_output=True, text=True, check=True).stdout
    return len(re.findall(r"%[yz]mm\d", out))


def check_hnswlib(fix: bool) -> int:
    count = hnswlib_native_instructions()
    if count is None:
        print("hnswlib: cannot check on this platform (x86_64 with objdump only); skipped")
        return 0
    if count == 0:
        print("hnswlib: portable build (no AVX instructions)")
        return 0
    print(f"hnswlib: built for this CPU ({count} AVX instructions)")
    if not fix:
        return 1
    version = importlib.metadata.version("hnswlib")
    print(f"rebuilding hnswlib=={version} from source with HNSWLIB_NO_NATIVE=1")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir",
                    "--no-binary", "hnswlib", "--force-reinstall", "--no-deps",
                    f"hnswlib=={version}"],
                   env={**os.environ, "HNSWLIB_NO_NATIVE": "1"}, check=True)
    # A fresh interpreter: this one may have the old extension's path cached.
    return subprocess.run([sys.executable, __file__, "hnswlib"], check=False).returncode


def glibc_versions(root: Path) -> dict[str, tuple[int, ...]]:
    """For each ELF file under root (or root itself): the highest GLIBC_x.y version it needs."""
    found: dict[str, tuple[int, ...]] = {}
    for path in [root] if root.is_file() else sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        out = subprocess.run(["objdump", "-T", str(path)], capture_output=True, text=True,
                             check=False).stdout
        versions = [tuple(int(x) for x in v.split("."))
                    for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)]
        if versions:
            found[str(path) if path == root else str(path.relative_to(root))] = max(versions)
    return found


def report_glibc(roots: list[Path]) -> int:
    if not shutil.which("objdump"):
        sys.exit("objdump not found (binutils)")
    found: dict[str, tuple[int, ...]] = {}
    for root in roots:
        found.update(glibc_versions(root))
    if not found:
        sys.exit(f"no ELF files needing glibc under {', '.join(map(str, roots))}")
    need = max(found.values())
    for name, version in sorted(found.items(), key=lambda kv: kv[1], reverse=True)[:8]:
        print(f"  GLIBC_{'.'.join(map(str, version)):<6} {name}")
    print(f"needs glibc >= {'.'.join(map(str, need))} ({len(found)} ELF files)")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    h = sub.add_parser("hnswlib", help="check (and --fix) that hnswlib is not a native build")
    h.add_argument("--fix", action="store_true")
    g = sub.add_parser("glibc", help="lowest glibc the ELF files under the PATHs need")
    g.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args()
    if args.command == "hnswlib":
        sys.exit(check_hnswlib(args.fix))
    sys.exit(report_glibc(args.paths))


if __name__ == "__main__":
    main()
