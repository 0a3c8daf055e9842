"""The bottom layer: errors and the CLI wrapper (``errors``), atomic storage and the cache
folder (``storage``), metrics (``metrics``), CLI flags from configs (``cli``) and the ``recgym``
console script (``console``). Imports nothing of RecGym."""
