"""`trends recipe`: the transformer recipe since GPT-2, one trick at a time — a ladder of `trends lm` runs (train.py
runs one rung), read back (ladder.py) and compared in one table and a waterfall (analysis.py, plots.py, findings.py)
by the Hydra callback trends.records.sweep.SweepAnalysis when the sweep ends."""
