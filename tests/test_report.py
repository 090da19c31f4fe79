"""The report: a self-contained page with every figure drawn, checked in a real headless Chromium."""

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
import yaml

from cortexscale.report import model_points, write_report
from cortexscale.report import figures
from cortexscale.scaling import make_scaling_table
from cortexscale.study import summarise

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)",
                    pytrace=False)
    return path


def synthetic_study(folder, seed=0):
    """A study folder whose results follow a known joint law over 5 sizes x 3 data sizes x 3 fMRI sizes
    (γ = 0.5; E = 0.5 at the largest fMRI size), with a worse layer and an fp32/bf16 pair at every size."""
    base = make_scaling_table(params=(1e4, 3e4, 1e5, 3e5, 1e6), data=(1e3, 1e4, 1e5), fmri=(100, 200, 400),
                              subjects=4, targets=8, noise=0.02, E=0.4, A=3.0, alpha=0.3, B=4.0, beta=0.35, C=2.0,
                              gamma=0.5, seed=seed)
    hidden = {p: h for p, h in zip(sorted(base["params"].unique()), (16, 32, 64, 128, 256))}
    base = base.assign(hidden=base["params"].map(hidden), frames=base["train_data"].astype(int), precision="fp32")
    bf16 = base[base["train_data"] == base["train_data"].max()].assign(
        precision="bf16", r=lambda t: t["r"] - 0.003)
    rows = []
    for layer, shift in ((1, -0.05), (2, 0.0)):
        part = pd.concat([base, bf16]).assign(layer=layer)
        part["n_train_trs"] = part["n_train_trs"].astype(int)
        part["fmri_size"] = part["n_train_trs"].astype(str)
        part["r"] = part["r"] + shift
        rows.append(part)
    results = pd.concat(rows, ignore_index=True)
    results = results.assign(
        dataset="sim", evaluation="test-runs", family="videogpt", fmri_unit="trs", model="gpt",
        subject="s" + results["subject"].astype(str), target="parcel_" + results["target"].astype(str),
        params_non_embedding=results["params"] * 0.8, train_seconds=1.0, r2=results["r"] ** 2, alpha=100.0,
        ceiling=0.9, n_layers=2)
    results["normalised_r"] = results["r"] / results["ceiling"]
    folder.mkdir(parents=True, exist_ok=True)
    results.to_parquet(folder / "results.parquet", index=False)
    summarise(results).to_parquet(folder / "summary.parquet", index=False)
    (folder / "study.yaml").write_text(yaml.safe_dump({"name": "synthetic-study", "models": ["..."]}))
    (folder / "versions.json").write_text('{"cortexscale": "test"}')
    return folder


def render(page) -> tuple[str, bytes]:
    """The DOM after load and a screenshot (PNG bytes) of the page in headless Chromium."""
    dom = subprocess.run([chromium(), *CHROMIUM_FLAGS, "--virtual-time-budget=5000", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    shot = page.parent / "shot.png"
    subprocess.run([chromium(), *CHROMIUM_FLAGS, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120)
    return dom, shot.read_bytes()


class _Tables(HTMLParser):
    """Every <table> of a page as a DataFrame (header row, then text cells; numbers parsed where they are)."""

    def __init__(self):
        super().__init__()
        self.tables, self._rows, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "table" and self._rows:
            header, *body = self._rows
            frame = pd.DataFrame(body, columns=header)
            for column in frame.columns:
                numbers = pd.to_numeric(frame[column], errors="coerce")
                if numbers.notna().all() and column not in ("parameter", "exponent"):
                    frame[column] = numbers
            self.tables.append(frame)
            self._rows = None


def html_tables(html: str) -> list[pd.DataFrame]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def pixels(png: bytes) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(io.BytesIO(png), format="png")


def write_atlas(path, labels=8):
    """A 12^3 labels image at 12 mm in MNI space: label k fills the k-th block of 3 x 6 x 6 voxels."""
    import nibabel as nib

    data = np.zeros((12, 12, 12), np.int16)
    for k in range(1, labels + 1):
        x, y, z = (k - 1) % 4, (k - 1) // 4 % 2, 0
        data[3 * x:3 * x + 3, 6 * y:6 * y + 6, 3 + 6 * z:9 + 6 * z] = k
    affine = np.diag([12.0, 12.0, 12.0, 1.0])
    affine[:3, 3] = -66.0
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = synthetic_study(tmp_path_factory.mktemp("study") / "synthetic")
    return write_report(folder, n_boot=40, atlas=write_atlas(folder.parent / "atlas.nii.gz"))


def test_every_figure_loads_in_a_browser_and_is_not_blank(report):
    html = report.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) >= 8 and "could not be drawn" not in html and "best r per target on the brain" in html
    for data in images:
        image = pixels(base64.b64decode(data))
        assert image.shape[0] > 100 and image[..., :3].std() > 0.05
    dom, shot = render(report)
    loaded = re.search(r'<body data-figures="(\d+)" data-figures-loaded="(\d+)"', dom)
    assert loaded and int(loaded.group(1)) == int(loaded.group(2)) == len(images)
    assert "cortexscale study: synthetic-study" in dom and "http" not in re.sub(r'https?://[^"\s]+\.(org|io|com)[^"\s]*',
                                                                                 "", dom).split("<body")[0]
    assert pixels(shot)[..., :3].std() > 0.05


def test_the_report_recovers_the_law_and_the_frontier(report):
    html = report.read_text()
    for heading in ("Scaling with model size", "the compute-optimal frontier", "Extrapolation check",
                    "Effects of the sweep", "Training precision", "Layers, fMRI data and noise ceilings",
                    "The study"):
        assert heading in html
    tables = html_tables(html)
    joint = next(t for t in tables if list(t.columns[:2]) == ["parameter", "value"] and "beta" in set(t["parameter"]))
    alpha = joint.set_index("parameter").loc["alpha"]
    assert alpha["low"] <= 0.3 <= alpha["high"] and abs(alpha["value"] - 0.3) < 0.1
    exponents = next(t for t in tables if "exponent" in t.columns).set_index("exponent")
    assert abs(exponents.loc["a", "value"] - 0.35 / 0.65) < 0.12
    assert "extrapolates best" in html


def test_the_report_fits_fmri_data_as_a_third_axis_and_says_what_buys_more(report):
    html = report.read_text()
    assert "fMRI training data in the joint law: what buys more" in html
    tables = html_tables(html)
    law = next(t for t in tables if list(t.columns[:2]) == ["parameter", "value"] and "gamma" in set(t["parameter"]))
    gamma = law.set_index("parameter").loc["gamma"]
    assert gamma["low"] <= gamma["value"] <= gamma["high"] and abs(gamma["value"] - 0.5) < 0.15
    levers = next(t for t in tables if "lever" in t.columns)
    assert set(levers["lever"]) == {"model compute", "fMRI data", "model compute − fMRI data"}
    assert set(levers["factor"]) == {2, 10} and (levers["low"] <= levers["high"]).all()
    check = next(t for t in tables if "held_out" in t.columns and set(t["held_out"]) == {"fmri"})
    assert len(check) == 3


def test_a_failing_figure_shows_its_error_and_the_rest_is_written(tmp_path, monkeypatch):
    folder = synthetic_study(tmp_path / "study")

    def broken(*args, **kwargs):
        raise RuntimeError("planted failure")

    monkeypatch.setattr(figures, "layer_profiles", broken)
    html = write_report(folder, n_boot=10).read_text()
    assert html.count("This figure could not be drawn: RuntimeError: planted failure") == 1
    assert html.count("data:image/png;base64") >= 6


def test_a_study_without_results_still_gets_a_page(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    html = write_report(folder).read_text()
    assert "has no results.parquet: run the study first" in html and "<h1>cortexscale study: empty</h1>" in html


def test_target_volume_places_parcels_and_voxels(tmp_path):
    import nibabel as nib

    atlas = nib.load(write_atlas(tmp_path / "atlas.nii.gz", labels=3))
    labels = np.asarray(atlas.dataobj)
    values = pd.Series({"parcel_1": 0.5, "parcel_3": 0.25, "parcel_0": 9.0, "LATL": 9.0, "parcel_7": 9.0})
    volume = figures.target_volume(values, atlas)
    np.testing.assert_array_equal(volume[labels == 1], 0.5)
    np.testing.assert_array_equal(volume[labels == 3], 0.25)
    assert (volume[(labels != 1) & (labels != 3)] == 0).all()
    voxels = figures.target_volume(pd.Series({"voxel_1_2_3": 0.7, "voxel_11_0_0": 0.1, "voxel_12_0_0": 9.0}), atlas)
    assert voxels[1, 2, 3] == pytest.approx(0.7) and voxels[11, 0, 0] == pytest.approx(0.1)
    assert np.count_nonzero(voxels) == 2
    with pytest.raises(ValueError, match=r"none of the 2 targets \(first 'LATL'\) is a parcel_<label>"):
        figures.target_volume(pd.Series({"LATL": 0.3, "RATL": 0.2}), atlas)


def _law_tables(html: str) -> list[pd.DataFrame]:
    return [t for t in html_tables(html) if "parameter" in t.columns]


def test_an_axis_the_report_has_never_heard_of_is_kept_apart_and_compared(tmp_path):
    folder = synthetic_study(tmp_path / "study")
    laws = _law_tables(write_report(folder, n_boot=20).read_text())
    results = pd.read_parquet(folder / "results.parquet")
    dropped = results.assign(dropout=0.1, r=results["r"] - 0.02)
    results = pd.concat([results.assign(dropout=0.0), dropped], ignore_index=True)
    results["normalised_r"] = results["r"] / results["ceiling"]
    results.to_parquet(folder / "results.parquet", index=False)
    summarise(results).to_parquet(folder / "summary.parquet", index=False)
    assert figures.axis_columns(results) == ["hidden", "frames", "precision", "dropout"]
    html = write_report(folder, n_boot=20).read_text()
    assert "could not be drawn" not in html
    dropout_laws = _law_tables(html)   # the laws are fitted at the reference dropout (0.0), not averaged over it
    assert len(laws) == len(dropout_laws) >= 3
    for law, again in zip(laws, dropout_laws):
        pd.testing.assert_frame_equal(law, again)
    tables = html_tables(html)
    effects = next(t for t in tables if {"factor", "baseline"} <= set(t.columns)).set_index("factor")
    assert float(effects.loc["dropout", "baseline"]) == 0 and float(effects.loc["dropout", "level"]) == 0.1
    assert effects.loc["dropout", "effect"] == pytest.approx(-0.02, abs=1e-3)
    overview = tables[0]
    assert "dropout" in overview.columns and len(overview) == 2 * len(overview.drop_duplicates(
        [c for c in overview.columns if c not in ("dropout", "mean_r", "max_r", "mean_normalised_r")]))


def test_each_model_keeps_its_own_best_layer_chosen_at_the_largest_fmri_size():
    """Model a peaks at layer 2 and model b at layer 1 on the most fMRI data; with little data the order
    reverses, which must not change the choice. Per-target rows are kept only at the largest size."""
    rows = []
    for model, peak in (("a", 2), ("b", 1)):
        for n_train in (100, 400):
            for layer in (1, 2):
                good = (layer == peak) == (n_train == 400)
                for subject, target in [(s, t) for s in ("s1", "s2") for t in ("x", "y")]:
                    rows.append({"subject": subject, "target": target, "model": model, "hidden": 8, "layer": layer,
                                 "n_train_trs": n_train, "r": 0.4 if good else 0.2})
    results = pd.DataFrame(rows)
    summary = results.groupby(["subject", "model", "hidden", "layer", "n_train_trs"], as_index=False)["r"].mean()
    chosen = figures.best_layers(summary.rename(columns={"r": "mean_r"}))
    assert dict(zip(chosen["model"], chosen["layer"])) == {"a": 2, "b": 1}
    kept = figures.best_layer(summary.rename(columns={"r": "mean_r"}))
    assert len(kept) == 2 * 2 * 2 and set(kept["n_train_trs"]) == {100, 400}
    points = model_points(results)
    assert set(zip(points["model"], points["layer"])) == {("a", 2), ("b", 1)}
    assert (points["n_train_trs"] == 400).all() and len(points) == 2 * 4 and (points["r"] == 0.4).all()


def test_a_law_of_size_keeps_the_axes_that_set_the_size_and_holds_the_others():
    from cortexscale.report.build import reference

    rows = [{"model": "vit", "family": "vit", "subject": "s1", "patch": patch, "dropout": dropout, "seed": seed,
             "augreg": augreg, "params": 1000 * 32 // patch, "train_data": data, "r": 0.3}
            for patch in (8, 16, 32) for dropout in (0.0, 0.1) for seed in (0, 1)
            for augreg in ("light1", "none") for data in (512, 2048)]
    kept = reference(pd.DataFrame(rows), at_most_data=True)
    assert sorted(kept["patch"].unique()) == [8, 16, 32] and sorted(kept["seed"].unique()) == [0, 1]
    assert set(kept["dropout"]) == {0.0} and set(kept["augreg"]) == {"none"} and set(kept["train_data"]) == {2048}
    assert len(kept) == 3 * 2


def test_the_depth_and_regional_sections_draw_on_the_brain(report):
    html = report.read_text()
    depth = html[html.index("<h2>Depth of the best layer</h2>"):]
    depth = depth[:depth.index("<h2", 5)]
    assert "relative depth of the best layer against N" in depth and "trend g (per decade)" in depth
    regional = html[html.index("<h2>Size law by region</h2>"):]
    regional = regional[:regional.index("<h2", 5)]
    assert "gain per decade of N, per target" in regional and "gain per decade of N on the brain" in regional
    counts = re.search(r"(\d+) of (\d+) targets have a gain per decade whose interval excludes zero", regional)
    assert counts and int(counts.group(2)) == 8 and int(counts.group(1)) == 8   # every parcel gains with size


def test_the_summary_opens_the_page_and_names_the_fitted_gains(report):
    dom, _ = render(report)
    body = dom[dom.index("<body"):]
    assert body.index('id="summary"') < body.index("<nav") < body.index("<details")
    summary = body[body.index('id="summary"'):body.index("<nav")]
    gains = dict(re.findall(r"gpt, (model size|training data|fMRI training data): ([+-]\d\.\d{3}) \[", summary))
    assert set(gains) == {"model size", "training data", "fMRI training data"}
    law = next(t for t in html_tables(report.read_text())
               if list(t.columns[:2]) == ["parameter", "value"] and "slope" in set(t["parameter"]))
    assert float(gains["model size"]) == pytest.approx(law.set_index("parameter").loc["slope", "value"], abs=6e-4)
    assert "Best model: gpt hidden=256" in summary and "compute-optimal split: N_opt ∝ C^" in summary
    anchors = re.findall(r'<a href="#([^"]+)">', body[body.index("<nav"):body.index("</nav>")])
    assert len(anchors) >= 10 and all(f'<details open="" id="{a}">' in body for a in anchors)


def _pdf_parses(data: bytes) -> bool:
    """A PDF's header, end marker and cross-reference table where its trailer says it starts."""
    found = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data)
    return data.startswith(b"%PDF-1.") and found is not None and data[int(found.group(1)):].startswith(b"xref")


def test_every_figure_is_written_as_svg_and_pdf_and_every_table_as_csv(report):
    import xml.etree.ElementTree as ET

    html = report.read_text()
    figures_ = re.findall(r'<a href="(figures/[^"]+\.svg)">SVG</a> · <a href="(figures/[^"]+\.pdf)">PDF</a>', html)
    assert len(figures_) == html.count("data:image/png;base64") >= 8
    for svg, pdf in figures_:
        root = ET.parse(report.parent / svg).getroot()
        assert root.tag.endswith("svg") and len(list(root.iter())) > 50
        assert _pdf_parses((report.parent / pdf).read_bytes()), pdf
    tables = re.findall(r'<a href="(tables/[^"]+\.csv)">CSV</a>', html)
    assert len(tables) == len(html_tables(html)) >= 8
    for name, shown in zip(tables, html_tables(html)):
        table = pd.read_csv(report.parent / name)
        assert list(table.columns) == list(shown.columns) and len(table) == len(shown)
    on_disk = {p.relative_to(report.parent).as_posix() for p in report.parent.glob("*/*")}
    assert on_disk == {name for pair in figures_ for name in pair} | set(tables)


def _toy_report(tmp_path, **changes):
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from study_fixtures import toy_study

    study = toy_study(tmp_path, **changes)
    CliRunner().invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    return write_report(tmp_path / "out", n_boot=20).read_text()


def _section(html: str, title: str) -> str:
    part = html[html.index(f"<h2>{title}</h2>"):]
    return part[:part.index("</details>")]


def test_a_study_of_pretrained_models_says_why_trained_sections_are_missing_and_writes_its_methods(tmp_path):
    html = _toy_report(tmp_path)
    assert "No family of this study varies its models&#x27; training data" in _section(
        html, "Model size and training data together: the compute-optimal frontier")
    assert "Training curves" not in html and "could not be drawn" not in html
    methods = _section(html, "Methods, for a paper")
    assert "Data. We fitted encoding models to the toy dataset (loader generic; 3 subject(s)" in methods
    assert "ridge regression of each model&#x27;s layer alone" in methods and "delayed by 1 and 2 TRs" in methods
    assert "chosen from 3 values between 1 and 100 by 2-fold cross-validation" in methods
    assert re.search(r"Software\. Python 3\.\d+\.\d+, cortexscale [\w.+]+, numpy", methods)
    assert "Before you read on" in html and "the size laws are fitted to 2 model sizes" in html


def test_a_study_of_one_model_says_there_is_no_law_of_size(tmp_path):
    from study_fixtures import write_tiny_lm

    model = {"family": "pretrained", "name": "lm", "source": str(write_tiny_lm(tmp_path / "lm", 2)),
             "context": [8, 16], "layers": [1, 2]}
    html = _toy_report(tmp_path, models=[model])
    assert "pretrained models: one model size (N = " in _section(html, "Scaling with model size")
    assert "No family has two or more model sizes" in _section(html, "Size law by region")
    assert "Best model: lm (N = " in html


def test_a_study_whose_fits_all_failed_says_why_it_has_no_results(tmp_path):
    from study_fixtures import write_tiny_lm

    folder = write_tiny_lm(tmp_path / "lm", 1)
    models = [{"family": "pretrained", "name": "lm", "source": str(folder), "context": [8, 16], "layers": [1]}]
    (folder / "model.safetensors").write_bytes(b"not weights")     # read when features are extracted, not planned
    html = _toy_report(tmp_path, models=models)
    note = _section(html, "No results yet")
    assert "The study has no results table because tasks failed" in note and "--traceback shows each" in note
    assert "features" in note and "Error" in note


def test_the_grid_is_one_picture_and_the_iso_flop_curves_carry_the_measured_runs(report):
    html = report.read_text()
    assert "gpt: mean r over the grid of N × D</figcaption>" in html
    assert "gpt: iso-FLOP curves, the frontier and the measured runs</figcaption>" in html
    assert "gpt: r against training data D, per model size, with the joint law</figcaption>" in html
    assert ("<figcaption>ceiling-normalised r per target (r / ceiling), per model size (and training data where "
            "it varies)</figcaption>") in html
    fmri = html.count("<figcaption>gpt: score by amount of fMRI training data, per model size")
    assert fmri == 1 and "could not be drawn" not in html


def test_the_group_average_is_shown_apart_from_the_subjects(tmp_path):
    folder = synthetic_study(tmp_path / "study")
    results = pd.read_parquet(folder / "results.parquet")
    group = results[results["subject"] == "s0"].assign(subject="group", r=lambda t: t["r"] + 0.2)
    results = pd.concat([results, group], ignore_index=True)
    results.to_parquet(folder / "results.parquet", index=False)
    summarise(results).to_parquet(folder / "summary.parquet", index=False)
    html = write_report(folder, n_boot=20).read_text()
    assert "every law, mean and interval here is over the individual subjects" in html
    apart = html[html.index("<h2>The group average, apart</h2>"):]
    apart = apart[:apart.index("</details>")]
    assert "the group&#x27;s r against N" in apart and "<img" in apart
    overview = html_tables(html)[0]
    best = overview["mean_r"].max()
    alone = pd.read_parquet(tmp_path / "study" / "summary.parquet")
    individuals = alone[alone["subject"] != "group"]
    assert best < individuals["mean_r"].max() + 0.01            # the group's +0.2 is in no mean of the overview


def test_layer_profiles_average_seeds_and_colour_by_size_with_dashes_for_less_data():
    rows = [{"dataset": "sim", "subject": subject, "encoding": "ridge", "model": "gpt", "family": "videogpt",
             "hidden": hidden, "frames": frames, "seed": seed, "layer": layer, "n_layers": 4, "n_train_trs": 900,
             "params": params, "train_data": frames, "mean_r": 0.1 * np.log10(params) - 0.01 * (layer - 2) ** 2}
            for hidden, params in ((8, 1e4), (32, 1e5)) for frames in (1e3, 1e4) for seed in (0, 1)
            for subject in ("s1", "s2") for layer in range(5)]
    fig = figures.layer_profiles(pd.DataFrame(rows))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4                               # 2 sizes x 2 data, the seeds averaged
    np.testing.assert_allclose(lines[0].get_xdata(), [0, 0.25, 0.5, 0.75, 1.0])
    colours = {line.get_label(): line.get_color() for line in lines}
    styles = {line.get_label(): line.get_linestyle() for line in lines}
    assert colours["gpt N = 1e+04, D = 1e+03"] == colours["gpt N = 1e+04, D = 1e+04"]
    assert colours["gpt N = 1e+04, D = 1e+04"] != colours["gpt N = 1e+05, D = 1e+04"]
    assert styles["gpt N = 1e+05, D = 1e+04"] == "-" and styles["gpt N = 1e+05, D = 1e+03"] == "--"
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == len(set(legend)) == 4


def test_normalised_scores_get_a_box_per_size_and_training_data():
    rows = [{"dataset": "sim", "subject": subject, "encoding": "ridge", "model": "gpt", "family": "videogpt",
             "hidden": hidden, "frames": frames, "seed": seed, "layer": 1, "n_train_trs": 900, "params": params,
             "train_data": frames, "target": f"t{t}", "r": 0.5, "normalised_r": np.log10(params * frames) / 10}
            for hidden, params in ((8, 1e4), (32, 1e5)) for frames in (1e3, 1e4) for seed in (0, 1)
            for subject in ("s1", "s2") for t in range(3)]
    table = pd.DataFrame(rows)
    fig = figures.normalised_scores(table)
    labels = [text.get_text() for text in fig.axes[0].get_yticklabels()]
    assert labels == ["N = 1e+04, D = 1e+03 (2 models)", "N = 1e+04, D = 1e+04 (2 models)",
                      "N = 1e+05, D = 1e+03 (2 models)", "N = 1e+05, D = 1e+04 (2 models)"]
    faces = [patch.get_facecolor() for patch in fig.axes[0].patches]
    assert faces[0][:3] == faces[1][:3] != faces[2][:3]          # one colour per size
    assert faces[0][3] < faces[1][3] and faces[2][3] < faces[3][3]  # less training data paler
    alone = figures.normalised_scores(table[table["frames"] == 1e4])
    assert [t.get_text() for t in alone.axes[0].get_yticklabels()] == ["N = 1e+04 (2 models)",
                                                                       "N = 1e+05 (2 models)"]
