"""Off-policy evaluation: ``inputs`` and ``estimators`` (pure numpy, nothing above the data
layer), ``targets`` (Plackett-Luce target policies), ``reward_models`` (cross-fitted), ``slates``
(shop logs as estimator inputs), ``truth`` (the shop's ground truth), ``shop`` and ``obd`` (the
two evaluation runs) and ``python -m agents.ope`` (``__main__``)."""
