"""`python -m trends lm ...` (what torchrun launches: `torchrun ... -m trends lm ...`) is `trends lm ...`."""
from trends.cli.main import main

main()
