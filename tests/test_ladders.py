"""Named ladders of pretrained models: the table against the architectures it names, the expansion of a
``ladder:`` block (offline), its errors, and a ladder of local models through ``cortexscale run``."""

import numpy as np
import pytest
import torch
import yaml

from cortexscale.errors import InputError
from cortexscale.models import count_parameters
from cortexscale.study import StudyFileError, parse_study, plan_study, read_results
from cortexscale.study.ladders import HALF_FROM, LADDERS, Ladder, Rung, ladder_rungs

RUNGS = [(name, rung) for name, ladder in LADDERS.items() for rung in ladder.rungs]


def _built(rung: Rung, layers: int):
    """The model cortexscale loads for ``rung`` (a causal LM with its head; a speech encoder; Whisper's encoder),
    on the meta device, with ``layers`` blocks."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    key = "encoder_layers" if "encoder_layers" in rung.config else "num_hidden_layers"
    config = AutoConfig.for_model(rung.model_type, **{**rung.config, key: layers})
    with torch.device("meta"):
        if rung.model_type == "whisper":
            return AutoModel.from_config(config).get_encoder()
        if rung.model_type in ("hubert", "wavlm"):
            return AutoModel.from_config(config)
        return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("ladder, rung", RUNGS, ids=[f"{n}-{r.size}" for n, r in RUNGS])
def test_each_rungs_counts_follow_from_its_architecture(ladder, rung):
    """Built at 1 and 2 blocks (blocks are alike, so the count is linear in them) and extended to the rung's
    depth, the architecture gives the table's counts exactly; its width and depth are the config's."""
    one, two = _built(rung, 1), _built(rung, 2)
    for non_embedding, expected in ((False, rung.params), (True, rung.params_non_embedding)):
        a, b = count_parameters(one, non_embedding), count_parameters(two, non_embedding)
        assert a + (rung.layers - 1) * (b - a) == expected
    config = one.config
    assert rung.width == getattr(config, "hidden_size", None) or getattr(config, "d_model")
    assert rung.source.split("/")[1].lower().startswith(ladder) or ladder == "qwen"


def test_every_ladder_runs_smallest_to_largest_with_distinct_sizes():
    for ladder in LADDERS.values():
        params = [rung.params for rung in ladder.rungs]
        assert params == sorted(params), ladder.name
        assert len(set(ladder.sizes)) == len(ladder.sizes)
        assert ladder.train_unit == ("hours" if ladder.speech else "tokens")
        assert {ladder.dtype(rung) for rung in ladder.rungs if rung.params < HALF_FROM} <= {"fp32"}


def test_the_published_sizes_are_the_table_s():
    """Totals the model cards publish: Pythia's (untied head), OPT-125M, LLaMA-7B."""
    pythia = {rung.size: rung.params for rung in LADDERS["pythia"].rungs}
    assert pythia["70m"] == 70_426_624 and pythia["1.4b"] == 1_414_647_808 and pythia["12b"] == 11_846_072_320
    assert ladder_rungs("opt", ["125m"])[1][0].params == 125_239_296
    assert ladder_rungs("llama", ["7b"])[1][0].params == 6_738_415_616


def test_sizes_choose_rungs_in_the_ladder_s_order():
    _, rungs = ladder_rungs("opt", ["30b", "125m"])
    assert [r.size for r in rungs] == ["125m", "30b"]
    with pytest.raises(ValueError, match=r"ladder 'opt' has no size '7b'; its sizes are \['125m', '350m'"):
        ladder_rungs("opt", ["7b"])
    with pytest.raises(ValueError, match=r"unknown ladder 'gpt5'; ladders are \['hubert', 'llama'"):
        ladder_rungs("gpt5")


# ---------------------------------------------------------------- a ladder block in a study file
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from study_fixtures import write_toy_dataset

    return str(write_toy_dataset(tmp_path_factory.mktemp("toy")))


def _study(toy, models, encoding=None) -> str:
    study = {"name": "ladder", "datasets": [{"name": "toy", "loader": "generic", "settings": {"path": toy}}],
             "models": models, "encoding": encoding or {"delays": [1, 2], "cv": 2}}
    return yaml.safe_dump(study, sort_keys=False)


def _models(study):
    from cortexscale.study.families import FAMILIES

    return FAMILIES["pretrained"].expand(study.models[0], study).models


def test_a_ladder_block_plans_one_model_per_rung_offline(toy):
    """No config is read: a hub id that cannot be reached here plans, from the table alone."""
    study = parse_study(_study(toy, [{"family": "pretrained", "name": "py", "ladder": "pythia",
                                      "sizes": ["70m", "1.4b"], "layers": "default"}]))
    models = {m.name: m for m in _models(study)}
    assert list(models) == ["py-70m", "py-1.4b"]
    assert models["py-70m"].labels == {"model": "py-70m", "family": "pretrained", "ladder": "pythia"}
    assert (models["py-70m"].n_layers, models["py-70m"].width) == (6, 512)
    features = {t.settings["model"]["source"]: t.settings for t in plan_study(study).of_kind("features")}
    small, big = features["EleutherAI/pythia-70m"], features["EleutherAI/pythia-1.4b"]
    assert (small["model"]["dtype"], big["model"]["dtype"]) == ("fp32", "bf16")
    assert small["model"]["params"] == 70_426_624 and small["model"]["params_non_embedding"] == 44_670_976
    assert small["model"]["train_tokens"] == 299_892_736_000
    assert (small["layers"], big["layers"]) == ([4], [18])   # three quarters up 6 and 24 blocks


def test_a_ladder_s_dtype_and_layers_apply_to_every_rung(toy):
    study = parse_study(_study(toy, [{"family": "pretrained", "name": "w", "ladder": "whisper",
                                      "sizes": ["tiny", "large"], "layers": "all", "dtype": "fp32"}]))
    assert study.models[0].model_names() == ["w-tiny", "w-large"]
    models = _models(study)
    assert {m.settings["kind"] for m in models} == {"audio"}
    assert {m.settings["dtype"] for m in models} == {"fp32"}
    assert {m.name: (m.n_layers, m.layers) for m in models} == {"w-tiny": (4, "all"), "w-large": (32, "all")}


@pytest.mark.parametrize("block, match", [
    ({"ladder": "gpt5"}, r"<study>:\d+: models.0.ladder: .*unknown ladder 'gpt5'; ladders are"),
    ({"ladder": "opt", "sizes": ["7b"]}, r"models.0: .*ladder 'opt' has no size '7b'"),
    ({"ladder": "opt", "sizes": ["125m", "125m"]}, r"sizes name \['125m'\] more than once"),
    ({"ladder": "opt", "source": "facebook/opt-125m"}, r"give a model's source or a ladder, one of the two"),
    ({}, r"give a model's source or a ladder, one of the two"),
    ({"ladder": "opt", "params": 1e8}, r"ladder 'opt' gives each rung's params; leave it out"),
    ({"ladder": "opt", "train_tokens": 1e9}, r"ladder 'opt' gives each rung's train_tokens; leave it out"),
    ({"source": "facebook/opt-125m", "sizes": ["125m"]}, r"sizes choose rungs of a ladder; this model has a source"),
    ({"ladder": "opt", "sizes": []}, r"models.0.sizes: List should have at least 1 item"),
    ({"ladder": "hubert", "kind": "words"}, r"model 'm' is a speech model \(hubert\): it takes kind audio"),
])
def test_bad_ladder_blocks_are_refused_with_line_and_field(toy, block, match):
    with pytest.raises(InputError, match=match):
        plan_study(parse_study(_study(toy, [{"family": "pretrained", "name": "m", **block}])))


def test_a_rung_s_name_is_the_study_s_and_may_not_clash(toy):
    clash = [{"family": "pretrained", "name": "opt", "ladder": "opt", "sizes": ["125m"]},
             {"family": "pretrained", "name": "opt-125m", "source": "facebook/opt-125m"}]
    with pytest.raises(StudyFileError, match=r"model names must be unique; \['opt-125m'\] appear more than once"):
        parse_study(_study(toy, clash))


def test_a_space_names_one_rung_and_not_the_ladder(toy):
    models = [{"family": "pretrained", "name": "opt", "ladder": "opt", "sizes": ["125m", "350m"]}]
    joint = {"name": "one", "delays": [1], "cv": 2, "spaces": [{"model": "opt-350m", "layer": 3}]}
    every = {"name": "all", "delays": [1], "cv": 2}
    fits = plan_study(parse_study(_study(toy, models, [every, joint]))).of_kind("fit")
    spaced = [t for t in fits if t.settings["encoding"].get("spaces")]
    assert spaced and {t.settings["spaces"][0]["name"] for t in spaced} == {"opt-350m"}
    whole = {**joint, "spaces": [{"model": "opt", "layer": 3}]}
    with pytest.raises(StudyFileError, match=r"names model 'opt', which the study does not have; its models are "
                                             r"\['opt-125m', 'opt-350m'\]"):
        parse_study(_study(toy, models, [whole]))


# ---------------------------------------------------------------- a ladder through cortexscale run
def test_a_ladder_of_local_models_runs_fits_and_reports(tmp_path, monkeypatch):
    """A ladder of two random GPT-2s saved as folders stands in for a hub ladder: the results carry the table's
    counts, training data and the ladder; ``cortexscale fit --ladder`` and the report group by it."""
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from cortexscale.report import write_report
    from study_fixtures import toy_study, write_tiny_lm

    rungs = tuple(Rung(f"l{k}", str(write_tiny_lm(tmp_path / f"lm{k}", k, seed=k, hidden=8 * k)), 1000 * k,
                       100 * k, 1e6, "gpt2", {"num_hidden_layers": k, "hidden_size": 8 * k}) for k in (1, 2, 3))
    monkeypatch.setitem(LADDERS, "tiny", Ladder("tiny", "test", "tokens", "bf16", False, rungs))
    models = [{"family": "pretrained", "name": "t", "ladder": "tiny", "context": [8, 16], "layers": "all"},
              {"family": "pretrained", "name": "solo", "source": rungs[0].source, "context": [8, 16], "layers": [1]}]
    study = toy_study(tmp_path, models=models, fmri={"unit": "runs", "sizes": ["all"]})
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    results = read_results(tmp_path / "out")
    facts = results.groupby("model")[["params", "params_non_embedding", "train_data"]].first()
    assert facts.loc[["t-l1", "t-l2", "t-l3"], "params"].tolist() == [1000, 2000, 3000]
    assert facts.loc[["t-l1", "t-l2", "t-l3"], "params_non_embedding"].tolist() == [100, 200, 300]
    assert np.allclose(facts.loc[["t-l1", "t-l3"], "train_data"], 1e6)
    assert facts.loc["solo", "params"] > 1000          # counted from the model itself
    ladder = results.groupby("model")["ladder"].first()
    assert ladder.loc["t-l2"] == "tiny" and ladder.isna().loc["solo"]
    assert sorted(results.loc[results["model"] == "t-l3", "layer"].unique()) == [0, 1, 2, 3]
    fitted = runner.invoke(app, ["fit", str(tmp_path / "out"), "--law", "loglinear", "--ladder", "tiny",
                                 "--n-boot", "10"])
    assert fitted.exit_code == 0 and "9 rows (3 points" in fitted.output, fitted.output
    page = write_report(tmp_path / "out").read_text()
    assert "tiny ladder" in page


# ---------------------------------------------------------------- hub revisions
def test_revisions_of_a_ladder_plan_offline_with_the_tokens_each_step_saw(toy):
    study = parse_study(_study(toy, [{"family": "pretrained", "name": "py", "ladder": "pythia",
                                      "sizes": ["70m", "160m"], "revision": ["step1000", "step143000"]}]))
    models = _models(study)
    assert [(m.name, m.labels["revision"]) for m in models] == [
        ("py-70m", "step1000"), ("py-70m", "step143000"), ("py-160m", "step1000"), ("py-160m", "step143000")]
    tokens = {(m.name, m.settings["revision"]): m.settings["train_tokens"] for m in models}
    assert tokens[("py-70m", "step1000")] == 1000 * 2_097_152
    assert tokens[("py-160m", "step143000")] == LADDERS["pythia"].rungs[1].train_data
    features = plan_study(study).of_kind("features")
    assert {t.settings["model"]["revision"] for t in features} == {"step1000", "step143000"}
    assert len({t.key for t in features}) == len(features) == 4 * 3        # 4 models x 3 stories


def test_a_block_without_a_revision_keeps_its_task_keys(toy):
    block = {"family": "pretrained", "name": "py", "ladder": "pythia", "sizes": ["70m"]}
    plain = plan_study(parse_study(_study(toy, [block]))).of_kind("features")
    assert all("revision" not in t.settings["model"] for t in plain)
    one = _models(parse_study(_study(toy, [{**block, "revision": "main"}])))
    assert [m.labels.get("revision") for m in one] == ["main"] and one[0].settings["train_tokens"] == _PILE_TOKENS


_PILE_TOKENS = 299_892_736_000


@pytest.mark.parametrize("revision, match", [
    ([], r"revision takes a hub revision \(branch, tag or commit\) or a non-empty list"),
    (["step1", "step1"], r"revision names \['step1'\] more than once"),
    (" ", r"revision takes a hub revision"),
])
def test_bad_revisions_are_refused(toy, revision, match):
    with pytest.raises(InputError, match=match):
        parse_study(_study(toy, [{"family": "pretrained", "name": "py", "ladder": "pythia", "revision": revision}]))


def test_revisions_of_a_local_model_run_and_label_the_results(tmp_path):
    """A local folder has one revision whatever is asked (the hub's revisions need network access): the
    study still runs one fit per revision, and the results tell them apart."""
    from typer.testing import CliRunner

    from cortexscale.cli import app
    from study_fixtures import toy_study, write_tiny_lm

    model = {"family": "pretrained", "name": "lm", "source": str(write_tiny_lm(tmp_path / "lm", 2)),
             "context": [8, 16], "layers": [2], "revision": ["a", "b"]}
    study = toy_study(tmp_path, models=[model], fmri={"unit": "runs", "sizes": ["all"]})
    ran = CliRunner().invoke(app, ["run", str(study), "--out", str(tmp_path / "out"), "--no-progress"])
    assert ran.exit_code == 0, ran.output
    results = read_results(tmp_path / "out")
    assert sorted(results["revision"].unique()) == ["a", "b"] and set(results["model"]) == {"lm"}
    per_revision = results.groupby("revision")["r"].apply(list)
    assert np.allclose(per_revision["a"], per_revision["b"], atol=1e-5)    # one local model: the same fits
