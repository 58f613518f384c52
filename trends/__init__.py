"""trends: one command per deep-learning trend, each a small self-contained demo on top of a shared core."""
