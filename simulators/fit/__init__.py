"""Fitting a user simulator from logs (the layer above the encoders).

``config`` (torch-free options), ``net`` (the response network), ``train`` (fitting),
``calibration`` and ``leave`` (dynamics coefficients), ``report`` (fidelity), ``pipeline``
(fit + report), ``simulator`` (the numpy runtime), ``cache`` (``load_or_fit``) and ``__main__``.
Importing this package imports nothing: the runtime and the cache need no torch.
"""
