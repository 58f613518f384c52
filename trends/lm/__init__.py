"""`trends lm`: a character-level GPT (data.py → model.py → train.py; sample.py for text from a trained run)."""
