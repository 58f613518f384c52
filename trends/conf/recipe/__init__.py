"""Config groups of `trends recipe` (rung/: the ladder, one file per rung; experiment/; the model, data, optim and
recipe groups are trends/conf/text/'s)."""
