"""See inside every level of a trained stack: a JEPA has no decoder, so these tools read
abstract states back through real observations.

Each function returns data (named tuples, arrays) and each ``plot_*`` a matplotlib
``Figure``, so they work in a notebook; :func:`inspect_checkpoint` writes them all to a
folder (``hjepa inspect``).

| view | data | figure |
| --- | --- | --- |
| prediction error against horizon, beside copying the last state | :func:`prediction_errors` | :func:`plot_prediction_errors`, :func:`prediction_table` (rich) |
| embedding health: per-dimension std, effective rank, PCA coloured by true position | :func:`embedding_view` | :func:`plot_embeddings` |
| nearest dataset observations to a level's prediction | :func:`neighbour_views` | :func:`plot_neighbours` |
| one episode: path, decoded subgoals per level, predicted vs reached states | :func:`trace_episode` | :func:`plot_episode`, :func:`plot_episode_predictions`, :func:`save_episode_gif` |
| the critic's cost-to-go over the map beside the oracle's | :func:`critic_maps` | :func:`plot_critic_maps` |

Poses and maps are privileged information: inspection shows them, the model never reads them.
"""

from hjepa.inspection.critic_map import CriticMap, critic_maps, plot_critic_maps
from hjepa.inspection.embeddings import EmbeddingView, embedding_view, plot_embeddings
from hjepa.inspection.episode import (EpisodeView, PlannerAgent, SubgoalRecord, goal_obs_for, plot_episode,
                                      plot_episode_predictions, save_episode_gif, trace_episode)  # fmt: skip
from hjepa.inspection.predictions import (HorizonErrors, NeighbourView, neighbour_views, plot_neighbours,
                                          plot_prediction_errors, prediction_errors, prediction_table)  # fmt: skip
from hjepa.inspection.report import (InspectConfig, InspectReport, default_tasks, inspect_checkpoint, pick_episode,
                                     summary_table)  # fmt: skip
from hjepa.inspection.source import (Source, StateBank, check_levels, dataset_bank, encode_all, layout_bank,
                                     load_source, nearest, pca_2d)  # fmt: skip

__all__ = [
    "CriticMap", "EmbeddingView", "EpisodeView", "HorizonErrors", "InspectConfig", "InspectReport", "NeighbourView",
    "PlannerAgent", "Source", "StateBank", "SubgoalRecord", "check_levels", "critic_maps", "dataset_bank",
    "default_tasks", "embedding_view", "encode_all", "goal_obs_for", "inspect_checkpoint", "layout_bank",
    "load_source", "nearest", "neighbour_views", "pca_2d", "pick_episode", "plot_critic_maps", "plot_embeddings",
    "plot_episode", "plot_episode_predictions", "plot_neighbours", "plot_prediction_errors", "prediction_errors",
    "prediction_table", "save_episode_gif", "summary_table", "trace_episode",
]  # fmt: skip
