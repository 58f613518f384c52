"""`trends lm`: train a character-level GPT (train.py) on the text home's model and corpus (trends.text)."""
