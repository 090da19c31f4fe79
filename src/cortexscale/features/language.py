"""Word features from Hugging Face language models, with Antonello et al.'s dynamic context.

A word's feature is the hidden state of its last sub-token. Causal models see only the past: the context
of word i starts at a window start that makes it grow from ``min_context + 1`` to ``max_context`` words,
then jump back (256 -> 512 words in Antonello et al. 2023). Words sharing a window start are encoded in
one forward pass over that window, so each word is encoded about ``max / (max - min)`` times (twice for
256/512) instead of once per word of context. Because attention is causal, this equals recomputing every
word's context on its own. Bidirectional encoders get a window of words on both sides of each word.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..layers import resolve_layers
from ..runtime import resolve_device, resolve_precision, torch_dtype

__all__ = [
    "LanguageModel",
    "causal_features",
    "dynamic_context_starts",
    "encoder_features",
    "is_causal",
    "load_language_model",
    "model_dtype",
    "naive_causal_features",
    "word_token_ids",
]


@dataclass
class LanguageModel:
    """A loaded model with its tokenizer; ``identity`` names it for caches (id, or file path)."""

    model: torch.nn.Module
    tokenizer: object
    causal: bool
    identity: str

    @property
    def n_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def model_dtype(dtype):
    """The torch dtype a model runs in: None (the model's own, float32 for Hugging Face models) or any
    precision name or dtype of :func:`cortexscale.runtime.resolve_precision`."""
    return None if dtype is None else torch_dtype(resolve_precision(dtype, what="dtype"))


@functools.cache
def _model_type_sets() -> tuple[frozenset, frozenset]:
    """Hugging Face model types whose models are decoder-only, and every model type AutoModel knows."""
    from transformers.models.auto import modeling_auto as auto

    causal = set(auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    bidirectional = set(auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES) | set(auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES)
    return frozenset(causal - bidirectional), frozenset(auto.MODEL_MAPPING_NAMES) | frozenset(causal)


def is_causal(config) -> bool:
    """Whether a Hugging Face config describes a causal (decoder-only) language model.

    Evidence, in order: the config's ``is_decoder`` flag or a causal-LM class in ``architectures``; then its
    ``model_type``, which every config has, a GGUF one included (their ``architectures`` is None): causal when
    transformers has a causal-LM class for the type and no masked-LM or sequence-to-sequence one (``llama``,
    ``gpt2``), bidirectional for every other type it knows (``bert``). An unknown type is an error asking for
    ``causal=``.
    """
    archs = getattr(config, "architectures", None) or []
    if getattr(config, "is_decoder", False) or any("CausalLM" in a or "LMHead" in a for a in archs):
        return True
    kind = getattr(config, "model_type", None)
    decoders, known = _model_type_sets()
    if kind in decoders:
        return True
    if kind in known:
        return False
    raise ValueError(f"cannot tell whether model type {kind!r} (architectures {archs}) is causal; "
                     "pass causal=True or causal=False")


def model_source(path: Path, name_or_path, what: str, example: str) -> str:
    """``path`` if it exists, else ``name_or_path`` as a hub id; a path-like name that does not exist is an error."""
    if path.exists():
        return str(path)
    if path.is_absolute() or str(name_or_path).startswith((".", "~")) or len(path.parts) > 2:
        raise ValueError(f"{what} path {path} does not exist (a Hugging Face hub id such as {example!r} is "
                         "downloaded only with network access)")
    return str(name_or_path)


@contextlib.contextmanager
def quiet_loading(source: str):
    """Transformers' weight-loading bar off while a local model loads: it takes a moment, and its bar would
    print through a study's own progress and through ``--no-progress``. Downloads keep their bars."""
    from transformers.utils import logging as hf_logging

    quiet = Path(source).exists() and hf_logging.is_progress_bar_enabled()
    if quiet:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet:
            hf_logging.enable_progress_bar()


def load_language_model(name_or_path, gguf_file: str | None = None, *, causal: bool | None = None, device="auto",
                        dtype=None, revision: str | None = None) -> LanguageModel:
    """Load a Hugging Face model and tokenizer from a hub id, a local folder, or a GGUF file.

    ``name_or_path`` may be a ``.gguf`` file itself. ``causal`` None decides from the config
    (:func:`is_causal`); True or False forces it. Causal models load through AutoModelForCausalLM, the rest
    through AutoModel. ``device``: see :func:`cortexscale.runtime.resolve_device`; ``dtype``: see
    :func:`model_dtype`; ``revision``: a hub revision (branch, tag or commit, such as Pythia's ``step1000``).
    Loading never downloads unless the id is not a local path.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    path = Path(str(name_or_path))
    if path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    source = model_source(path, name_or_path, "language model", "gpt2")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    if revision is not None:
        kwargs["revision"] = revision
    torch_type, target = model_dtype(dtype), resolve_device(device)
    try:
        with quiet_loading(source):
            config = AutoConfig.from_pretrained(source, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            causal = is_causal(config) if causal is None else bool(causal)
            loader = AutoModelForCausalLM if causal else AutoModel
            model = loader.from_pretrained(source, dtype=torch_type, **kwargs)
    except OSError as err:
        raise ValueError(f"cannot load language model {name_or_path!r}: not found as a local path "
                         f"({path}); a Hugging Face hub id needs network access to download ({err})") from err
    model.to(target).eval()
    identity = str((path / gguf_file) if gguf_file else source)
    return LanguageModel(model, tokenizer, causal, identity)


def word_token_ids(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Token ids of each word with its leading space, without special tokens; an empty result is an error."""
    ids = tokenizer([" " + str(w) for w in words], add_special_tokens=False)["input_ids"]
    for i, (word, toks) in enumerate(zip(words, ids)):
        if not toks:
            raise ValueError(f"word {i} ({word!r}) tokenizes to nothing")
    return ids


def dynamic_context_starts(n_words: int, min_context: int = 256, max_context: int = 512) -> np.ndarray:
    """First context word of each word (n_words,): 0 up to ``max_context``, then in steps of max - min."""
    if not 0 <= min_context < max_context:
        raise ValueError(f"need 0 <= min_context < max_context, got {min_context} and {max_context}")
    i = np.arange(n_words)
    step = max_context - min_context
    late = step * ((i - min_context) // step)
    return np.where(i < max_context, 0, late)


def _hidden_states(lm: LanguageModel, ids: torch.Tensor, mask: torch.Tensor | None = None):
    """Hidden states of ``ids`` (B, T): a tuple of (B, T, d), one per layer. The model runs without its
    language-modelling head, whose vocabulary-wide logits no feature uses."""
    body = getattr(lm.model, "base_model", lm.model)
    with torch.inference_mode():
        out = body(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    return out.hidden_states


def _check_length(lm: LanguageModel, n_tokens: int, what: str) -> None:
    limit = getattr(lm.model.config, "max_position_embeddings", None)
    if limit is not None and n_tokens > limit:
        raise ValueError(f"{what} is {n_tokens} tokens, more than the model's {limit} positions; "
                         "use a shorter context")


def _causal_setup(lm: LanguageModel, words, layers, min_context: int, max_context: int):
    """Checked layers, per-word token ids, context starts (n_words,) and empty per-layer outputs."""
    layers = resolve_layers(layers, lm.n_layers)
    ids = word_token_ids(lm.tokenizer, words)
    starts = dynamic_context_starts(len(words), min_context, max_context)
    return layers, ids, starts, {layer: [] for layer in layers}


def _padded(seqs: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask, each (len(seqs), longest)."""
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for j, seq in enumerate(seqs):
        ids[j, :len(seq)] = torch.tensor(seq)
        mask[j, :len(seq)] = 1
    return ids.to(device), mask.to(device)


def _windows(lm: LanguageModel, ids: list[list[int]], starts: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """Per run of words sharing a context start: the window's token ids and the positions of those words'
    last sub-tokens in it."""
    bounds = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1], True])
    plan = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        s = int(starts[a])
        seq = [tok for w in range(s, b) for tok in ids[w]]
        _check_length(lm, len(seq), f"the context window of words {s}..{b - 1}")
        last = np.cumsum([len(ids[w]) for w in range(s, b)]) - 1
        plan.append((seq, last[a - s:]))
    return plan


def _groups(plan: list[tuple], batch_size: int, max_tokens: int | None) -> list[list[tuple]]:
    """Consecutive windows run together: at most ``batch_size``, and at most ``max_tokens`` padded tokens."""
    groups, group, width = [], [], 0
    for window in plan:
        wider = max(width, len(window[0]))
        if group and (len(group) == batch_size or (max_tokens and (len(group) + 1) * wider > max_tokens)):
            groups.append(group)
            group, wider = [], len(window[0])
        group.append(window)
        width = wider
    return groups + [group] if group else groups


def causal_features(lm: LanguageModel, words: Sequence[str], layers, min_context: int = 256,
                    max_context: int = 512, batch_size: int = 1, progress: bool = True,
                    max_tokens: int | None = None) -> dict[int, np.ndarray]:
    """Dynamic-context features {layer: (n_words, d)} of a causal model, one forward pass per window.

    ``batch_size`` windows run together, right-padded (padding after the last token never reaches the
    real tokens of a causal model), and no more than ``max_tokens`` padded tokens (None: no limit): on a
    CPU, short windows run about twice as fast 16 at a time, while long ones gain nothing from company.
    """
    layers, ids, starts, out = _causal_setup(lm, words, layers, min_context, max_context)
    plan = _windows(lm, ids, starts)
    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    desc = f"words (causal, {min_context}-{max_context} words of context)"
    with tqdm(total=len(words), disable=not progress, desc=desc) as bar:
        for group in _groups(plan, batch_size, max_tokens):
            batch, mask = _padded([seq for seq, _ in group], pad, lm.device)
            hidden = _hidden_states(lm, batch, mask if len(group) > 1 else None)
            for j, (_, pick) in enumerate(group):
                rows = torch.as_tensor(pick, device=lm.device)
                for layer in layers:
                    out[layer].append(hidden[layer][j, rows].float().cpu().numpy())
                bar.update(len(pick))
    return {layer: np.concatenate(parts) for layer, parts in out.items()}


def naive_causal_features(lm: LanguageModel, words: Sequence[str], layers, min_context: int = 256,
                          max_context: int = 512, progress: bool = True) -> dict[int, np.ndarray]:
    """Reference: one forward pass per word over its own context. {layer: (n_words, d)}."""
    layers, ids, starts, out = _causal_setup(lm, words, layers, min_context, max_context)
    for i in tqdm(range(len(words)), disable=not progress, desc="words"):
        context = [tok for w in range(int(starts[i]), i + 1) for tok in ids[w]]
        hidden = _hidden_states(lm, torch.tensor([context], device=lm.device))
        for layer in layers:
            out[layer].append(hidden[layer][0, -1].float().cpu().numpy())
    return {layer: np.stack(parts) for layer, parts in out.items()}


def encoder_features(lm: LanguageModel, words: Sequence[str], layers, before: int = 20, after: int = 20,
                     batch_size: int = 32, progress: bool = True) -> dict[int, np.ndarray]:
    """Features {layer: (n_words, d)} of a bidirectional encoder, each word in a window of
    ``before`` and ``after`` words, framed by the tokenizer's special tokens; windows run in batches."""
    layers = resolve_layers(layers, lm.n_layers)
    ids = word_token_ids(lm.tokenizer, words)
    tok = lm.tokenizer
    head = [tok.cls_token_id] if tok.cls_token_id is not None else []
    tail = [tok.sep_token_id] if tok.sep_token_id is not None else []
    seqs, targets = [], []
    for i in range(len(words)):
        left = [t for w in range(max(0, i - before), i + 1) for t in ids[w]]
        right = [t for w in range(i + 1, min(len(words), i + 1 + after)) for t in ids[w]]
        seqs.append(head + left + right + tail)
        targets.append(len(head) + len(left) - 1)
    out = {layer: [] for layer in layers}
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    desc = f"words (bidirectional, {before} before and {after} after)"
    for a in tqdm(range(0, len(seqs), batch_size), disable=not progress, desc=desc, unit="batch"):
        batch = seqs[a:a + batch_size]
        _check_length(lm, max(map(len, batch)), f"the window of word {a}")
        hidden = _hidden_states(lm, *_padded(batch, pad, lm.device))
        rows = torch.arange(len(batch), device=lm.device)
        cols = torch.tensor(targets[a:a + batch_size], device=lm.device)
        for layer in layers:
            out[layer].append(hidden[layer][rows, cols].float().cpu().numpy())
    return {layer: np.concatenate(parts) for layer, parts in out.items()}
