"""Where runs trained before ``agents/`` was split into rooms find their network classes: SB3
saves a model's policy and extractor classes by module path (``agents.networks.RankingPolicy``),
so this name stays, re-exporting :mod:`agents.training.networks`. New code imports that module."""

from agents.training.networks import CandidateScores, RankingExtractor, RankingPolicy

__all__ = ["CandidateScores", "RankingExtractor", "RankingPolicy"]
