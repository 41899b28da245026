"""Observation and action specs: what a dataset holds and what a level accepts.

Specs travel with datasets and checkpoints and are checked when the two meet, so that a
level never silently consumes data of another shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hjepa.errors import SpecMismatchError

OBS_KINDS = ("grid", "image", "state")
ACTION_KINDS = ("discrete", "continuous")


@dataclass(frozen=True)
class ObsSpec:
    """What one observation is.

    Attributes:
        kind: "grid" (MiniGrid symbolic encoding, shape (W, H, 3) uint8, indexed [x][y]),
            "image" (top-down RGB, shape (H, W, 3) uint8) or "state" (a float32 vector (D,)).
        shape: shape of a single observation.
        dtype: numpy dtype name of the stored array.
    """

    kind: str
    shape: tuple[int, ...]
    dtype: str

    def __post_init__(self) -> None:
        if self.kind not in OBS_KINDS:
            raise SpecMismatchError(f"Unknown observation kind '{self.kind}'; expected one of {OBS_KINDS}.")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ObsSpec":
        return cls(kind=d["kind"], shape=tuple(d["shape"]), dtype=d["dtype"])


@dataclass(frozen=True)
class ActionSpec:
    """What one environment action is.

    Attributes:
        kind: "discrete" (an int in [0, n)) or "continuous" (a float vector of size dim).
        n: number of discrete actions (0 for continuous).
        dim: size of the continuous action (0 for discrete).
        env_actions: for discrete specs, the env's action id of each of our n actions
            (MiniGrid: left=0, right=1, forward=2, toggle=5); we store our own index 0..n-1.
        low: lower bound of continuous actions.
        high: upper bound of continuous actions.
        names: human-readable names of the discrete actions.
        repeat: simulator steps each action is held for (action repeat; 1 = every step).
            PointMaze's models act every ``repeat`` physics steps: one model step then spans
            ``repeat`` env steps, in the data and in the episodes alike.
    """

    kind: str
    n: int = 0
    dim: int = 0
    env_actions: tuple[int, ...] = ()
    low: float = -1.0
    high: float = 1.0
    names: tuple[str, ...] = field(default_factory=tuple)
    repeat: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise SpecMismatchError(f"Unknown action kind '{self.kind}'; expected one of {ACTION_KINDS}.")
        if self.kind == "discrete" and self.n < 1:
            raise SpecMismatchError("A discrete action spec needs n >= 1 actions.")
        if self.kind == "continuous" and self.dim < 1:
            raise SpecMismatchError("A continuous action spec needs dim >= 1.")
        if int(self.repeat) != self.repeat or self.repeat < 1:
            raise SpecMismatchError(f"An action spec's repeat must be an integer >= 1, got {self.repeat!r}.")
        object.__setattr__(self, "env_actions", tuple(int(a) for a in self.env_actions))
        object.__setattr__(self, "names", tuple(str(a) for a in self.names))

    @property
    def is_discrete(self) -> bool:
        return self.kind == "discrete"

    @property
    def input_dim(self) -> int:
        """Width of the action as fed to a predictor (one-hot for discrete actions)."""
        return self.n if self.is_discrete else self.dim

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["env_actions"] = list(self.env_actions)
        d["names"] = list(self.names)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ActionSpec":
        return cls(**{**d, "env_actions": tuple(d.get("env_actions", ())), "names": tuple(d.get("names", ()))})


def check_same_spec(expected: ObsSpec | ActionSpec, got: ObsSpec | ActionSpec, what: str) -> None:
    """Raise :class:`SpecMismatchError` when two specs differ, naming both."""
    if expected != got:
        raise SpecMismatchError(
            f"{what} does not match: expected {expected.to_dict()}, got {got.to_dict()}. "
            "A model only runs on data with the observation and action spec it was built for."
        )
