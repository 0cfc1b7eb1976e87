"""Records into Ray Data as blocks: one dataset row per block of ``block_records`` records, so
that one ``map_batches`` call always scores one whole block, whatever Ray does with its own
blocks (it may merge rows into larger blocks; a row is never split).

A file is streamed by a single read task that reads it once, in order (JSON Lines and gzip
cannot be entered in the middle), and hands out the blocks still to do; Ray Data's streaming
executor keeps it only a few blocks ahead of the actors. A list is cut into blocks on the driver.
"""
from __future__ import annotations

import inspect
import pickle
from dataclasses import dataclass


@dataclass(frozen=True)
class FileSpec:
    """How to open the input again on a Ray worker (as :func:`iterselect.io.open_records`)."""

    path: str
    fields: object = None
    errors: str = "raise"
    split: str | None = None
    limit: int | None = None
    id_field: str | None = None

    def open(self):
        from ..io import open_records

        required = (self.id_field,) if self.id_field else ()
        return open_records(self.path, fields=self.fields, errors=self.errors, split=self.split,
                            limit=self.limit, required=required)


def block_row(block: int, start: int, items: list, id_field: str | None) -> dict:
    ids = None
    if id_field is not None:
        ids = [item[id_field] for item in items]
    return {"block": block, "start": start, "items": pickle.dumps(items, protocol=5),
            "ids": pickle.dumps(ids, protocol=5)}


def _metadata(num_rows: int):
    from ray.data.block import BlockMetadata

    wanted = {"num_rows": num_rows, "size_bytes": None, "schema": None, "input_files": None,
              "exec_stats": None}
    params = inspect.signature(BlockMetadata).parameters
    return BlockMetadata(**{k: v for k, v in wanted.items() if k in params})


def file_dataset(spec: FileSpec, n_records: int, block_records: int, pending: list):
    """A Ray Dataset with one row per pending block of the file (see the module docstring)."""
    import pyarrow as pa
    import ray.data
    from ray.data.datasource import Datasource, ReadTask

    todo = frozenset(pending)

    def read():
        source = spec.open()
        if len(source) != n_records:
            raise ValueError(f"{spec.path} changed while it was being scored: it now holds "
                             f"{len(source)} records instead of {n_records}")
        for block, items in enumerate(source.chunks(block_records)):
            if block in todo:
                yield pa.Table.from_pylist([block_row(block, block * block_records, items,
                                                      spec.id_field)])

    class Blocks(Datasource):
        def estimate_inmemory_data_size(self):
            return None

        def get_read_tasks(self, parallelism, *args, **kwargs):
            return [ReadTask(read, _metadata(len(todo)))]

        def get_name(self):
            return "ReadRecords"

    kwargs = {"override_num_blocks": 1}
    # The read task holds no CPU: the actors hold them, and on a small cluster a read task that
    # waits for a free CPU would wait for ever.
    if "num_cpus" in inspect.signature(ray.data.read_datasource).parameters:
        kwargs["num_cpus"] = 0
    else:  # older Ray
        kwargs["ray_remote_args"] = {"num_cpus": 0}
    return ray.data.read_datasource(Blocks(), **kwargs)


def list_dataset(items: list, block_records: int, pending: list, id_field: str | None):
    """A Ray Dataset with one row per pending block of an in-memory list."""
    import ray.data

    rows = [block_row(b, b * block_records, items[b * block_records:(b + 1) * block_records],
                      id_field) for b in pending]
    return ray.data.from_items(rows, override_num_blocks=len(rows))
