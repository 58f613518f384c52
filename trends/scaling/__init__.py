"""`trends scaling`: a ladder of char-GPTs that differ only in size (train.py runs one rung), the power law fitted to
their losses (fit.py), Chinchilla's IsoFLOP analysis (isoflop.py), what famous models would cost here (reach.py),
plots (plots.py) and the analysis of a finished sweep (analysis.py, run by the Hydra callback
trends.records.sweep.SweepAnalysis)."""
