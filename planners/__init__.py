"""Built-in planners, registered by name on import (:mod:`hjepa.planning.search`).

| planner | actions | searches |
| --- | --- | --- |
| ``beam`` | discrete | beam search over action sequences (exhaustive when wide enough) |
| ``cem`` | discrete | categorical cross-entropy method |
| ``gaussian_cem`` | continuous | Gaussian cross-entropy method over the action box |
| ``mppi`` | continuous | model-predictive path integral over the action box |
| ``graph`` | discrete | shortest path on a latent graph of the dataset's observations; beam where it has none |
| ``imagine`` | discrete, level 0 | shortest path on the graph imagined from the current observation; beam where it has none |

A new file in this folder that registers a planner is found with no other edit.
"""
