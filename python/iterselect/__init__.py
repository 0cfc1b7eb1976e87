"""iterselect: fast, exact training-subset selection for LLM instruction tuning.

The public API, re-exported from one module per selector family.
"""
from ._backends import backends, cuda_unavailable_reason, has_cuda
from .coverage import NgramVocabulary
from .affinity import (AffinityPropagationResult, affinity_propagation, history_matrix,
                       representation_scores)
from .cluster import (ChooseKResult, ClusterWeights, KMeansResult, KMQSample, choose_k,
                      cluster_weights_update, kmeans, kmq_sample)
from .coverage import (CoverageResult, IterITResult, TfidfResult, coverage_decay, coverage_gains,
                       coverage_greedy, iterit_select, tfidf_matrix)
from .exceptions import ConvergenceWarning
from .kcenter import KCenterResult, kcenter_greedy
from .methods import (Bank, BankHistory, InsBank, InsBankRound, BaselineResult, DiverseEvol, IterativeKMQ, IterIT, MethodRun, TrainConfig,
                      deita_select, ifd_topk, kcenter_select, kmeans_closest_select,
                      kmeans_random_select, kmq_select, knn_distance, least_confidence_select,
                      longest_response, margin_select, qdit_select, random_select)
from .metrics import SilhouetteResult, VendiResult, silhouette, vendi_score
from .runs import RunDirectory
from .scoring import (Embeddings, FormattedExample, FormattedExamples, GenerationResult, IFDResult,
                      PerplexityResult, RewardResult, ScoringWarning, embed, embed_sentences,
                      format_examples, format_prompts, generate, ifd_scores, load_model,
                      load_tokenizer, perplexity, record_text, reward_scores, token_confidence)
from .selectors import KCenterSelector
from .training import Finetuner, FinetuneResult, finetune

__version__ = "0.1.0"

__all__ = [
    "AffinityPropagationResult", "ConvergenceWarning", "affinity_propagation", "history_matrix",
    "representation_scores",
    "ChooseKResult", "ClusterWeights", "KMeansResult", "KMQSample", "choose_k",
    "cluster_weights_update", "kmeans", "kmq_sample", "SilhouetteResult", "VendiResult",
    "silhouette", "vendi_score", "BaselineResult", "DiverseEvol", "IterIT", "IterativeKMQ",
    "MethodRun", "TrainConfig", "deita_select", "ifd_topk", "kcenter_select", "knn_distance",
    "longest_response", "random_select", "kmeans_closest_select", "kmeans_random_select",
    "kmq_select", "qdit_select", "least_confidence_select", "margin_select", "RunDirectory", "Bank", "BankHistory", "InsBank",
    "InsBankRound",
    "CoverageResult", "IterITResult", "NgramVocabulary", "TfidfResult", "coverage_decay",
    "coverage_gains", "coverage_greedy", "iterit_select", "tfidf_matrix",
    "Embeddings", "Finetuner", "FinetuneResult", "FormattedExample", "FormattedExamples", "GenerationResult",
    "IFDResult", "KCenterResult", "KCenterSelector", "PerplexityResult", "RewardResult",
    "ScoringWarning", "backends", "cuda_unavailable_reason", "embed", "embed_sentences",
    "finetune", "format_examples", "format_prompts", "generate", "has_cuda", "ifd_scores",
    "kcenter_greedy", "load_model", "load_tokenizer", "perplexity", "record_text",
    "reward_scores", "token_confidence",
]
