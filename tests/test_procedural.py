import numpy as np
import pandas as pd
import pytest

from cortexscale.data.procedural import ENEMY, GRAVITY, PALETTES, PLAYER, VIEW, ProceduralGame

FPS = 15.0


def game(**kw):
    return ProceduralGame(**{"seed": 3, "size": (48, 64), "fps": FPS, "scene_seconds": (3.0, 5.0), **kw})


@pytest.fixture(scope="module")
def rendered():
    return game(max_enemies=12).render(300)


def test_same_seed_same_output_other_seed_differs():
    a, la = game().render(40)
    b, lb = game().render(40)
    c, lc = game(seed=4).render(40)
    assert np.array_equal(a, b) and la.equals(lb)
    assert not np.array_equal(a, c)
    assert not np.allclose(la["player_x"], lc["player_x"])


def test_chunks_match_one_render_across_scene_cuts(rendered):
    frames, lat = rendered
    assert lat["scene_cut"].sum() >= 2
    parts = [game(max_enemies=12).render(n, start=s) for s, n in [(0, 97), (97, 1), (98, 202)]]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), frames)
    pd.testing.assert_frame_equal(pd.concat([p[1] for p in parts], ignore_index=True), lat)
    late, late_lat = game(max_enemies=12).render(20, start=250)
    assert np.array_equal(late, frames[250:270])
    assert np.array_equal(late_lat["frame"], np.arange(250, 270))


def test_shapes_and_columns(rendered):
    frames, lat = rendered
    assert frames.shape == (300, 48, 64, 3) and frames.dtype == np.uint8
    assert len(lat) == 300
    for name in ["player_x", "player_y", "player_vx", "player_vy", "enemy_count", "jump", "hit", "enemy_spawn",
                 "scene_cut", "scene", "palette", "scroll", "enemy11_x", "enemy11_y"]:
        assert name in lat
    empty, empty_lat = game().render(0)
    assert empty.shape == (0, 48, 64, 3) and len(empty_lat) == 0


def test_jumps_are_ballistic(rendered):
    _, lat = rendered
    dt = 1 / FPS
    same = (lat["airborne"].to_numpy()[1:] == 1) & (lat["airborne"].to_numpy()[:-1] == 1) & (lat["jump"].to_numpy()[1:] == 0)
    assert same.sum() > 20
    vy, y = lat["player_vy"].to_numpy(), lat["player_y"].to_numpy()
    np.testing.assert_allclose(np.diff(vy)[same], -GRAVITY * dt, rtol=1e-9)
    np.testing.assert_allclose(np.diff(y)[same], ((vy[1:] + vy[:-1]) / 2 * dt)[same], atol=1e-9)
    assert (y[lat["airborne"] == 0] == y.min()).all()


def test_events_match_the_state_they_mark(rendered):
    _, lat = rendered
    new_scene = np.r_[False, np.diff(lat["scene"]) != 0]
    assert np.array_equal(lat["scene_cut"] == 1, new_scene)
    took_off = np.r_[False, (lat["airborne"].to_numpy()[1:] == 1) & (lat["airborne"].to_numpy()[:-1] == 0)]
    jumped = lat["jump"].to_numpy() == 1
    assert jumped.sum() >= 3
    assert np.array_equal(jumped & ~new_scene, took_off & ~new_scene)
    assert (lat.loc[lat["enemy_spawn"] == 1, "enemy_count"] >= 1).all() and lat["enemy_spawn"].sum() >= 3
    xs = lat[[f"enemy{i}_x" for i in range(12)]].to_numpy()
    ys = lat[[f"enemy{i}_y" for i in range(12)]].to_numpy()
    assert np.array_equal(np.isfinite(xs).sum(1), lat["enemy_count"])
    px, py = lat["player_x"].to_numpy()[:, None], lat["player_y"].to_numpy()[:, None]
    overlap = (np.abs(xs - px) < (PLAYER[0] + ENEMY[0]) / 2) & (py < ys + ENEMY[1]) & (ys < py + PLAYER[1])
    hits = lat["hit"].to_numpy() == 1
    assert hits.sum() >= 1 and overlap[hits].any(1).all()
    first_contact = np.r_[False, overlap[1:].any(1) & ~overlap[:-1].any(1)] & ~new_scene
    assert first_contact.sum() >= 1 and hits[first_contact].all()


def test_scene_lengths_follow_scene_seconds(rendered):
    _, lat = rendered
    counts = lat.groupby("scene").size().to_numpy()[1:-1]
    assert len(counts) >= 1
    assert (counts >= 3.0 * FPS - 1).all() and (counts <= 5.0 * FPS + 1).all()


@pytest.mark.parametrize("size", [(48, 64), (96, 128)])
def test_player_is_drawn_where_the_latents_put_it(size):
    frames, lat = game(size=size).render(60)
    H, W = size
    for k in range(0, 60, 7):
        colour = PALETTES[lat["palette"][k], 7].astype(np.uint8)
        rows, cols = np.nonzero((frames[k] == colour).all(-1))
        assert len(rows) > 0
        assert cols.mean() == pytest.approx(lat["player_x"][k] / VIEW * W - 0.5, abs=1.0)
        centre_y = lat["player_y"][k] + PLAYER[1] / 2
        assert rows.mean() == pytest.approx((1 - centre_y / VIEW) * H - 0.5, abs=1.0)


def test_latents_do_not_depend_on_resolution():
    _, small = game(size=(32, 32)).render(50)
    _, large = game(size=(96, 160)).render(50)
    pd.testing.assert_frame_equal(small, large)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size must be"):
        game(size=(0, 10)).render(2)
    with pytest.raises(ValueError, match="n_frames and start"):
        game().render(-1)
    with pytest.raises(ValueError, match="fps must be positive"):
        game(fps=0).render(2)
    with pytest.raises(ValueError, match="scene_seconds"):
        game(scene_seconds=(5.0, 1.0)).render(2)
