import numpy as np
import pytest

from cortexscale.data.subsets import DEFAULT_SIZES, held_out_blocks, nested_subsets, trainable_frames


def split(**kw):
    return nested_subsets(**{"n_total": 10_000, "sizes": (160, 1_600, 8_000), "val_size": 800, "unit": 16, **kw})


def test_smaller_subsets_are_prefixes_of_larger_ones():
    s = split()
    a, b, c = (s.train[k] for k in (160, 1_600, 8_000))
    assert (len(a), len(b), len(c)) == (10, 100, 500)
    assert np.array_equal(b[: len(a)], a) and np.array_equal(c[: len(b)], b)
    assert np.array_equal(s.frames(1_600)[: 160], s.frames(160))
    assert set(s.frames(160)) <= set(s.frames(1_600)) <= set(s.frames(8_000))


def test_blocks_are_contiguous_aligned_and_disjoint_from_validation():
    s = split()
    assert len(s.val) == 50 and len(s.frames()) == 800
    assert (s.val % 16 == 0).all() and (s.train[8_000] % 16 == 0).all()
    train = s.frames(8_000)
    assert len(np.unique(train)) == len(train) == 8_000
    assert not set(train) & set(s.frames())
    assert train.max() < 10_000
    blocks = s.frames(1_600).reshape(-1, 16)
    assert (np.diff(blocks, axis=1) == 1).all()


def test_sizes_round_up_to_whole_blocks_and_the_tail_is_unused():
    s = nested_subsets(1_000, sizes=(20, 900), val_size=1, unit=16)
    assert len(s.val) == 1 and len(s.train[20]) == 2 and len(s.train[900]) == 57
    assert s.frames(900).max() < 62 * 16


def test_deterministic_and_seed_dependent():
    assert np.array_equal(split().train[8_000], split().train[8_000])
    assert np.array_equal(split().val, split().val)
    other = split(seed=1)
    assert not np.array_equal(other.train[1_600], split().train[1_600])
    assert set(other.val) != set(split().val)


def test_the_permutation_covers_every_block_once():
    s = nested_subsets(320, sizes=(240,), val_size=80, unit=16)
    assert sorted(np.r_[s.val, s.train[240]]) == list(range(0, 320, 16))


def test_validation_does_not_depend_on_the_training_sizes():
    assert np.array_equal(split(sizes=(16,)).val, split().val)


def test_too_large_sizes_are_named():
    assert DEFAULT_SIZES == (10_000, 100_000, 1_000_000, 6_000_000)
    with pytest.raises(ValueError, match=r"sizes\[3\]=6000000 frames needs 375000 blocks"):
        nested_subsets(2_000_000, val_size=16_000)
    with pytest.raises(ValueError, match="val_size=5000 frames needs 313 blocks"):
        nested_subsets(4_000, sizes=(16,), val_size=5_000)
    with pytest.raises(ValueError, match="unit must be an integer >= 1"):
        nested_subsets(100, sizes=(16,), unit=0)
    with pytest.raises(ValueError, match=r"sizes\[0\] must be an integer >= 1"):
        nested_subsets(100, sizes=(-5,))


def test_held_out_blocks_is_a_tenth_between_one_and_sixty_four():
    assert [held_out_blocks(n) for n in (1, 9, 10, 300, 640, 641, 4096)] == [1, 1, 1, 30, 64, 64, 64]


@pytest.mark.parametrize("n, unit", [(4096, 1), (4096, 16), (100, 8), (16896, 8), (7, 8)])
def test_trainable_frames_is_the_largest_size_that_fits(n, unit):
    available = trainable_frames(n, unit)
    n_blocks = n // unit
    val_size = held_out_blocks(n_blocks) * unit
    if available:
        assert len(nested_subsets(n, [available], val_size=val_size, unit=unit).frames(available)) == available
    with pytest.raises(ValueError, match="remain after validation|holds only"):
        nested_subsets(n, [available + 1], val_size=val_size, unit=unit)
