"""The shared core: device, seeding, run records, checkpoints, progress, plots, data.

It knows nothing of any demo; demos import it, never the other way round.
"""
