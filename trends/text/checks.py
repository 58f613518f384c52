"""Values of the text home's keys (trends/conf/text/) that cannot work, refused before a run starts
(trends.core.config)."""
from trends.core.config import Checks

CHECKS = Checks(divides=(("model.n_embd", "model.n_head"),))
