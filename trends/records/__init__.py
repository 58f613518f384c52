"""The records: what writes and reads run folders — the run record (metrics.jsonl, summary.json), the folder's
layout, the one metrics reader, sweep tables, search scoring, report.html with its template and SVG charts, the
sentence a page opens with (findings.py: a sweep's from its table; a demo writes its own into its summary),
matplotlib plot helpers, TensorBoard.

Torch-free (TensorBoard imports torch only when a run asks for it), so the CLI, Hydra's callbacks and a notebook can
read runs without it. It imports no demo and no part of the runtime (trends.core): the runtime writes records.
"""
