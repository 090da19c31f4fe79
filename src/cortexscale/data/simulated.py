"""Simulated subjects watching the procedural game: the embedded default dataset, where the answer is known.

Every subject watches the same long :class:`~cortexscale.data.ProceduralGame` video (its own seed, not the
training video's), cut into ``train_runs`` training runs and ``test_runs`` test runs of ``run_trs`` scans; the
test runs are seen ``repeats`` times. Each parcel's response is built in four steps:

1. **Sources**, one value per frame, closed-form functions of the frames and the game's latents
   (:func:`stimulus_sources`), in families (:data:`FAMILIES`): *objects* (enemies on screen, in the left
   and right half, flying), *events* (scene cuts, enemy spawns, hits), *transients* (mean absolute
   luminance change from the frame before), *layout* (left-minus-right luminance) and *content* (luminance,
   colour opponents, top-bottom balance, contrast).
2. **Tuning**, drawn once per ``seed`` and shared by every subject (a parcel means the same thing in
   everyone): within each family a mix of its sources (non-negative for objects and events); across
   families variance shares, a share of content uniform on [0, 2 x ``content``] and the rest split evenly
   at random among the other four.
3. **Haemodynamics**: each family's mix is convolved at the frame rate with a double-gamma HRF (:func:`hrf`)
   whose time to peak, per subject and parcel, is drawn from ``hrf_peak``; sampled at the scans, scaled to
   unit variance within each run and summed with weights sqrt(share), again to unit variance per run.
4. **Noise**: AR(1) noise per parcel (coefficient ``noise_ar``) plus a loading on one nuisance signal
   shared by all parcels of a subject's presentation (AR(1), ``nuisance_ar``; a share ``nuisance`` of the
   noise variance). The noise variance is 1 / SNR, the SNR drawn per subject and parcel from ``snr``
   (log-uniform on a range, or one value). Repeats share the signal and draw fresh noise.

So every run's SNR is known, and so is the noise ceiling: against the mean of N repeats a noiseless model
reaches ``r = sqrt(N snr / (N snr + 1))`` (:meth:`SimulatedDataset.true_ceiling`), which
:func:`cortexscale.encoding.noise_ceiling` recovers from the repeats (to 0.03 on average over parcels).

Why these sources
-----------------
Video GPT features are one token-averaged block output per 8-frame clip. Probed with GPTs of hidden 8-256, 2
layers, trained 300-2000 steps on 1024-16384 frames of a 32 x 32 video through a 4 x 4 x 4 token VQ-VAE,
ridge with delays 1-4 at TR 2 s (r of one source, noise-free, 2-3 training seeds):

- The latents a 32 x 32 frame hardly shows are invisible (r < 0.1 for every model, a teacher included):
  scroll speed, player height, jumps (a jump moves a 2 x 3 pixel sprite 2-4 pixels).
- A teacher GPT's features (hidden 128, 4 layers, 2000 steps, its own tokenizer) are 92% linear in the
  clip's bag of tokens: their random projections are predicted at r 0.98 by every model, untrained too.
  Their part beyond the bag of tokens and an untrained model is shared only by models of the same tokenizer
  (r 0.2-0.3 for its students of hidden 64-128, 0.04 for a teacher of another tokenizer): a study with its
  own tokenizer could never see it.
- The teacher's per-clip surprise follows model size (r 0.44 at hidden 16, 0.57 at 128) but is mostly the
  scene cuts (r 0.81 with them), which need no teacher. Fourier motion energy saturates (the bag of tokens
  best); so does the logarithm of the luminance change.
- What is left, and kept: sources a small or under-trained model misses. Sorted by hidden 8, 16, 32, 64
  (1000-2000 steps): enemies on screen 0.08, 0.31, 0.47, 0.49; spawns 0.04, 0.22, 0.34, 0.38; left-right
  luminance 0.52, 0.62, 0.74, 0.79; scene cuts 0.32, 0.44, 0.42, 0.46 and, by 1024, 4096, 16384 training
  frames, 0.26, 0.44, 0.53 (transients 0.46, 0.51, 0.60). Content sources reach 0.82-0.99 for every model.
- The global luminance change alone (cut-dominated) rose too little through the whole pipeline (mean r
  0.39 to 0.44 over hidden 8-64, seed range 0.025). At 300 steps, 1024 training frames over-fit and
  reverse the size trend (hidden 128 below 16); 1000 steps over 1024-16384 frames keep it monotone.

Through a whole study (examples/videogpt_scaling.yaml: default settings, 4 subjects, hidden 8-64 x 1024-16384
frames x 2 seeds, 1000 steps), mean r is 0.26, 0.34, 0.37, 0.38 by hidden size and 0.31, 0.34, 0.36 by
training frames, against a seed range of 0.02 (ceiling about 0.75).

Outputs are deterministic from the settings. The rendered video and its sources are cached once per video
(``cache``, default ``~/.cache/cortexscale/simulated/<hash of the video settings>``, written atomically);
responses are drawn on each read from seeds keyed on (seed, subject, run, repeat), so any number of
subjects costs no disk and little time.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path
from .datasets import Dataset, Run, Stimulus, register_dataset
from .procedural import GROUND, VIEW, ProceduralGame
from .video import FrameStore

__all__ = ["FAMILIES", "SOURCES", "SimulatedDataset", "SimulationSettings", "default_cache_dir", "hrf",
           "simulated_dataset", "stimulus_sources"]

FAMILIES = {
    "objects": ("enemies", "enemies_left", "enemies_right", "enemies_flying"),
    "events": ("scene_cut", "enemy_spawn", "hit"),
    "transients": ("transient",),
    "layout": ("luminance_left_right",),
    "content": ("luminance", "red_green", "blue_yellow", "luminance_top_bottom", "contrast", "contrast_left_right"),
}
"""Source families and their sources, the columns of :func:`stimulus_sources` in this order. Every family but
"content" is seen better by bigger, better-trained video models (see the module docstring)."""
SOURCES = tuple(name for names in FAMILIES.values() for name in names)
_TREND_FAMILIES = tuple(f for f in FAMILIES if f != "content")
_VERSION = 3
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_RENDER_CHUNK = 2048


def default_cache_dir() -> Path:
    """``~/.cache/cortexscale/simulated``."""
    return Path.home() / ".cache" / "cortexscale" / "simulated"


def _integer(value, name: str, low: int) -> int:
    """``value`` as an int >= ``low``; errors name the setting."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not float(value).is_integer() or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _number(value, name: str, low: float, high: float, closed: bool) -> float:
    """``value`` as a float in [low, high] (``closed``) or [low, high); errors name the setting."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or \
            not (low <= value <= high if closed else low <= value < high):
        bounds = f"[{low:g}, {high:g}{']' if closed else ')'}"
        raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")
    return float(value)


def _range(value, name: str, positive: bool = True) -> tuple[float, float]:
    """A (low, high) pair from one number or two; errors name the setting."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in pair)
    if len(pair) != 2 or not numbers or not all(np.isfinite(v) for v in pair) or pair[0] > pair[1]:
        raise ValueError(f"{name} must be a number or a (low, high) pair with low <= high, got {value!r}")
    if positive and pair[0] <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(pair[0]), float(pair[1])


@dataclass(frozen=True)
class SimulationSettings:
    """Everything that determines a simulated dataset (see the module docstring).

    subjects, parcels : int
        Subjects ("sub-01", ...) and parcels per subject ("parcel_0", ...).
    train_runs, test_runs, run_trs : int
        Runs per subject and scans per run; every run shows its own stretch of the video.
    repeats : int
        Presentations of each test run (>= 2).
    tr, fps, size : float, float, int
        Seconds per scan, video frame rate, frame size in pixels (square).
    seed, stimulus_seed : int
        The seed of the tuning and noise, and the game seed of the video (keep it apart from the seed of
        any video the feature models train on).
    snr : float or (low, high)
        Signal-to-noise variance ratio per subject and parcel of one presentation; a range is sampled
        log-uniformly.
    noise_ar, nuisance, nuisance_ar : float
        AR(1) coefficient of the parcel noise, share of the noise variance from the shared nuisance signal,
        and the nuisance's AR(1) coefficient.
    content : float
        Mean share of a parcel's signal variance from the content sources, which every model predicts alike
        (at most 0.5; the rest comes from the other families).
    hrf_peak : (low, high)
        Range of the HRF's time to peak, seconds.
    cache : str or None
        Folder of the rendered videos (None: :func:`default_cache_dir`).
    """

    subjects: int = 4
    parcels: int = 24
    train_runs: int = 6
    test_runs: int = 2
    repeats: int = 3
    run_trs: int = 150
    tr: float = 2.0
    fps: float = 15.0
    size: int = 32
    seed: int = 0
    stimulus_seed: int = 1000
    snr: float | tuple[float, float] = (0.2, 1.0)
    noise_ar: float = 0.4
    nuisance: float = 0.3
    nuisance_ar: float = 0.9
    content: float = 0.1
    hrf_peak: tuple[float, float] = (5.0, 7.0)
    cache: str | None = field(default=None, compare=False)

    def __post_init__(self):
        for name, low in (("subjects", 1), ("parcels", 1), ("train_runs", 1), ("test_runs", 0), ("repeats", 2),
                          ("run_trs", 8), ("size", 8), ("seed", 0), ("stimulus_seed", 0)):
            object.__setattr__(self, name, _integer(getattr(self, name), name, low))
        for name, low, high, closed in (("tr", 0, np.inf, False), ("fps", 0, np.inf, False),
                                        ("noise_ar", 0, 1, False), ("nuisance_ar", 0, 1, False),
                                        ("nuisance", 0, 1, True), ("content", 0, 0.5, True)):
            object.__setattr__(self, name, _number(getattr(self, name), name, low, high, closed))
        if self.tr <= 0 or self.fps <= 0 or self.tr * self.fps < 1:
            raise ValueError(f"tr and fps must be positive with at least one frame per scan (tr * fps >= 1), got "
                             f"tr={self.tr!r}, fps={self.fps!r}")
        snr = _range(self.snr, "snr")
        object.__setattr__(self, "snr", snr[0] if snr[0] == snr[1] else snr)
        object.__setattr__(self, "hrf_peak", _range(self.hrf_peak, "hrf_peak"))

    @property
    def frames_per_run(self) -> int:
        """Video frames shown in one run: its scans' duration at the frame rate."""
        return int(round(self.run_trs * self.tr * self.fps))

    @property
    def n_runs(self) -> int:
        return self.train_runs + self.test_runs

    def video_key(self) -> str:
        """Hash of what determines the video and its sources (the cache folder's name)."""
        video = {"version": _VERSION, "stimulus_seed": self.stimulus_seed, "size": self.size, "fps": self.fps,
                 "frames": self.frames_per_run * self.n_runs}
        return hashlib.sha256(json.dumps(video, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The settings as JSON-ready data, without the cache folder."""
        out = asdict(self)
        out.pop("cache")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


# ---- stimulus ------------------------------------------------------------------------------------------------

def _counts(latents: pd.DataFrame, which) -> np.ndarray:
    """Visible enemies per frame (n,) whose screen position (x, y) satisfies ``which``."""
    slots = sorted(int(c[5:-2]) for c in latents.columns if c.startswith("enemy") and c.endswith("_x"))
    x = latents[[f"enemy{i}_x" for i in slots]].to_numpy(float)
    y = latents[[f"enemy{i}_y" for i in slots]].to_numpy(float)
    with np.errstate(invalid="ignore"):
        return (np.isfinite(x) & which(x, y)).sum(1).astype(np.float32)


def _halves(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean over the first half minus the last half of maps (n, H, W) along ``axis`` (1: rows, 2: columns)."""
    size = values.shape[axis]
    half = size // 2
    first = np.take(values, np.arange(half), axis=axis)
    last = np.take(values, np.arange(size - half, size), axis=axis)
    return first.mean((1, 2)) - last.mean((1, 2))


def stimulus_sources(frames: np.ndarray, latents: pd.DataFrame, previous: np.ndarray | None = None) -> np.ndarray:
    """Sources (n, len(SOURCES)) float32 of frames (n, H, W, 3) uint8 and their game latents (n rows, as
    :meth:`ProceduralGame.render` gives them), columns as :data:`SOURCES`.

    objects: visible enemies, those in the left and right half of the view, those flying (above the ground).
    events: scene cuts, enemy spawns, hits (1 at the frame where they happen). transients: mean |luminance
    change| from the frame before (``previous`` (H, W, 3) precedes the first frame; without it the first
    frame's is 0). layout: mean luminance of the left half minus the right half. content: mean luminance,
    red - green, blue - yellow, luminance of the top half minus the bottom half, contrast (mean |horizontal
    luminance step|) and its left-minus-right difference. Luminance is in [0, 1].
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or min(frames.shape[1:3]) < 2:
        raise ValueError(f"frames must be (n, H >= 2, W >= 2, 3) uint8, got shape {frames.shape} ({frames.dtype})")
    missing = [c for c in ("scene_cut", "enemy_spawn", "hit", "enemy0_x", "enemy0_y") if c not in latents.columns]
    if missing or len(latents) != len(frames):
        raise ValueError(f"latents must have one row per frame ({len(frames)}) and the columns of "
                         f"ProceduralGame.render; got {len(latents)} rows, missing {missing}")
    rgb = frames.astype(np.float32) / 255.0
    luma = rgb @ _LUMA
    before = luma[:1] if previous is None else (np.asarray(previous, np.float32)[None] / 255.0) @ _LUMA
    change = np.abs(np.diff(np.concatenate([before, luma]), axis=0)).mean((1, 2))
    steps = np.abs(np.diff(luma, axis=2))
    red, green, blue = (rgb[..., c].mean((1, 2)) for c in range(3))
    middle = VIEW / 2
    columns = [
        _counts(latents, lambda x, y: np.ones_like(x, bool)), _counts(latents, lambda x, y: x < middle),
        _counts(latents, lambda x, y: x >= middle), _counts(latents, lambda x, y: y > GROUND),
        *(latents[c].to_numpy(np.float32) for c in ("scene_cut", "enemy_spawn", "hit")),
        change,
        _halves(luma, 2),
        luma.mean((1, 2)), red - green, blue - (red + green) / 2, _halves(luma, 1), steps.mean((1, 2)),
        _halves(steps, 2),
    ]
    return np.column_stack(columns).astype(np.float32)


def _render(settings: SimulationSettings, folder: Path) -> None:
    """Render the video into a frame store in ``folder / "frames"`` and its sources to ``sources.npy``."""
    n = settings.frames_per_run * settings.n_runs
    game = ProceduralGame(seed=settings.stimulus_seed, size=(settings.size, settings.size), fps=settings.fps)
    frames, latents = game.render(n)
    parts, previous = [], None
    for a in range(0, n, _RENDER_CHUNK):
        chunk = frames[a:a + _RENDER_CHUNK]
        parts.append(stimulus_sources(chunk, latents.iloc[a:a + _RENDER_CHUNK], previous))
        previous = chunk[-1]
    FrameStore.from_frames(frames, folder / "frames", fps=settings.fps,
                           source=f"procedural-{settings.stimulus_seed}")
    with atomic_path(folder / "sources.npy", suffix=".npy") as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.concatenate(parts), allow_pickle=False)


def _video(settings: SimulationSettings) -> tuple[Path, np.ndarray]:
    """The cached frame store folder of the settings' video and its sources (n_frames, len(SOURCES)), each
    column standardised over the whole video; rendered when missing."""
    folder = Path(settings.cache or default_cache_dir()).expanduser() / settings.video_key()
    n = settings.frames_per_run * settings.n_runs
    try:
        sources = np.load(folder / "sources.npy")
        store = FrameStore.open(folder / "frames")
        if len(store) != n or sources.shape != (n, len(SOURCES)):
            raise ValueError("incomplete")
    except (OSError, ValueError):
        _render(settings, folder)
        sources = np.load(folder / "sources.npy")
    return folder / "frames", _unit(sources.astype(np.float64))


# ---- responses -----------------------------------------------------------------------------------------------

def hrf(dt: float, peak: float = 6.0, length: float = 32.0) -> np.ndarray:
    """Double-gamma haemodynamic response sampled every ``dt`` s over ``length`` s, summing to 1: a gamma
    peaking at ``peak`` s minus a sixth of one peaking 10 s later (SPM's canonical shape at ``peak`` 5)."""
    if not (dt > 0 and peak > 0 and length > peak):
        raise ValueError(f"hrf needs dt > 0, peak > 0 and length > peak, got dt={dt}, peak={peak}, length={length}")
    from scipy import stats

    t = np.arange(0.0, length, dt)
    shape = stats.gamma.pdf(t, peak + 1.0) - stats.gamma.pdf(t, peak + 11.0) / 6.0
    return shape / shape.sum()


@dataclass(frozen=True)
class _Tuning:
    """What each parcel responds to, shared by every subject: per family, weights (parcels, family sources);
    ``shares`` (parcels, families), each row the variance shares of the families, summing to 1."""

    weights: dict
    shares: np.ndarray


@dataclass(frozen=True)
class _Subject:
    """One subject's HRF peaks, SNRs and nuisance loadings, each (parcels,)."""

    hrf_peak: np.ndarray
    snr: np.ndarray
    loading: np.ndarray


def _tuning(s: SimulationSettings) -> _Tuning:
    rng = np.random.default_rng([s.seed, 0])
    weights = {}
    for family, names in FAMILIES.items():
        draw = rng.dirichlet(np.ones(len(names)), s.parcels) if family in ("objects", "events") else \
            rng.standard_normal((s.parcels, len(names)))
        weights[family] = draw
    content = np.clip(rng.uniform(0.0, 2.0 * s.content, s.parcels), 0.0, 1.0)
    trend = rng.dirichlet(np.ones(len(_TREND_FAMILIES)), s.parcels) * (1.0 - content[:, None])
    return _Tuning(weights, np.column_stack([trend, content]))


def _subject(s: SimulationSettings, index: int) -> _Subject:
    rng = np.random.default_rng([s.seed, 1, index])
    peak = rng.uniform(*s.hrf_peak, s.parcels)
    low, high = (s.snr, s.snr) if np.isscalar(s.snr) else s.snr
    snr = np.exp(rng.uniform(np.log(low), np.log(high), s.parcels))
    sign = rng.choice([-1.0, 1.0], s.parcels)
    return _Subject(peak, snr, sign * np.sqrt(s.nuisance / snr))


def _unit(x: np.ndarray) -> np.ndarray:
    """Columns of x (n, k) centred and scaled to unit variance (a constant column stays 0)."""
    x = x - x.mean(0)
    sd = x.std(0)
    return np.divide(x, sd, out=np.zeros_like(x), where=sd > 0)


def _convolve(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Causal convolution of each column of x (n, k) with its own kernel (k, m), truncated to n rows."""
    n = len(x) + kernels.shape[1] - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(x, size, axis=0) * np.fft.rfft(kernels.T, size, axis=0), size, axis=0)
    return out[: len(x)]


def _signal(s: SimulationSettings, tuning: _Tuning, subject: _Subject, sources: np.ndarray) -> np.ndarray:
    """One run's noise-free responses (run_trs, parcels), unit variance per parcel, from its frames' standardised
    sources (frames_per_run, len(SOURCES)): each family's mix is convolved with the parcel's HRF, sampled at
    the scans and scaled to unit variance; the families are summed with weights sqrt(share)."""
    kernels = np.stack([hrf(1.0 / s.fps, peak) for peak in subject.hrf_peak])
    scans = np.round(np.arange(s.run_trs) * s.tr * s.fps).astype(int)
    total, start = np.zeros((s.run_trs, s.parcels)), 0
    for k, (family, names) in enumerate(FAMILIES.items()):
        mix = sources[:, start:start + len(names)] @ tuning.weights[family].T
        start += len(names)
        total += np.sqrt(tuning.shares[:, k]) * _unit(_convolve(mix, kernels)[scans])
    return _unit(total)


def _ar1(rng: np.random.Generator, n: int, k: int, phi: float) -> np.ndarray:
    """AR(1) series (n, k) of unit stationary variance, started from the stationary distribution."""
    shocks = rng.standard_normal((n, k)) * np.sqrt(1.0 - phi**2)
    shocks[0] /= np.sqrt(1.0 - phi**2)
    out = np.empty_like(shocks)
    out[0] = shocks[0]
    for t in range(1, n):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _noise(s: SimulationSettings, subject: _Subject, key: list[int]) -> np.ndarray:
    """Noise (run_trs, parcels) of one presentation: AR(1) per parcel plus the loaded shared nuisance."""
    rng = np.random.default_rng([s.seed, 2, *key])
    own = _ar1(rng, s.run_trs, s.parcels, s.noise_ar) * np.sqrt((1.0 - s.nuisance) / subject.snr)
    nuisance = _ar1(rng, s.run_trs, 1, s.nuisance_ar)
    return own + nuisance * subject.loading


# ---- the dataset ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SimulatedDataset(Dataset):
    """A :class:`~cortexscale.data.Dataset` whose ground truth is known (see the module docstring).

    ``settings`` are its :class:`SimulationSettings`; :meth:`true_ceiling`, :meth:`snr` and :meth:`signal`
    give each subject's noise ceilings, signal-to-noise ratios and noise-free responses.
    """

    settings: SimulationSettings | None = None
    sources: np.ndarray | None = field(default=None, repr=False)

    def _index(self, subject: str) -> int:
        if subject not in self.subjects:
            raise ValueError(f"dataset {self.name!r} has no subject {subject!r}; subjects: {self.subjects}")
        return self.subjects.index(subject)

    def snr(self, subject: str) -> np.ndarray:
        """Signal-to-noise variance ratio (n_targets,) of one presentation, per parcel."""
        return _subject(self.settings, self._index(subject)).snr

    def true_ceiling(self, subject: str, repeats: int | None = None) -> np.ndarray:
        """Largest expected r (n_targets,) of a noiseless model against the mean of ``repeats`` presentations
        (default: the test runs' repeats): ``sqrt(N snr / (N snr + 1))``."""
        n = self.settings.repeats if repeats is None else int(repeats)
        if n < 1:
            raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
        snr = self.snr(subject)
        return np.sqrt(n * snr / (n * snr + 1.0))

    def signal(self, subject: str, run: str) -> np.ndarray:
        """Noise-free responses (n_trs, n_targets) of one run, unit variance per parcel."""
        match = [r for r in self.runs_of(subject) if r.name == run]
        if not match:
            raise ValueError(f"subject {subject!r} has no run {run!r}; runs: {[r.name for r in self.runs_of(subject)]}")
        frames = self.stimuli[match[0].stimulus].events["value"].to_numpy()
        return _signal(self.settings, _tuning(self.settings), _subject(self.settings, self._index(subject)),
                       self.sources[frames[0]:frames[-1] + 1])


@dataclass(frozen=True, eq=False)
class _Responses:
    """A run's responses, drawn on each call: (run_trs, parcels) of one presentation, or with ``repeats`` the
    stack (repeats, run_trs, parcels) of them, or with ``mean`` too their mean (run_trs, parcels)."""

    settings: SimulationSettings
    subject: int
    run: int
    sources: np.ndarray = field(repr=False)
    repeats: int | None = None
    mean: bool = False

    def __call__(self) -> np.ndarray:
        s = self.settings
        subject = _subject(s, self.subject)
        signal = _signal(s, _tuning(s), subject, self.sources)
        keys = range(self.repeats) if self.repeats else [0]
        stack = np.stack([signal + _noise(s, subject, [self.subject, self.run, k]) for k in keys])
        if self.mean:
            return stack.mean(0).astype(np.float32)
        return (stack if self.repeats else stack[0]).astype(np.float32)


def _run_name(s: SimulationSettings, r: int) -> str:
    return f"train-{r + 1:02d}" if r < s.train_runs else f"test-{r - s.train_runs + 1:02d}"


def _stimuli(s: SimulationSettings, frames: Path) -> dict[str, Stimulus]:
    """One video stimulus per run: its stretch of the cached video, one event per frame."""
    n, out = s.frames_per_run, {}
    for r in range(s.n_runs):
        name = _run_name(s, r)
        events = pd.DataFrame({"onset": np.arange(n) / s.fps, "duration": np.full(n, 1.0 / s.fps),
                               "value": np.arange(r * n, (r + 1) * n)})
        out[name] = Stimulus(id=name, modality="video", events=events, frames=frames)
    return out


def _runs(s: SimulationSettings, sources: np.ndarray) -> tuple[Run, ...]:
    """Every subject's runs, in order: the training runs, then the test runs with their repeats."""
    runs, n = [], s.frames_per_run
    for i in range(s.subjects):
        for r in range(s.n_runs):
            name, test, own = _run_name(s, r), r >= s.train_runs, sources[r * n:(r + 1) * n]
            runs.append(Run(subject=f"sub-{i + 1:02d}", name=name, stimulus=name, tr=s.tr, first_scan_time=0.0,
                            n_trs=s.run_trs, split="test" if test else "train",
                            source=_Responses(s, i, r, own, s.repeats, mean=True) if test else _Responses(s, i, r, own),
                            repeats_source=_Responses(s, i, r, own, s.repeats) if test else None))
    return tuple(runs)


@register_dataset("simulated")
def simulated_dataset(**settings) -> SimulatedDataset:
    """The simulated dataset of the given :class:`SimulationSettings` fields (every one has a default).

    Subjects "sub-01", ...; runs "train-01", ... and "test-01", ... (each its own stimulus, a stretch of one
    cached video); targets "parcel_0", .... Responses are drawn on each read, deterministically.
    """
    unknown = sorted(set(settings) - set(SimulationSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown simulated dataset setting(s) {unknown}; settings are "
                         f"{sorted(SimulationSettings.__dataclass_fields__)}")
    s = SimulationSettings(**settings)
    frames, sources = _video(s)
    identity = "simulated:" + json.dumps(s.to_dict(), sort_keys=True)
    return SimulatedDataset(name="simulated", targets=tuple(f"parcel_{p}" for p in range(s.parcels)),
                            stimuli=_stimuli(s, frames), runs=_runs(s, sources), identity=identity, settings=s,
                            sources=sources)


simulated_dataset.__signature__ = inspect.Signature(
    [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
     for f in fields(SimulationSettings)], return_annotation="SimulatedDataset")
