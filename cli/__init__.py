"""The `trends` command line: Typer in front, Hydra behind. Nothing here imports torch."""
