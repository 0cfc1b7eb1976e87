"""The README's examples run: every ```pycon block of README.md is a doctest, run on its own."""
from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

from conftest import missing, require_module

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = [(m.group(1), TEXT.count("\n", 0, m.start(1))) for m in re.finditer(r"```pycon\n(.*?)```", TEXT, flags=re.S)]


def _needs(block: str) -> None:
    if "sklearn" in block or "iterselect.estimators" in block:
        require_module("sklearn", "sklearn")
    if "torch" in block:
        require_module("torch", "torch")
    if "FacilityLocationSelection" in block:
        try:
            import iterselect.facility  # noqa: F401
        except ImportError as exc:
            missing("iterselect.facility", f"the facility-location kernels are not in this build ({exc})",
                    strict=False)
        require_module("faiss", "faiss")


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example(index):
    block, line = BLOCKS[index]
    _needs(block)
    test = doctest.DocTestParser().get_doctest(block, {}, f"README.md example {index + 1}", str(README), line)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
