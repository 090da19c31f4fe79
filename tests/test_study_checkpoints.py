"""Training curves at no extra training cost: a trainable block's ``checkpoints`` become feature models of their
own, fitted like the trained model, whose results carry the step, the training data seen and the FLOPs spent
so far; the report draws score against training FLOPs per model size."""

import numpy as np
import pytest
import yaml

from cortexscale.errors import InputError
from cortexscale.study import parse_study, plan_study, read_results

GPT = {"family": "videogpt", "name": "gpt", "video": {"frames": 1536, "size": 32, "seed": 1},
       "tokenizer": {"config": {"frames": 8, "size": 32, "hidden": 16, "codebook_size": 64, "embedding_dim": 16,
                                "n_res_layers": 1, "temporal_downsample": 2, "spatial_downsample": 8},
                     "train": {"steps": 20, "lr": 0.003, "batch_size": 16}},
       "config": {"layers": 2, "heads": 2, "dropout": 0.0, "attn_dropout": 0.0},
       "train": {"steps": 12, "lr": 0.003, "batch_size": 8}, "axes": {"hidden": [8, 16]}, "checkpoints": [4, 8]}


def _study(tmp_path, **gpt) -> str:
    study = {"name": "curves", "datasets": [{"name": "sim", "loader": "simulated",
                                             "settings": {"subjects": 2, "parcels": 6, "train_runs": 2,
                                                          "test_runs": 1, "run_trs": 60,
                                                          "cache": str(tmp_path / "cache")}}],
             "models": [{**GPT, **gpt}], "encoding": {"delays": [1, 2], "alphas": [1.0, 100.0], "cv": 2}}
    return yaml.safe_dump(study, sort_keys=False)


def test_checkpoints_plan_one_feature_model_per_step_and_keep_their_checkpoints(tmp_path):
    plan = plan_study(parse_study(_study(tmp_path)))
    trains = plan.of_kind("train")
    assert [t.settings["train"]["keep_steps"] for t in trains] == [[4, 8], [4, 8]]
    features = {(t.settings["model"].get("checkpoint"), t.inputs["model"]) for t in plan.of_kind("features")}
    assert len(features) == 2 * 3                                   # two grid points x (trained, step 4, step 8)
    every = plan_study(parse_study(_study(tmp_path, checkpoints="all",
                                          train={**GPT["train"], "ckpt_every": 3})))
    assert {tuple(t.settings["train"]["keep_steps"]) for t in every.of_kind("train")} == {(3, 6, 9, 12)}


def test_a_block_without_checkpoints_plans_the_tasks_it_planned_before(tmp_path):
    plain = plan_study(parse_study(_study(tmp_path, checkpoints=None)))
    assert all("keep_steps" not in t.settings["train"] for t in plain.of_kind("train"))
    assert all("checkpoint" not in t.settings["model"] for t in plain.of_kind("features"))


@pytest.mark.parametrize("change, match", [
    ({"checkpoints": "all"}, r"checkpoints: all takes every train.ckpt_every-th of train.steps steps"),
    ({"checkpoints": [4, 20]}, r"grid point hidden=8: checkpoints \[20\] lie past its 12 training steps"),
    ({"checkpoints": [0]}, r"models.0.checkpoints.0: Input should be greater than 0"),
    ({"checkpoints": "some"}, r"checkpoints"),
])
def test_bad_checkpoints_are_refused_with_the_field(tmp_path, change, match):
    with pytest.raises(InputError, match=match):
        parse_study(_study(tmp_path, **change))


def test_checkpoints_through_cortexscale_run_fit_and_the_report(tmp_path):
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from cortexscale.report import write_report

    study = tmp_path / "curves.yaml"
    study.write_text(_study(tmp_path))
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    results = read_results(tmp_path / "out")
    models = results.groupby(["hidden", "step"], dropna=False)[["train_flops", "train_data"]].first().reset_index()
    assert len(models) == 6 and sorted(models["step"].dropna().unique()) == [4, 8]
    for hidden, part in models.groupby("hidden"):
        part = part.sort_values("train_flops")
        assert part["step"].tolist()[:2] == [4, 8] and np.isnan(part["step"].iloc[2])   # the trained model last
        flops = part["train_flops"].to_numpy()
        assert np.allclose(flops[:2] / flops[2], [4 / 12, 8 / 12], rtol=1e-6)
        data = part["train_data"].to_numpy()
        assert np.allclose(data[:2] / data[2], [4 / 12, 8 / 12], rtol=1e-6)
    fitted = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--x", "train_flops",
                                 "--n-boot", "10"])
    assert fitted.exit_code == 0 and "12 rows (6 points" in fitted.output, fitted.output
    page = write_report(tmp_path / "out", n_boot=10).read_text()
    curves = page[page.index("<h2>Training curves</h2>"):]
    assert "score against training FLOPs" in curves[:curves.index("<h2", 5)]
    rerun = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert rerun.exit_code == 0 and "all 38 tasks are done; nothing to run" in rerun.output, rerun.output


def test_a_checkpoint_past_an_epochs_budget_fails_its_features_task_and_says_why(tmp_path):
    """With an epochs budget the steps are not known when the study is planned; a checkpoint past the end of
    training fails where its features are extracted, naming the step and the steps trained."""
    from cortexscale.study import run_study

    spec = parse_study(_study(tmp_path, axes={"hidden": [8]}, checkpoints=[4, 400],
                              train={"epochs": 1, "lr": 0.003, "batch_size": 8}))
    run = run_study(spec, out=tmp_path / "out", progress=False)
    assert run.summary.failed, run.line()
    failures = [p.read_text() for p in (tmp_path / "out" / "tasks" / "features").glob("*.failed.json")]
    assert failures and all("the checkpoint at step 400 was not kept: the model trained" in f for f in failures)


def test_checkpoints_all_runs_every_ckpt_every_th_step(tmp_path):
    from cortexscale.study import run_study

    spec = parse_study(_study(tmp_path, axes={"hidden": [8]}, checkpoints="all",
                              train={**GPT["train"], "ckpt_every": 6}))
    run = run_study(spec, out=tmp_path / "out", progress=False)
    assert not run.summary.failed, run.line()
    results = read_results(tmp_path / "out")
    steps = results.groupby("step", dropna=False)["train_flops"].first()
    assert sorted(steps.index.dropna()) == [6, 12]
    assert steps.loc[6] == pytest.approx(steps.loc[12] / 2, rel=1e-6)
