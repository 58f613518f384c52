"""Values of `trends pretext`'s own keys (trends/conf/pretext/task/) that cannot work, on top of the vision home's,
refused before a run starts (trends.core.config)."""
from trends.core.config import Checks, whole
from trends.vision.checks import CHECKS as VISION

CHECKS = VISION + Checks(ranges=(
    (("task.crop_scale",), "in (0, 1]", lambda v: 0 < v <= 1),
    (("task.patch", "task.input_size", "task.permutations"), "a whole number ≥ 2", whole(2)),
    (("task.gap", "task.jitter"), "a whole number of pixels ≥ 0", whole(0)),
))
