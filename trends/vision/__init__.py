"""Image code shared by the vision demos (contrastive, vit-vs-cnn): datasets held as tensors, batched augmentation."""
