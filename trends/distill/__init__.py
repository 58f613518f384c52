"""`trends distill`: a small char-GPT student learns from a finished `trends lm` teacher (DistilBERT's recipe)."""
