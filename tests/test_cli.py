"""The command line: every command's help has an example, errors are one line, exit codes mean something."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cortexscale.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_LOCKED, EXIT_UNEXPECTED, app
from cortexscale.study import StudyFolder
from study_fixtures import toy_study, write_tiny_lm

runner = CliRunner()


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    study = toy_study(root)
    result = runner.invoke(app, ["run", str(study), "--out", str(root / "out"), "--no-progress"])
    return study, root / "out", result


@pytest.mark.parametrize("command", ["run", "status", "results", "datasets"])
def test_every_command_has_help_with_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and "Example: cortexscale" in result.output


def test_run_then_status_then_results(ran):
    study, out, result = ran
    assert result.exit_code == 0, result.output
    assert "study toy-study: ran 28, reused 0, failed 0 tasks" in result.output
    status = runner.invoke(app, ["status", str(out)])
    assert status.exit_code == 0 and "fit       done   18  failed   0  to run    0" in status.output
    table = runner.invoke(app, ["results", str(out), "--columns", "model,layer,subject,fmri_size,mean_r"])
    assert table.exit_code == 0 and table.output.splitlines()[0].split() == ["model", "layer", "subject",
                                                                            "fmri_size", "mean_r"]
    assert len(table.output.splitlines()) == 1 + 18
    again = runner.invoke(app, ["run", str(study), "--out", str(out)])
    assert again.exit_code == 0 and "all 28 tasks are done; nothing to run" in again.output


def test_results_are_written_as_csv_or_parquet(ran, tmp_path):
    _, out, _ = ran
    assert runner.invoke(app, ["results", str(out), "--targets", "-o", str(tmp_path / "r.csv")]).exit_code == 0
    assert runner.invoke(app, ["results", str(out), "-o", str(tmp_path / "s.parquet")]).exit_code == 0
    assert len(pd.read_csv(tmp_path / "r.csv")) == 18 * 5 and len(pd.read_parquet(tmp_path / "s.parquet")) == 18
    bad = runner.invoke(app, ["results", str(out), "--columns", "nope"])
    assert bad.exit_code == EXIT_BAD_INPUT and "no column(s) ['nope']" in bad.output


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ndatasets: []\nmodels: []\n")
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.output.startswith("error: ") and "datasets: List should have at least 1 item" in result.output
    assert "Traceback" not in result.output
    debug = runner.invoke(app, ["--debug", "run", str(path)])
    assert debug.exit_code == EXIT_BAD_INPUT and "Traceback" in debug.output
    missing = runner.invoke(app, ["status", str(tmp_path)])
    assert missing.exit_code == EXIT_BAD_INPUT and "is not a study folder" in missing.output


def test_failed_tasks_exit_1_and_a_locked_folder_exits_3(ran, tmp_path):
    study, out, _ = ran
    data = yaml.safe_load(study.read_text())
    broken = tmp_path / "broken-lm"
    shutil.copytree(study.parent / "lm-small", broken)
    (broken / "model.safetensors").unlink()
    data["models"][0]["source"] = str(broken)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == EXIT_FAILED and "failed 3" in result.output
    status = runner.invoke(app, ["status", str(tmp_path / "out")])
    assert status.exit_code == EXIT_FAILED and status.output.count("failed: features lm-small") == 3
    with StudyFolder(out).lock():
        locked = runner.invoke(app, ["run", str(study), "--out", str(out)])
    assert locked.exit_code == EXIT_LOCKED and "being written by another run" in locked.output


def test_an_unreadable_model_is_bad_input_and_a_bug_is_one_line_with_exit_4(tmp_path, monkeypatch):
    import cortexscale.study

    path = tmp_path / "study.yaml"
    path.write_text("name: x\ndatasets: [{name: alice, loader: alice}]\n"
                    f"models: [{{family: pretrained, name: lm, source: {tmp_path}}}]\n")
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.output.startswith(f"error: {path}:3: models.0.source: model 'lm': cannot read the config of")

    def broken(*args, **kwargs):
        return {}["missing"]

    monkeypatch.setattr(cortexscale.study, "run_study", broken)
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == EXIT_UNEXPECTED and "Traceback" not in result.output
    assert result.output == "error: KeyError: 'missing' (unexpected; --debug shows the traceback)\n"
    debug = runner.invoke(app, ["--debug", "run", str(path)])
    assert debug.exit_code == EXIT_UNEXPECTED and "Traceback" in debug.output and "in broken" in debug.output

    def numpy_error(*args, **kwargs):   # a ValueError of the code, not of the user's input
        return np.ones(3) @ np.ones(4)

    monkeypatch.setattr(cortexscale.study, "run_study", numpy_error)
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == EXIT_UNEXPECTED and result.output.startswith("error: ValueError: matmul")


def test_python_dash_m_runs_the_same_command():
    result = subprocess.run([sys.executable, "-m", "cortexscale", "datasets"], capture_output=True, text=True)
    assert result.returncode == 0 and {"alice", "bids", "generic", "huth"} <= {
        line.split()[0] for line in result.stdout.splitlines()}


def test_datasets_prints_plain_text_with_each_loaders_settings_and_defaults():
    from cortexscale.data import DATASETS

    result = runner.invoke(app, ["datasets"])
    lines = result.output.splitlines()
    assert result.exit_code == 0 and "`" not in result.output and ":class:" not in result.output
    assert sorted(line.split()[0] for line in lines if not line.startswith(" ")) == sorted(DATASETS)
    listed = " ".join(result.output.split())
    assert "Alice as a Dataset:" in listed and "simulated dataset of the given SimulationSettings fields" in listed
    assert "settings: resolution='6mm', root=None" in listed and "settings: path (required)" in listed
    assert "root (required), task (required), space (required)" in listed
    assert "subjects=4, parcels=24, train_runs=6" in listed and "snr=(0.2, 1.0)" in listed


def test_ladders_prints_each_rung_and_names_an_unknown_ladder():
    from cortexscale.study.ladders import LADDERS

    result = runner.invoke(app, ["ladders"])
    heads = [line.split(":")[0] for line in result.output.splitlines() if not line.startswith(" ")]
    assert result.exit_code == 0 and heads == list(LADDERS)
    pythia = runner.invoke(app, ["ladders", "pythia"]).output.splitlines()
    assert pythia[0].startswith("pythia: Biderman et al. 2023") and len(pythia) == 2 + len(LADDERS["pythia"].rungs)
    assert pythia[2].split() == ["70m", "EleutherAI/pythia-70m", "7.04e+07", "4.47e+07", "6", "512", "3e+11", "fp32"]
    assert pythia[-1].split()[0] == "12b" and pythia[-1].split()[-1] == "bf16"
    unknown = runner.invoke(app, ["ladders", "gpt"])
    assert unknown.exit_code == 2 and "unknown ladder 'gpt'; ladders are ['hubert'" in unknown.output


@pytest.fixture(scope="module")
def fmri_sweep(tmp_path_factory):
    """Three tiny LMs of 1, 2 and 3 layers, each fitted at 20, 40 and all 80 training TRs."""
    root = tmp_path_factory.mktemp("fmri-sweep")
    models = [{"family": "pretrained", "name": f"lm{k}", "source": str(write_tiny_lm(root / f"lm{k}", k, seed=k)),
               "context": [8, 16], "layers": [k]} for k in (1, 2, 3)]
    study = toy_study(root, models=models, fmri={"unit": "trs", "sizes": [20, 40, "all"]})
    result = runner.invoke(app, ["run", str(study), "--out", str(root / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root / "out"


def test_fit_prints_a_joint_law_over_model_size_and_fmri_data_and_what_buys_more(fmri_sweep):
    result = runner.invoke(app, ["fit", str(fmri_sweep), "--law", "joint", "--axes", "params,fmri",
                                 "--n-boot", "30"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "joint law of 'r': 1 − ŝ = E + A·N^−α + C·M^−γ  [N = 'params', M = 'n_train_trs']"
    assert lines[1].startswith("27 rows (9 points × 'subject'); 30 bootstrap resamples")
    assert [line.split()[0] for line in lines[2:9]] == ["E", "A", "alpha", "C", "gamma", "gain_per_decade_params",
                                                        "gain_per_decade_fmri"]
    head = next(i for i, line in enumerate(lines) if line.startswith("what buys more"))
    assert "fmri = 80" in lines[head]
    levers = [line.split(maxsplit=1) for line in lines[head + 1:]]
    assert [(factor, lever.split("   ")[0].strip()) for factor, lever in levers] == [
        (f, name) for f in ("2x", "10x") for name in ("model size", "fMRI data", "model size − fMRI data")]


def test_report_open_opens_the_written_report_in_a_browser_where_one_is_present(fmri_sweep, tmp_path,
                                                                              monkeypatch):
    import webbrowser

    study, opened = tmp_path / "study", []
    shutil.copytree(fmri_sweep, study)
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    result = runner.invoke(app, ["report", str(study), "--n-boot", "10", "--open"])
    assert result.exit_code == 0, result.output
    assert opened == [(study / "report" / "index.html").resolve().as_uri()]
    monkeypatch.setattr(webbrowser, "open", lambda url: False)
    headless = runner.invoke(app, ["report", str(study), "--n-boot", "10", "--open"])
    assert headless.exit_code == 0 and "no browser found here" in headless.output
    assert runner.invoke(app, ["report", str(study), "--n-boot", "10"]).exit_code == 0 and len(opened) == 1


def test_fit_single_axis_and_bad_axes(fmri_sweep):
    loglinear = runner.invoke(app, ["fit", str(fmri_sweep), "--law", "loglinear", "--n-boot", "10"])
    assert loglinear.exit_code == 0 and loglinear.output.startswith("loglinear law of 'r': ŝ = intercept + slope·log10 N")
    assert "what buys more" not in loglinear.output
    power = runner.invoke(app, ["fit", str(fmri_sweep), "--law", "power"])  # 3 models, 3 parameters
    assert power.exit_code == EXIT_BAD_INPUT and "needs at least 4 distinct points of (params)" in power.output
    for axes in ("params", "params,volume", "params,params", "params,data,fmri,data"):
        bad = runner.invoke(app, ["fit", str(fmri_sweep), "--law", "joint", "--axes", axes])
        assert bad.exit_code == EXIT_BAD_INPUT and "--axes takes two or three of params, data, fmri" in bad.output
    untrained = runner.invoke(app, ["fit", str(fmri_sweep), "--law", "joint", "--n-boot", "0"])
    assert untrained.exit_code == EXIT_BAD_INPUT
    assert untrained.output.startswith(f"error: cannot fit the joint law to {fmri_sweep}: ")
