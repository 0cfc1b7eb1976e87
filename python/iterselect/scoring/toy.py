"""Tiny local models and tokenizers, for examples, doctests and benchmarks (no network).

The tokenizer is a byte-level BPE trained in memory on a few texts (any string tokenizes), with
``<s>``/``</s>``/``<pad>`` special tokens and a ChatML chat template; the models are randomly
initialised GPT-2 or Llama networks of a few thousand parameters. Scores from them mean
nothing; they exercise the code paths of real models.
"""
from __future__ import annotations

from .._validation import check_choice, check_int

TOY_TEXTS = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.",
    "### Instruction:\nName a fruit.\n\n### Response:\nAn apple is a fruit.",
    "The quick brown fox jumps over the lazy dog.",
    "The cat sat on the mat today and the dog sat on the rug.",
    "Two plus two is four; three plus four is seven.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
)

CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def toy_tokenizer(texts=TOY_TEXTS, *, vocab_size: int = 320, bos: bool = True):
    """A byte-level BPE tokenizer trained on ``texts``, as a transformers fast tokenizer.

    Special tokens: ``<pad>`` (0), ``<s>`` (1, BOS, added in front of every encoded text when
    ``bos``), ``</s>`` (2, EOS), ``<|im_start|>`` and ``<|im_end|>``; chat template: ChatML.
    With ``bos=False`` the tokenizer has no BOS token and adds nothing.

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_tokenizer
    >>> tok = toy_tokenizer()
    >>> ids = tok("Hello")["input_ids"]
    >>> ids[0] == tok.bos_token_id, tok.decode(ids, skip_special_tokens=True)
    (True, 'Hello')
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    vocab_size = check_int(vocab_size, "vocab_size", "toy_tokenizer", low=262)
    specials = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>" if bos else None, eos_token="</s>",
        pad_token="<pad>", additional_special_tokens=specials[3:])
    fast.chat_template = CHATML_TEMPLATE
    return fast


def toy_causal_lm(tokenizer, arch: str = "gpt2", *, hidden_size: int = 32, layers: int = 2,
                  max_positions: int = 512, seed: int = 0):
    """A randomly initialised tiny GPT-2 or Llama for ``tokenizer``'s vocabulary (float32, eval).

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_causal_lm, toy_tokenizer
    >>> model = toy_causal_lm(toy_tokenizer(), "llama")
    >>> type(model).__name__, model.config.hidden_size
    ('LlamaForCausalLM', 32)
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    check_choice(arch, "arch", "toy_causal_lm", ("gpt2", "llama"))
    common = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    if arch == "gpt2":
        config = GPT2Config(n_embd=hidden_size, n_layer=layers, n_head=2,
                            n_positions=max_positions, **common)
        model = GPT2LMHeadModel(config)
    else:
        config = LlamaConfig(hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                             num_hidden_layers=layers, num_attention_heads=2,
                             num_key_value_heads=1, max_position_embeddings=max_positions,
                             **common)
        model = LlamaForCausalLM(config)
    model.loss_type = "ForCausalLM"  # the loss it uses; transformers warns on each GPT-2 otherwise
    return model.eval()


def toy_model_and_tokenizer(arch: str = "gpt2", *, seed: int = 0, texts=None, vocab_size: int = 320):
    """``(toy_causal_lm(tok, arch), tok)`` with ``tok = toy_tokenizer()``, or with a tokenizer
    trained on ``texts`` (``vocab_size`` tokens) when given.

    Train the tokenizer on the data the toy will see when it is to generate: with the default
    tokenizer (six sentences, mostly single bytes) a toy fine-tuned for a few steps answered 58
    of 100 Dolly prompts with whitespace only (kMQ cannot score those), and with one of 2,000
    tokens trained on 2,000 Dolly records, none.

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_model_and_tokenizer
    >>> model, tok = toy_model_and_tokenizer("llama", seed=1)
    >>> model.config.vocab_size == len(tok), model.training
    (True, False)
    >>> _, tok = toy_model_and_tokenizer(texts=["the cat sat on the mat"] * 3, vocab_size=300)
    >>> len(tok("the cat")["input_ids"]) < len("the cat")
    True
    """
    tok = toy_tokenizer() if texts is None else toy_tokenizer(list(texts), vocab_size=vocab_size)
    return toy_causal_lm(tok, arch, seed=seed), tok


RECORD_TEXTS = 2000  # toy_for_records: its tokenizer learns from this many records ...
RECORD_VOCAB = 2000  # ... and has this many tokens


def toy_for_records(records, arch: str = "gpt2", *, seed: int = 0):
    """The toy that ``--model toy`` builds for a run on ``records``: its tokenizer trained on the
    text of the first 2,000 records (2,000 tokens), so that a briefly trained toy answers with
    words, not whitespace (see :func:`toy_model_and_tokenizer`).

    Examples
    --------
    >>> from iterselect.scoring.toy import toy_for_records
    >>> model, tok = toy_for_records([{"instruction": "Name a colour.", "output": "Blue."}] * 4)
    >>> model.config.vocab_size == len(tok)
    True
    """
    from ..datasets import embedding_text

    texts = [embedding_text(r) for r in list(records)[:RECORD_TEXTS]]
    return toy_model_and_tokenizer(arch, seed=seed, texts=texts, vocab_size=RECORD_VOCAB)
