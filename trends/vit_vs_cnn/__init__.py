"""`trends vit-vs-cnn`: when Vision Transformers lose to CNNs, and how the gap closes with data."""
