"""The ``train`` stage: one grid point of a trainable family, trained by its family's code."""

from __future__ import annotations

from ..families import FAMILIES
from ..tasks import stage


@stage("train", version=2, accelerated=True)
def train_model(task, context) -> dict:
    family = FAMILIES.get(task.settings.get("family"))
    if family is None or family.train is None:
        raise ValueError(f"task {task.label!r}: {task.settings.get('family')!r} is not a registered trainable "
                         f"family; trainable families are {sorted(f for f, v in FAMILIES.items() if v.train)}")
    return family.train(task.settings, context)
