"""What ``layers=`` means, everywhere in cortexscale.

A layer is a hidden-state index, as Hugging Face's ``output_hidden_states`` counts them:

- ``0`` is the embedding output, the input to the first block;
- ``k`` in ``1..n_layers`` is the output of block ``k`` (the residual stream after it);
- negative indices count from the end: ``-1`` is the last block's output.

A model of ``n_layers`` blocks therefore has ``n_layers + 1`` layers. ``layers=`` takes one index (an int
is always one layer, never "the last n"), a sequence of them, or None for :func:`default_layer`. This holds
for Hugging Face language and speech models, for cortexscale's ViT and video GPT (their
``forward_intermediates``), for the VQ-VAE's encoder stages, for :func:`cortexscale.features.extract_features`
and for study files. Results are keyed by the non-negative index.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

__all__ = ["default_layer", "resolve_layers"]


def default_layer(n_layers: int) -> int:
    """The layer three quarters up a model of ``n_layers`` blocks, ``max(1, round(0.75 * n_layers))``.

    Antonello et al. (2023) found middle-to-late layers predict the brain best.
    """
    return max(1, round(0.75 * int(n_layers)))


def _one(layer, n_layers: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ValueError(f"layer {layer!r} is not an integer; layers are hidden-state indices "
                         f"(0 = embeddings, 1..{n_layers} = blocks, negatives from the end)")
    if not -(n_layers + 1) <= int(layer) <= n_layers:
        raise ValueError(f"layer {layer} is out of range: the model has layers 0..{n_layers} "
                         f"(0 = embeddings, {n_layers} = last block; -1 = {n_layers})")
    return int(layer) % (n_layers + 1)


def resolve_layers(layers: int | Sequence[int] | None, n_layers: int) -> list[int]:
    """Sorted distinct non-negative layer indices in ``0..n_layers`` (see the module docstring).

    ``layers``: an int (one layer), a sequence of ints, or None for ``[default_layer(n_layers)]``.
    """
    if layers is None:
        return [default_layer(n_layers)]
    if isinstance(layers, (str, bytes)) or not isinstance(layers, (numbers.Integral, Sequence)) and \
            not hasattr(layers, "__iter__"):
        raise ValueError(f"layers must be an int, a sequence of ints or None, got {type(layers).__name__}")
    items = [layers] if isinstance(layers, numbers.Integral) else list(layers)
    if not items:
        raise ValueError("layers is empty: give at least one layer index, or None for the default")
    return sorted({_one(layer, n_layers) for layer in items})
