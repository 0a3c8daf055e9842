"""``python -m agents.adapt --weeks W --out DIR``: keep optimising a policy as tastes drift.

Week 0 trains a policy in the simulator fitted to the logs (``--data``, default ``shop:drift``,
whose true tastes move: :class:`~simulators.shop.world.ShopDrift`). Then, every simulated week
``w``:

1. **Deploy** the current policy to the true shop as it is that week (``true_day`` at the
   week's middle, counted from the end of the logs) through the serving path's own ranking and
   logging (:class:`~agents.serve.service.Service`, without HTTP): ``--sessions-per-week``
   sessions at ``--temperature``, so the week's log carries exact propensities. The candidates
   are the catalog on sale that day: on ``shop:drift`` they include the items launched since
   the logs, which no log has shown yet (cold start).
2. **Refit** on the last ``--window-weeks`` weeks of served logs: the simulator afresh, the CTR
   model warm-started from last week's (``ctr_warm_start``; week 1 starts from the one fitted to
   the logs). Each week keeps its CTR model in ``week-WW/ctr/`` for the next.
3. **Fine-tune** the current policy in the refitted simulator for ``--finetune-timesteps`` (its
   candidates from the refitted CTR model); it is then served, as before, on the shop's own
   candidate generator, where the A/B also plays it.
4. **Guard**: the fine-tuned candidate (and any ``--candidates``, run folders planted in every
   week's pool) replaces the deployed policy only when a canary shows it better
   (:mod:`agents.studies.adapt.guard`): before the next week is served, each candidate and the
   deployed policy play ``--canary-sessions`` true-shop sessions of users nothing else sees,
   paired, and a sequential test with ``--guard-looks`` looks ships the candidate whose paired
   lower bound first clears 0, at a chance of at most ``--guard-alpha`` of shipping one that is
   not better. Otherwise the deployed policy serves on, and the next week's fine-tuning starts
   from it. ``--guard none`` ships every candidate (the loop without a guard).
5. **A/B** the fine-tuned candidate, the deployed policy (the guard's choice) and the one it
   replaces against the frozen week-0 policy and the best static re-ranker (``tuned-weights``,
   tuned once in the week-0 simulator) on the next week's users in the true shop: the same
   sessions for each, engagement per session (clicks + purchase weight x purchases, no
   fairness term) with 95% CIs, and the paired differences adapted - frozen, deployed - frozen
   and deployed - the replaced one.

``--policy RUN`` starts from a trained run folder instead of training week 0's policy.
Each week's results land in ``DIR/week-WW/`` and its ``done.json`` last, so a killed run resumes
where it stopped (``--resume``); one process uses a folder at a time. Writes ``adapt.json``, the
per-week table ``adapt.md`` and ``adaptation.png`` (the policies' curves and the paired differences).

``--seeds N`` runs N independent loops (``DIR/seed-S/``, each as above) and pools them: a single
loop's paired CI covers the A/B users only, not the randomness of training, which dominates.
Where they run: ``--backend ray [--address ADDR] [--cpus C]`` makes each seed's loop (or, with
one seed, each A/B arm) a Ray task; the numbers are those of the serial run.
"""
