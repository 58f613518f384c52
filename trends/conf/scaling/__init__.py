"""Config groups of `trends scaling`: mode/ (ladder, isoflop) and experiment/ (smoke, gpu); the model, data and optim
groups are trends/conf/text/'s, shared with `trends lm`."""
