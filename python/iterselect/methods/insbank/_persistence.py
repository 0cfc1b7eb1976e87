"""What an InsBank run keeps beside its state: the last arrival's candidates' embeddings and
responsibilities, from which a resumed run rebuilds the bank and its history exactly."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._files import atomic_file
from ._algorithm import Bank, BankHistory


def arrays_path(run_path, t) -> Path:
    return Path(run_path) / "arrays" / f"arrival_{t:03d}.npz"


def save_arrays(run_path, t, embeddings, responsibility) -> None:
    """The candidates' embeddings and responsibilities of arrival ``t``, written atomically."""
    with atomic_file(arrays_path(run_path, t), "wb") as f:
        np.savez(f, embeddings=embeddings, responsibility=responsibility)


def restore_bank(run) -> tuple:
    """``(bank, history, bank_ids)`` after the last completed arrival of a resumed ``run``."""
    state = run.state
    with np.load(arrays_path(run.path, run.rounds_done - 1), allow_pickle=False) as z:
        cand_emb, R = z["embeddings"], z["responsibility"]
    keep = np.asarray(state["keep"], dtype=np.int64)
    bank = Bank(cand_emb[keep], np.asarray(state["bank_quality"], dtype=np.float64))
    return bank, BankHistory(R, cand_emb, keep), np.asarray(state["bank"], dtype=np.int64)
