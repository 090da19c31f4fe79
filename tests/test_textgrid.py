import re

import numpy as np
import pandas as pd
import pytest

from cortexscale.data import data_root, read_textgrid, textgrid_tiers

ALICE_TEXTGRID = data_root() / "alice" / "alice_stim_shared" / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"

# (class, name, xmin, xmax, items); items are (xmin, xmax, text) or (time, mark).
TIERS = [
    ("TextTier", "events", 0.0, 3.0, [(0.5, "beep"), (2.25, 'say "go"')]),
    ("IntervalTier", "word", 0.0, 3.0, [
        (0.0, 0.4, "sp"), (0.4, 0.9, "Alice"), (0.9, 1.2, "x = [1]"), (1.2, 1.5, "SIL"),
        (1.5, 2.0, 'a "quoted" word'), (2.0, 2.5, ""), (2.5, 3.0, "café"),
    ]),
]
KEPT = [(0.4, "Alice"), (0.9, "x = [1]"), (1.5, 'a "quoted" word'), (2.5, "café")]


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def long_format(tiers) -> str:
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0", "xmax = 3",
             "tiers? <exists> ", f"size = {len(tiers)}", "item []: "]
    for number, (kind, name, xmin, xmax, items) in enumerate(tiers, 1):
        lines += [f"    item [{number}]:", f"        class = {_quote(kind)} ", f"        name = {_quote(name)} ",
                  f"        xmin = {xmin} ", f"        xmax = {xmax} "]
        key = "intervals" if kind == "IntervalTier" else "points"
        lines.append(f"        {key}: size = {len(items)} ")
        for i, item in enumerate(items, 1):
            lines.append(f"        {key} [{i}]:")
            if kind == "IntervalTier":
                lines += [f"            xmin = {item[0]} ", f"            xmax = {item[1]} ",
                          f"            text = {_quote(item[2])} "]
            else:
                lines += [f"            number = {item[0]} ", f"            mark = {_quote(item[1])} "]
    return "\n".join(lines) + "\n"


def short_format(tiers) -> str:
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "0", "3", "<exists>", str(len(tiers))]
    for kind, name, xmin, xmax, items in tiers:
        lines += [_quote(kind), _quote(name), str(xmin), str(xmax), str(len(items))]
        for item in items:
            lines += [str(v) if not isinstance(v, str) else _quote(v) for v in item]
    return "\n".join(lines) + "\n"


def write(tmp_path, text, name="sample.TextGrid", encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


@pytest.fixture(scope="module")
def alice_words():
    return read_textgrid(ALICE_TEXTGRID)


def test_alice_word_count_and_first_word(alice_words):
    assert list(alice_words.columns) == ["onset", "duration", "value"]
    assert len(alice_words) == 2127  # the count the issue gives for Alice
    assert alice_words["value"].iloc[0] == "Alice"
    assert abs(alice_words["onset"].iloc[0] - 20.06) < 0.01
    assert (np.diff(alice_words["onset"]) > 0).all()
    assert (alice_words["duration"] > 0).all()
    assert not alice_words["value"].str.lower().isin(["sp", "sil", "", "<sil>"]).any()


def test_alice_matches_a_regex_reading_of_the_file(alice_words):
    text = ALICE_TEXTGRID.read_text()
    rows = re.findall(r"xmin = (\S+)\s+xmax = (\S+)\s+text = \"(.*)\"", text)
    assert len(rows) == int(re.search(r"intervals: size = (\d+)", text).group(1))
    every = read_textgrid(ALICE_TEXTGRID, drop=())
    assert len(every) == len(rows)
    np.testing.assert_array_equal(every["onset"], [float(r[0]) for r in rows])
    np.testing.assert_allclose(every["duration"], [float(r[1]) - float(r[0]) for r in rows])
    labels = [r[2].strip() for r in rows]  # three labels in the file end in a space, e.g. "and "
    assert list(alice_words["value"]) == [label for label in labels if label not in ("sp", "")]
    assert textgrid_tiers(ALICE_TEXTGRID) == ["word"]


@pytest.mark.parametrize("layout", [long_format, short_format])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_long_and_short_layouts(tmp_path, layout, encoding):
    path = write(tmp_path, layout(TIERS), encoding=encoding)
    words = read_textgrid(path)
    assert list(words["value"]) == [text for _, text in KEPT]
    np.testing.assert_allclose(words["onset"], [onset for onset, _ in KEPT])
    np.testing.assert_allclose(words["duration"], [0.5, 0.3, 0.5, 0.5])
    assert list(words.index) == list(range(len(KEPT)))
    assert textgrid_tiers(path) == ["events", "word"]


def test_drop_is_configurable_and_case_insensitive(tmp_path):
    path = write(tmp_path, short_format(TIERS))
    assert len(read_textgrid(path, drop=())) == 7
    kept = read_textgrid(path, drop=("SP", " alice "))
    assert list(kept["value"]) == ["x = [1]", "SIL", 'a "quoted" word', "", "café"]


def test_empty_tier_gives_an_empty_frame(tmp_path):
    path = write(tmp_path, long_format([("IntervalTier", "word", 0.0, 3.0, [])]))
    words = read_textgrid(path)
    assert words.empty and list(words.columns) == ["onset", "duration", "value"]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.TextGrid"))):
        read_textgrid(tmp_path / "nope.TextGrid")


def test_unknown_tier_lists_the_tiers(tmp_path):
    path = write(tmp_path, long_format(TIERS))
    with pytest.raises(ValueError, match=r"sample\.TextGrid has no tier named 'phone'.*\['events', 'word'\]"):
        read_textgrid(path, tier="phone")
    with pytest.raises(ValueError, match="'events' is a TextTier"):
        read_textgrid(path, tier="events")


def _with_word_items(items):
    return [("IntervalTier", "word", 0.0, 3.0, items)]


@pytest.mark.parametrize(
    "items, index, message",
    [
        ([(0.0, 1.0, "a"), (0.8, 1.5, "b")], 2, "overlaps the previous one"),
        ([(0.0, 1.0, "a"), (1.0, 2.0, "b"), (0.5, 0.7, "c")], 3, "starts before the previous one"),
        ([(0.0, 1.0, "a"), (1.0, 2.0, "b"), (2.0, 1.5, "c")], 3, "ends at 1.5 before it starts"),
    ],
)
def test_disordered_intervals_name_file_and_index(tmp_path, items, index, message):
    path = write(tmp_path, short_format(_with_word_items(items)))
    with pytest.raises(ValueError, match=rf"sample\.TextGrid: interval {index} of tier 'word' {message}"):
        read_textgrid(path)


def test_touching_intervals_are_fine(tmp_path):
    path = write(tmp_path, short_format(_with_word_items([(0.0, 1.0, "a"), (1.0, 1.0, "b"), (1.0, 2.0, "c")])))
    np.testing.assert_array_equal(read_textgrid(path)["duration"], [1.0, 0.0, 1.0])


def test_truncated_and_foreign_files(tmp_path):
    text = long_format(TIERS)
    truncated = write(tmp_path, text[: text.index('"café"')], name="cut.TextGrid")
    with pytest.raises(ValueError, match=r"cut\.TextGrid: file ends while reading the text of interval 7"):
        read_textgrid(truncated)
    other = write(tmp_path, text.replace('"TextGrid"', '"PitchTier"', 1), name="pitch.TextGrid")
    with pytest.raises(ValueError, match=r"pitch\.TextGrid holds a Praat 'PitchTier' object"):
        read_textgrid(other)
    csv = tmp_path / "words.csv"
    pd.DataFrame({"onset": [1.0]}).to_csv(csv)
    with pytest.raises(ValueError, match=r"words\.csv"):
        read_textgrid(csv)
