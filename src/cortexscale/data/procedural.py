"""A procedural side-scrolling game: the built-in video stimulus for demos and tests.

The world is simulated in continuous time (seconds) and world units; frame ``k`` samples it at ``t = k / fps``.
Every quantity of a frame is a closed-form function of ``k`` and of per-scene random draws keyed on
``(seed, scene)``, so any range of frames renders the same whatever the chunking, and any resolution shows
the same world.

Screen coordinates: the view is ``VIEW`` = 16 x 16 world units, x to the right, y up, ground at y = 3.
Within a scene the camera scrolls right at a constant speed; the player runs at the camera's speed with a
slow sway on screen and jumps (ballistic arcs under gravity); enemies enter from the right edge, walking or
flying left, and leave at the left edge. Scenes last ``scene_seconds`` (uniform draw) and each cut changes
the palette, the hills and the speeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LATENT_EVENTS", "PALETTES", "ProceduralGame", "write_video"]

VIEW = 16.0
GROUND = 3.0
GRAVITY = 20.0
PLAYER = (0.9, 1.4)
ENEMY = (1.0, 1.0)
SWAY_PERIOD = 7.0
_BLOCK = 256
_CHUNK = 256
LATENT_EVENTS = ("jump", "hit", "enemy_spawn", "scene_cut")

# Layer ids, painted in increasing order: sky, far hills, near hills, ground, ground tiles, enemy, player.
# Colours per palette: sky top, sky bottom, far hills, near hills, ground, tiles, enemy, player (RGB).
PALETTES = np.array([
    [[70, 130, 220], [170, 210, 250], [110, 150, 190], [60, 140, 70], [140, 90, 50], [110, 70, 40], [220, 40, 40], [250, 220, 60]],
    [[20, 20, 60], [80, 60, 130], [60, 50, 100], [30, 70, 60], [70, 70, 80], [50, 50, 60], [240, 80, 200], [250, 230, 90]],
    [[240, 150, 80], [250, 220, 150], [200, 120, 90], [150, 90, 60], [190, 160, 100], [160, 130, 80], [120, 30, 160], [60, 200, 250]],
    [[150, 200, 230], [240, 250, 255], [180, 200, 220], [220, 230, 240], [200, 210, 230], [160, 175, 200], [30, 60, 200], [240, 80, 40]],
    [[10, 60, 40], [60, 140, 90], [30, 90, 60], [20, 60, 30], [60, 50, 30], [40, 35, 20], [250, 140, 0], [230, 230, 230]],
    [[120, 20, 20], [230, 110, 40], [90, 30, 30], [60, 20, 20], [40, 30, 30], [90, 40, 20], [40, 220, 220], [250, 250, 120]],
], dtype=np.float32)


@dataclass(frozen=True)
class _Scene:
    """Random draws of one scene; times in seconds from the scene's start, x in world units."""

    index: int
    start: float
    duration: float
    palette: int
    speed: float
    camera0: float
    sway: tuple
    hills: np.ndarray
    jump_t: np.ndarray
    jump_v: np.ndarray
    enemy_t: np.ndarray
    enemy_v: np.ndarray
    enemy_y: np.ndarray


def _arrivals(rng, rate: float, gap: float, horizon: float, n: int = 96) -> np.ndarray:
    """Event times on (0, horizon): exponential waits of mean 1/rate, at least ``gap`` apart."""
    times = np.cumsum(gap + rng.exponential(1.0 / rate, n)) - gap
    return times[times < horizon]


def _in_window(times: np.ndarray, prev: np.ndarray, now: np.ndarray) -> np.ndarray:
    """Whether any of ``times`` (m,) falls in (prev, now] for each frame; (n,) bool."""
    return ((times[None, :] > prev[:, None]) & (times[None, :] <= now[:, None])).any(1)


def _chunks(scene_of: np.ndarray):
    """Yield (scene, slice of frames) covering runs of one scene, at most _CHUNK frames each."""
    cuts = np.flatnonzero(np.diff(scene_of)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(scene_of)]):
        for lo in range(a, b, _CHUNK):
            yield int(scene_of[a]), slice(lo, min(lo + _CHUNK, b))


class ProceduralGame:
    """Deterministic side-scroller; ``render(n, start)`` gives frames (n, H, W, 3) uint8 and per-frame latents.

    seed: int; size: (H, W) pixels; fps: frames per second; scene_seconds: (min, max) scene duration;
    max_enemies: enemy slots reported in the latents; jump_rate, enemy_rate: mean events per second.
    """

    def __init__(self, seed: int = 0, size=(128, 128), fps: float = 15.0, scene_seconds=(6.0, 14.0),
                 max_enemies: int = 4, jump_rate: float = 0.7, enemy_rate: float = 0.6):
        self.seed = seed
        self.size = size
        self.fps = fps
        self.scene_seconds = scene_seconds
        self.max_enemies = max_enemies
        self.jump_rate = jump_rate
        self.enemy_rate = enemy_rate

    def _check(self) -> tuple[int, int]:
        size = (self.size, self.size) if np.isscalar(self.size) else tuple(self.size)
        if len(size) != 2 or min(size) < 1 or any(int(s) != s for s in size):
            raise ValueError(f"size must be (H, W) positive integers, got {self.size!r}")
        lo, hi = self.scene_seconds
        if not 0 < lo <= hi:
            raise ValueError(f"scene_seconds must be (min, max) with 0 < min <= max, got {self.scene_seconds!r}")
        for name in ("fps", "jump_rate", "enemy_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if int(self.max_enemies) != self.max_enemies or self.max_enemies < 0:
            raise ValueError(f"max_enemies must be a non-negative integer, got {self.max_enemies!r}")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        return int(size[0]), int(size[1])

    # ---- simulation -------------------------------------------------------------------------------------
    def _boundaries(self, t_end: float) -> np.ndarray:
        """Scene start times (seconds), extended block by block until they pass ``t_end``; (n_scenes + 1,)."""
        lo, hi = self.scene_seconds
        key = (int(self.seed), float(lo), float(hi))
        bounds = self._bounds if getattr(self, "_bounds_key", None) == key else np.zeros(1)
        while bounds[-1] <= t_end:
            block = (len(bounds) - 1) // _BLOCK
            lengths = np.random.default_rng([int(self.seed), 1, block]).uniform(lo, hi, _BLOCK)
            bounds = np.concatenate([bounds, bounds[-1] + np.cumsum(lengths)])
        self._bounds, self._bounds_key = bounds, key
        return bounds

    def _scene(self, index: int, bounds: np.ndarray) -> _Scene:
        rng = np.random.default_rng([int(self.seed), 2, index])
        duration = bounds[index + 1] - bounds[index]
        jump_v = rng.uniform(6.5, 9.5, 96)
        jump_t = _arrivals(rng, self.jump_rate, 2 * 9.5 / GRAVITY + 0.1, duration)
        enemy_t = _arrivals(rng, self.enemy_rate, 0.4, duration)
        n_enemies = len(enemy_t)
        flying = rng.random(n_enemies) < 0.3
        return _Scene(
            index=index, start=bounds[index], duration=duration, palette=int(rng.integers(len(PALETTES))),
            speed=rng.uniform(2.0, 5.0), camera0=rng.uniform(0.0, 1000.0),
            sway=(rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)), hills=rng.uniform(0, 2 * np.pi, 4),
            jump_t=jump_t, jump_v=jump_v[: len(jump_t)],
            enemy_t=enemy_t, enemy_v=rng.uniform(0.0, 3.0, n_enemies),
            enemy_y=np.where(flying, GROUND + rng.uniform(2.0, 4.5, n_enemies), GROUND))

    @staticmethod
    def _player(scene: _Scene, tau: np.ndarray) -> dict:
        """Player state at scene times tau (n,): screen x, y (feet), velocities, airborne flag."""
        amp, phase = scene.sway
        omega = 2 * np.pi / SWAY_PERIOD
        dt = tau[:, None] - scene.jump_t[None, :]
        v0 = scene.jump_v[None, :]
        airborne = (dt >= 0) & (dt < 2 * v0 / GRAVITY)
        height = np.where(airborne, v0 * dt - 0.5 * GRAVITY * dt**2, 0.0).sum(1)
        vy = np.where(airborne, v0 - GRAVITY * dt, 0.0).sum(1)
        return {"x": 5.0 + amp * np.sin(omega * tau + phase), "y": GROUND + height,
                "vx": scene.speed + amp * omega * np.cos(omega * tau + phase), "vy": vy,
                "airborne": airborne.any(1)}

    @staticmethod
    def _enemies(scene: _Scene, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Enemy screen x, y (feet) and visibility at scene times tau; each (n, n_enemies)."""
        age = tau[:, None] - scene.enemy_t[None, :]
        x = VIEW + ENEMY[0] / 2 - (scene.speed + scene.enemy_v[None, :]) * age
        y = np.broadcast_to(scene.enemy_y[None, :], x.shape)
        return x, y, (age >= 0) & (x > -ENEMY[0] / 2)

    @classmethod
    def _touching(cls, scene: _Scene, tau: np.ndarray) -> np.ndarray:
        """Player-enemy box overlap at scene times tau; (n, n_enemies) bool."""
        p = cls._player(scene, tau)
        ex, ey, visible = cls._enemies(scene, tau)
        dx = np.abs(p["x"][:, None] - ex) < (PLAYER[0] + ENEMY[0]) / 2
        dy = np.abs(p["y"][:, None] + PLAYER[1] / 2 - (ey + ENEMY[1] / 2)) < (PLAYER[1] + ENEMY[1]) / 2
        return dx & dy & visible

    def _scene_latents(self, scene: _Scene, frames: np.ndarray) -> dict:
        """Latent columns for the given global frame indices, all inside ``scene``."""
        dt = 1.0 / self.fps
        tau = frames / self.fps - scene.start
        prev = tau - dt
        p = self._player(scene, tau)
        ex, ey, visible = self._enemies(scene, tau)
        hit = self._touching(scene, tau) & ~(self._touching(scene, prev) & (prev >= 0)[:, None])
        out = {"frame": frames, "time": frames / self.fps, "scene": np.full(len(frames), scene.index),
               "palette": np.full(len(frames), scene.palette), "scroll": scene.camera0 + scene.speed * tau,
               "player_x": p["x"], "player_y": p["y"], "player_vx": p["vx"], "player_vy": p["vy"],
               "airborne": p["airborne"].astype(np.int8), "enemy_count": visible.sum(1),
               "jump": _in_window(scene.jump_t, prev, tau), "hit": hit.any(1),
               "enemy_spawn": _in_window(scene.enemy_t, prev, tau), "scene_cut": (prev < 0) & (scene.index > 0)}
        for name in LATENT_EVENTS:
            out[name] = out[name].astype(np.int8)
        return out | self._enemy_slots(scene, ex, ey, visible)

    def _enemy_slots(self, scene: _Scene, ex: np.ndarray, ey: np.ndarray, visible: np.ndarray) -> dict:
        """enemy{i}_x/y (n,) for the first ``max_enemies`` visible enemies in order of arrival, else NaN."""
        n = len(ex)
        padded = [np.pad(a, ((0, 0), (0, self.max_enemies)), constant_values=v)
                  for a, v in ((ex, np.nan), (ey, np.nan), (visible, False))]
        arrival = np.pad(scene.enemy_t, (0, self.max_enemies), constant_values=np.inf)
        order = np.argsort(np.where(padded[2], arrival[None, :], np.inf), axis=1, kind="stable")
        rows, out = np.arange(n), {}
        for slot in range(self.max_enemies):
            pick = order[:, slot]
            shown = padded[2][rows, pick]
            out[f"enemy{slot}_x"] = np.where(shown, padded[0][rows, pick], np.nan)
            out[f"enemy{slot}_y"] = np.where(shown, padded[1][rows, pick], np.nan)
        return out

    # ---- rendering --------------------------------------------------------------------------------------
    def _labels(self, scene: _Scene, lat: dict, shape: tuple[int, int]) -> np.ndarray:
        """Layer id per pixel (n, H, W) uint8; the painter's order is the max over layers."""
        H, W = shape
        xs = ((np.arange(W) + 0.5) / W * VIEW)[None, :]
        ys = (VIEW * (1 - (np.arange(H) + 0.5) / H))[None, :, None]
        cam = lat["scroll"][:, None]
        h = scene.hills
        far = 7.5 + 1.2 * np.sin(0.35 * (xs + 0.3 * cam) + h[0]) + 0.6 * np.sin(0.9 * (xs + 0.3 * cam) + h[1])
        near = 5.0 + 0.9 * np.sin(0.6 * (xs + 0.6 * cam) + h[2]) + 0.4 * np.sin(1.7 * (xs + 0.6 * cam) + h[3])
        tiles = (np.floor(xs + cam) % 2 == 0)[:, None, :] & (ys > GROUND - 0.6)
        out = np.zeros((len(cam), H, W), np.uint8)
        layers = [(1, ys < far[:, None, :]), (2, ys < near[:, None, :]), (3, ys < GROUND), (4, tiles & (ys < GROUND))]
        sprites = [(lat[f"enemy{i}_x"], lat[f"enemy{i}_y"], ENEMY, 5) for i in range(self.max_enemies)]
        sprites.append((lat["player_x"], lat["player_y"], PLAYER, 6))
        for x, y, (w, hgt), ident in sprites:
            in_x = np.abs(xs - x[:, None]) < w / 2
            in_y = (ys[..., 0] >= y[:, None]) & (ys[..., 0] < y[:, None] + hgt)
            layers.append((ident, in_x[:, None, :] & in_y[:, :, None]))
        for ident, mask in layers:
            np.copyto(out, np.uint8(ident), where=mask)
        return out

    @staticmethod
    def _colour_table(palette: int, H: int) -> np.ndarray:
        """(7, H, 3) uint8: colour per layer id and row; the sky is a vertical gradient."""
        colours = PALETTES[palette]
        ramp = np.linspace(0.0, 1.0, H)[:, None]
        table = np.broadcast_to(colours[1:, None, :], (7, H, 3)).copy()
        table[0] = (1 - ramp) * colours[0] + ramp * colours[1]
        return np.round(table).astype(np.uint8)

    def render(self, n_frames: int, start: int = 0):
        """Frames ``start .. start + n_frames - 1``.

        Returns (frames (n_frames, H, W, 3) uint8, latents DataFrame with one row per frame). Latent
        columns: frame, time (s), scene, palette, scroll (camera x, world units), player_x/y (screen units,
        y at the feet), player_vx/vy (units/s, vx relative to the world), airborne, enemy_count (visible),
        events jump, hit, enemy_spawn, scene_cut (0/1 at the frame where they happen), and enemy{i}_x/y for
        ``max_enemies`` slots holding the visible enemies in order of arrival (NaN when the slot is empty).
        """
        H, W = self._check()
        if int(n_frames) != n_frames or n_frames < 0 or int(start) != start or start < 0:
            raise ValueError(f"n_frames and start must be non-negative integers, got {n_frames!r}, {start!r}")
        frames = np.arange(int(start), int(start) + int(n_frames))
        image = np.empty((len(frames), H, W, 3), np.uint8)
        bounds = self._boundaries((frames[-1] if len(frames) else 0) / self.fps)
        scene_of = np.searchsorted(bounds, frames / self.fps, side="right") - 1
        parts = [pd.DataFrame(self._scene_latents(self._scene(0, bounds), frames[:0]))]
        for index, part in _chunks(scene_of):
            scene = self._scene(index, bounds)
            lat = self._scene_latents(scene, frames[part])
            image[part] = self._colour_table(scene.palette, H)[self._labels(scene, lat, (H, W)), np.arange(H)[None, :, None]]
            parts.append(pd.DataFrame(lat))
        return image, pd.concat(parts, ignore_index=True)


def write_video(path, frames: np.ndarray, fps: float = 15.0, crf: int = 12) -> Path:
    """Encode frames (n, H, W, 3) uint8 (H, W even) as H.264 (else MPEG-4) with PyAV; atomic write."""
    import av
    from fractions import Fraction

    from .._io import atomic_path

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be a non-empty (n, H, W, 3) uint8 array, got {frames.shape} {frames.dtype}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"frames must have an even height and width for yuv420p video, got {frames.shape}")
    path = Path(path)
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with atomic_path(path, suffix=path.suffix) as tmp, av.open(str(tmp), mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        stream.options = {"crf": str(crf)} if codec == "libx264" else {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
