"""iterselect: fast, exact training-subset selection for LLM instruction tuning.

The public API, re-exported from one subpackage per selector family (:mod:`iterselect.kcenter`,
:mod:`iterselect.coverage`, :mod:`iterselect.affinity`, :mod:`iterselect.cluster`,
:mod:`iterselect.facility`), the measures (:mod:`iterselect.metrics`), the methods
(:mod:`iterselect.methods`), model scoring (:mod:`iterselect.scoring`) and training (:mod:`iterselect.training`). The scikit-learn
estimators are in :mod:`iterselect.estimators` and the drop-in replacements of scikit-learn
classes in :mod:`iterselect.sklearn` (both need scikit-learn).
"""
from ._backends import backends, cuda_unavailable_reason, has_cuda
from ._version import __version__
from .affinity import (AffinityPropagationResult, affinity_propagation, history_matrix,
                       representation_scores)
from .cluster import (ChooseKResult, ClusterWeights, ClusterWeightsResult, KMeansResult, KMQSample,
                      KMQSampleResult, choose_k, cluster_weights_update, kmeans, kmq_sample)
from .coverage import (CoverageResult, IterITResult, NgramVocabulary, TfidfResult, coverage_decay,
                       coverage_gains, coverage_greedy, iterit_select, tfidf_matrix)
from .exceptions import (ConvergenceWarning, DataError, MemoryModeWarning, PerformanceWarning,
                         RecordError, RunError, ScoringWarning)
from .facility import (FacilityLocationResult, facility_gains, facility_location,
                       facility_location_graph, facility_objective, facility_update,
                       knn_similarity_graph)
from .kcenter import KCenterResult, kcenter_greedy
from .methods import (Bank, BankHistory, BaselineResult, DiverseEvol, InsBank, InsBankRound,
                      InsBankRoundResult, IterativeKMQ, IterIT, MethodRun, MethodRunResult,
                      TrainConfig, deita_select, graphfilter_select, ifd_topk,
                      kcenter_quality_select, kcenter_select, kmeans_closest_select,
                      kmeans_random_select, kmq_select, knn_distance, knn_quality_select,
                      least_confidence_select, longest_response, margin_select, qdit_select,
                      random_select)
from .metrics import SilhouetteResult, VendiResult, silhouette, vendi_score
from .runs import RunDirectory
from .scoring import (ConfidenceResult, Embeddings, EmbeddingsResult, FormattedExample,
                      FormattedExamples, GenerationResult, IFDResult, PerplexityResult,
                      RewardResult, embed, embed_sentences, format_examples, format_prompts,
                      generate, ifd_scores, load_model, load_tokenizer, perplexity, record_text,
                      reward_scores, token_confidence)
from .training import Finetuner, FinetuneResult, finetune

__all__ = [
    "__version__", "backends", "cuda_unavailable_reason", "has_cuda",
    # families
    "KCenterResult", "kcenter_greedy",
    "CoverageResult", "IterITResult", "NgramVocabulary", "TfidfResult", "coverage_decay",
    "coverage_gains", "coverage_greedy", "iterit_select", "tfidf_matrix",
    "AffinityPropagationResult", "affinity_propagation", "history_matrix", "representation_scores",
    "ChooseKResult", "ClusterWeightsResult", "KMeansResult", "KMQSampleResult", "choose_k",
    "cluster_weights_update", "kmeans", "kmq_sample",
    "FacilityLocationResult", "facility_gains", "facility_location", "facility_location_graph",
    "facility_objective", "facility_update", "knn_similarity_graph",
    # measures
    "SilhouetteResult", "VendiResult", "silhouette", "vendi_score",
    # methods and baselines
    "Bank", "BankHistory", "BaselineResult", "DiverseEvol", "InsBank", "InsBankRoundResult",
    "IterIT", "IterativeKMQ", "MethodRunResult", "RunDirectory", "TrainConfig", "deita_select",
    "graphfilter_select", "ifd_topk", "kcenter_quality_select", "kcenter_select",
    "kmeans_closest_select", "kmeans_random_select", "kmq_select", "knn_distance",
    "knn_quality_select", "least_confidence_select", "longest_response", "margin_select",
    "qdit_select", "random_select",
    # scoring and training
    "ConfidenceResult", "EmbeddingsResult", "FinetuneResult", "Finetuner", "FormattedExample",
    "FormattedExamples", "GenerationResult", "IFDResult", "PerplexityResult", "RewardResult",
    "embed", "embed_sentences", "finetune", "format_examples", "format_prompts", "generate",
    "ifd_scores", "load_model", "load_tokenizer", "perplexity", "record_text", "reward_scores",
    "token_confidence",
    # warnings and errors
    "ConvergenceWarning", "DataError", "MemoryModeWarning", "PerformanceWarning", "RecordError",
    "RunError", "ScoringWarning",
]


def __getattr__(name):
    # the deprecated estimator name, importable from here as before; it needs scikit-learn, which
    # ``import iterselect`` does not
    if name == "KCenterSelector":
        from .selectors import KCenterSelector

        return KCenterSelector
    raise AttributeError(f"module 'iterselect' has no attribute {name!r}")
