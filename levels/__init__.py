"""Built-in level kinds, registered by name on import.

| kind | level | input | actions |
| --- | --- | --- | --- |
| ``grid`` | 0 | MiniGrid symbolic grid ``(W, H, 3)`` uint8 | env actions |
| ``gridmap`` | 0 | MiniGrid symbolic grid ``(W, H, 3)`` uint8; spatial state ``c x W x H``, conv predictor | env actions |
| ``image`` | 0 | top-down RGB ``(H, W, 3)`` uint8 | env actions |
| ``state`` | 0 | state vector ``(n,)`` float | env actions |
| ``gridcoarse`` | k > 0 | a ``gridmap`` level's map states; a map of ``p x p`` blocks (their cells' states), dilated conv predictor on the cells | latent macro-actions from the level below's action chunk |
| ``temporal`` | k > 0 | the level below's states | latent macro-actions from the level below's action chunk |
| ``recurrent`` | k > 0 | the level below's states | GRU-pooled latent macro-actions; GRU-cell predictor |
"""

from hjepa.levels.grid import GridLevel
from hjepa.levels.gridmap import GridMapLevel
from hjepa.levels.gridcoarse import GridCoarseLevel
from hjepa.levels.image import ImageLevel
from hjepa.levels.state import StateLevel
from hjepa.levels.temporal import TemporalLevel
from hjepa.levels.recurrent import RecurrentLevel

__all__ = ["GridLevel", "GridMapLevel", "GridCoarseLevel", "ImageLevel", "StateLevel", "TemporalLevel", "RecurrentLevel"]
