"""``python -m agents.train {ppo,dqn,a2c}``: train an agent and compare it with the static
baselines (:mod:`agents.training.train`)."""

from agents.training.train import main

if __name__ == "__main__":
    main()
