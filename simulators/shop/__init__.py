"""The synthetic shop: a seeded ground-truth e-commerce world (``world``), the words its
catalog is written in (``vocabulary``) and ``python -m simulators.shop`` (``__main__``)."""
