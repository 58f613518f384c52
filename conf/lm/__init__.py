"""Config groups of `trends lm` (experiment/; the model, data and optim groups are conf/text/'s)."""
