"""Tests of hjepa.envs: GridNav against MiniGrid itself, MazeRooms, env construction, raster."""

from __future__ import annotations


import gymnasium
import numpy as np
import pytest
from minigrid.wrappers import FullyObsWrapper

from hjepa.envs import ACTIONS, GridNav, MazeRoomsEnv, action_spec, grid_to_rgb, layout_nav, make_minigrid
from hjepa.errors import ConfigError, NotNavigationEnvError, UnknownEnvError

NAV_ENVS = ["MiniGrid-FourRooms-v0", "MiniGrid-MultiRoom-N6-v0", "hjepa/MazeRooms-v0", "MiniGrid-Empty-8x8-v0"]
WALL, EMPTY, DOOR, BOX, GOAL, LAVA, AGENT = 2, 1, 4, 7, 8, 9, 10
GREY = (100, 100, 100)


def _random_env_actions(rng: np.random.Generator, n: int) -> np.ndarray:
    # Forward-heavy so the agent travels and reaches doors; toggle so MultiRoom doors open.
    return rng.choice([0, 1, 2, 2, 2, 5], size=n)


# ------------------------------------------------------------------------ GridNav == MiniGrid
@pytest.mark.parametrize("env_id", NAV_ENVS)
def test_gridnav_matches_fully_obs_wrapper(env_id: str) -> None:
    """Observations and poses equal FullyObsWrapper's after the same actions via env.step."""
    env = make_minigrid(env_id, max_steps=100_000)
    wrapped = FullyObsWrapper(env)
    compared, door_changes = 0, 0
    for seed in range(20):
        obs, _ = wrapped.reset(seed=seed)
        nav = GridNav.from_env(env, remove_goal=False)  # keep the goal: MiniGrid ends there
        assert np.array_equal(nav.observation(), obs["image"])
        for a in _random_env_actions(np.random.default_rng(seed), 400):
            obs, _, terminated, truncated, _ = wrapped.step(int(a))
            layout_before = nav.encoding.copy()
            nav.step(int(a))
            door_changes += int(not np.array_equal(layout_before, nav.encoding))
            assert np.array_equal(nav.observation(), obs["image"]), f"{env_id} seed {seed} step {compared}"
            assert nav.pose == (*env.agent_pos, env.agent_dir)
            compared += 1
            if terminated or truncated:  # MiniGrid stops on the goal square; GridNav would not
                break
        if compared >= 600:
            break
    assert compared >= 600
    if env_id.startswith("MiniGrid-MultiRoom"):
        assert door_changes > 0, "toggle never changed a door: the comparison missed doors"


@pytest.mark.parametrize("env_id", NAV_ENVS)
def test_rollout_matches_step_by_step(env_id: str) -> None:
    """The batched rollout writes the same observations and poses as step() + observation()."""
    fast, slow = layout_nav(env_id, 3), layout_nav(env_id, 3)
    actions = _random_env_actions(np.random.default_rng(1), 500)
    out = np.zeros((len(actions) + 1, fast.width, fast.height, 3), dtype=np.uint8)
    poses = fast.rollout(actions, out=out)
    assert poses.shape == (len(actions) + 1, 3) and poses.dtype == np.int16
    for t in range(len(actions) + 1):
        assert np.array_equal(out[t], slow.observation())
        assert tuple(poses[t]) == slow.pose
        if t < len(actions):
            slow.step(int(actions[t]))
    assert fast.pose == slow.pose


def _tiny_layout(front: tuple[int, int, int]) -> GridNav:
    """A 5x3 corridor: agent at (1, 1) facing right, ``front`` at (2, 1), floor at (3, 1)."""
    enc = np.zeros((5, 3, 3), dtype=np.uint8)
    enc[..., 0] = WALL
    enc[1:4, 1] = (EMPTY, 0, 0)
    enc[2, 1] = front
    return GridNav(enc, (1, 1, 0), box_contents={(2, 1): (EMPTY, 0, 0)})


def test_door_semantics() -> None:
    locked = _tiny_layout((DOOR, 4, 2))
    for a in (ACTIONS["toggle"], ACTIONS["forward"]):
        locked.step(a)
    assert locked.pose == (1, 1, 0) and tuple(locked.encoding[2, 1]) == (DOOR, 4, 2)

    door = _tiny_layout((DOOR, 4, 1))
    door.step(ACTIONS["forward"])
    assert door.pose == (1, 1, 0), "a closed door blocks"
    door.step(ACTIONS["toggle"])
    assert tuple(door.encoding[2, 1]) == (DOOR, 4, 0) and door.walkable[2, 1]
    door.step(ACTIONS["forward"])
    assert door.pose == (2, 1, 0)
    assert tuple(door.observation()[2, 1]) == (AGENT, 0, 0)
    door.reset()
    assert door.pose == (1, 1, 0) and tuple(door.encoding[2, 1]) == (DOOR, 4, 1)


def test_box_toggle_and_turns() -> None:
    nav = _tiny_layout((BOX, 2, 0))
    nav.step(ACTIONS["forward"])
    assert nav.pose == (1, 1, 0), "a box blocks"
    nav.step(ACTIONS["toggle"])  # MiniGrid replaces the box by its (empty) contents
    nav.step(ACTIONS["forward"])
    assert nav.pose == (2, 1, 0)
    nav.step(ACTIONS["left"])
    assert nav.pose == (2, 1, 3)
    nav.step(ACTIONS["right"])
    nav.step(ACTIONS["right"])
    assert nav.pose == (2, 1, 1)
    with pytest.raises(ConfigError):
        nav.step(4)  # drop is not simulated


def test_goal_removal_and_free_cells() -> None:
    env = make_minigrid("MiniGrid-FourRooms-v0")
    env.reset(seed=0)
    kept, removed = GridNav.from_env(env, remove_goal=False), GridNav.from_env(env)
    assert (kept.encoding[..., 0] == GOAL).sum() == 1 and not (removed.encoding[..., 0] == GOAL).any()
    assert removed.goal == kept.goal and kept.encoding[kept.goal][0] == GOAL
    free = removed.free_cells()
    assert free.shape == (260, 2) and removed.walkable[free[:, 0], free[:, 1]].all()
    assert removed.walkable.sum() == 260


def test_multiroom_free_cells_are_the_start_component() -> None:
    nav = layout_nav("MiniGrid-MultiRoom-N6-v0", 0)
    free = nav.free_cells()
    x, y, _ = nav.start_pose
    assert any((free == (x, y)).all(axis=1))
    # The space outside the rooms is empty too, but unreachable.
    assert len(free) < (nav.encoding[..., 0] == EMPTY).sum()
    assert not (nav.encoding[free[:, 0], free[:, 1], 0] == DOOR).any()


@pytest.mark.parametrize("env_id", ["MiniGrid-DoorKey-8x8-v0", "MiniGrid-LavaGapS7-v0"])
def test_gridnav_matches_minigrid_with_keys_locked_doors_and_lava(env_id: str) -> None:
    """Pickup, a locked door opened by its key, and lava (MiniGrid ends the episode there) as
    MiniGrid's own step: same observations, poses and carried object; lava where it ends."""
    env = make_minigrid(env_id, max_steps=100_000)
    wrapped = FullyObsWrapper(env)
    unlocked, lava_ends = 0, 0
    for seed in range(30):
        obs, _ = wrapped.reset(seed=seed)
        nav = GridNav.from_env(env, remove_goal=False)
        for a in np.random.default_rng(seed).choice([0, 1, 2, 2, 2, 3, 5], size=300):
            locked = int((nav.encoding[..., 0] == DOOR).any() and (nav.encoding[..., 2] == 2).any())
            obs, _, terminated, _, _ = wrapped.step(int(a))
            nav.step(int(a))
            assert np.array_equal(nav.observation(), obs["image"]) and nav.pose == (*env.agent_pos, env.agent_dir)
            carried = None if env.carrying is None else tuple(int(v) for v in env.carrying.encode()[:2])
            assert nav.carrying == carried
            unlocked += locked and not (nav.encoding[..., 2] == 2).any()
            if terminated:
                lava_ends += int(nav.in_lava)
                assert nav.in_lava == (env.grid.get(*env.agent_pos).type == "lava")
                break
    assert (unlocked > 0) if "DoorKey" in env_id else (lava_ends > 0)


def test_rollout_treats_lava_as_a_wall() -> None:
    """The collectors' walk never enters lava: a forward into it leaves the agent in place;
    step() enters it, as MiniGrid does before ending the episode."""
    nav = _tiny_layout((LAVA, 0, 0))
    assert tuple(nav.rollout([ACTIONS["forward"]])[-1]) == (1, 1, 0)
    nav.reset()
    nav.step(ACTIONS["forward"])
    assert nav.pose == (2, 1, 0) and nav.in_lava


def test_set_pose_rejects_the_border() -> None:
    nav = layout_nav("MiniGrid-Empty-8x8-v0", 0)
    with pytest.raises(ValueError):
        nav.set_pose(0, 3, 0)


# ------------------------------------------------------------------------ MazeRooms
def _doorways(enc: np.ndarray, rooms: int, room_size: int) -> int:
    """Openings in the internal wall lines, wall crossings excluded."""
    step, lines = room_size + 1, [k * (room_size + 1) for k in range(1, rooms)]
    interior = [i for i in range(enc.shape[0]) if i % step]
    return sum(enc[x, y, 0] != WALL for x in lines for y in interior) + sum(
        enc[x, y, 0] != WALL for y in lines for x in interior
    )


def test_mazerooms_layout() -> None:
    env = make_minigrid("hjepa/MazeRooms-v0")
    assert isinstance(env, MazeRoomsEnv) and (env.width, env.height) == (33, 33)
    assert env.max_steps == 4 * 33 * 33
    layouts = []
    for seed in range(5):
        env.reset(seed=seed)
        nav = GridNav.from_env(env)
        assert _doorways(nav.encoding, 4, 7) == 15  # a spanning tree of 16 rooms
        # Connected: every non-wall cell is reachable from the start.
        assert len(nav.free_cells()) == 16 * 49 + 15 == (nav.encoding[..., 0] != WALL).sum()
        layouts.append(nav.encoding.copy())
    assert len({x.tobytes() for x in layouts}) == 5


def test_mazerooms_reset_is_deterministic() -> None:
    a, b = make_minigrid("hjepa/MazeRooms-v0"), make_minigrid("hjepa/MazeRooms-v0")
    a.reset(seed=7)
    b.reset(seed=3)
    b.reset(seed=7)
    assert np.array_equal(a.grid.encode(), b.grid.encode())
    assert (a.agent_pos, a.agent_dir) == (b.agent_pos, b.agent_dir)


def test_mazerooms_kwargs_through_gymnasium() -> None:
    env = gymnasium.make("hjepa/MazeRooms-v0", rooms=3, room_size=5).unwrapped
    env.reset(seed=0)
    assert (env.width, env.height) == (19, 19)
    assert _doorways(env.grid.encode(), 3, 5) == 8
    assert make_minigrid("hjepa/MazeRooms-v0", rooms=2).width == 17


# ------------------------------------------------------------------------ construction
def test_unknown_env_id_suggests_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="MiniGrid-FourRooms-v0") as info:
        make_minigrid("MiniGrid-FourRoom-v0")
    assert "MazeRooms" in str(info.value)
    with pytest.raises(UnknownEnvError, match="NoSuchEnv"):
        make_minigrid("NoSuchEnv-v0")


def test_non_minigrid_env_is_rejected() -> None:
    with pytest.raises(NotNavigationEnvError, match="nav"):
        make_minigrid("CartPole-v1")


def test_action_spec() -> None:
    spec = action_spec(("left", "right", "forward", "toggle"))
    assert spec.kind == "discrete" and spec.n == 4 and spec.env_actions == (0, 1, 2, 5)
    assert spec.names == ("left", "right", "forward", "toggle")
    for bad in (("left", "jump"), (), ("left", "left")):
        with pytest.raises(ConfigError):
            action_spec(bad)


# ------------------------------------------------------------------------ raster
def test_raster_hand_checked() -> None:
    enc = np.zeros((3, 2, 3), dtype=np.uint8)  # W=3, H=2
    enc[..., 0] = EMPTY
    enc[0, 0] = (WALL, 5, 0)
    enc[1, 1] = (AGENT, 0, 0)  # facing right (+x)
    img = grid_to_rgb(enc, tile=4)
    assert img.shape == (8, 12, 3) and img.dtype == np.uint8
    assert (img[0:4, 0:4] == GREY).all()
    assert (img[0:4, 4:12] == 0).all() and (img[4:8, 0:4] == 0).all()
    agent = img[4:8, 4:8]  # rows y*tile.., cols x*tile..
    assert (agent[:, :3] == (255, 0, 0)).all() and (agent[:, 3] == (255, 255, 255)).all()
    enc[1, 1, 2] = 3  # facing up: the marker is the top row
    agent = grid_to_rgb(enc, tile=4)[4:8, 4:8]
    assert (agent[0] == (255, 255, 255)).all() and (agent[1:] == (255, 0, 0)).all()


def test_raster_batches_and_doors() -> None:
    enc = np.zeros((2, 5, 3, 3), dtype=np.uint8)
    enc[..., 0] = EMPTY
    enc[0, 2, 1] = (DOOR, 4, 0)
    enc[1, 2, 1] = (DOOR, 4, 1)
    img = grid_to_rgb(enc, tile=2)
    assert img.shape == (2, 6, 10, 3)
    assert img[0, 2, 4].sum() > img[1, 2, 4].sum() > 0, "a closed door renders darker than an open one"
    assert np.array_equal(img[1], grid_to_rgb(enc[1], tile=2))
    with pytest.raises(ConfigError):
        grid_to_rgb(enc, tile=1)


def test_raster_renders_a_batch_of_a_rollout() -> None:
    """(Its speed, once a timed assertion here, is a benchmark figure, not a unit test.)"""
    nav = layout_nav("MiniGrid-FourRooms-v0", 0)
    batch = np.empty((1000, 19, 19, 3), dtype=np.uint8)
    nav.rollout(np.random.default_rng(0).integers(0, 3, 999), out=batch)
    img = grid_to_rgb(batch, tile=4)
    assert img.shape == (1000, 76, 76, 3)
    assert np.array_equal(img[500], grid_to_rgb(batch[500:501], tile=4)[0])
