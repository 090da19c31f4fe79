"""The training loop, against a toy model that follows the model contract."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cortexscale.train import TensorDictDataset, TrainConfig, evaluate, param_groups, resolve_steps, train


@dataclass(frozen=True)
class ToyConfig:
    n_in: int = 8
    hidden: int = 16
    n_classes: int = 3
    dropout: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ToyConfig:
        return cls(**data)


class ToyModel(nn.Module):
    """A two-layer classifier with every kind of parameter the decay grouping must sort."""

    tokens_per_sample = 8

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.pos_embed = nn.Parameter(torch.zeros(1, config.n_in))
        self.norm = nn.LayerNorm(config.n_in)
        self.body = nn.Linear(config.n_in, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, config.n_classes)

    def features(self, x):
        return self.drop(F.gelu(self.body(self.norm(x + self.pos_embed))))

    def loss(self, batch):
        logits = self.head(self.features(batch["x"]))
        loss = F.cross_entropy(logits.float(), batch["label"])
        return loss, {"acc": (logits.argmax(-1) == batch["label"]).float().mean().item()}

    def flops_per_sample(self) -> float:
        return 6.0 * sum(p.numel() for p in self.parameters())

    def reset_head(self, n_classes: int) -> None:
        self.config = dataclasses.replace(self.config, n_classes=n_classes)
        self.head = nn.Linear(self.config.hidden, n_classes)


class TiedToyModel(ToyModel):
    """The toy with its head weight tied to an embedding table."""

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.embed = nn.Embedding(config.n_classes, config.hidden)
        self.head.weight = self.embed.weight


def toy_data(n=64, n_in=8, n_classes=3, seed=0):
    """Labels are the argmax of a fixed random linear map: learnable by the toy model."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=gen)
    w = torch.randn(n_in, n_classes, generator=torch.Generator().manual_seed(1234))
    return TensorDictDataset({"x": x, "label": (x @ w).argmax(-1)})


def toy_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return ToyModel(ToyConfig(**kwargs))


def read_metrics(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def quick(**kwargs):
    base = dict(lr=1e-2, batch_size=8, steps=10, device="cpu", weight_decay=0.0)
    return TrainConfig(**{**base, **kwargs})


def test_loss_falls_on_a_short_run(tmp_path):
    result = train(toy_model(), toy_data(), quick(steps=80, warmup_steps=5), tmp_path, progress=False)
    losses = [r["loss"] for r in read_metrics(result.metrics_path)]
    assert len(losses) == 80
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
    assert np.mean(losses[-10:]) < math.log(3)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_precisions_give_finite_losses(tmp_path, precision, device):
    result = train(toy_model(), toy_data(), quick(precision=precision, steps=6, device=device), tmp_path,
                   progress=False)
    records = read_metrics(result.metrics_path)
    assert all(math.isfinite(r["loss"]) for r in records)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert ("loss_scale" in records[-1]) == (precision == "fp16")


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16),
                                              ("fp32", torch.float32)])
def test_autocast_really_runs_in_the_named_precision(tmp_path, device, precision, dtype):
    seen = []

    class Probe(ToyModel):
        def loss(self, batch):
            seen.append(self.body(batch["x"]).dtype)
            return super().loss(batch)

    torch.manual_seed(0)
    train(Probe(ToyConfig()), toy_data(), quick(precision=precision, steps=1, device=device), tmp_path, progress=False)
    assert seen == [dtype]


def test_the_constant_schedule_reaches_the_optimiser(tmp_path):
    cfg = quick(steps=10, warmup_steps=2, lr=0.5, schedule="constant")
    result = train(toy_model(), toy_data(), cfg, tmp_path, progress=False)
    lrs = [r["lr"] for r in read_metrics(result.metrics_path) if "lr" in r]
    assert lrs == pytest.approx([0.25] + [0.5] * 9)


def test_warmup_cosine_lr_matches_closed_form(tmp_path):
    cfg = quick(steps=12, warmup_steps=4, min_lr_ratio=0.1, lr=0.5)
    result = train(toy_model(), toy_data(), cfg, tmp_path, progress=False)
    lrs = {r["step"]: r["lr"] for r in read_metrics(result.metrics_path)}
    for step in (1, 2, 4, 5, 8, 12):
        s = step - 1
        if s < 4:
            expected = 0.5 * (s + 1) / 4
        else:
            expected = 0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 8)))
        assert lrs[step] == pytest.approx(expected, rel=1e-12)


def _grads_after_one_step(model, cfg, tmp_path):
    grads = {}

    def grab(info):
        grads.update({n: p.grad.clone() for n, p in info["model"].named_parameters()})

    train(model, toy_data(), cfg, tmp_path, progress=False, callback=grab)
    return grads


def test_grad_accumulation_equals_one_big_batch(tmp_path):
    model = toy_model(dropout=0.0)
    small = _grads_after_one_step(copy.deepcopy(model), quick(batch_size=4, grad_accum=3, steps=1,
                                                              grad_clip=0), tmp_path / "a")
    big = _grads_after_one_step(copy.deepcopy(model), quick(batch_size=12, steps=1, grad_clip=0), tmp_path / "b")
    assert set(small) == set(big)
    for name in big:
        assert big[name].abs().max() > 0 or name == "pos_embed"
        torch.testing.assert_close(small[name], big[name], atol=1e-6, rtol=0)


def test_gradients_are_clipped_to_one(tmp_path):
    norms = []
    cfg = quick(steps=3, lr=1e-3, grad_clip=1.0)

    def grab(info):
        norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in info["model"].parameters()])))

    class Steep(ToyModel):
        def loss(self, batch):
            loss, logs = super().loss(batch)
            return 1000 * loss, logs

    torch.manual_seed(0)
    train(Steep(ToyConfig()), toy_data(), cfg, tmp_path, progress=False, callback=grab)
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert all(r["grad_norm"] > 1.0 for r in records)
    assert all(float(n) == pytest.approx(1.0, rel=1e-4) for n in norms)


def test_epoch_and_flop_budgets_convert_to_steps(tmp_path):
    data = toy_data(n=40)
    cfg = quick(epochs=2.5, steps=None, batch_size=4, grad_accum=2)
    assert resolve_steps(cfg, n_samples=40) == math.floor(2.5 * 40 / 8)
    result = train(toy_model(), data, cfg, tmp_path, progress=False)
    last = read_metrics(result.metrics_path)[-1]
    assert result.steps == last["step"] == 12
    assert last["samples"] == 96 and last["epoch"] == pytest.approx(96 / 40)

    fps = ToyModel(ToyConfig()).flops_per_sample()
    flop_cfg = quick(flops=fps * 8 * 7.5, steps=None, batch_size=4, grad_accum=2)
    assert resolve_steps(flop_cfg, flops_per_sample=fps) == 7
    assert resolve_steps(quick(epochs=0.3, steps=None, batch_size=10), n_samples=100) == 3


def test_too_small_budget_names_field_and_step_cost(tmp_path):
    data = toy_data(n=40)
    with pytest.raises(ValueError, match=r"epochs=0\.1.*one optimizer step of 8 samples"):
        train(toy_model(), data, quick(epochs=0.1, steps=None, batch_size=4, grad_accum=2), tmp_path)
    fps = ToyModel(ToyConfig()).flops_per_sample()
    with pytest.raises(ValueError, match=rf"flops=.*costs {fps * 8:g} FLOPs"):
        train(toy_model(), data, quick(flops=fps, steps=None, batch_size=4, grad_accum=2), tmp_path)
    with pytest.raises(ValueError, match="steps must be a positive"):
        quick(steps=0)
    with pytest.raises(ValueError, match="exactly one of steps, epochs, flops"):
        quick(epochs=1.0)


def test_config_round_trip_and_bad_fields():
    cfg = quick(precision="bf16", betas=(0.9, 0.95))
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="precision"):
        quick(precision="fp8")
    with pytest.raises(ValueError, match="batch_size"):
        quick(batch_size=0)
    with pytest.raises(ValueError, match="unknown TrainConfig fields: \\['nope'\\]"):
        TrainConfig.from_dict({**cfg.to_dict(), "nope": 1})


def test_precision_takes_every_spelling_and_stores_the_canonical_name(tmp_path):
    for spelling in ("bf16", "bfloat16", " BFloat16 ", torch.bfloat16):
        assert quick(precision=spelling).precision == "bf16"
    assert quick(precision=torch.float16).precision == quick(precision="half").precision == "fp16"
    assert quick(precision=np.float32).precision == quick(precision="float").precision == "fp32"
    with pytest.raises(ValueError, match=r"TrainConfig\.precision must be one of \['fp32', 'fp16', 'bf16'\].*"
                                         r"got torch\.float64"):
        quick(precision=torch.float64)
    result = train(toy_model(), toy_data(), quick(steps=1, precision=torch.bfloat16), tmp_path, progress=False)
    saved = json.loads((result.checkpoint / "config.json").read_text())["train_config"]
    assert saved["precision"] == "bf16" and TrainConfig.from_dict(saved) == quick(steps=1, precision="bfloat16")


def test_device_defaults_to_auto_and_is_stored_as_a_string():
    from cortexscale.runtime import resolve_device

    assert TrainConfig(steps=1).device == "auto"
    assert quick(device=torch.device("cpu")).device == quick(device="CPU").device == "cpu"
    assert quick(device=None).device == "auto" and quick(device="cuda:1").device == "cuda:1"
    with pytest.raises(ValueError, match=r"TrainConfig\.device must be 'auto', 'cpu', .* got 'gpu'"):
        quick(device="gpu")
    model = toy_model()
    val = evaluate(model, toy_data(n=8), batch_size=4, precision="bfloat16")
    assert next(model.parameters()).device == resolve_device("auto") and math.isfinite(val["val_loss"])
    with pytest.raises(ValueError, match=r"evaluate precision must be one of \['fp32', 'fp16', 'bf16'\]"):
        evaluate(model, toy_data(n=8), batch_size=4, precision="fp64")


def noisy_augment(batch):
    """Draws from the torch and numpy global RNGs, so resume must restore both."""
    noise = 0.1 * torch.randn_like(batch["x"]) * (1 + float(np.random.rand()))
    return {**batch, "x": batch["x"] + noise}


class Interrupt(Exception):
    pass


def full_and_resumed(model, data, cfg, tmp_path, stop_at, **kwargs):
    """Train uninterrupted, and interrupted after ``stop_at`` steps then resumed; returns both results."""
    full = train(copy.deepcopy(model), data, cfg, tmp_path / "full", progress=False, **kwargs)

    def stop(info):
        if info["step"] == stop_at:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(copy.deepcopy(model), data, cfg, tmp_path / "cut", progress=False, callback=stop, **kwargs)
    with open(tmp_path / "cut" / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 99, "loss": 1.0}\n{"step": 6, "lo')
    resumed = train(copy.deepcopy(model), data, cfg, tmp_path / "cut", progress=False, **kwargs)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    return full, resumed


def test_resume_is_bit_identical(tmp_path):
    cfg = quick(steps=9, warmup_steps=2, ckpt_every=3, eval_every=2, batch_size=6, grad_accum=2,
                weight_decay=0.1)
    full, resumed = full_and_resumed(toy_model(dropout=0.3), toy_data(n=40), cfg, tmp_path, stop_at=5,
                                     val_data=toy_data(n=16, seed=5), augment=noisy_augment)
    assert resumed.resumed_from == 3
    cut, ref = read_metrics(resumed.metrics_path), read_metrics(full.metrics_path)
    assert [r["step"] for r in cut] == list(range(1, 10))
    for key in ("loss", "lr", "samples", "flops", "val_loss"):
        assert [r.get(key) for r in cut] == [r.get(key) for r in ref], key


def test_resume_is_bit_identical_for_video_gpt_with_attention_dropout(tmp_path):
    from cortexscale.models import VideoGPT, VideoGPTConfig

    torch.manual_seed(0)
    gpt = VideoGPT(VideoGPTConfig(vocab_size=16, grid=(2, 2, 2), hidden=16, layers=2, heads=2, dropout=0.2,
                                  attn_dropout=0.3))
    data = TensorDictDataset({"tokens": torch.randint(0, 16, (40, 2, 2, 2))})
    full, resumed = full_and_resumed(gpt, data, quick(steps=6, ckpt_every=2, batch_size=4), tmp_path, stop_at=3)
    assert resumed.resumed_from == 2
    losses = [[r["loss"] for r in read_metrics(result.metrics_path)] for result in (full, resumed)]
    assert losses[0] == losses[1]
    assert read_metrics(full.metrics_path)[-1]["tokens"] == 6 * 4 * 8


def test_rerun_of_a_finished_run_changes_nothing(tmp_path):
    first = train(toy_model(), toy_data(), quick(steps=3), tmp_path, progress=False)
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    again = train(toy_model(seed=9), toy_data(), quick(steps=3), tmp_path, progress=False)
    assert again.resumed_from == 3 and again.steps == 3
    assert all(torch.equal(weights[k], v) for k, v in again.model.state_dict().items())
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 3


def test_incomplete_or_corrupt_checkpoints_are_skipped(tmp_path):
    cfg = quick(steps=6, ckpt_every=2, keep_last=0)

    def stop_at_4(info):
        if info["step"] == 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(toy_model(), toy_data(), cfg, tmp_path, progress=False, callback=stop_at_4)
    ckpts = tmp_path / "checkpoints"
    (ckpts / ".step_00000006.x1.tmp").mkdir()
    (ckpts / "step_00000004" / "train_state.pt").unlink()
    (ckpts / "step_00000002" / "train_state.pt").write_bytes(b"truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(toy_model(), toy_data(), cfg, tmp_path, progress=False)
    messages = " ".join(str(w.message) for w in caught)
    assert "incomplete checkpoint" in messages and "step_00000004" in messages
    assert "unreadable checkpoint" in messages and "step_00000002" in messages
    assert result.resumed_from == 0 and result.steps == 6
    assert not (ckpts / ".step_00000006.x1.tmp").exists()
    assert [r["step"] for r in read_metrics(result.metrics_path)] == list(range(1, 7))


def test_fallback_to_previous_good_checkpoint(tmp_path):
    cfg = quick(steps=6, ckpt_every=2, keep_last=0)

    def stop_at_4(info):
        if info["step"] == 4:
            raise Interrupt

    model = toy_model()
    full = train(copy.deepcopy(model), toy_data(), cfg, tmp_path / "full", progress=False)
    with pytest.raises(Interrupt):
        train(copy.deepcopy(model), toy_data(), cfg, tmp_path / "cut", progress=False, callback=stop_at_4)
    (tmp_path / "cut" / "checkpoints" / "step_00000004" / "train_state.pt").unlink()
    with pytest.warns(UserWarning, match="incomplete checkpoint"):
        resumed = train(copy.deepcopy(model), toy_data(), cfg, tmp_path / "cut", progress=False)
    assert resumed.resumed_from == 2
    assert all(torch.equal(a, b) for a, b in zip(full.model.parameters(), resumed.model.parameters()))


def test_metrics_fields_and_monotone_steps(tmp_path):
    cfg = quick(steps=6, log_every=2, eval_every=3, batch_size=4, grad_accum=2)
    model = toy_model()
    fps = model.flops_per_sample()
    result = train(model, toy_data(), cfg, tmp_path, val_data=toy_data(n=10, seed=3), progress=False)
    records = read_metrics(result.metrics_path)
    assert [r["step"] for r in records] == [2, 3, 4, 6]
    for r in records:
        if r["step"] % 2 == 0:
            for key in ("epoch", "loss", "lr", "samples", "tokens", "flops", "wall", "samples_per_s",
                        "tokens_per_s", "flops_per_s", "grad_norm", "acc"):
                assert key in r, key
            assert r["samples"] == 8 * r["step"]
            assert r["tokens"] == 8 * 8 * r["step"]
            assert r["flops"] == pytest.approx(fps * 8 * r["step"])
            assert r["flops_per_s"] == pytest.approx(r["samples_per_s"] * fps)
    walls = [r["wall"] for r in records if "wall" in r]
    assert walls == sorted(walls)
    assert {r["step"] for r in records if "val_loss" in r} == {3, 6}
    assert result.best_val["val_loss"] == min(r["val_loss"] for r in records if "val_loss" in r)


def test_weight_decay_groups(tmp_path):
    model = TiedToyModel(ToyConfig())
    groups = {g["weight_decay"]: set(g["names"]) for g in param_groups(model, 0.05)}
    assert groups[0.05] == {"body.weight"}
    assert groups[0.0] == {"pos_embed", "norm.weight", "norm.bias", "body.bias", "head.bias", "head.weight"}

    seen = []
    train(toy_model(), toy_data(), quick(steps=1, weight_decay=0.05), tmp_path, progress=False,
          callback=lambda info: seen.extend((g["weight_decay"], g["names"]) for g in info["optimizer"].param_groups))
    assert dict((wd, set(names)) for wd, names in seen) == {0.05: {"body.weight", "head.weight"},
                                                              0.0: {"pos_embed", "norm.weight", "norm.bias",
                                                                    "body.bias", "head.bias"}}


def test_bad_training_data_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"train_data\[0\] must be a dict of tensors"):
        train(toy_model(), [torch.zeros(3)], quick(), tmp_path)
    with pytest.raises(ValueError, match="val_data is empty"):
        train(toy_model(), toy_data(), quick(), tmp_path, val_data=[])


def test_compile_traces_the_loss_and_matches_eager(tmp_path):
    import torch._dynamo

    graphs = []

    @torch._dynamo.register_backend(name="cortexscale_probe")
    def probe(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    eager = train(toy_model(), toy_data(), quick(steps=3), tmp_path / "eager", progress=False)
    compiled = train(toy_model(), toy_data(), quick(steps=3, compile="cortexscale_probe"), tmp_path / "compiled",
                     progress=False)
    assert graphs
    np.testing.assert_allclose([r["loss"] for r in read_metrics(compiled.metrics_path)],
                               [r["loss"] for r in read_metrics(eager.metrics_path)], rtol=1e-5)


def test_resuming_with_another_model_config_is_refused(tmp_path):
    train(toy_model(), toy_data(), quick(steps=2), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"step_00000002/config\.json: .*differs .* in \['dropout'\]"):
        train(toy_model(dropout=0.1), toy_data(), quick(steps=4), tmp_path, progress=False)


def test_checkpoints_are_pruned_to_keep_last(tmp_path):
    result = train(toy_model(), toy_data(), quick(steps=7, ckpt_every=2, keep_last=2), tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000006", "step_00000007"]
    assert result.checkpoint.name == "step_00000007"
    lines = (result.checkpoint / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 8))


def test_keep_steps_are_checkpointed_off_the_schedule_and_never_pruned(tmp_path):
    result = train(toy_model(), toy_data(), quick(steps=7, ckpt_every=2, keep_last=1, keep_steps=(3, 4)), tmp_path,
                   progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000003", "step_00000004", "step_00000007"]
    assert json.loads((tmp_path / "checkpoints" / "step_00000003" / "summary.json").read_text())["step"] == 3
    assert result.checkpoint.name == "step_00000007"
    with pytest.raises(ValueError, match=r"keep_steps must be positive step numbers, got \[0, 2\]"):
        quick(steps=7, keep_steps=(2, 0))


def test_evaluate_is_the_sample_weighted_mean_loss():
    model, data = toy_model(dropout=0.5), toy_data(n=10)
    val = evaluate(model, data, batch_size=4)
    model.eval()
    with torch.no_grad():
        logits = model.head(model.features(data.tensors["x"]))
    assert val["val_loss"] == pytest.approx(F.cross_entropy(logits, data.tensors["label"]).item(), rel=1e-6)
    assert val["val_acc"] == pytest.approx((logits.argmax(-1) == data.tensors["label"]).float().mean().item())
    assert model.training is False


def test_evaluation_and_workers_do_not_change_training(tmp_path):
    model, data = toy_model(dropout=0.3), toy_data(n=30)
    runs = {
        "plain": dict(cfg=quick(steps=5, batch_size=4)),
        "eval": dict(cfg=quick(steps=5, batch_size=4, eval_every=1), val_data=toy_data(n=9, seed=2)),
        "workers": dict(cfg=quick(steps=5, batch_size=4, num_workers=1)),
    }
    losses = {}
    for name, kwargs in runs.items():
        result = train(copy.deepcopy(model), data, out_dir=tmp_path / name, progress=False, **kwargs)
        losses[name] = [r["loss"] for r in read_metrics(result.metrics_path)]
    assert losses["plain"] == losses["eval"] == losses["workers"]


def test_augment_runs_on_every_micro_batch_and_not_in_evaluation(tmp_path):
    calls, seen = [], []

    def zero_inputs(batch):
        calls.append(batch["x"].shape)
        return {**batch, "x": torch.zeros_like(batch["x"])}

    class Probe(ToyModel):
        def loss(self, batch):
            seen.append((self.training, batch["x"].abs().max().item()))
            return super().loss(batch)

    torch.manual_seed(0)
    train(Probe(ToyConfig()), toy_data(), quick(steps=3, grad_accum=2, batch_size=5, eval_every=1), tmp_path,
          val_data=toy_data(n=7), augment=zero_inputs, progress=False)
    assert calls == [torch.Size([5, 8])] * 6
    assert [peak for training, peak in seen if training] == [0.0] * 6
    assert len([peak for training, peak in seen if not training and peak > 0]) == 2 * 3


def test_tokens_are_counted_from_a_tokens_key(tmp_path):
    class Tokens(ToyModel):
        tokens_per_sample = None

        def loss(self, batch):
            return super().loss({"x": batch["tokens"].float(), "label": batch["label"]})

    data = TensorDictDataset({"tokens": torch.randint(0, 5, (20, 8)), "label": torch.randint(0, 3, (20,))})
    torch.manual_seed(0)
    result = train(Tokens(ToyConfig()), data, quick(steps=2, batch_size=3), tmp_path, progress=False)
    assert [r["tokens"] for r in read_metrics(result.metrics_path)] == [24, 48]
