"""Run directories: atomic state, resume, refusal to mix runs."""
import json
import os

import numpy as np
import pytest

from iterselect.runs import RunDirectory, RunError, atomic_write_json


def test_commit_and_resume(tmp_path):
    run = RunDirectory(tmp_path / "r", method="m", config={"k": 3, "seed": 1})
    assert run.rounds_done == 0 and run.state is None
    run.commit({"objective": 1.5}, {"selected": np.array([3, 1])})
    run.commit({"objective": float("nan")}, {"selected": [3, 1, 2]})
    again = RunDirectory(tmp_path / "r", method="m", config={"k": 3, "seed": 1}, resume=True)
    assert again.rounds_done == 2
    assert again.state == {"selected": [3, 1, 2]}
    reports = again.reports()
    assert [r["round"] for r in reports] == [0, 1]
    assert reports[0]["objective"] == 1.5 and reports[1]["objective"] is None


def test_existing_run_needs_resume(tmp_path):
    RunDirectory(tmp_path, method="m", config={}).commit({}, {"a": 1})
    with pytest.raises(RunError, match="resume=True"):
        RunDirectory(tmp_path, method="m", config={})


def test_resume_refuses_other_method_or_config(tmp_path):
    RunDirectory(tmp_path, method="m", config={"k": 1, "b": 2}).commit({}, {})
    with pytest.raises(RunError, match="'m' run"):
        RunDirectory(tmp_path, method="other", config={"k": 1, "b": 2}, resume=True)
    with pytest.raises(RunError, match="differing: k"):
        RunDirectory(tmp_path, method="m", config={"k": 2, "b": 2}, resume=True)


def test_resume_of_empty_directory_starts_fresh(tmp_path):
    run = RunDirectory(tmp_path, method="m", config={}, resume=True)
    assert run.rounds_done == 0


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "s.json"
    atomic_write_json({"a": 1}, path)
    with pytest.raises(TypeError):
        atomic_write_json({"a": object()}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["s.json"]  # no temporary left behind


def test_crash_between_report_and_state_repeats_nothing(tmp_path, monkeypatch):
    run = RunDirectory(tmp_path, method="m", config={})
    run.commit({"x": 0}, {"n": 0})
    import iterselect.runs as runs
    real = runs.atomic_write_json

    def crash_on_state(obj, path):
        if str(path).endswith("state.json"):
            raise KeyboardInterrupt
        real(obj, path)

    monkeypatch.setattr(runs, "atomic_write_json", crash_on_state)
    with pytest.raises(KeyboardInterrupt):
        run.commit({"x": 1}, {"n": 1})
    monkeypatch.setattr(runs, "atomic_write_json", real)
    again = RunDirectory(tmp_path, method="m", config={}, resume=True)
    assert again.rounds_done == 1 and again.state == {"n": 0}
    again.commit({"x": 1}, {"n": 1})  # the round is redone once, its report overwritten
    assert [r["x"] for r in again.reports()] == [0, 1]


def test_save_model_is_atomic_and_replaces(tmp_path):
    class Fake:
        def __init__(self, fail=False):
            self.fail = fail

        def save_pretrained(self, d):
            (d / "w.bin").write_text("w")
            if self.fail:
                raise RuntimeError("disk full")

    run = RunDirectory(tmp_path, method="m", config={})
    p = run.save_model(Fake(), None, 0)
    assert (p / "w.bin").read_text() == "w"
    with pytest.raises(RuntimeError):
        run.save_model(Fake(fail=True), None, 1)
    assert not run.model_path(1).exists()
    assert sorted(os.listdir(tmp_path / "models")) == ["round_000"]
