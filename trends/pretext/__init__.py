"""`trends pretext`: self-supervised pretext tasks (grid → the three tasks → model → train; evaluation is shared with
`trends contrastive` in trends.vision.evaluate)."""
