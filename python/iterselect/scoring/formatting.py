"""Instruction records → prompt and response text segments.

Three kinds of record are accepted, in any mix:

* Alpaca records: mappings with ``instruction``, ``output`` and optionally ``input`` (a missing
  or ``None`` input means no input);
* ShareGPT / WizardLM records: mappings with ``conversations`` (or ``messages``), a list of
  turns ``{"from": "human" | "gpt" | "system", "value": str}`` (or ``{"role": "user" |
  "assistant" | "system", "content": str}``). Every assistant turn is a response;
* ``(prompt, response)`` pairs of strings, used verbatim whatever the template.

A formatted example is a sequence of segments ``(text, is_response)``. Scorers tokenize every
segment on its own, without special tokens, and put an EOS token after each response (see
:mod:`iterselect.scoring.tokenization`).

:func:`record_text` is the one place where a record of any of these kinds becomes the text a
use needs: embedding, TF-IDF or length (its responses), prompts, or the templated example.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_choice, param_error
from ..exceptions import RecordError

ALPACA_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
)
ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n"
)
ALPACA_TEMPLATES = ("alpaca", "chat")

_USER_ROLES = {"human", "user"}
_ASSISTANT_ROLES = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}
_SYSTEM_ROLES = {"system"}


@dataclass(frozen=True)
class FormattedExample:
    """One example as text segments ``(text, is_response)``, in order.

    Attributes
    ----------
    segments : tuple of (str, bool)
        The text pieces; ``True`` marks a response (an assistant turn).
    """

    segments: tuple

    @property
    def text(self) -> str:
        """The whole example as one string."""
        return "".join(t for t, _ in self.segments)

    @property
    def responses(self) -> tuple:
        """The response texts (one per assistant turn)."""
        return tuple(t for t, r in self.segments if r)

    @property
    def response(self) -> str:
        """The last response."""
        return self.responses[-1]

    @property
    def prompt(self) -> str:
        """Everything before the last response (the context a model answers)."""
        last = max(i for i, (_, r) in enumerate(self.segments) if r)
        return "".join(t for t, _ in self.segments[:last])


@dataclass(frozen=True, eq=False)
class FormattedExamples(Sequence):
    """Formatted examples plus where each came from and what was skipped.

    A sequence of :class:`FormattedExample`; every scorer accepts it directly.

    Attributes
    ----------
    examples : tuple of FormattedExample
    indices : ndarray of int64
        The position in ``records`` of each example (results of a scorer line up with it).
    skipped : tuple of (int, str)
        Record index and reason of every record left out (only with ``errors="skip"``).
    template : str
        ``"alpaca"``, ``"chat"`` or ``"callable"``.
    """

    examples: tuple
    indices: np.ndarray
    skipped: tuple = ()
    template: str = "alpaca"

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]

    def __iter__(self):
        return iter(self.examples)


def _record_error(func, index, message, exc_type=ValueError):
    return RecordError(index, f"Record {index} of the 'records' parameter of {func}: {message}",
                       exc_type)


def _text_field(record, key, index, func, *, optional=False, allow_empty=True):
    if key not in record:
        if optional:
            return ""
        raise _record_error(func, index, f"missing field {key!r} (fields: {sorted(record)}).")
    value = record[key]
    if value is None and optional:
        return ""
    if not isinstance(value, str):
        raise _record_error(func, index, f"field {key!r} must be a str. Got "
                            f"{type(value).__name__} instead.", TypeError)
    if not allow_empty and not value.strip():
        raise _record_error(func, index, f"field {key!r} is empty.")
    return value


def _turns_key(record):
    """The key holding a conversation's turns, or None."""
    for key in ("conversations", "messages"):
        if key in record:
            return key
    return None


def _role(role):
    """A turn's role as 'user', 'assistant' or 'system' (None when unknown)."""
    role = role.lower() if isinstance(role, str) else None
    if role in _USER_ROLES:
        return "user"
    if role in _ASSISTANT_ROLES:
        return "assistant"
    if role in _SYSTEM_ROLES:
        return "system"
    return None


def _turns(record, index, func):
    """ShareGPT turns → list of (role, text) with role in {'system', 'user', 'assistant'}."""
    key = _turns_key(record)
    convo = record[key]
    if isinstance(convo, (str, bytes)) or not isinstance(convo, Sequence) or not convo:
        raise _record_error(func, index, f"{key!r} must be a non-empty list of turns. "
                            f"Got {type(convo).__name__} instead.", TypeError)
    turns = []
    for j, turn in enumerate(convo):
        if not isinstance(turn, Mapping):
            raise _record_error(func, index, f"turn {j} must be a mapping. Got "
                                f"{type(turn).__name__} instead.", TypeError)
        role = turn.get("from", turn.get("role"))
        text = turn.get("value", turn.get("content"))
        if not isinstance(role, str):
            raise _record_error(func, index, f"turn {j} has no 'from'/'role' string.")
        role = _role(role) or role.lower()
        if role not in ("user", "assistant", "system"):
            raise _record_error(func, index, f"turn {j} has unknown role {role!r}; expected one "
                                "of human/user, gpt/assistant, system.")
        if not isinstance(text, str):
            raise _record_error(func, index, f"turn {j} ('value'/'content') must be a str. Got "
                                f"{type(text).__name__} instead.", TypeError)
        turns.append((role, text))
    return turns


def _alpaca_segments(turns):
    """Alpaca prompt format for one or more turns (system text replaces the preamble)."""
    segments = []
    prompt = ""
    first = True
    system = None
    if turns and turns[0][0] == "system":
        system = turns[0][1]
        turns = turns[1:]
    for role, text, inp in turns:
        if role == "system":  # a system turn in the middle is kept as plain context
            prompt += text + "\n\n"
            continue
        if role == "user":
            if first:
                if system is not None:
                    prompt += system + "\n\n"
                else:
                    prompt += ALPACA_PREAMBLE_INPUT if inp else ALPACA_PREAMBLE
            else:
                prompt += "\n\n"
            prompt += f"### Instruction:\n{text}\n\n"
            if inp:
                prompt += f"### Input:\n{inp}\n\n"
            prompt += "### Response:\n"
            first = False
        else:
            if first:  # a conversation that opens with the assistant
                prompt += (system + "\n\n") if system is not None else ALPACA_PREAMBLE
                prompt += "### Response:\n"
                first = False
            if prompt:
                segments.append((prompt, False))
            segments.append((text, True))
            prompt = ""
    return segments, prompt


def _chat_segments(tokenizer, turns, index, func, generation):
    """Segments from the tokenizer's chat template, rendered turn by turn."""
    messages = [{"role": r, "content": t} for r, t, *_ in turns]

    def render(msgs, add_generation_prompt):
        return tokenizer.apply_chat_template(msgs, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)

    segments = []
    done = ""
    carry = ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = render(messages[:i], True) if i else ""
        full = render(messages[: i + 1], False)
        if not prefix.startswith(done) or not full.startswith(prefix):
            raise _record_error(func, index, "the tokenizer's chat template does not render this "
                                "conversation turn by turn (an earlier rendering is not a prefix "
                                "of a later one), so its responses cannot be located.")
        response = full[len(prefix):]
        stripped = response.rstrip()
        prompt = carry + prefix[len(done):]
        if prompt:
            segments.append((prompt, False))
        segments.append((stripped, True))
        carry = response[len(stripped):]
        done = full
    tail = ""
    if generation:
        whole = render(messages, True)
        if not whole.startswith(done):
            raise _record_error(func, index, "the tokenizer's chat template does not render this "
                                "conversation turn by turn.")
        tail = carry + whole[len(done):]
    return segments, tail


def _check_template(template, tokenizer, func):
    if callable(template):
        return "callable"
    if template not in ALPACA_TEMPLATES:
        raise param_error(func, "template", "one of {'alpaca', 'chat'} or a callable", template)
    if template == "chat" and getattr(tokenizer, "chat_template", None) is None:
        raise param_error(func, "template", "'alpaca' or a callable when the tokenizer has no chat "
                          "template (pass a tokenizer that has one for 'chat')", template)
    return template


def _format_one(record, index, template, tokenizer, func, generation):
    """Return (segments, tail): tail is the text after the last response (generation prompt)."""
    if isinstance(record, FormattedExample):
        return list(record.segments), ""
    if isinstance(record, (tuple, list)) and not isinstance(record, str):
        if len(record) != 2:
            raise _record_error(func, index, f"a (prompt, response) pair must have 2 items. Got "
                                f"{len(record)} instead.")
        prompt, response = record
        for name, value in (("prompt", prompt), ("response", response)):
            if not isinstance(value, str):
                raise _record_error(func, index, f"the {name} of a (prompt, response) pair must "
                                    f"be a str. Got {type(value).__name__} instead.", TypeError)
        segs = [(prompt, False)] if prompt else []
        return segs + [(response, True)], ""
    if callable(template):
        out = template(record)
        if isinstance(out, FormattedExample):
            return list(out.segments), ""
        if (isinstance(out, (tuple, list)) and len(out) == 2
                and all(isinstance(x, str) for x in out)):
            return ([(out[0], False)] if out[0] else []) + [(out[1], True)], ""
        raise _record_error(func, index, "the template callable must return a (prompt, response) "
                            f"pair of str or a FormattedExample. Got {type(out).__name__} instead.",
                            TypeError)
    if not isinstance(record, Mapping):
        raise _record_error(func, index, "expected a mapping (Alpaca or ShareGPT record) or a "
                            f"(prompt, response) pair. Got {type(record).__name__} instead.",
                            TypeError)
    if _turns_key(record) is not None:
        turns = [(r, t, None) for r, t in _turns(record, index, func)]
    elif "instruction" in record:
        instruction = _text_field(record, "instruction", index, func, allow_empty=False)
        inp = _text_field(record, "input", index, func, optional=True)
        turns = [("user", instruction, inp)]
        if not generation or "output" in record:
            turns.append(("assistant", _text_field(record, "output", index, func), None))
    else:
        raise _record_error(func, index, "expected Alpaca fields ('instruction', 'output') or "
                            f"ShareGPT 'conversations' / 'messages'. Got fields {sorted(record)} "
                            "instead.")
    if not generation and turns[-1][0] != "assistant":
        what = "has no response" if all(r != "assistant" for r, *_ in turns) else \
            "ends with a non-assistant turn, which would be left unscored"
        raise _record_error(func, index, f"the conversation {what}.")
    if generation and turns[-1][0] == "assistant":
        turns = turns[:-1]  # the prompt for regenerating the last answer
        if not turns:
            raise _record_error(func, index, "the conversation has no turn before its first "
                                "response, so there is no prompt to generate from.")
    if template == "chat":
        chat_turns = []
        for role, text, inp in turns:
            if inp:
                text = f"{text}\n\n{inp}"
            chat_turns.append((role, text))
        return _chat_segments(tokenizer, chat_turns, index, func, generation)
    segments, tail = _alpaca_segments(turns)
    return segments, tail


def _validate_segments(segments, index, func):
    if not any(r for _, r in segments):
        raise _record_error(func, index, "it has no response (no assistant turn).")
    if segments[-1][1] is False:
        raise _record_error(func, index, "it ends with a non-assistant turn; every turn after "
                            "the last response would be left unscored.")
    for text, is_response in segments:
        if is_response and not text.strip():
            raise _record_error(func, index, "a response is empty.")


def _as_list(records, func, name="records"):
    if (records is None or isinstance(records, (str, bytes, Mapping))
            or not hasattr(records, "__len__")):
        raise param_error(func, name, "a list of records (Alpaca or ShareGPT mappings, or "
                          "(prompt, response) pairs)", records if records is None
                          else type(records).__name__, TypeError)
    records = list(records)
    if not records:
        raise param_error(func, name, "a non-empty list of records", records)
    return records


def format_examples(records, template="alpaca", *, tokenizer=None, errors="raise"):
    """Format instruction records as prompt/response segments.

    Parameters
    ----------
    records : list
        Alpaca mappings (``instruction``, ``input``, ``output``), ShareGPT mappings
        (``conversations``), ``(prompt, response)`` pairs of str (used verbatim), or
        :class:`FormattedExample` objects (passed through).
    template : {"alpaca", "chat"} or callable, default="alpaca"
        ``"alpaca"``: the Stanford Alpaca prompt (``### Instruction:`` / ``### Input:`` /
        ``### Response:``); further turns of a conversation repeat the instruction/response
        blocks and a leading system turn replaces the preamble. ``"chat"``: the tokenizer's chat
        template, rendered turn by turn; each response is the text the template renders for
        that assistant turn (its content and closing markup, trailing whitespace moved to the
        next prompt), and an Alpaca input is appended to the instruction after a blank line.
        A callable receives each record and returns ``(prompt, response)`` or a
        :class:`FormattedExample`.
    tokenizer : transformers tokenizer, optional
        Needed for ``template="chat"``.
    errors : {"raise", "skip"}, default="raise"
        What to do with a malformed record (missing field, non-string text, empty response or
        instruction, no assistant turn): raise an error naming its index, or leave it out and
        record it in ``skipped``.

    Returns
    -------
    FormattedExamples
        ``examples``, the record ``indices`` they came from, and ``skipped``.

    Examples
    --------
    >>> from iterselect.scoring import format_examples
    >>> out = format_examples([
    ...     {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    ...     ("Q: capital of France?\\nA:", " Paris"),
    ...     {"conversations": [{"from": "human", "value": "Hi"},
    ...                        {"from": "gpt", "value": "Hello!"},
    ...                        {"from": "human", "value": "Bye"},
    ...                        {"from": "gpt", "value": "Bye!"}]},
    ...     {"instruction": "Say nothing.", "output": ""},
    ... ], errors="skip")
    >>> len(out), out.indices.tolist(), out.skipped[0][0]
    (3, [0, 1, 2], 3)
    >>> out[0].prompt.endswith("### Instruction:\\nAdd 2 and 3.\\n\\n### Response:\\n")
    True
    >>> out[1].segments
    (('Q: capital of France?\\nA:', False), (' Paris', True))
    >>> out[2].responses
    ('Hello!', 'Bye!')
    """
    func = "format_examples"
    records = _as_list(records, func)
    check_choice(errors, "errors", func, ("raise", "skip"))
    name = _check_template(template, tokenizer, func)
    examples, indices, skipped = [], [], []
    for i, record in enumerate(records):
        try:
            segments, _ = _format_one(record, i, template, tokenizer, func, generation=False)
            _validate_segments(segments, i, func)
        except RecordError as e:
            if errors == "raise":
                raise e.exc_type(str(e)) from None
            skipped.append((i, str(e)))
            continue
        examples.append(FormattedExample(tuple((t, bool(r)) for t, r in segments)))
        indices.append(i)
    return FormattedExamples(tuple(examples), np.asarray(indices, dtype=np.int64), tuple(skipped),
                             name)


def format_prompts(records, template="alpaca", *, tokenizer=None):
    """Format records as generation prompts (the text a model should continue).

    Alpaca records need no ``output``; a conversation's prompt runs up to its last user turn
    (an assistant turn at the end is dropped, so the model regenerates it); a
    :class:`FormattedExample` or ``(prompt, response)`` pair gives its prompt.

    Parameters
    ----------
    records : list
        As for :func:`format_examples`, or plain strings (used verbatim).
    template : {"alpaca", "chat"} or callable, default="alpaca"
    tokenizer : transformers tokenizer, optional
        Needed for ``template="chat"`` (the template's generation prompt is appended).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from iterselect.scoring import format_prompts
    >>> format_prompts(["verbatim", {"instruction": "Name a color."}])[1][-46:]
    '### Instruction:\\nName a color.\\n\\n### Response:\\n'
    """
    func = "format_prompts"
    records = _as_list(records, func)
    _check_template(template, tokenizer, func)
    prompts = []
    for i, record in enumerate(records):
        if isinstance(record, str):
            prompts.append(record)
            continue
        if isinstance(record, FormattedExample):
            prompts.append(record.prompt)
            continue
        if isinstance(record, (tuple, list)):
            segments, _ = _format_one(record, i, template, tokenizer, func, generation=False)
            prompts.append(FormattedExample(tuple(segments)).prompt)
            continue
        if callable(template):
            segments, _ = _format_one(record, i, template, tokenizer, func, generation=False)
            prompts.append(FormattedExample(tuple(segments)).prompt)
            continue
        try:
            segments, tail = _format_one(record, i, template, tokenizer, func, generation=True)
        except RecordError as e:
            raise e.exc_type(str(e)) from None
        prompts.append("".join(t for t, _ in segments) + tail)
    return prompts


def as_examples(examples, func, *, template="alpaca", tokenizer=None, name="examples"):
    """Coerce what a scorer was given into :class:`FormattedExamples` (errors raise)."""
    if isinstance(examples, FormattedExamples):
        return examples
    if (examples is None or isinstance(examples, (str, bytes, Mapping))
            or not hasattr(examples, "__len__")):
        raise param_error(func, name, "a list of records (Alpaca or ShareGPT mappings, "
                          "(prompt, response) pairs) or FormattedExamples",
                          examples if examples is None else type(examples).__name__, TypeError)
    if len(examples) == 0:
        raise param_error(func, name, "a non-empty list of records", list(examples))
    try:
        return format_examples(examples, template, tokenizer=tokenizer)
    except (ValueError, TypeError) as e:
        msg = str(e).replace("'records' parameter of format_examples",
                             f"'{name}' parameter of {func}")
        msg = msg.replace("parameter of format_examples", f"parameter of {func}")
        raise type(e)(msg) from None


TEXT_USES = ("embedding", "response", "prompt", "example")


def _lenient_turns(record):
    """(role, text) of every readable turn of a conversation; unknown roles and non-text turns
    are left out (embedding and length texts never fail on a malformed turn)."""
    out = []
    for turn in record.get(_turns_key(record)) or ():
        if isinstance(turn, Mapping):
            role = _role(turn.get("from", turn.get("role")))
            text = turn.get("value", turn.get("content"))
            if role is not None and isinstance(text, str):
                out.append((role, text))
    return out


def _field(record, *keys):
    for key in keys:
        value = record.get(key)
        if value is not None:
            return str(value)
    return ""


def record_text(record, use="embedding", *, template="alpaca", tokenizer=None) -> str:
    """The text a record stands for, for one use; every record kind through one function.

    Parameters
    ----------
    record : mapping, (prompt, response) pair or str
        An Alpaca record (``instruction``, ``input``, ``output``; ``response`` is read when
        there is no ``output``), a ShareGPT / WizardLM conversation (``conversations`` or
        ``messages``), a ``(prompt, response)`` pair, or a plain string (returned as it is).
    use : {"embedding", "response", "prompt", "example"}, default="embedding"
        * ``"embedding"``: the content without template boilerplate, for sentence embeddings:
          instruction, input and output joined by newlines (Alpaca); every turn's text joined
          by newlines (conversation); prompt and response (pair).
        * ``"response"``: what the model answers, for lengths and TF-IDF: the output; every
          assistant turn joined by newlines; the pair's response.
        * ``"prompt"``: what the model is asked: instruction and input; every user and system
          turn; the pair's prompt.
        * ``"example"``: the whole example as the model reads it in training, prompt and
          response in ``template`` (:func:`format_examples`; raises on a malformed record).
    template, tokenizer
        For ``use="example"``.

    Returns
    -------
    str

    Examples
    --------
    >>> from iterselect.scoring.formatting import record_text
    >>> alpaca = {"instruction": "Add.", "input": "2+2", "output": "4"}
    >>> chat = {"conversations": [{"from": "human", "value": "Hi"},
    ...                           {"from": "gpt", "value": "Hello!"}]}
    >>> record_text(alpaca), record_text(chat), record_text(chat, "response")
    ('Add.\\n2+2\\n4', 'Hi\\nHello!', 'Hello!')
    >>> record_text(("Q: 1+1?", " 2"), "prompt")
    'Q: 1+1?'
    >>> record_text(alpaca, "example").endswith("### Input:\\n2+2\\n\\n### Response:\\n4")
    True
    """
    check_choice(use, "use", "record_text", TEXT_USES)
    if use == "example":
        if isinstance(record, str):
            return record
        return format_examples([record], template, tokenizer=tokenizer)[0].text
    if isinstance(record, str):
        return record
    if isinstance(record, FormattedExample):
        return {"embedding": record.text, "response": "\n".join(record.responses),
                "prompt": record.prompt}[use]
    if isinstance(record, (tuple, list)) and len(record) == 2:
        prompt, response = str(record[0]), str(record[1])
        return {"embedding": f"{prompt}\n{response}", "response": response, "prompt": prompt}[use]
    if not isinstance(record, Mapping):
        return ""
    if _turns_key(record) is not None:
        turns = _lenient_turns(record)
        keep = {"embedding": ("user", "assistant", "system"), "response": ("assistant",),
                "prompt": ("user", "system")}[use]
        return "\n".join(t for r, t in turns if r in keep)
    instruction, inp = _field(record, "instruction"), _field(record, "input")
    output = _field(record, "output", "response")
    if use == "embedding":
        return f"{instruction}\n{inp}\n{output}"
    if use == "response":
        return output
    return f"{instruction}\n{inp}" if inp else instruction


def with_response(record, response: str):
    """A copy of ``record`` whose (last) response is ``response``: the generated answer in
    place of the gold one, in the record's own kind (so any template renders it)."""
    if isinstance(record, (tuple, list)) and len(record) == 2:
        return (record[0], response)
    if isinstance(record, FormattedExample):
        last = max(i for i, (_, r) in enumerate(record.segments) if r)
        return FormattedExample(record.segments[:last] + ((response, True),))
    key = _turns_key(record)
    if key is not None:
        turns = list(record[key])
        last = max(i for i, t in enumerate(turns)
                   if isinstance(t, Mapping) and _role(t.get("from", t.get("role"))) == "assistant")
        turn = dict(turns[last])
        turn["value" if "value" in turn else "content"] = response
        turns[last] = turn
        return {**record, key: turns}
    out = dict(record)
    out["output" if "output" in record or "response" not in record else "response"] = response
    return out
