"""Values of the vision home's keys (trends/conf/vision/: data, augmentation) that cannot work, refused before a run
starts (trends.core.config)."""
from trends.core.config import Checks, whole

CHECKS = Checks(ranges=(
    (("aug.scale",), "in (0, 1]", lambda v: 0 < v <= 1),
    (("data.image_size",), "a whole number of pixels ≥ 1 (or null)", whole(1)),
    (("data.max_unreadable", "aug.rotation"), "a fraction in [0, 1]", lambda v: 0 <= v <= 1),
))
