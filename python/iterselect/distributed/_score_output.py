"""The output folder of a distributed scoring run: one Parquet part per block of records, and a
manifest that says what was scored, how, and whether every block is done.

A part is written under a temporary name and renamed into place, so a part under its final name
is complete; the manifest is written first (``complete: false``) and rewritten with
``complete: true`` once every part is there. A rerun with ``resume`` checks that the manifest
describes the same input, model and settings and scores only the missing blocks. Overwriting
removes this run's own files (parts, manifest, temporary files) and nothing else.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .._files import atomic_file

MANIFEST = "_score.json"
MANIFEST_VERSION = 1
_PART = re.compile(r"^part-(\d{6,})\.parquet$")
_OURS = re.compile(r"^(part-\d{6,}\.parquet|\.part-\d{6,}\.parquet\..*|_score\.json|\._score\.json\..*)$")


def part_path(output: Path, block: int) -> Path:
    return Path(output) / f"part-{block:06d}.parquet"


def block_rows(n_records: int, block_records: int, block: int) -> int:
    """Records in ``block`` (the last block may be short)."""
    return min(block_records, n_records - block * block_records)


def _arrow_column(values):
    import pyarrow as pa

    values = np.asarray(values)
    if values.dtype == object:
        return pa.array(values.tolist(), type=pa.string())
    if values.ndim == 2:  # embeddings, multi-label rewards: a fixed-size list per row
        return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])
    return pa.array(values)


def _numpy_column(column) -> np.ndarray:
    import pyarrow as pa

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_fixed_size_list(column.type):
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(column), column.type.list_size)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(column.to_pylist(), dtype=object)
    return column.to_numpy(zero_copy_only=False)


def write_part(output: Path, block: int, start: int, columns: dict, ids=None) -> Path:
    """Write one block's scores atomically: ``row`` (the record's position in the input), its
    ``id`` when the input names one, then the score columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(next(iter(columns.values())))
    data = {"row": pa.array(np.arange(start, start + n, dtype=np.int64))}
    if ids is not None:
        data["id"] = pa.array([str(i) for i in ids], type=pa.string())
    data.update({name: _arrow_column(v) for name, v in columns.items()})
    path = part_path(output, block)
    with atomic_file(path, "wb") as f:
        pq.write_table(pa.table(data), f)
    return path


def _part_rows(path: Path) -> int | None:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # pyarrow raises several types for a damaged file
        return None


def done_blocks(output: Path, n_records: int, block_records: int) -> set:
    """Blocks whose part is in place with the number of rows the block holds."""
    n_blocks = -(-n_records // block_records)
    done = set()
    for path in Path(output).glob("part-*.parquet"):
        m = _PART.match(path.name)
        if not m or int(m.group(1)) >= n_blocks:
            continue
        b = int(m.group(1))
        if _part_rows(path) == block_rows(n_records, block_records, b):
            done.add(b)
    return done


def plain(settings: dict) -> dict:
    """Settings as they read back from JSON (a callable template is kept as its repr)."""
    return json.loads(json.dumps(settings, default=repr))


def write_manifest(output: Path, settings: dict, *, complete: bool) -> None:
    with atomic_file(Path(output) / MANIFEST) as f:
        json.dump(dict(plain(settings), version=MANIFEST_VERSION, complete=complete), f, indent=1)


def read_manifest(output: Path, func: str) -> dict:
    path = Path(output) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{func}: {output} holds no scoring run (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{func}: {path} is unreadable ({exc})") from None


_TEMPORARY = re.compile(r"^\.(part-\d{6,}\.parquet|_score\.json)\..*$")


def _remove_ours(output: Path, *, only_temporary: bool = False) -> None:
    """This run's files (with ``only_temporary``: those a killed writer left half-written)."""
    pattern = _TEMPORARY if only_temporary else _OURS
    for path in Path(output).iterdir():
        if pattern.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def prepare(output, settings: dict, *, resume: bool, overwrite: bool, func: str) -> set:
    """Make ``output`` ready for a run with ``settings``; return the blocks already done (only
    when resuming a run of the same settings). Refuses, without touching anything, an output
    that is a file, a folder holding something else, or a started run without ``resume`` or
    ``overwrite``."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"{func}: the output {output} is a file; the output is a folder")
    manifest = output / MANIFEST
    if output.is_dir() and not overwrite:
        others = [p.name for p in output.iterdir() if not _OURS.match(p.name)]
        if not manifest.exists() and any(output.iterdir()):
            raise FileExistsError(f"{func}: {output} exists and holds files of something else "
                                  f"({', '.join(sorted(others)[:3]) or 'parts without a manifest'}"
                                  "); choose an empty or new folder, or pass overwrite=True "
                                  "(the CLI's --force)")
        if manifest.exists() and not resume:
            state = read_manifest(output, func)
            what = "a complete" if state.get("complete") else "an interrupted"
            raise FileExistsError(f"{func}: {output} holds {what} scoring run; pass resume=True "
                                  "(the CLI's --resume) to continue it, or overwrite=True "
                                  "(--force) to start over")
    if output.is_dir() and overwrite:
        _remove_ours(output)
    done = set()
    if manifest.exists():  # resuming
        state = read_manifest(output, func)
        wanted = plain(settings)
        changed = [k for k in wanted if state.get(k) != wanted[k]]
        if changed:
            raise ValueError(f"{func}: cannot resume: {', '.join(changed)} differ(s) from the "
                             f"run recorded in {manifest}; start over with overwrite=True (the "
                             "CLI's --force)")
        _remove_ours(output, only_temporary=True)
        done = done_blocks(output, settings["n_records"], settings["block_records"])
    output.mkdir(parents=True, exist_ok=True)
    write_manifest(output, settings, complete=False)
    return done


def load(output, func: str = "load_scores"):
    """``(manifest, columns)`` of a complete run, every column in record order."""
    import pyarrow.parquet as pq

    output = Path(output)
    state = read_manifest(output, func)
    n, size = state["n_records"], state["block_records"]
    n_blocks = -(-n // size)
    missing = sorted(set(range(n_blocks)) - done_blocks(output, n, size))
    if missing:
        raise ValueError(f"{func}: {output} is not complete: {len(missing)} of {n_blocks} blocks "
                         f"are missing (first: {missing[0]}); rerun with resume=True (--resume)")
    tables = [pq.read_table(part_path(output, b)) for b in range(n_blocks)]
    names = [c for c in tables[0].column_names if c not in ("row", "id")]
    columns = {c: np.concatenate([_numpy_column(t.column(c)) for t in tables]) for c in names}
    if "id" in tables[0].column_names:
        columns["id"] = np.concatenate([_numpy_column(t.column("id")) for t in tables])
    return state, columns
