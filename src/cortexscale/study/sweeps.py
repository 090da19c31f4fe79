"""Named sweeps: the axes of the seed studies, kept apart from every stage's config (as big_vision keeps its
sweeps apart from its configs). A trainable model in a study file takes them with ``sweep:`` (a name or a
list of names); its own ``axes`` are added to them and override an axis of the same name.

    models:
      - family: vit
        name: vit
        sweep: [augreg-levels, augreg-regularization]     # 7 levels x 8 regularisation settings
        axes: {variant: [S/16, B/16]}
"""

from __future__ import annotations

from ..train.levels import AUGREG_LEVELS

__all__ = ["SWEEPS", "sweep_axes"]

SWEEPS: dict[str, dict[str, list]] = {
    # Steiner et al. 2021, "How to train your ViT": the seven augmentation levels, the regularisation grid and
    # the plain ViT sizes they trained (their hybrid R+ models are left out)
    "augreg-levels": {"augreg": list(AUGREG_LEVELS)},
    "augreg-regularization": {"dropout": [0.0, 0.1], "drop_path": [0.0, 0.1], "weight_decay": [0.03, 0.1]},
    "augreg-variants": {"variant": ["Ti/16", "S/32", "S/16", "B/32", "B/16", "L/16"]},
    "augreg-transfer": {"transfer": ["scratch", "finetune"]},
    # Ahmadi et al. 2024: training video and precision of the video GPT (its width, depth and heads were swept
    # one at a time around the default 576 / 8 / 4, so they are not one product: give them as axes)
    "videogpt-frames": {"frames": [10_000, 100_000, 1_000_000, 6_000_000]},
    "videogpt-precision": {"precision": ["fp32", "fp16"]},
}
"""Sweeps by name: each a dict of axis -> values (see the module docstring)."""


def sweep_axes(names) -> dict[str, list]:
    """The axes of the named sweeps (a name or a list of names), merged in order; raises on an unknown name
    or on two sweeps that both set one axis."""
    names = [names] if isinstance(names, str) else list(names)
    axes: dict[str, list] = {}
    for name in names:
        if name not in SWEEPS:
            raise ValueError(f"unknown sweep {name!r}; sweeps are {sorted(SWEEPS)}")
        clash = sorted(set(axes) & set(SWEEPS[name]))
        if clash:
            raise ValueError(f"sweep {name!r} sets axis {clash[0]!r} again; give it once (or in axes)")
        axes.update({axis: list(values) for axis, values in SWEEPS[name].items()})
    return axes
