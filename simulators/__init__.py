"""The world of RecGym: logged data in, simulated users out. Layers, bottom first (each imports
only those below it; ``make lint`` checks it):

- ``core``: errors, atomic storage, metrics, CLI helpers (nothing of RecGym);
- ``data``: logged tables, sessions of steps, features, click models, Plackett-Luce slates;
- ``dynamics``, ``response``, ``rollout``: how simulated users behave, step by step;
- ``shop``: the synthetic ground-truth world; ``datasets``: the loaders (``load_logs``);
- ``fit``: fitting a simulator from logs (above ``encoders``, whose text encoder it uses).
"""
