"""Writing a figure: every PNG RecGym draws goes through :func:`save_png` (atomically, like
every other result file). matplotlib is imported only when a figure is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulators.core.storage import atomic_path


def save_png(figure: Any, path: Path, dpi: int = 110) -> None:
    """Lay out ``figure``, write it to ``path`` as PNG atomically and close it (every plot's last step)."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)
