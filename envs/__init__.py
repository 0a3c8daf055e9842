"""The Gymnasium interface of RecGym (environments are registered here as they land)."""
