"""What an InsBank run keeps beside its state: the last round's candidates' embeddings and
responsibilities (a sparse round's as CSR arrays), from which a resumed run rebuilds the bank and
its history exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._files import atomic_file
from ._algorithm import Bank, BankHistory


def arrays_path(run_path, t) -> Path:
    return Path(run_path) / "arrays" / f"arrival_{t:03d}.npz"


def save_arrays(run_path, t, embeddings, responsibility) -> None:
    """The candidates' embeddings and responsibilities of round ``t``, written atomically (a
    sparse R as its CSR arrays)."""
    import scipy.sparse as sp

    with atomic_file(arrays_path(run_path, t), "wb") as f:
        if sp.issparse(responsibility):
            R = sp.csr_matrix(responsibility)
            np.savez(f, embeddings=embeddings, r_data=R.data, r_indices=R.indices,
                     r_indptr=R.indptr, r_shape=np.asarray(R.shape, dtype=np.int64))
        else:
            np.savez(f, embeddings=embeddings, responsibility=responsibility)


def load_arrays(run_path, t) -> tuple:
    """``(embeddings, responsibility)`` of round ``t`` (the responsibility dense or CSR)."""
    import scipy.sparse as sp

    with np.load(arrays_path(run_path, t), allow_pickle=False) as z:
        emb = z["embeddings"]
        if "responsibility" in z.files:
            return emb, z["responsibility"]
        R = sp.csr_matrix((z["r_data"], z["r_indices"], z["r_indptr"]), shape=tuple(z["r_shape"]))
    return emb, R


def restore_bank(run) -> tuple:
    """``(bank, history, bank_ids)`` after the last completed round of a resumed ``run``."""
    state = run.state
    cand_emb, R = load_arrays(run.path, run.rounds_done - 1)
    keep = np.asarray(state["keep"], dtype=np.int64)
    bank = Bank(cand_emb[keep], np.asarray(state["bank_quality"], dtype=np.float64))
    return bank, BankHistory(R, cand_emb, keep), np.asarray(state["bank"], dtype=np.int64)
