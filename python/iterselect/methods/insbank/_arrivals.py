"""InsBank's arrivals: the datasets given to ``run``, checked, with their fingerprints."""
from __future__ import annotations

import numbers

from ..._arrays import as_matrix, host_values
from ..._validation import param_error
from ...runs import fingerprint
from ._algorithm import check_quality


def read_arrival(item, t: int, quality_field: str, func: str) -> dict:
    """Arrival ``t`` (a list of records, or a dict with ``"records"`` and optionally
    ``"embeddings"`` and ``"quality"``) checked and turned into ``{"records", "embeddings",
    "quality", "fingerprint"}``; the quality comes from ``quality_field`` when not given."""
    name = f"datasets[{t}]"
    if isinstance(item, dict):
        if "records" not in item:
            raise param_error(func, name, "a list of records or a dict with 'records'",
                              f"a dict with keys {sorted(item)}")
        records, emb, quality = item["records"], item.get("embeddings"), item.get("quality")
    else:
        records, emb, quality = item, None, None
    if isinstance(records, (str, bytes)) or not hasattr(records, "__len__"):
        raise param_error(func, name, "a list of instruction records", type(records).__name__,
                          TypeError)
    records = list(records)
    if not records:
        raise param_error(func, name, "at least 1 record", 0)
    n = len(records)
    if quality is None:
        values = []
        for i, r in enumerate(records):
            if not isinstance(r, dict) or quality_field not in r:
                raise param_error(func, name, f"records with a {quality_field!r} field (or a "
                                  "'quality' array)", f"record {i} without it")
            v = r[quality_field]
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise param_error(func, name, f"a number in every record's {quality_field!r}",
                                  f"{v!r} in record {i}")
            values.append(float(v))
        quality = values
    q = check_quality(quality, n, f"{name} quality", func)
    if emb is not None:
        m = as_matrix(emb, f"{name} embeddings", func)
        if m.on_cuda:
            raise param_error(func, f"{name} embeddings", "a host array", "a CUDA array")
        if m.shape[0] != n:
            raise param_error(func, f"{name} embeddings", f"one row per record ({n})",
                              f"{m.shape[0]} rows")
        emb = host_values(m)
    return {"records": records, "embeddings": emb, "quality": q, "fingerprint": fingerprint(records, q)}


def split_batches(arrivals: list, batch_size) -> list:
    """Each arrival as consecutive batches of at most ``batch_size`` records, a round each (the
    published code's batches); None: the arrivals as they are."""
    if batch_size is None:
        return arrivals
    out = []
    for a in arrivals:
        n = len(a["records"])
        for s in range(0, n, batch_size):
            e = min(n, s + batch_size)
            emb = None if a["embeddings"] is None else a["embeddings"][s:e]
            records, q = a["records"][s:e], a["quality"][s:e]
            out.append({"records": records, "embeddings": emb, "quality": q,
                        "fingerprint": fingerprint(records, q)})
    return out
