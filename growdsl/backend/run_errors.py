"""The user mistakes `growdsl run` can meet, as located diagnostics (codes E710-E722).

E710 corpus missing (or the demo corpus not downloadable), E711 corpus empty or too small,
E712 corpus format not understood, E713 tokenizer missing or its vocabulary does not match
the spec (or the spec's vocabulary is too small for the tokenizer trained on the corpus),
E714 starting checkpoint of the wrong shape, E715 output directory holds another run, E716
disk full, E717 loss not finite, E718 a `preserve` growth step did not preserve, E719 plan
not verified (or a setting the executor does not support, such as fp16), E720 a stage's
batch does not split over the torchrun world size, E721 a plan `GrowthTrainer` cannot train
(sub-models, a masked growth step), E722 a tracker unknown or not installed; and, shared
with `grow`, E742 stored tensors of the `init from` checkpoint that growdsl would not carry
(neither known inert nor dropped by `--drop`), E743 a `--drop` glob matching none of them.
"""

from __future__ import annotations

import dataclasses
import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from growdsl.errors import Diagnostic, GrowError
from growdsl.source import NO_SPAN, Source, Span

# write errors that are the machine's, not a bug (E716): full disk or quota, read-only or
# forbidden target, I/O error
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def reason_of(exc: OSError) -> str:
    """Why a write failed, in words (E716's message)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return exc.strerror or str(exc)


def run_error(code: str, message: str, help: str | None = None,
              source: Source | None = None, span: Span = NO_SPAN) -> GrowError:
    """A `GrowError` with one diagnostic (reported as `spec:line:col` when a span is known)."""
    return GrowError([Diagnostic(code=code, message=message, help=help, source=source,
                                 span=span)])


def with_source(error: GrowError, source: Source) -> GrowError:
    """`error` with `source` filled into diagnostics that have none (for the file name)."""
    return GrowError([d if d.source is not None else dataclasses.replace(d, source=source)
                      for d in error.diagnostics])


def fail(code: str, message: str, help: str | None = None,
         source: Source | None = None, span: Span = NO_SPAN) -> NoReturn:
    """Raise `run_error(...)`."""
    raise run_error(code, message, help, source, span)


@contextmanager
def write_errors(where: Path, help: str, source: Source | None,
                 what: str | None = None) -> Iterator[None]:
    """A write that failed for the machine's reasons (WRITE_ERRNOS: full disk, read-only,
    forbidden) as E716 "cannot write WHAT: why", WHAT being `what`, else the file the
    system named, else `where`; any other OSError is a bug and raised as it is."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        target = what or exc.filename or where
        fail("E716", f"cannot write {target}: {reason_of(exc)}", help, source)
