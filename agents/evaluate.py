"""``python -m agents.evaluate``: policies played in a simulator (:mod:`agents.evaluation.evaluate`)."""

from agents.evaluation.evaluate import main

if __name__ == "__main__":
    main()
