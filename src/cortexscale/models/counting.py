"""Parameter and FLOP counting, first-class helpers for scaling studies.

FLOPs follow the convention of ``torch.utils.flop_counter``: a multiply-add is 2 FLOPs, only matrix
products and convolutions count, and attention is counted in full (no discount for the causal mask).
Training is forward + backward, the backward costing twice the forward for every product whose input
needs a gradient and once for a first layer fed straight from data.
"""

from __future__ import annotations

from torch import nn

__all__ = ["attention_train_flops", "count_parameters", "linear_weights", "transformer_train_flops"]


def count_parameters(model: nn.Module, non_embedding: bool = False) -> int:
    """Number of parameters; with ``non_embedding``, token and position embeddings are left out (Kaplan et al.).

    A model lists its embedding parameters by name prefix in ``embedding_prefixes``; ``nn.Embedding``
    modules always count as embeddings.
    """
    skip = set()
    if non_embedding:
        prefixes = tuple(getattr(model, "embedding_prefixes", ()))
        for name, m in model.named_modules():
            if isinstance(m, nn.Embedding):
                skip.update(id(p) for p in m.parameters())
        skip.update(id(p) for name, p in model.named_parameters() if prefixes and name.startswith(prefixes))
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in skip:
            seen.add(id(p))
            total += p.numel()
    return total


def linear_weights(module: nn.Module) -> int:
    """Number of weights (no biases) in the ``nn.Linear`` layers of ``module``."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def attention_train_flops(n_layers: int, seq_len: int, hidden: int) -> float:
    """Training FLOPs per sample of the score and value products: 3 x (2 products x 2 L^2 D) per layer."""
    return 12.0 * n_layers * seq_len * seq_len * hidden


def transformer_train_flops(matmul_params: int, tokens: int, n_layers: int, seq_len: int, hidden: int) -> float:
    """Training FLOPs per sample of a transformer: ``6 N tokens`` plus the attention term.

    matmul_params : weights of the linear layers applied to every one of ``tokens`` positions.
    """
    return 6.0 * matmul_params * tokens + attention_train_flops(n_layers, seq_len, hidden)
