"""Field mapping: records of any schema → the canonical Alpaca or ShareGPT record.

A canonical Alpaca record has ``instruction``, ``input`` and ``output`` (all str); a canonical
ShareGPT record has ``conversations``, a non-empty list of turns (``{"from", "value"}`` or
``{"role", "content"}``). Every other field of the record is kept under its own name, after
these. The scorers, the embedders and the selectors read these names only.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldMap:
    """Which field of a record holds each part of an instruction example.

    The defaults are Alpaca's names (``instruction``, ``input``, ``output``) and ShareGPT's
    (``conversations``). A record whose ``conversations`` field is present and not null is a
    ShareGPT record; otherwise it must have ``instruction`` and ``output`` (``input`` may be
    missing or null: no input).

    Examples
    --------
    >>> from iterselect.io import FieldMap
    >>> fields = FieldMap(instruction="prompt", response="completion")
    >>> fields.canonical({"prompt": "Add.", "completion": "4", "id": 7})
    {'instruction': 'Add.', 'input': '', 'output': '4', 'id': 7}
    >>> FieldMap().canonical({"conversations": [{"from": "human", "value": "Hi"},
    ...                                          {"from": "gpt", "value": "Hello"}]})["conversations"][1]
    {'from': 'gpt', 'value': 'Hello'}
    """

    instruction: str = "instruction"
    input: str = "input"
    response: str = "output"
    conversations: str = "conversations"

    def __post_init__(self):
        for name in ("instruction", "input", "response", "conversations"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"The {name!r} field name of FieldMap must be a non-empty str. "
                                 f"Got {value!r} instead.")

    def canonical(self, record) -> dict:
        """The canonical record for ``record``; raises ``ValueError`` saying what is missing."""
        if not isinstance(record, Mapping):
            raise ValueError(f"expected a JSON object, got {type(record).__name__}")
        turns = record.get(self.conversations)
        if turns is not None:
            _check_turns(turns, self.conversations)
            return {"conversations": turns, **self._rest(record, (self.conversations,))}
        missing = [f for f in (self.instruction, self.response) if f not in record]
        if missing:
            raise ValueError(
                f"missing field(s) {', '.join(repr(f) for f in missing)} of an Alpaca record, and "
                f"no {self.conversations!r} (ShareGPT turns); fields found: {sorted(record)}. Name "
                "other fields with FieldMap (the CLI's --instruction-field, --input-field, "
                "--response-field, --conversations-field)")
        out = {"instruction": _text(record, self.instruction, optional=False),
               "input": _text(record, self.input, optional=True),
               "output": _text(record, self.response, optional=False)}
        return {**out, **self._rest(record, (self.instruction, self.input, self.response))}

    def _rest(self, record, used) -> dict:
        taken = set(used) | {"instruction", "input", "output", "conversations"}
        return {k: v for k, v in record.items() if k not in taken}


def _text(record, key, *, optional) -> str:
    value = record.get(key)
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _check_turns(turns, key) -> None:
    if isinstance(turns, (str, bytes)) or not isinstance(turns, Sequence) or not turns:
        raise ValueError(f"field {key!r} must be a non-empty list of turns, got "
                         f"{type(turns).__name__}")
    for j, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            raise ValueError(f"turn {j} of {key!r} must be an object, got {type(turn).__name__}")
        role = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if not isinstance(role, str) or not isinstance(text, str):
            raise ValueError(f"turn {j} of {key!r} needs string 'from'/'role' and "
                             f"'value'/'content' fields; found {sorted(turn)}")
