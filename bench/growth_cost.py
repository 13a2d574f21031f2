"""Growth cost: wall time and peak memory of `growdsl grow` (streaming) on random GPT-2
checkpoints of increasing size, up to GPT-2-XL's shape (48 layers, hidden 1600, 1.56B
parameters, 6.2 GB in fp32), 2x depth (`stack`) and 2x width (`clone`: hidden, heads and FFN),
against the machine's copy bandwidth measured in the same run, and against mergekit's
`passthrough` stacking of the same checkpoint (the same 2x depth).

Every tool runs as its own process: `growdsl grow SRC OUT --to ... --ops ...` and
`mergekit-yaml CONFIG OUT` (from the virtualenv `--mergekit-venv`; the row is skipped with a
message when it is missing). A watcher polls the process's /proc status every 5 ms for its
peak anonymous memory (RssAnon: the tool's own memory; memory-mapped source pages are page
cache, not counted) and its peak resident set (VmHWM, page cache included). Each time
includes fsync of the written files. Bandwidth: bytes read (the source) plus bytes written,
per second, as a fraction of copying the source file (`shutil.copyfile` + fsync: read + write)
timed in the same run. The source was just written, so its reads come from the page cache
for every tool alike.

    .venv/bin/python -m bench.growth_cost                      # small .. XL: about 17 minutes
    .venv/bin/python -m bench.growth_cost --sizes small,medium,xl  # 13 minutes measured

Needs about 3.5x the largest source free on the disk under `--tmp` (XL: 6.2 GB source,
12 GB deeper, 24 GB wider, each output removed after it is measured). `--smoke`: a tiny
model (seconds). Results: bench/results/growth_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.runs import REPO, versions

RESULTS = REPO / "bench" / "results" / "growth_cost.json"
SIZES = {"tiny": (2, 64, 1000), "small": (12, 768, 50257), "medium": (24, 1024, 50257),
         "large": (36, 1280, 50257), "xl": (48, 1600, 50257)}   # layers, hidden, vocab
GROWTHS = {"2x depth": ("depth=2*L", "stack"),
           "2x width": ("hidden=2*D heads=2*H ffn=2*F", "clone")}
MERGEKIT_VENV = Path("/tmp/mergekit-venv")


class ProcWatcher(threading.Thread):
    """Peak RssAnon and the last VmHWM (kB) of a running process."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_anon, self.hwm, self.done = pid, 0, 0, threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.done.is_set():
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        self.peak_anon = max(self.peak_anon, int(line.split()[1]))
                    elif line.startswith("VmHWM:"):
                        self.hwm = max(self.hwm, int(line.split()[1]))
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.005)


def fsync_tree(path: Path) -> int:
    """fsync every file under `path`; their total size."""
    total = 0
    for f in (p for p in path.rglob("*") if p.is_file()):
        with open(f, "rb+") as handle:
            os.fsync(handle.fileno())
        total += f.stat().st_size
    return total


def measure(cmd: list[str], out: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd` (which writes `out`), watching its memory; time includes the fsync."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    watcher = ProcWatcher(proc.pid)
    watcher.start()
    output, _ = proc.communicate()
    watcher.done.set()
    watcher.join()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    written = fsync_tree(out)
    return {"seconds": time.perf_counter() - start, "peak_anon_mb": watcher.peak_anon / 1024,
            "peak_rss_mb": watcher.hwm / 1024, "written": written}


def make_source(path: Path, layers: int, hidden: int, vocab: int) -> int:
    """A random GPT-2 checkpoint (fp32 safetensors); its size in bytes."""
    import torch

    from growdsl.backend.models import build_model, save_model
    from growdsl.backend.testing import tiny_shape

    torch.manual_seed(0)
    shape = tiny_shape("gpt2", layers=layers, heads=max(1, hidden // 64),
                       head_dim=min(64, hidden), ffn=4 * hidden, vocab=vocab, positions=1024)
    model = build_model(shape)
    save_model(model, path)
    del model
    return sum(p.stat().st_size for p in path.glob("*.safetensors"))


def copy_bandwidth(src: Path, tmp: Path) -> float:
    """Bytes/s of reading and writing: copying the source file, fsync included (2 x size)."""
    file = next(src.glob("*.safetensors"))
    dst = tmp / "copy.safetensors"
    start = time.perf_counter()
    shutil.copyfile(file, dst)
    with open(dst, "rb+") as handle:
        os.fsync(handle.fileno())
    seconds = time.perf_counter() - start
    dst.unlink()
    return 2 * file.stat().st_size / seconds


def mergekit_cmd(venv: Path, src: Path, out: Path, layers: int, tmp: Path) -> list[str] | None:
    exe = venv / "bin" / "mergekit-yaml"
    if not exe.exists():
        return None
    config = tmp / "passthrough.yml"
    slices = "".join(f"  - sources:\n      - model: {src}\n        layer_range: [0, {layers}]\n"
                     for _ in range(2))
    config.write_text(f"slices:\n{slices}merge_method: passthrough\ndtype: float32\n")
    return [str(exe), str(config), str(out), "--lazy-unpickle", "--allow-crimes"]


def one_size(name: str, tmp: Path, mergekit: Path) -> list[dict[str, Any]]:
    layers, hidden, vocab = SIZES[name]
    src = tmp / f"src-{name}"
    size = make_source(src, layers, hidden, vocab)
    bandwidth = copy_bandwidth(src, tmp)
    layer_mb = 12 * hidden * hidden * 4 / 1e6          # one GPT-2 layer's weights, fp32
    print(f"{name}: source {size / 1e6:.0f} MB ({layers} layers, hidden {hidden}); copy "
          f"bandwidth {bandwidth / 1e6:.0f} MB/s (read + write)", flush=True)
    rows = []
    tools: list[tuple[str, str, list[str] | None]] = [
        (g, "growdsl grow", [sys.executable, "-m", "growdsl", "grow", str(src), "{out}",
                             "--to", to, "--ops", ops]) for g, (to, ops) in GROWTHS.items()]
    tools.append(("2x depth", "mergekit passthrough",
                  mergekit_cmd(mergekit, src, tmp / "out", layers, tmp)))
    for growth, tool, cmd in tools:
        out = tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        row: dict[str, Any] = {"size": name, "source_mb": size / 1e6, "growth": growth,
                               "tool": tool, "copy_mb_s": bandwidth / 1e6,
                               "grown_layer_mb": layer_mb * (4 if "width" in growth else 1)}
        if cmd is None:
            row["skipped"] = f"mergekit not installed in {mergekit} (pip install mergekit there)"
            print(f"  {growth}, {tool}: skipped: {row['skipped']}")
            rows.append(row)
            continue
        try:
            row.update(measure([c.replace("{out}", str(out)) for c in cmd], out))
        except RuntimeError as exc:
            row["skipped"] = f"failed: {str(exc)[-500:]}"
            print(f"  {growth}, {tool}: FAILED {exc}")
            rows.append(row)
            continue
        moved = size + row["written"]
        row["mb_s"] = moved / 1e6 / row["seconds"]
        row["fraction_of_copy"] = moved / row["seconds"] / bandwidth
        row["peak_anon_vs_grown"] = row["peak_anon_mb"] / (row["written"] / 1e6)
        rows.append(row)
        print(f"  {growth}, {tool}: {row['seconds']:.1f} s, wrote {row['written'] / 1e6:.0f} MB, "
              f"{row['mb_s']:.0f} MB/s read+write = {row['fraction_of_copy']:.2f} of copy; peak "
              f"anon {row['peak_anon_mb']:.0f} MB, peak RSS {row['peak_rss_mb']:.0f} MB",
              flush=True)
        shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(src, ignore_errors=True)
    return rows


def derive(rows: list[dict[str, Any]]) -> None:
    """Against each tool's run on the smallest size (roughly its start-up: imports, process):
    peak memory above it, and the bytes/s of the extra bytes over the extra seconds."""
    measured = [r for r in rows if "seconds" in r]
    if not measured:
        return
    first = measured[0]["size"]
    base = {(r["growth"], r["tool"]): r for r in measured if r["size"] == first}
    for r in measured:
        b = base.get((r["growth"], r["tool"]))
        if b is None or b is r:
            continue
        r["peak_anon_above_smallest_mb"] = r["peak_anon_mb"] - b["peak_anon_mb"]
        moved = r["source_mb"] * 1e6 + r["written"] - b["source_mb"] * 1e6 - b["written"]
        seconds = r["seconds"] - b["seconds"]
        r["marginal_mb_s"] = moved / 1e6 / seconds if seconds > 0 else None
        r["marginal_fraction_of_copy"] = (moved / seconds / (r["copy_mb_s"] * 1e6)
                                          if seconds > 0 else None)


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="growing a checkpoint: time, bytes/s (read + written) and peak memory")
    for col in ("size", "source MB", "growth", "tool", "s", "written MB", "MB/s", "of copy",
                "MB/s beyond smallest", "of copy", "peak anon MB", "above smallest",
                "peak RSS MB"):
        table.add_column(col, justify="left" if col in ("size", "growth", "tool") else "right")

    def f(r: dict[str, Any], key: str, fmt: str) -> str:
        return "-" if r.get(key) is None else f"{r[key]:{fmt}}"

    for r in rows:
        if "skipped" in r:
            table.add_row(r["size"], f(r, "source_mb", ".0f"), r["growth"], r["tool"],
                          "skipped: " + r["skipped"][:60])
            continue
        table.add_row(r["size"], f(r, "source_mb", ".0f"), r["growth"], r["tool"],
                      f(r, "seconds", ".1f"), f"{r['written'] / 1e6:.0f}", f(r, "mb_s", ".0f"),
                      f(r, "fraction_of_copy", ".2f"), f(r, "marginal_mb_s", ".0f"),
                      f(r, "marginal_fraction_of_copy", ".2f"), f(r, "peak_anon_mb", ".0f"),
                      f(r, "peak_anon_above_smallest_mb", ".0f"), f(r, "peak_rss_mb", ".0f"))
    Console(width=200).print(table)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large,xl")
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--mergekit-venv", type=Path, default=MERGEKIT_VENV)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--smoke", action="store_true", help="a tiny model only")
    parser.add_argument("--from-json", type=Path,
                        help="measure nothing: recompute and print the table of a results file")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(args.from_json.read_text())
        derive(result["rows"])
        print_table(result["rows"])
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        return list(result["rows"])
    sizes = ["tiny"] if args.smoke else args.sizes.split(",")
    free = shutil.disk_usage(args.tmp).free
    print(f"free disk under {args.tmp}: {free / 1e9:.0f} GB", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for name in sizes:
            rows += one_size(name, Path(tmp), args.mergekit_venv)
    derive(rows)
    print_table(rows)
    result = {"date": time.strftime("%Y-%m-%d"), "versions": versions(),
              "load_at_end": os.getloadavg()[0], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return rows


if __name__ == "__main__":
    main()
