"""Training: the paper's networks, their layer names, the checkpoint schedule, the resumable loop, the
learning check, and VeLPIC edits of a model's head.

Imports ``latentgen.common``, ``latentgen.data`` and ``latentgen.probes`` (an edit fits VeLPIC).  Light on
purpose: the workflow imports ``model_names`` and ``schedule`` while it parses, without torch.
"""

__all__ = [
    "checkpoints",
    "editing",
    "learning",
    "model_names",
    "models",
    "resume",
    "run_files",
    "schedule",
    "settings",
    "trainer",
]
