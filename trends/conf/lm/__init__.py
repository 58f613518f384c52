"""Config groups of `trends lm` (experiment/; the model, data and optim groups are trends/conf/text/'s)."""
