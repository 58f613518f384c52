"""Config groups the text demos share (lm, scaling): model/ (trends/text/model.py), data/ (trends/text/data.py),
optim/ (trends/text/training.py); each demo's primary config adds this folder to its Hydra search path."""
