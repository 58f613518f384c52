"""`python -m cli lm ...` (what torchrun launches) is the same as `trends lm ...`."""
from cli.main import main

main()
