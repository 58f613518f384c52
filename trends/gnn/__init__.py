"""`trends gnn`: message passing on citation graphs and molecules, and how deep it can go (data.py → models.py →
train.py, crossval.py; depth.py: oversmoothing and the depth sweep)."""
import warnings

with warnings.catch_warnings():
    # torch_geometric's import calls the deprecated torch.jit.script: a warning for its authors, not our users.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
    import torch_geometric  # noqa: F401
