"""Stage 3, clusters: hand-written K-Means++, the fitted model and its JSON form, role
alignment, feature importance, the centroid report and the two-tape comparison.

* :mod:`.kmeans` - K-Means++ seeding and Lloyd iterations (compiled pass);
* :mod:`.model` - :class:`ClusterModel`, :func:`fit_model`, :func:`save_model` / :func:`load_model`,
  :func:`label_trades`;
* :mod:`.roles` - directional / opportunistic / passive alignment, stability, adjusted Rand index;
* :mod:`.importance` - between-cluster separation per feature;
* :mod:`.centroids` - the centroid report (``python -m clusterlob.cluster``);
* :mod:`.diagnostics` - feature correlation, agreement between starts, bootstrap of the fit;
* :mod:`.compare` - two tapes side by side (``python -m clusterlob.compare``).

See ``docs/clustering.md`` and ``docs/compare.md``.
"""
from .fit import FitSettings
from .centroids import (OUTPUT_FILES, CentroidRow, FeatureSummary, centroid_table, centroids_to_arrow,
                        collect_features, interpret_centroid, write_cluster_outputs)
from .diagnostics import (Bootstrap, FeatureDiagnostics, StartAgreement, bootstrap_fit, feature_diagnostics,
                          start_agreement)
from .importance import FeatureImportance, feature_importance, importance_for_centers
from .kmeans import KMeansResult, assign_clusters, kmeans, kmeans_plusplus
from .model import ClusterModel, TradeLabels, align_roles, fit_model, label_trades, load_model, save_model
from .roles import (DIRECTIONAL, OPPORTUNISTIC, PASSIVE, ROLE_NAMES, UNASSIGNED, adjusted_rand_index,
                    align_by_rule, align_to_reference, role_name)

__all__ = ["Bootstrap", "FeatureDiagnostics", "StartAgreement", "bootstrap_fit", "feature_diagnostics",
           "start_agreement", "CentroidRow", "ClusterModel", "DIRECTIONAL", "FeatureImportance", "FeatureSummary", "FitSettings", "KMeansResult",
           "OPPORTUNISTIC", "OUTPUT_FILES", "PASSIVE", "ROLE_NAMES", "TradeLabels", "UNASSIGNED",
           "adjusted_rand_index", "align_by_rule", "align_roles", "align_to_reference", "assign_clusters", "centroid_table",
           "centroids_to_arrow",
           "collect_features", "feature_importance", "fit_model", "importance_for_centers", "interpret_centroid",
           "kmeans", "kmeans_plusplus", "label_trades", "load_model", "role_name", "save_model",
           "write_cluster_outputs"]
