"""What `trends distill` needs before it launches (the registry's `before_launch`): a teacher, checked, found, or
trained first."""
from __future__ import annotations

from collections.abc import Callable

from omegaconf import DictConfig

from trends.distill.teacher import check_teacher
from trends.errors import UserError
from trends.ranks import Dist
from trends.records.layout import latest_completed_run

TEACHER = "lm"  # the command whose runs teach (a `trends scaling` rung can too, named with teacher=RUN)


def with_teacher(overrides: list[str], *, compose: Callable[[], DictConfig],
                 train: Callable[[str, list[str]], None], say: Callable[[str], None]) -> list[str]:
    """The overrides with a checked `teacher=RUN` (a UserError where it is not a finished char-GPT run): the one
    given, else the newest completed `trends lm` run made with the overrides the config names (`teacher_overrides`:
    none by default, its smoke or GPU preset under the student's), else one trained first by `train(command,
    overrides)`. `compose()` is the config these overrides make; `say` tells the user which teacher it is."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("teacher=")]
    for path in given[-1].split(",") if given else []:  # a sweep over teachers: each must be one
        check_teacher(path)
    if given:
        return overrides
    if Dist.from_env().active:  # every process would look for, or train, a teacher of its own
        raise UserError(f"under torchrun, name the teacher: teacher=outputs/{TEACHER}/<run>")
    try:
        wanted = list(compose().teacher_overrides)
    except UserError:
        return overrides  # the config does not compose: the launch says why
    command = " ".join(["trends", TEACHER, *wanted])
    teacher = latest_completed_run(TEACHER, wanted)
    if teacher is None:
        say(f"no teacher= given and no finished `{command}` run: training one first")
        train(TEACHER, wanted)
        teacher = latest_completed_run(TEACHER, wanted)
    say(f"teacher: {teacher} (the newest `{command}` run; choose another with teacher=RUN)")
    return [*overrides, f"teacher={teacher.resolve()}"]  # absolute: jobs may run elsewhere (submitit, --resume)
