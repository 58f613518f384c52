"""The text home: the character-level GPT (model.py), the corpus and its training windows (data.py) and sampling
from a trained run (sample.py) — what `trends lm` uses today and the scaling and distillation demos will share."""
