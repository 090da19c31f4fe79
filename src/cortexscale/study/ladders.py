"""Named ladders of pretrained models: one training recipe at many sizes, as the published language and speech
scaling studies swept them. A ``pretrained`` block takes one with ``ladder:`` (and ``sizes:`` for a part of
it), as a trainable block takes named sweeps::

    models:
      - {family: pretrained, name: pythia, ladder: pythia, sizes: [70m, 410m, 1.4b], layers: default}

Each rung holds its hub id, its parameter count with and without embeddings (as cortexscale counts the model
it loads: a causal model with its output head, a Whisper model's encoder alone), its training data and the
architecture fields its counts follow from (``config``: what ``transformers.AutoConfig.for_model`` takes), so
a study plans offline and the table can be checked against the architecture without any download.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LADDERS", "Ladder", "Rung", "ladder_rungs"]

HALF_FROM = 1e9
"""Rungs of at least this many parameters load in their ladder's half precision (bf16: fp32's range, and CPUs
run it), the rest in fp32."""


@dataclass(frozen=True)
class Rung:
    """One model of a ladder: ``size`` its label in the ladder (``70m``), ``source`` its hub id, ``params`` and
    ``params_non_embedding`` its parameter counts, ``train_data`` what it was trained on (in its ladder's
    ``train_unit``), ``model_type`` and ``config`` its architecture."""

    size: str
    source: str
    params: int
    params_non_embedding: int
    train_data: float
    model_type: str
    config: dict

    @property
    def layers(self) -> int:
        """Its block count (a Whisper model's encoder blocks)."""
        return int(self.config.get("num_hidden_layers") or self.config["encoder_layers"])

    @property
    def width(self) -> int:
        """The columns of one layer's features."""
        return int(self.config.get("hidden_size") or self.config["d_model"])


@dataclass(frozen=True)
class Ladder:
    """A named ladder: its ``rungs`` from smallest to largest, where it comes from (``reference``), the unit
    of its rungs' training data, the half precision its large rungs load in, whether it hears sound, and the
    tokens of one training step where its hub revisions are step checkpoints (``step<N>``)."""

    name: str
    reference: str
    train_unit: str
    half: str
    speech: bool
    rungs: tuple[Rung, ...]
    step_tokens: float | None = None

    @property
    def sizes(self) -> list[str]:
        return [rung.size for rung in self.rungs]

    def dtype(self, rung: Rung) -> str:
        """The precision ``rung`` loads in: fp32 below :data:`HALF_FROM` parameters, else the ladder's half."""
        return self.half if rung.params >= HALF_FROM else "fp32"


def _neox(hidden: int, layers: int, heads: int, vocab: int = 50304) -> tuple[str, dict]:
    return "gpt_neox", {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                        "intermediate_size": 4 * hidden, "vocab_size": vocab, "max_position_embeddings": 2048,
                        "rotary_pct": 0.25, "tie_word_embeddings": False}


def _opt(hidden: int, layers: int, heads: int, **extra) -> tuple[str, dict]:
    return "opt", {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                   "ffn_dim": 4 * hidden, "vocab_size": 50272, "max_position_embeddings": 2048,
                   "word_embed_proj_dim": hidden, **extra}


def _llama(hidden: int, layers: int, heads: int, ffn: int) -> tuple[str, dict]:
    return "llama", {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                     "num_key_value_heads": heads, "intermediate_size": ffn, "vocab_size": 32000,
                     "max_position_embeddings": 2048, "tie_word_embeddings": False}


def _qwen(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, tied: bool) -> tuple[str, dict]:
    return "qwen2", {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                     "num_key_value_heads": kv_heads, "intermediate_size": ffn,
                     "vocab_size": 151936 if tied else 152064, "tie_word_embeddings": tied}


def _whisper(width: int, layers: int, heads: int) -> tuple[str, dict]:
    return "whisper", {"d_model": width, "encoder_layers": layers, "decoder_layers": layers,
                       "encoder_attention_heads": heads, "decoder_attention_heads": heads,
                       "encoder_ffn_dim": 4 * width, "decoder_ffn_dim": 4 * width}


def _speech(model_type: str, hidden: int, layers: int, heads: int, ffn: int, stable: bool) -> tuple[str, dict]:
    return model_type, {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
                        "intermediate_size": ffn, "feat_extract_norm": "layer" if stable else "group",
                        "do_stable_layer_norm": stable}


def _rungs(*rows) -> tuple[Rung, ...]:
    return tuple(Rung(size, source, params, non_embedding, float(data), *arch)
                 for size, source, params, non_embedding, data, arch in rows)


_PILE = 299_892_736_000  # tokens each Pythia model saw: 143,000 steps of 1024 sequences of 2048 tokens

LADDERS: dict[str, Ladder] = {ladder.name: ladder for ladder in (
    Ladder("pythia", "Biderman et al. 2023: eight sizes trained on the same 300B tokens of the Pile, in one "
           "order, with public step checkpoints", "tokens", "bf16", False, _rungs(
               ("70m", "EleutherAI/pythia-70m", 70_426_624, 44_670_976, _PILE, _neox(512, 6, 8)),
               ("160m", "EleutherAI/pythia-160m", 162_322_944, 123_689_472, _PILE, _neox(768, 12, 12)),
               ("410m", "EleutherAI/pythia-410m", 405_334_016, 353_822_720, _PILE, _neox(1024, 24, 16)),
               ("1b", "EleutherAI/pythia-1b", 1_011_781_632, 908_759_040, _PILE, _neox(2048, 16, 8)),
               ("1.4b", "EleutherAI/pythia-1.4b", 1_414_647_808, 1_311_625_216, _PILE, _neox(2048, 24, 16)),
               ("2.8b", "EleutherAI/pythia-2.8b", 2_775_208_960, 2_646_430_720, _PILE, _neox(2560, 32, 32)),
               ("6.9b", "EleutherAI/pythia-6.9b", 6_857_302_016, 6_650_732_544, _PILE,
                _neox(4096, 32, 32, vocab=50432)),
               ("12b", "EleutherAI/pythia-12b", 11_846_072_320, 11_586_549_760, _PILE,
                _neox(5120, 36, 40, vocab=50688))), step_tokens=2_097_152),
    Ladder("opt", "Zhang et al. 2022: the OPT family (180B tokens), the ladder Antonello et al. 2023 swept "
           "from 125M to 30B", "tokens", "bf16", False, _rungs(
               ("125m", "facebook/opt-125m", 125_239_296, 85_056_000, 1.8e11, _opt(768, 12, 12)),
               ("350m", "facebook/opt-350m", 331_196_416, 303_357_952, 1.8e11,
                _opt(1024, 24, 16, word_embed_proj_dim=512, do_layer_norm_before=False)),
               ("1.3b", "facebook/opt-1.3b", 1_315_758_080, 1_208_602_624, 1.8e11, _opt(2048, 24, 32)),
               ("2.7b", "facebook/opt-2.7b", 2_651_596_800, 2_517_652_480, 1.8e11, _opt(2560, 32, 32)),
               ("6.7b", "facebook/opt-6.7b", 6_658_473_984, 6_444_163_072, 1.8e11, _opt(4096, 32, 32)),
               ("13b", "facebook/opt-13b", 12_853_473_280, 12_585_584_640, 1.8e11, _opt(5120, 40, 40)),
               ("30b", "facebook/opt-30b", 29_974_540_288, 29_599_496_192, 1.8e11, _opt(7168, 48, 56)),
               ("66b", "facebook/opt-66b", 65_719_701_504, 65_237_501_952, 1.8e11, _opt(9216, 64, 72)))),
    Ladder("llama", "Touvron et al. 2023: LLaMA (1T tokens for 7B and 13B, 1.4T for 33B and 65B), swept by "
           "Antonello et al. 2023", "tokens", "bf16", False, _rungs(
               ("7b", "huggyllama/llama-7b", 6_738_415_616, 6_607_343_616, 1.0e12, _llama(4096, 32, 32, 11008)),
               ("13b", "huggyllama/llama-13b", 13_015_864_320, 12_852_024_320, 1.0e12,
                _llama(5120, 40, 40, 13824)),
               ("30b", "huggyllama/llama-30b", 32_528_943_616, 32_315_951_616, 1.4e12,
                _llama(6656, 60, 52, 17920)),
               ("65b", "huggyllama/llama-65b", 65_285_660_672, 65_023_516_672, 1.4e12,
                _llama(8192, 80, 64, 22016)))),
    Ladder("qwen", "Qwen Team 2024: the Qwen2.5 base models, 18T tokens each", "tokens", "bf16", False, _rungs(
        ("0.5b", "Qwen/Qwen2.5-0.5B", 494_032_768, 357_898_112, 1.8e13, _qwen(896, 24, 14, 2, 4864, True)),
        ("1.5b", "Qwen/Qwen2.5-1.5B", 1_543_714_304, 1_310_340_608, 1.8e13, _qwen(1536, 28, 12, 2, 8960, True)),
        ("3b", "Qwen/Qwen2.5-3B", 3_085_938_688, 2_774_773_760, 1.8e13, _qwen(2048, 36, 16, 2, 11008, True)),
        ("7b", "Qwen/Qwen2.5-7B", 7_615_616_512, 7_070_619_136, 1.8e13, _qwen(3584, 28, 28, 4, 18944, False)),
        ("14b", "Qwen/Qwen2.5-14B", 14_770_033_664, 13_991_465_984, 1.8e13,
         _qwen(5120, 48, 40, 8, 13824, False)),
        ("32b", "Qwen/Qwen2.5-32B", 32_763_876_352, 31_985_308_672, 1.8e13,
         _qwen(5120, 64, 40, 8, 27648, False)),
        ("72b", "Qwen/Qwen2.5-72B", 72_706_203_648, 71_460_495_360, 1.8e13,
         _qwen(8192, 80, 64, 8, 29568, False)))),
    Ladder("whisper", "Radford et al. 2022: Whisper's encoders, 680k hours of speech, as Antonello et al. 2023 "
           "used them", "hours", "bf16", True, _rungs(
               ("tiny", "openai/whisper-tiny", 8_208_384, 7_632_384, 6.8e5, _whisper(384, 4, 6)),
               ("base", "openai/whisper-base", 20_590_592, 19_822_592, 6.8e5, _whisper(512, 6, 8)),
               ("small", "openai/whisper-small", 88_154_112, 87_002_112, 6.8e5, _whisper(768, 12, 12)),
               ("medium", "openai/whisper-medium", 307_216_384, 305_680_384, 6.8e5, _whisper(1024, 24, 16)),
               ("large", "openai/whisper-large-v2", 636_784_640, 634_864_640, 6.8e5, _whisper(1280, 32, 20)))),
    Ladder("hubert", "Hsu et al. 2021: HuBERT Base (960 h of LibriSpeech) and Large, X-Large (60k h of "
           "Libri-Light)", "hours", "bf16", True, _rungs(
               ("base", "facebook/hubert-base-ls960", 94_371_712, 94_371_712, 960,
                _speech("hubert", 768, 12, 12, 3072, False)),
               ("large", "facebook/hubert-large-ll60k", 315_435_136, 315_435_136, 6.0e4,
                _speech("hubert", 1024, 24, 16, 4096, True)),
               ("xlarge", "facebook/hubert-xlarge-ll60k", 962_493_824, 962_493_824, 6.0e4,
                _speech("hubert", 1280, 48, 16, 5120, True)))),
    Ladder("wavlm", "Chen et al. 2022: WavLM Base (960 h), Base+ and Large (94k h)", "hours", "bf16", True, _rungs(
        ("base", "microsoft/wavlm-base", 94_381_936, 94_378_096, 960, _speech("wavlm", 768, 12, 12, 3072, False)),
        ("base-plus", "microsoft/wavlm-base-plus", 94_381_936, 94_378_096, 9.4e4,
         _speech("wavlm", 768, 12, 12, 3072, False)),
        ("large", "microsoft/wavlm-large", 315_453_120, 315_448_000, 9.4e4,
         _speech("wavlm", 1024, 24, 16, 4096, True)))),
)}
"""Ladders by name (see the module docstring)."""


def ladder_rungs(name: str, sizes=None) -> tuple[Ladder, list[Rung]]:
    """The ladder ``name`` and its rungs of ``sizes`` (None: all of them), in the ladder's order; raises on an
    unknown ladder or size, or a size given twice."""
    if name not in LADDERS:
        raise ValueError(f"unknown ladder {name!r}; ladders are {sorted(LADDERS)}")
    ladder = LADDERS[name]
    if sizes is None:
        return ladder, list(ladder.rungs)
    unknown = [size for size in sizes if size not in ladder.sizes]
    if unknown:
        raise ValueError(f"ladder {name!r} has no size {unknown[0]!r}; its sizes are {ladder.sizes}")
    twice = sorted({size for size in sizes if list(sizes).count(size) > 1})
    if twice:
        raise ValueError(f"sizes name {twice} more than once")
    return ladder, [rung for rung in ladder.rungs if rung.size in sizes]
