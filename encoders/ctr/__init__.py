"""The multi-task CTR model: ``config`` (torch-free), ``model`` (the network), ``train``
(training, caching, scoring), ``embedder`` (its frozen towers as dense state for the
environments) and ``python -m encoders.ctr`` (``__main__``)."""
