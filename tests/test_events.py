import warnings

import numpy as np
import pandas as pd
import pytest

from cortexscale.data import (
    SILENCE_LABELS,
    check_events,
    data_root,
    event_rate,
    events_from_textgrid,
    frame_events,
    load_alice,
    read_events_tsv,
    shift_events,
)

ALICE_TEXTGRID = data_root() / "alice" / "alice_stim_shared" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"


def table(onsets, durations, values=None, **extra):
    values = list(range(len(onsets))) if values is None else values
    return pd.DataFrame({"onset": onsets, "duration": durations, "value": values, **extra})


def write_textgrid(path, tiers):
    """A long-layout TextGrid with interval tiers given as ``{name: [(xmin, xmax, text), ...]}``."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "xmin = 0", "xmax = 10",
             "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for number, (name, items) in enumerate(tiers.items(), 1):
        lines += [f"item [{number}]:", 'class = "IntervalTier"', f'name = "{name}"', "xmin = 0", "xmax = 10",
                  f"intervals: size = {len(items)}"]
        for i, (start, end, text) in enumerate(items, 1):
            lines += [f"intervals [{i}]:", f"xmin = {start}", f"xmax = {end}", f'text = "{text}"']
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def alice():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_alice()


def test_alice_words(alice):
    words = events_from_textgrid(ALICE_TEXTGRID)
    assert list(words.columns) == ["onset", "duration", "value"]
    assert len(words) == len(alice.words) == 2127
    assert isinstance(words.index, pd.RangeIndex)
    assert (np.diff(words["onset"]) >= 0).all()
    assert not {v.strip().casefold() for v in words["value"]} & SILENCE_LABELS
    shifted = shift_events(words, alice.first_scan_time)
    np.testing.assert_allclose(shifted["onset"], words["onset"] - 20.0)
    counts = event_rate(shifted["onset"].to_numpy(), alice.tr, 362)
    np.testing.assert_array_equal(counts, alice.word_counts)


def test_textgrid_tier_choice_and_silences(tmp_path):
    items = [(0, 1, "sp"), (1, 2, "Alice"), (2, 3, "#"), (3, 4, "SIL"), (4, 5, "{SL}"), (5, 6, ""), (6, 7, "ran")]
    phones = [(0, 5, "a"), (5, 10, "b")]
    path = write_textgrid(tmp_path / "a.TextGrid", {"phones": phones, "Words": items})
    words = events_from_textgrid(path)
    assert words["value"].tolist() == ["Alice", "ran"]
    np.testing.assert_allclose(words["onset"], [1.0, 6.0])
    np.testing.assert_allclose(words["duration"], [1.0, 1.0])
    assert events_from_textgrid(path, tier="phones")["value"].tolist() == ["a", "b"]


def test_textgrid_without_word_tier_names_file_and_tiers(tmp_path):
    path = write_textgrid(tmp_path / "b.TextGrid", {"phones": [(0, 1, "a")], "syllables": [(0, 1, "a")]})
    with pytest.raises(ValueError, match=r"b\.TextGrid has no word tier.*\['phones', 'syllables'\]"):
        events_from_textgrid(path)
    with pytest.raises(ValueError, match=r"no tier named 'word'.*\['phones', 'syllables'\]"):
        events_from_textgrid(path, tier="word")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.TextGrid"):
        events_from_textgrid(tmp_path / "nowhere.TextGrid")


def test_tsv_round_trip(tmp_path):
    events = table([0.5, 1.0, 2.25], [0.5, 0.0, 1.0], ["go", "NA", "stop"], response_time=[0.3, np.nan, 0.4])
    path = tmp_path / "sub-01_task-x_events.tsv"
    events.to_csv(path, sep="\t", index=False, na_rep="n/a")
    back = read_events_tsv(path)
    pd.testing.assert_frame_equal(back, events)  # "NA" is a word, only "n/a" is missing


@pytest.mark.parametrize("column", ["trial_type", "word", None])
def test_tsv_value_column(tmp_path, column):
    path = tmp_path / "events.tsv"
    header = "onset\tduration" + (f"\t{column}" if column else "")
    rows = ["0\t1" + ("\tcat" if column else ""), "2\t1" + ("\tdog" if column else "")]
    path.write_text("\n".join([header, *rows]) + "\n")
    values = read_events_tsv(path)["value"].tolist()
    assert values == (["cat", "dog"] if column else [0, 1])


def test_tsv_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_events_tsv(tmp_path / "missing.tsv")
    path = tmp_path / "bad.tsv"
    path.write_text("onset\ttrial_type\n0\ta\n")
    with pytest.raises(ValueError, match=r"bad\.tsv has no column\(s\) \['duration'\]; columns found"):
        read_events_tsv(path)
    path.write_text("onset\tduration\n0\t1\n1\tn/a\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: duration at row 1 is nan, not a finite number"):
        read_events_tsv(path)
    path.write_text("onset\tduration\n3\t1\n1\t1\n")
    with pytest.raises(ValueError, match=r"bad\.tsv: onsets must be sorted; row 1 \(onset 1\.0\)"):
        read_events_tsv(path)
    path.write_text("")
    with pytest.raises(ValueError, match=r"bad\.tsv could not be read"):
        read_events_tsv(path)


def test_check_events_cleans():
    events = table([0.0, 1.0, 1.0], [1, 2, 0], ["a", "b", "c"], extra=[1, 2, 3])
    events.index = [10, 11, 12]
    clean = check_events(events[["extra", "value", "duration", "onset"]])
    assert list(clean.columns) == ["onset", "duration", "value", "extra"]
    assert isinstance(clean.index, pd.RangeIndex) and clean["duration"].dtype == np.float64
    assert events.index.tolist() == [10, 11, 12]  # input untouched
    check_events(table([0.0, 1.0, 1.0], [1.0, 0.0, 0.5]), allow_overlap=False)  # touching is not overlap


def test_check_events_errors():
    with pytest.raises(ValueError, match="events must be a pandas DataFrame"):
        check_events([[0, 1, "a"]])
    missing = r"stim has no column\(s\) \['value'\]; columns found: \['onset', 'duration'\]"
    with pytest.raises(ValueError, match=missing):
        check_events(pd.DataFrame({"onset": [0.0], "duration": [1.0]}), name="stim")
    with pytest.raises(ValueError, match=r"onset at row 1 is inf, not a finite number"):
        check_events(table([0.0, np.inf], [1.0, 1.0]))
    with pytest.raises(ValueError, match=r"onset at row 0 is 'soon', not a finite number"):
        check_events(table(["soon"], [1.0]))
    with pytest.raises(ValueError, match=r"duration at row 1 is -0\.5; durations must be >= 0"):
        check_events(table([0.0, 1.0], [1.0, -0.5]))
    unsorted = table([0.0, 2.0, 1.0], [0.1, 0.1, 0.1])
    unsorted.index = ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"row 'c' \(onset 1\.0\) comes after row 'b' \(onset 2\.0\)"):
        check_events(unsorted)
    long_first = table([0.0, 1.0, 5.0], [6.0, 1.0, 1.0])
    check_events(long_first)
    with pytest.raises(ValueError, match=r"row 1 \(onset 1\.0\) overlaps row 0 \(0\.0-6\.0\)"):
        check_events(long_first, allow_overlap=False)


def test_frame_events():
    frames = frame_events(5, 25.0, offset=1.0)
    np.testing.assert_allclose(frames["onset"], 1.0 + np.arange(5) / 25.0)
    np.testing.assert_allclose(frames["duration"], 0.04)
    assert frames["value"].tolist() == [0, 1, 2, 3, 4]
    check_events(frames, allow_overlap=False)
    with pytest.raises(ValueError, match="n_frames must be a positive integer, got 0"):
        frame_events(0, 25.0)
    with pytest.raises(ValueError, match="fps must be positive"):
        frame_events(5, -1.0)


def test_shift_events():
    events = table([20.0, 21.5], [0.5, 0.5], ["a", "b"])
    shifted = shift_events(events, 20.0)
    np.testing.assert_allclose(shifted["onset"], [0.0, 1.5])
    np.testing.assert_allclose(events["onset"], [20.0, 21.5])
    with pytest.raises(ValueError, match="offset must be a finite number"):
        shift_events(events, np.nan)
