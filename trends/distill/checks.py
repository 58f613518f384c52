"""Values of `trends distill`'s keys (the student, the distillation) that cannot work, refused before a run starts
(trends.core.config)."""
from trends.core.config import Checks, whole

CHECKS = Checks(
    ranges=(
        (("student.dropout",), "in [0, 1)", lambda v: 0 <= v < 1),
        (("distill.temperature",), "> 0", lambda v: v > 0),
        (("distill.alpha",), "in [0, 1]", lambda v: 0 <= v <= 1),
        (("student.n_layer",), "a whole number ≥ 1 (or null: half the teacher's)", whole(1)),
    ),
    divides=(("student.n_embd", "student.n_head"),),
)
