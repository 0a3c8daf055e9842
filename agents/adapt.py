"""``python -m agents.adapt``: continuous optimisation (:mod:`agents.studies.adapt`)."""

from agents.studies.adapt.__main__ import main

if __name__ == "__main__":
    main()
