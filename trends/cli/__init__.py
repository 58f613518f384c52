"""The `trends` command line (installed as trends.cli): Typer in front, trends.launch behind. It imports no torch,
Hydra or OmegaConf until a command needs them, so `trends --help` is instant."""
