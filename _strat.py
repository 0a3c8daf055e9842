from dataclasses import dataclass

import numpy as np

from agents.evaluate import metrics, run_sessions
from envs.ranking import STRATEGIES, EnvConfig, build_world

w = build_world(EnvConfig())
print(w.simulator.dynamics)


@dataclass
class Const:
    a: int
    action_mode: str = "discrete"

    def act(self, obs, rng):
        return np.full(len(obs["candidates"]), self.a, dtype=np.int64)


for i, name in enumerate(STRATEGIES):
    r = run_sessions(Const(i), "ecommerce-v0", 1000, 10_000)
    m = metrics(r, "ecommerce-v0", name, 0)
    print(
        name,
        round(m["return_mean"], 2),
        [round(float(x), 2) for x in m["return_ci95"]],
        round(m["session_length"], 2),
    )
