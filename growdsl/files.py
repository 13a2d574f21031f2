"""What a corpus path holds, decided by file names alone (no torch, no `datasets`): the
backend reads corpora by these rules (growdsl.backend.data) and `check --strict` checks them."""

from __future__ import annotations

from pathlib import Path

TEXT_SUFFIXES = (".txt", ".text", ".md")


def corpus_files(path: Path) -> list[Path]:
    """The files of a corpus: `path` itself, or every non-hidden file under it."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def file_kind(path: Path) -> str | None:
    """`text`, `json` (JSON lines) or `parquet` by suffix; None for anything else."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in (".jsonl", ".json"):
        return "json"
    if suffix == ".parquet":
        return "parquet"
    return None


def is_saved_dataset(path: Path) -> bool:
    """Whether the folder `path` is a Hugging Face dataset saved with `save_to_disk`."""
    return (path / "dataset_info.json").exists() or (path / "state.json").exists()
