"""``python -m agents.distill``: distil a rollout planner into a fast policy (:mod:`agents.training.distill`)."""

from agents.training.distill import main

if __name__ == "__main__":
    main()
