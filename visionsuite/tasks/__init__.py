"""Task registry: one module per task, imported only when that task is used.

A task module defines a `Task` subclass of `visionsuite.tasks.base.Task` named `TASK`.
Adding a task means one module and one line here.
"""

from __future__ import annotations

import importlib

from visionsuite.errors import VisionsuiteError

TASK_MODULES = {
    "classify": "visionsuite.tasks.classify",
    "segment": "visionsuite.tasks.segment",
    "detect": "visionsuite.tasks.detect",
    "face": "visionsuite.tasks.face",
}
TASK_NAMES = tuple(TASK_MODULES)


def get_task(name: str):
    if name not in TASK_MODULES:
        raise VisionsuiteError(f"unknown task '{name}'; choose one of: {', '.join(TASK_NAMES)}")
    module = TASK_MODULES[name]
    if module is None:
        raise VisionsuiteError(f"task '{name}' is not available yet in this version of visionsuite")
    return importlib.import_module(module).TASK
