"""Typed configuration: one frozen dataclass per component, composed into ExperimentConfig.

Every field is documented where it is declared; derived values are properties. Configs
round-trip through plain dicts / YAML (``to_dict`` / ``from_dict``) and accept dotted
overrides such as ``levels.0.dim=128`` (``level.0.dim`` is accepted too).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import yaml

from hjepa.data.collect import CollectConfig
from hjepa.errors import ConfigError


@dataclass(frozen=True)
class LevelConfig:
    """One level of the stack."""

    kind: str = "grid"
    """Registered level kind (see ``hjepa.registry.level_kinds()``)."""
    dim: int = 64
    """Size of the level's abstract state s^k."""
    stride: int = 1
    """Steps of the level below that one step of this level spans (1 for level 0, >= 2 above)."""
    action_dim: int = 8
    """Size of the latent action (macro-action) of a level k > 0; ignored at level 0."""
    hidden: int = 256
    """Hidden width of the predictor and heads."""
    args: dict[str, Any] = field(default_factory=dict)
    """Kind-specific arguments (e.g. ``channels`` for grid levels)."""


@dataclass(frozen=True)
class RegularizerConfig:
    """Anti-collapse regulariser applied to every level's online embeddings."""

    kind: str = "vicreg"
    """"vicreg" (variance + covariance hinge) or "sigreg" (sketched isotropic Gaussian test)."""
    weight: float = 1.0
    """Overall weight of the regulariser in each level's loss."""
    var_weight: float = 1.0
    """VICReg: weight of the std hinge (std target 1)."""
    cov_weight: float = 0.04
    """VICReg: weight of the off-diagonal covariance penalty."""
    slices: int = 256
    """SIGReg: number of random 1-D projections."""
    by_layout: bool = True
    """Compute statistics within groups of states from the same layout (else a random-layout
    dataset makes the latent encode the layout instead of the agent; docs/design-notes.md)."""


@dataclass(frozen=True)
class LossConfig:
    """Weights of the joint loss terms (the same for every level)."""

    pred: float = 1.0
    """One-step prediction in representation space against the EMA target."""
    rollout: float = 0.5
    """Multi-step (autoregressive) prediction, steps 2..rollout_steps."""
    rollout_steps: int = 4
    """Longest autoregressive rollout trained per level (in that level's own steps)."""
    smooth: float = 0.0
    """Temporal similarity: squared distance between consecutive states of a level (EB-JEPA's
    temporal-similarity term); pulls states that are few steps apart close together."""
    smooth_from: int = 0
    """The lowest level the smoothness term applies to: a level that must keep fast features
    (PointMaze's level 0 needs the velocity to predict) stays out of it, while the levels
    above learn slow ones (where the ball is, not how fast it goes)."""
    idm: float = 1.0
    """Inverse dynamics: predict the action from consecutive abstract states."""
    upward: float = 0.5
    """Upward prediction: level k's rollout over one step of level k+1, read through E_{k+1},
    matches level k+1's target."""
    regularizer: RegularizerConfig = field(default_factory=RegularizerConfig)
    """Anti-collapse term."""
    detach_below: bool = True
    """Level k > 0 reads the level below's states and actions without gradient, so level k's
    own terms never reach the levels below; only the upward term (level k-1's rollout read
    through E_k) trains level k-1's encoder and predictor together with E_k."""
    upward_trains_below: bool = True
    """The upward term's gradient reaches level k-1's encoder and predictor (False: it trains
    E_k alone to read level k-1's rollouts, and level k-1 learns from its own terms only)."""
    pairs_per_window: int = 0
    """One-step prediction and inverse-dynamics terms on this many (state, next state) pairs per
    window and level: the first pair and a random draw of the others (0: every pair). Spatial
    level-0 kinds (``gridmap``) spend most of a step there; 4 of a 17-step window keeps the
    gradient's direction at a quarter of the cost."""
    still_weight: float = 1.0
    """Level 0's one-step prediction term: weight of the pairs whose observation does not change
    (a move into a wall), against 1 for the others (a weighted mean). Random walks bump into
    walls rarely (7% of fourrooms' steps), and a model that has not learnt them predicts walking
    through walls, which costs the graph planner detours (weight 5 cut true edges and success: docs/design-notes.md)."""

    hard_focus: float = 0.0
    """Level 0's one-step prediction term: pairs weigh ``(error / mean error) ** hard_focus``
    (without gradient through the weight; 0: all alike). Rare transitions a random walk
    seldom shows (a fixed layout's doorway exits) stay badly predicted under a plain mean and
    tear the latent graph apart at doorways (docs/design-notes.md, "loss.hard_focus"); a focus on the
    hardest pairs trains them harder."""

    def __post_init__(self) -> None:
        if self.still_weight < 0:
            raise ConfigError(f"loss.still_weight must be >= 0, got {self.still_weight}.")
        if self.smooth_from < 0:
            raise ConfigError(f"loss.smooth_from must be >= 0, got {self.smooth_from}.")
        if self.hard_focus < 0:
            raise ConfigError(f"loss.hard_focus must be >= 0, got {self.hard_focus}.")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and hardware."""

    steps: int = 3000
    """Optimisation steps (each updates every level)."""
    batch_size: int = 128
    """Windows per batch; every window holds ``window`` consecutive observations."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    warmup_steps: int = 100
    """Linear learning-rate warm-up."""
    ema_start: float = 0.95
    """Target-encoder EMA momentum at step 0."""
    ema_end: float = 1.0
    """Target-encoder EMA momentum at the last step (cosine schedule)."""
    epoch_steps: int = 250
    """Steps between validation / checkpoint points (an "epoch" of the infinite sampler)."""
    val_fraction: float = 0.05
    """Fraction of episodes held out for validation metrics."""
    val_batches: int = 4
    """Validation batches per check."""
    log_every: int = 25
    """Training metrics are written every this many steps."""
    precision: str = "auto"
    """Lightning precision: "auto" (bf16-mixed on GPU, 32-true on CPU), "32-true", "bf16-mixed", ..."""
    accelerator: str = "auto"
    """Lightning accelerator: "auto", "cpu", "gpu"/"cuda"."""
    devices: int | str = "auto"
    """Lightning devices ("auto", a count, or a list such as "0,1")."""
    strategy: str = "auto"
    """Lightning strategy ("auto", "ddp", ...)."""
    num_nodes: int = 1
    """Nodes for multi-node DDP."""
    num_threads: int = 0
    """CPU threads for torch (0: chosen from the cores and the load by
    ``hjepa.threads.choose_threads``; ``--threads N`` sets it)."""
    freeze_below: bool = False
    """When ``--resume`` grows a trained stack by new levels on top: keep the loaded lower levels
    frozen (no gradient, no EMA update) and train only the new ones; false fine-tunes them too."""


@dataclass(frozen=True)
class CriticConfig:
    """The trainable critic of every level's cost module (``hjepa.critic``)."""

    enabled: bool = True
    """Train a critic per level after the world model (off: planners use latent distance only)."""
    kind: str = "quasimetric"
    """"quasimetric" (an MRN distance over a learned embedding) or "mlp" (an MLP on
    ``[s, g, s - g]``); docs/design-notes.md ("Critics") has the measurement behind the default."""
    embed: int = 64
    """Quasimetric critic: width of each half (symmetric, asymmetric) of the embedding."""
    keypoints: int = 16
    """Quasimetric critic of a level with map states (``gridmap``): soft-argmax keypoints it
    reads them through (0: the flat state)."""
    gammas: tuple[float, ...] = (0.95, 0.9)
    """Discount per step of level k (the last entry serves every higher level)."""
    steps: int = 3000
    """Optimisation steps per level."""
    batch_size: int = 512
    """(state, goal) pairs per step."""
    lr: float = 1e-3
    """Adam learning rate."""
    hidden: int = 256
    """Hidden width of the critic MLP."""
    depth: int = 3
    """Hidden layers of the critic MLP."""
    expectile: float = 0.8
    """Weight of targets above the prediction (> 0.5 leans to the better successors)."""
    polyak: float = 0.05
    """Target-critic update rate (values propagate about one level step per ``1 / polyak``
    optimisation steps, so a slow target needs many more steps)."""
    p_self: float = 0.2
    """Fraction of goals that are the state itself."""
    p_future: float = 0.5
    """Fraction of goals that are later states of the same trajectory (the rest: random states)."""

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "quasimetric"):
            raise ConfigError(f"Unknown critic kind '{self.kind}'. Kinds: mlp, quasimetric.")

    def gamma_at(self, k: int) -> float:
        return float(self.gammas[min(k, len(self.gammas) - 1)])


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run needs: data, stack, losses, training."""

    name: str = "custom"
    """Experiment name (written to reports)."""
    seed: int = 0
    """Seeds data collection, initialisation, batching and evaluation."""
    data: CollectConfig = field(default_factory=CollectConfig)
    """Offline data collection."""
    levels: tuple[LevelConfig, ...] = (LevelConfig(),)
    """The stack, level 0 first."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Joint loss weights."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """Per-level critics of the cost module."""

    def __post_init__(self) -> None:
        validate_levels(self.levels)

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(lv.stride for lv in self.levels)

    @property
    def taus(self) -> tuple[int, ...]:
        """Env steps spanned by one step of each level: tau_0 = 1, tau_k = tau_{k-1} * stride_k."""
        return tuple(math.prod(self.strides[: k + 1]) for k in range(len(self.levels)))

    @property
    def window(self) -> int:
        """Observations per training window: the top level's span plus one."""
        return self.taus[-1] + 1


def validate_levels(levels: tuple[LevelConfig, ...]) -> None:
    """Raise :class:`ConfigError` unless the stack's strides and sizes are usable."""
    if not levels:
        raise ConfigError("The stack needs at least one level.")
    for k, lv in enumerate(levels):
        if not isinstance(lv.stride, int) or isinstance(lv.stride, bool):
            raise ConfigError(f"Level {k}: stride must be an integer, got {lv.stride!r}.")
        if k == 0 and lv.stride != 1:
            raise ConfigError(f"Level 0: stride must be 1 (it steps with the environment), got {lv.stride}.")
        if k > 0 and lv.stride < 2:
            raise ConfigError(
                f"Level {k}: stride must be an integer >= 2 (each level spans several steps of the "
                f"level below), got {lv.stride}."
            )
        if lv.dim < 1 or lv.hidden < 1 or (k > 0 and lv.action_dim < 1):
            raise ConfigError(f"Level {k}: dim, hidden and action_dim must be positive.")


# ----------------------------------------------------------------------------- dict / YAML


def to_dict(cfg: Any) -> Any:
    """A dataclass tree as plain dicts/lists (YAML-safe)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def from_dict(cls: type, data: Any, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a plain dict, checking keys and converting nested types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(names)}.")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{where}.{i}") for i, v in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {value!r}.") from None
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. --set train.precision=32
    if tp in (int, float, str, bool) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}.")
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got {value!r}.")
    return value


def dump_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def load_yaml(path: str) -> ExperimentConfig:
    """Read an ExperimentConfig from a YAML file (clear error if missing or malformed)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"Config file '{path}' does not exist.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {exc}") from exc
    return from_dict(ExperimentConfig, data or {}, where=str(path))


# ----------------------------------------------------------------------------- overrides


def apply_overrides(cfg: ExperimentConfig, overrides: list[str]) -> ExperimentConfig:
    """Apply dotted ``key=value`` overrides (values parsed as YAML) and re-validate.

    ``levels.1.stride=3``, ``train.steps=500``, ``data.transitions=20000``. An index must
    exist: levels are added by ``--levels K`` (:func:`hjepa.experiments.presets.with_levels`),
    never by an override.
    """
    data = to_dict(cfg)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override '{item}' is not of the form key=value.")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"Override '{item}': value is not valid YAML ({exc}).") from exc
        _set_path(data, key.strip().split("."), value, item)
    return from_dict(ExperimentConfig, data)


def _grow_hint(item: str) -> str:
    if not item.startswith(("levels.", "level.")):
        return ""
    return (" The stack has only those levels; add levels with --levels K (hjepa run, train, bench), "
            "then set the new ones.")


def _set_path(node: Any, parts: list[str], value: Any, item: str) -> None:
    head, rest = parts[0], parts[1:]
    if head == "level" and isinstance(node, dict) and "levels" in node:
        head = "levels"
    if isinstance(node, list):
        if not head.isdigit() or int(head) >= len(node):
            raise ConfigError(f"Override '{item}': '{head}' is not a valid index (0..{len(node) - 1}).{_grow_hint(item)}")
        target = node[int(head)]
    elif isinstance(node, dict):
        if head not in node:
            raise ConfigError(f"Override '{item}': unknown key '{head}'; valid keys: {sorted(node)}.")
        target = node[head]
    else:
        raise ConfigError(f"Override '{item}': '{head}' goes below a plain value.")
    if not rest:
        node[int(head) if isinstance(node, list) else head] = value
        return
    if isinstance(target, dict) and head == "args" and rest and rest[0] not in target:
        target[rest[0]] = None  # kind-specific args may be new keys
    _set_path(target, rest, value, item)
