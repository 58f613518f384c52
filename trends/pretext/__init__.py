"""`trends pretext`: self-supervised pretext tasks (grid → the three tasks → model → train; the pretraining loop and
its evaluation are shared with `trends contrastive` in trends.vision.pretraining)."""
