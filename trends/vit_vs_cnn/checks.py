"""Values of `trends vit-vs-cnn`'s keys that cannot work, refused before a run starts (trends.core.config)."""
from trends.core.config import Checks, whole
from trends.vision.checks import CHECKS as VISION

CHECKS = VISION + Checks(
    ranges=((("data.fractions",), "in (0, 1]", lambda v: 0 < v <= 1),
            (("train.min_steps",), "a whole number of steps ≥ 1 (or null)", whole(1))),
    divides=(("model.vit.dim", "model.vit.heads"), ("model.cct.dim", "model.cct.heads"),
             ("model.hybrid.dim", "model.hybrid.heads")),
)
