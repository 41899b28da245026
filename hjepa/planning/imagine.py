"""Planning in imagination: the latent graph of a layout built by the world model alone.

The ``"graph"`` planner needs a memory of the layout's observations, which an unseen layout
does not have. The ``"imagine"`` planner builds that graph from the current observation
instead: breadth-first, it predicts every action's successor of every state found so far and
**snaps** each prediction onto the nearest state the encoder can produce. Snapping is what
keeps imagination from drifting: a ``gridmap`` level 0 embeds every cell on its own
(:meth:`~hjepa.levels.gridmap.GridMapLevel.cell_codebook`), so each cell of a predicted map is
snapped onto the nearest of the training data's cell embeddings, and the snapped map is
exactly the encoding of an observation.

**Sparse and local.** An imagined state is stored as the cells where its snapped map differs
from the first one (the root): a step changes a cell or two, so a node costs a few bytes
where a whole map costs ``w h`` codes, and its key (those cells and codes) finds revisits by a
dictionary lookup. A gridmap predictor reads only ``locality`` cells around each cell, so
a node is expanded on a ``window x window`` crop around the cells its own step changed (where
the agent acted), and only the crop's cells further than ``locality`` from a cut edge are
trusted: the prediction is the whole map's there. The root, whose changed cells are not known
yet, is expanded on the whole map.

**An action acts next to the agent.** Given the codes that draw the agent, a step keeps only
the changes within ``reach`` cells of the agent's cell before it, and a step whose map then
shows other than one agent is dropped. A predictor that now and then flips a cell far from the
agent would otherwise file each flip as a new state: on a 65 x 65 maze, a few hundred poses
fill thousands of nodes and the goal's state is never among them. Predictions are counted in **map units**: a prediction on
``k`` cells costs ``k / (w h)`` of a whole-map prediction.

The search ends when no new state appears, at ``max_nodes``, or once the depth that found the
goal is done (breadth-first, that depth is the goal's shortest distance). **The goal is a
cell**: any state whose agent stands on the goal observation's agent cell, facing any way,
whatever the doors and keys, reaches it (the goal observation shows the layout as at the
start, not the doors a route would open); the first such state found is the target, its node
also filed under the goal observation's key. The agent then
walks the graph's shortest path and checks each step: a move the env refused drops its edge
(as :class:`~hjepa.planning.graph.LatentGraph` does), and an observation the graph does not
hold starts a new imagination from it. Nothing here reads the env's layout: the codebook
comes from the training data and the graph from the predictor.

Shapes: ``q`` codes, ``c w h`` the map state, ``k`` a crop's side, ``a`` actions, ``m`` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from hjepa.errors import ConfigError
from hjepa.planning.goal_cell import GoalCell
from hjepa.planning.graph import NO_EDGE, LatentGraph

MAX_IMAGINED = 8192
"""Default cap on imagined nodes: FourRooms has 1,040 poses, a 33 x 33 MazeRooms about 3,200."""
BATCH = 1024
"""Predictions per predictor call while imagining."""
WINDOW = 9
"""Side of the crop a node is expanded on: the cells its step changed (at most 2 apart) plus
3 cells on every side, so the cells an action changes lie at least 2 inside the crop."""
REACH = 1
"""Cells from the agent's (Chebyshev) that one action may change: a move leaves one cell and
enters the next, a toggle or pickup changes the cell faced."""

def node_cost(w: int, h: int, n_actions: int, window: int = WINDOW) -> float:
    """What expanding one node on a ``window`` crop costs, in whole-map predictions of ``w x h``."""
    return n_actions * min(window, w) * min(window, h) / (w * h)


MapStep = Callable[[Tensor, Tensor], Tensor]
"""``(m "b c w h", a "b e") -> "b c w h"``: one predicted step on spatial states of any sides."""
Key = tuple
"""A node's key: its ``(cell, code)`` pairs that differ from the root's map, sorted."""


@dataclass(frozen=True)
class CellCodebook:
    """Cell embeddings ``emb "q c"`` of the codes ``codes "q"``, for maps ``"(c w h)"`` of ``shape``."""

    codes: Tensor
    emb: Tensor
    shape: tuple[int, int, int]

    def snap(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """States ``"n (c w h)"`` -> each cell on its nearest embedding ``"n (c w h)"``, and the
        keys ``"n (w h)"`` (uint8 indices into ``codes``)."""
        c, w, h = self.shape
        cells = rearrange(states, "n (c w h) -> n (w h) c", c=c, w=w, h=h)
        idx = self.nearest(cells)
        return rearrange(self.emb[idx], "n (w h) c -> n (c w h)", w=w, h=h), idx.to(torch.uint8)

    def nearest(self, cells: Tensor) -> Tensor:
        """``"... c"`` cell states -> ``"..."`` indices of their nearest embeddings."""
        d2 = cells.pow(2).sum(-1, keepdim=True) - 2 * cells @ self.emb.T + self.emb.pow(2).sum(-1)
        return d2.argmin(-1)

    def maps(self, idx: Tensor) -> Tensor:
        """Code indices ``"b w h"`` -> spatial states ``"b c w h"``."""
        return rearrange(self.emb[idx.long()], "b w h c -> b c w h")

    def state(self, idx: np.ndarray) -> Tensor:
        """One map of code indices ``"w h"`` -> its flat state ``"(c w h)"``."""
        return rearrange(self.maps(torch.from_numpy(idx)[None])[0], "c w h -> (c w h)")


def cell_codebook(level: torch.nn.Module, obs: Tensor) -> CellCodebook:
    """The codebook of the cell codes in ``obs`` (the training data's observations) at ``level``."""
    if not hasattr(level, "cell_codebook"):
        raise ConfigError(f"The 'imagine' planner needs a level 0 whose states are maps of cell embeddings (kind "
                          f"'gridmap'); this level 0 is '{level.spec.config.kind}'.")  # fmt: skip
    codes, emb = level.cell_codebook(obs)
    if len(codes) > 255:
        raise ConfigError(f"The 'imagine' planner keys cells by uint8; the data has {len(codes)} cell codes.")
    return CellCodebook(codes, emb.float(), level.map_shape)


class SparseNodes:
    """Imagined maps: the root's code indices ``base "w h"`` and, per node, the cells that differ.

    Indexing gives flat states: ``nodes[i] -> "(c w h)"``, ``nodes[list] -> "n (c w h)"``.
    """

    def __init__(self, base: np.ndarray, book: CellCodebook) -> None:
        self.base, self.book = base, book
        self.diffs: list[dict[int, int]] = [{}]
        self.agent: list[int] = [-1]  # the flat cell the agent stands on (-1: not tracked)
        self.focus: list[tuple[int, int] | None] = [None]  # the crop corner a node expands at (None: whole map)

    def __len__(self) -> int:
        return len(self.diffs)

    def codes(self, i: int) -> np.ndarray:
        """Node ``i``'s map of code indices ``"w h"``."""
        out = self.base.copy()
        flat = out.reshape(-1)
        for cell, code in self.diffs[i].items():
            flat[cell] = code
        return out

    def __getitem__(self, i: int | list[int] | np.ndarray | Tensor) -> Tensor:
        if isinstance(i, (int, np.integer)):
            return self.book.state(self.codes(int(i)))
        return torch.stack([self.book.state(self.codes(int(j))) for j in i]) if len(i) else torch.zeros(0)

    def key_of(self, codes: np.ndarray) -> Key:
        """The key a map of code indices ``"w h"`` has against the root."""
        cells = np.flatnonzero(codes.reshape(-1) != self.base.reshape(-1))
        return tuple((int(c), int(codes.reshape(-1)[c])) for c in cells)


@dataclass
class Imagined:
    """An imagined graph: its :class:`LatentGraph` (``edge_cost`` 1, nodes a :class:`SparseNodes`),
    node keys to indices, the predictions it took (``calls``) and their cost in map units
    (``cost``), and whether the search ran out of new states (False: capped)."""

    graph: LatentGraph
    index: dict[Key, int]
    calls: int
    complete: bool
    cost: float = 0.0


@dataclass(frozen=True)
class Corridor:
    """Where imagination may go: a node whose agent stands outside ``allowed`` is not kept.

    Attributes:
        allowed: ``"w h"`` bool, the cells the agent may stand on.
        is_agent: ``"q"`` bool over the codebook, the codes of the agent's cell (any heading).
    """

    allowed: np.ndarray
    is_agent: np.ndarray

    def admits(self, cells: list[int], codes: list[int]) -> bool:
        """Whether the cells a step changed (flat indices) and their new codes keep the agent inside."""
        for cell, code in zip(cells, codes):
            if self.is_agent[code]:
                return bool(self.allowed.reshape(-1)[cell])
        return True


@dataclass
class _Search:
    """The state of one breadth-first imagination."""

    nodes: SparseNodes
    index: dict[Key, int]
    succ: list[list[int]]
    window: int
    corridor: Corridor | None = None
    is_agent: np.ndarray | None = None
    reach: int = REACH
    calls: int = 0
    cells: int = 0
    frontier: list[int] = field(default_factory=list)


def imagine(start: Tensor, step: MapStep, actions: Tensor, book: CellCodebook, max_nodes: int = MAX_IMAGINED,
            goal: np.ndarray | None = None, window: int = WINDOW, locality: int = 1,
            corridor: Corridor | None = None, goal_cell: GoalCell | None = None, is_agent: np.ndarray | None = None,
            reach: int = REACH) -> Imagined:  # fmt: skip
    """Breadth-first imagination from state ``start "(c w h)"`` over ``actions "a e"`` (predictor
    inputs), ending after the depth that finds ``goal`` (a map of code indices ``"w h"``), if given;
    with ``goal_cell``, after the depth that finds any state on that cell, whose node the goal's
    key then names too.

    ``step`` predicts on spatial states of any sides (``GridMapLevel.predict_map``); ``window``
    is the side of the crops nodes expand on (0: whole maps); ``locality`` the cells one
    prediction reads around each cell; ``corridor`` keeps the agent on its cells (the blocks
    of a coarse level's route, :mod:`hjepa.planning.coarse`); ``is_agent "q"`` marks the codes
    that draw the agent, whose steps then change only cells within ``reach`` of it."""
    if max_nodes < 1 or reach < 0:
        raise ConfigError(f"max_nodes must be >= 1 and reach >= 0, got {max_nodes} and {reach}.")
    _, w, h = book.shape
    base = book.snap(start[None].float())[1][0].numpy().reshape(w, h)
    nodes = SparseNodes(base, book)
    search = _Search(nodes, {(): 0}, [[NO_EDGE] * actions.shape[0]], window if 0 < window < max(w, h) else 0, corridor,
                     is_agent, reach)  # fmt: skip
    nodes.agent[0] = _only_agent(base, is_agent)
    search.frontier = [0]
    goal_key = None if goal is None else nodes.key_of(goal)
    with torch.no_grad():
        while search.frontier and len(nodes) < max_nodes and goal_key not in search.index:
            _expand_depth(search, step, actions, max_nodes, locality)
            reached = [] if goal_cell is None else [n for n in search.frontier if goal_cell.reached_by(nodes, n)]
            if reached and goal_key not in search.index:
                search.index[goal_key] = reached[0]
    graph = LatentGraph(nodes, np.array(search.succ, dtype=np.int64), 0.0, 1, calls=search.calls)
    cost = search.cells / (w * h)
    return Imagined(graph, search.index, search.calls, not search.frontier and goal_key not in search.index, cost)


def _expand_depth(search: _Search, step: MapStep, actions: Tensor, max_nodes: int, locality: int) -> None:
    """Predict every action from every frontier node (batched by crop), add the new nodes."""
    n_act = actions.shape[0]
    pairs = [(s, a) for s in search.frontier for a in range(n_act)]
    search.frontier = []
    for i in range(0, len(pairs), BATCH):
        chunk = pairs[i : i + BATCH]
        for group in _by_crop(search, chunk):
            _predict_group(search, step, actions, group, max_nodes, locality)


def _by_crop(search: _Search, pairs: list[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """Pairs grouped so that a group's crops have one size (whole-map expansions apart)."""
    whole = [p for p in pairs if search.nodes.focus[p[0]] is None]
    local = [p for p in pairs if search.nodes.focus[p[0]] is not None]
    return [g for g in (whole, local) if g]


def _predict_group(search: _Search, step: MapStep, actions: Tensor, pairs: list[tuple[int, int]], max_nodes: int,
                   locality: int) -> None:  # fmt: skip
    nodes = search.nodes
    w, h = nodes.base.shape
    src = [p[0] for p in pairs]
    corner = nodes.focus[src[0]]
    kw, kh = (w, h) if corner is None else (min(search.window, w), min(search.window, h))
    corners = np.array([(0, 0) if nodes.focus[s] is None else nodes.focus[s] for s in src])
    crops = np.stack([_crop(nodes.codes(s), c, kw, kh) for s, c in zip(src, corners)])
    before = torch.from_numpy(crops)
    pred = step(nodes.book.maps(before), actions[[p[1] for p in pairs]]).float()
    after = nodes.book.nearest(rearrange(pred, "b c w h -> b w h c")).to(torch.uint8)
    search.calls += len(pairs)
    search.cells += len(pairs) * kw * kh
    changed = (after != before).numpy() & _trusted(corners, kw, kh, w, h, locality)
    changed &= _near_agent(search, src, corners, kw, kh)
    after_np = after.numpy()
    for j, (s, a) in enumerate(pairs):
        xs, ys = np.nonzero(changed[j])
        if len(xs) == 0:
            continue  # a blocked move: staying put is never on a shortest path
        gx, gy = xs + corners[j, 0], ys + corners[j, 1]
        cells, codes = (gx * h + gy).tolist(), after_np[j, xs, ys].tolist()
        agent = _agent_after(search, s, cells, codes)
        if agent is None or (search.corridor is not None and not search.corridor.admits(cells, codes)):
            continue
        diff = dict(nodes.diffs[s])
        for cell, code, base in zip(cells, codes, nodes.base[gx, gy].tolist()):
            if code == base:
                diff.pop(cell, None)
            else:
                diff[cell] = code
        key = tuple(sorted(diff.items()))
        node = search.index.get(key)
        if node is None and len(nodes) < max_nodes:
            node = search.index[key] = len(nodes)
            nodes.diffs.append(diff)
            nodes.agent.append(agent)
            nodes.focus.append(_corner(gx, gy, search.window, w, h))
            search.succ.append([NO_EDGE] * actions.shape[0])
            search.frontier.append(node)
        search.succ[s][a] = NO_EDGE if node is None or node == s else node


def _only_agent(codes: np.ndarray, is_agent: np.ndarray | None) -> int:
    """The flat cell of the one agent in a map of code indices, else -1 (not tracked)."""
    cells = np.array([]) if is_agent is None else np.flatnonzero(is_agent[codes.reshape(-1)])
    return int(cells[0]) if len(cells) == 1 else -1


def _near_agent(search: _Search, src: list[int], corners: np.ndarray, kw: int, kh: int) -> np.ndarray:
    """``"b kw kh"``: the crop cells within ``reach`` of the agent's cell in each source node
    (every cell where the agent is not tracked)."""
    h = search.nodes.base.shape[1]
    agent = np.array([search.nodes.agent[s] for s in src])
    ax, ay = agent // h - corners[:, 0], agent % h - corners[:, 1]
    near_x = np.abs(np.arange(kw)[None] - ax[:, None]) <= search.reach
    near_y = np.abs(np.arange(kh)[None] - ay[:, None]) <= search.reach
    return (near_x[:, :, None] & near_y[:, None, :]) | (agent < 0)[:, None, None]


def _agent_after(search: _Search, src: int, cells: list[int], codes: list[int]) -> int | None:
    """The agent's cell after a step from node ``src`` changed ``cells`` to ``codes``; None
    when the map would show other than one agent (-1 while the agent is not tracked)."""
    before = search.nodes.agent[src]
    if before < 0:
        return -1
    on = [cell for cell, code in zip(cells, codes) if search.is_agent[code]]
    on += [] if before in cells else [before]
    return on[0] if len(on) == 1 else None


def _crop(codes: np.ndarray, corner: np.ndarray, kw: int, kh: int) -> np.ndarray:
    return codes[corner[0] : corner[0] + kw, corner[1] : corner[1] + kh]


def _corner(xs: np.ndarray, ys: np.ndarray, window: int, w: int, h: int) -> tuple[int, int] | None:
    """The corner of the ``window`` crop centred on the changed cells ``xs, ys`` (inside the
    map), or None (whole map) when they spread wider than the crop can hold with margin."""
    if not window or xs.max() - xs.min() > window - 7 or ys.max() - ys.min() > window - 7:
        return None
    cx, cy = (int(xs.min() + xs.max()) // 2, int(ys.min() + ys.max()) // 2)
    return (min(max(cx - window // 2, 0), max(w - window, 0)), min(max(cy - window // 2, 0), max(h - window, 0)))


def _trusted(corners: np.ndarray, kw: int, kh: int, w: int, h: int, locality: int) -> np.ndarray:
    """``"b kw kh"``: the crop cells whose prediction is the whole map's (further than
    ``locality`` from every edge of the crop that cuts the map)."""
    xs, ys = np.arange(kw), np.arange(kh)
    x0, y0 = corners[:, :1], corners[:, 1:]
    ok_x = ((xs >= locality) | (x0 == 0)) & ((xs < kw - locality) | (x0 + kw >= w))
    ok_y = ((ys >= locality) | (y0 == 0)) & ((ys < kh - locality) | (y0 + kh >= h))
    return ok_x[:, :, None] & ok_y[:, None, :]
