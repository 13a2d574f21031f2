"""Where `growdsl grow` writes: nothing partial under the final name, nothing copied that
growdsl does not know, nothing read through a link out of the source folder.

- `staged_output`: the grown model is written into a temporary sibling folder
  (`.OUT.tmp-<pid>`), every file fsynced, then renamed to OUT. An OUT that exists and is
  not empty is refused (E738) unless `replace`: then the old folder is renamed aside, the
  new one into place, and the old one deleted, so OUT is always either the old model or the
  new one. A write that fails (full disk, read-only target, I/O error) is E739, and the
  temporary folder is removed: OUT is left as it was.
- `copy_side_files`: only the files a model folder is known to hold besides its weights
  and config (tokenizer files, generation config) are copied; a link among them that
  leads out of the source folder is not followed (skipped with a warning).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from growdsl.errors import Diagnostic, GrowError
from growdsl.source import Source

log = logging.getLogger("growdsl.grow")

SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "added_tokens.json", "vocab.txt", "vocab.json", "merges.txt", "tokenizer.model",
              "spiece.model", "sentencepiece.bpe.model", "chat_template.jinja",
              "chat_template.json", "generation_config.json")


def out_error(out_dir: Path, code: str, message: str, hint: str | None) -> GrowError:
    return GrowError([Diagnostic(code=code, message=message, help=hint,
                                 source=Source(path=str(out_dir), text=""))])


def check_out_dir(src_dir: Path, out_dir: Path, replace: bool) -> None:
    """The output must be a directory other than the source, and empty unless `replace`."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise out_error(out_dir, "E738", "the output path is a file or a link, not a directory",
                        "name a new or empty directory for the grown model")
    if out_dir.resolve() == src_dir.resolve():
        raise out_error(out_dir, "E738", "the output directory is the source checkpoint",
                        "write the grown model to another directory")
    if src_dir.resolve() in out_dir.resolve().parents:
        raise out_error(out_dir, "E738", "the output directory is inside the source checkpoint",
                        "write the grown model to a directory outside it")
    if out_dir.is_dir() and not replace:
        held = sorted(p.name for p in out_dir.iterdir())
        if held:
            shown = ", ".join(held[:3]) + (" ..." if len(held) > 3 else "")
            raise out_error(out_dir, "E738", f"the output directory is not empty ({shown})",
                            "choose a new directory, or pass --replace to replace it")


def _fsync_tree(root: Path) -> None:
    for path in [*root.rglob("*"), root]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def staged_output(src_dir: Path, out_dir: Path, replace: bool) -> Iterator[Path]:
    """Yield a temporary folder to write the grown model into; on success it becomes
    `out_dir` (see the module docstring); on an OSError, E739 and nothing left behind."""
    check_out_dir(src_dir, out_dir, replace)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        yield tmp
        _fsync_tree(tmp)
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        reason = "the disk is full" if full else (exc.strerror or str(exc))
        raise out_error(out_dir, "E739", f"cannot write the grown model: {reason}",
                        "free some space or choose a writable directory; nothing was "
                        "written under this name") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not out_dir.exists():       # never lose the old model
            old.rename(out_dir)


def copy_side_files(src_dir: Path, out_dir: Path) -> list[str]:
    """Copy the known non-weight files; returns the names skipped as links out of the
    source folder."""
    root = src_dir.resolve()
    skipped = []
    for name in SIDE_FILES:
        path = src_dir / name
        if not path.exists() and not path.is_symlink():
            continue
        target = path.resolve()
        if path.is_symlink() and root not in target.parents:
            log.warning("not copying %s: a link out of the source folder (to %s)", name, target)
            skipped.append(name)
            continue
        if target.is_file():
            shutil.copyfile(target, out_dir / name)
    return skipped
