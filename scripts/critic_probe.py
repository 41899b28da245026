"""Critic variants trained on a checkpoint's frozen level-k states (docs/design-notes.md, "Critics").

Trains each variant with the shipped recipe (hindsight goals, expectile BCE on ``gamma ** n``,
Polyak target) on the states of the checkpoint's dataset, then scores it on every pose of the
fixed FourRooms layout against 8 goals: Spearman of its distance with the oracle's, and
(level 0) how often the action whose true next state it scores nearest the goal is optimal,
per oracle bin (g1: 1-12, g13: 13-24, g25: >= 25 actions).

Variants: mlp (MLP on [s, g, s - g]), proj (shared projection, then MLP), mrn (quasimetric),
kp (soft-argmax keypoints of a map state, then quasimetric); ``name:0.9`` sets the expectile.
Environment: LR, POLYAK (critic optimiser), NSTEP (max over n-step bootstraps along the
trajectory), ONEHOT=1 (privileged one-hot (x, y, dir) features instead: a control only).

    LR=1e-3 POLYAK=0.05 python scripts/critic_probe.py runs/gm3 0 mlp,mrn,kp 3000
"""
import sys, time, math, copy
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.path.insert(0, __import__('os').path.dirname(__file__))
from planning_probe import next_pose_table
from hjepa.checkpoint import load_module
from hjepa.critic import Critic, QuasimetricCritic, SpatialKeypoints, _Index, _sample_batch, expectile_bce, encode_dataset
from hjepa.config import CriticConfig
from hjepa.data.storage import OfflineDataset
from hjepa.envs.oracle import LayoutOracle, goal_observation
from hjepa.inspection.source import encode_all, layout_bank, spearman
from hjepa.level import mlp
torch.set_num_threads(2)
import os; NSTEP = int(os.environ.get('NSTEP', 1)); ONEHOT = os.environ.get('ONEHOT') == '1'

class Proj(nn.Module):
    def __init__(s, dim, hidden, gamma, tau, emb=64):
        super().__init__(); s.phi = mlp([dim, hidden, emb]); s.head = mlp([3*emb, hidden, hidden, 1]); s.gamma, s.tau = gamma, tau
    def forward(s, a, b):
        a, b = torch.broadcast_tensors(a, b); x, y = s.phi(a), s.phi(b)
        return s.head(torch.cat([x, y, x-y], -1))[..., 0]
    def distance(s, a, b): return s.tau * F.logsigmoid(s(a, b)) / math.log(s.gamma)
    def value(s, a, b): return torch.sigmoid(s(a, b))

def train(critic, z, idx, cfg, steps, evalf):
    rng = np.random.default_rng(0); target = copy.deepcopy(critic).requires_grad_(False)
    opt = torch.optim.Adam(critic.parameters(), lr=cfg.lr); t0 = time.time()
    for step in range(steps):
        s, nxt, g, bound = _sample_batch(idx, critic.tau, critic.gamma, cfg, rng, False)
        with torch.no_grad():
            y = torch.as_tensor(bound, dtype=torch.float32)
            for n in range(1, NSTEP + 1):
                j = np.minimum(s + n * critic.tau, idx.end[s] - 1)
                y = torch.maximum(y, torch.as_tensor(critic.gamma ** ((j - s) / critic.tau), dtype=torch.float32) * target.value(z[j], z[g]))
        loss = expectile_bce(critic(z[s], z[g]), y, cfg.expectile)
        opt.zero_grad(); loss.backward(); opt.step()
        with torch.no_grad():
            for p, q in zip(critic.parameters(), target.parameters()): q.lerp_(p, cfg.polyak)
        if (step+1) % (steps//3) == 0: print(f'  step {step+1} {time.time()-t0:.0f}s loss {loss.item():.3f}', evalf(critic), flush=True)

def main(ckpt, k, variants, steps):
    m = load_module(ckpt); stack, cfg = m.stack.eval(), m.cfg
    data = OfflineDataset.open(m.hparams.data_path)
    with torch.no_grad(): z = encode_dataset(stack, data)[k]
    idx = _Index.of(data)
    nav = LayoutOracle(cfg.data.env_id).nav(cfg.data.layout_seed); graph = LayoutOracle(cfg.data.env_id).graph(cfg.data.layout_seed)
    bank = layout_bank(stack, nav); nxt = next_pose_table(nav, bank.pose, stack.action_spec.env_actions)
    cells = nav.free_cells(); rng = np.random.default_rng(0); goals = []
    for gi in rng.choice(len(cells), 8, replace=False):
        goal = tuple(int(v) for v in cells[gi]); d = graph.distances_to(goal)
        goals.append((encode_all(stack, goal_observation(nav, goal)[None])[k], np.array([d[tuple(int(v) for v in p)] for p in bank.pose])))
    zb = bank.states[k]
    if ONEHOT:
        oh = lambda P: torch.cat([F.one_hot(torch.as_tensor(P[:, i]).long(), n).float() for i, n in ((0, 19), (1, 19), (2, 4))], 1)
        z = oh(np.array(data.pose)); zb = oh(bank.pose)
        gp = [tuple(int(v) for v in cells[gi]) for gi in np.random.default_rng(0).choice(len(cells), 8, replace=False)]
        goals = [(oh(np.array([[x, y, 0]])), o) for (x, y), (_, o) in zip(gp, goals)]
    @torch.no_grad()
    def evalf(c):
        c.eval(); sp, gr = [], {1: [], 13: [], 25: []}
        for g, ora in goals:
            est = c.distance(zb, g).numpy(); sp.append(spearman(est, ora))
            if k == 0:
                tn = c.distance(zb[nxt].reshape(-1, zb.shape[1]), g).reshape(nxt.shape).numpy()
                ok = ora[nxt[np.arange(len(nxt)), tn.argmin(1)]] == ora - 1
                for lo, hi in ((1, 12), (13, 24), (25, 999)):
                    mm = (ora >= lo) & (ora <= hi)
                    if mm.any(): gr[lo].append(ok[mm].mean())
        c.train()
        return dict(sp=round(float(np.mean(sp)), 3), **{f'g{a}': round(float(np.mean(b)), 2) for a, b in gr.items() if b})
    for v in variants:
        name, _, exp = v.partition(':')
        ccfg = CriticConfig(**{**cfg.critic.__dict__, 'expectile': float(exp or cfg.critic.expectile), 'polyak': float(os.environ.get('POLYAK', cfg.critic.polyak)), 'lr': float(os.environ.get('LR', cfg.critic.lr))})
        gamma, tau = ccfg.gamma_at(k), stack.levels[k].spec.tau
        dim = z.shape[1]
        c = {'mlp': lambda: Critic(dim, 256, gamma, tau, 3), 'proj': lambda: Proj(dim, 256, gamma, tau), 'mrn': lambda: QuasimetricCritic(dim, 256, gamma, tau, depth=2),
             'kp': lambda: QuasimetricCritic(dim, 256, gamma, tau, depth=2, front=SpatialKeypoints(*stack.levels[k].map_shape, 16))}[name]()
        print(v, flush=True); torch.manual_seed(0); train(c, z, idx, ccfg, steps, evalf)

main(sys.argv[1], int(sys.argv[2]), sys.argv[3].split(','), int(sys.argv[4]))
