"""The `trends` command line (installed as trends.cli): Typer in front, Hydra behind. Nothing here imports torch."""
