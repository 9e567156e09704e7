"""Fused sweeps (gwnlib.training.fused): N points trained as one vmapped model equal N separate
runs."""

import sys

import pytest
import torch

from gwnlib.experiments import resolve
from gwnlib.model.ops import quantize
from gwnlib.training import accel, fused, runs, train

COMPARED = ("loss", "rate_transmit", "d1", "d2", "aux", "best_val_loss", "real_rate_transmit")


def _points(dataset="synthetic", codec="shared", etas=(0.01, 0.3), betas=None, **settings):
    betas = betas or [1.0] * len(etas)
    return [
        resolve(dataset, "smoke", codec=codec, eta=eta, beta=beta, **settings)
        for eta, beta in zip(etas, betas, strict=True)
    ]


def _assert_same(fused_metrics, separate_metrics, rel=2e-6):
    for got, want in zip(fused_metrics, separate_metrics, strict=True):
        assert got["key"] == want["key"]
        assert got["epochs"] == want["epochs"]
        assert got["best_epoch"] == want["best_epoch"]
        for key in COMPARED:
            assert got[key] == pytest.approx(want[key], rel=rel, abs=1e-7), key


@pytest.mark.parametrize("codec", ["shared", "separated", "combined", "joint", "independent"])
def test_fused_points_equal_separate_runs(tmp_path, codec):
    configs = _points(codec=codec, etas=(0.01, 0.3, 0.05), betas=(1.0, 1.0, 2.0))
    together = fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    apart = [train.fit(c, root=tmp_path / "apart", device="cpu", progress=False) for c in configs]
    _assert_same(together, apart)
    for metrics in together:
        assert metrics["fused_points"] == 3


def test_fused_classification_with_eta_warmup(tmp_path):
    configs = _points("colored_mnist", etas=(1.0, 50.0), eta_warmup=2)
    together = fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    apart = [train.fit(c, root=tmp_path / "apart", device="cpu", progress=False) for c in configs]
    _assert_same(together, apart)
    for got, want in zip(together, apart, strict=True):
        assert got["acc1"] == want["acc1"] and got["acc2"] == want["acc2"]


def test_a_point_that_stops_early_leaves_the_others_unchanged(tmp_path, monkeypatch):
    """Point 1 stops after its first epoch and is dropped from the stack; the others go on to
    epoch 3 exactly as alone, and point 1 ends as a run limited to one epoch."""
    configs = _points(etas=(0.01, 0.3, 0.05), max_epochs=3, patience=3)
    stopping = configs[1].key
    original = fused.should_stop

    def should_stop(state, config):
        return (config.key == stopping and state["epoch"] >= 1) or original(state, config)

    monkeypatch.setattr(fused, "should_stop", should_stop)
    together = fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    assert [m["epochs"] for m in together] == [3, 1, 3]
    alone = [
        train.fit(c, root=tmp_path / "apart", device="cpu", progress=False)
        for c in (configs[0], resolve(**{**configs[1].to_dict(), "max_epochs": 1}), configs[2])
    ]
    for got, want in zip(together, alone, strict=True):
        for key in COMPARED:
            assert got[key] == pytest.approx(want[key], rel=2e-6, abs=1e-7), key


def test_an_interrupted_group_resumes_where_it_stopped(tmp_path, monkeypatch):
    configs = _points(etas=(0.01, 0.3), max_epochs=3, patience=3)
    real_export = fused.export
    calls = {"n": 0}

    def crash_in_epoch_2(folder, codec, config, state):
        if state["epoch"] == 2:
            calls["n"] += 1
            raise KeyboardInterrupt  # killed after the group's epoch-2 checkpoint
        real_export(folder, codec, config, state)

    monkeypatch.setattr(fused, "export", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    assert calls["n"] == 1
    groups = list((tmp_path / "fused" / "synthetic").glob("fused-*/last.pt"))
    assert len(groups) == 1
    monkeypatch.setattr(fused, "export", real_export)
    resumed = fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    assert not list((tmp_path / "fused" / "synthetic").glob("fused-*"))  # cleaned up
    apart = [train.fit(c, root=tmp_path / "apart", device="cpu", progress=False) for c in configs]
    _assert_same(resumed, apart)
    # Finished points are loaded, not retrained.
    again = fused.fit_fused(configs, root=tmp_path / "fused", device="cpu", progress=False)
    assert [m["date"] for m in again] == [m["date"] for m in resumed]


def test_a_group_killed_after_its_checkpoint_writes_the_best_weights_on_resume(
    tmp_path, monkeypatch
):
    """Killed after the group's epoch-2 checkpoint but before the points' best.pt, with epoch 2
    the best: the resumed group writes best.pt from the checkpoint, so the final metrics come
    from epoch 2's weights and not epoch 1's."""
    configs = _points(codec="joint", etas=(0.01, 0.3), max_epochs=3, patience=3)
    scripted = {1: 5.0, 2: 1.0, 3: 3.0}  # validation loss by epoch: epoch 2 is the best
    real_evaluate, real_export = fused.FusedGroup._evaluate, fused.export

    def evaluate(group, split):
        out = real_evaluate(group, split)
        if split == "val":
            epoch = group.states[group.active[0]]["epoch"] + 1
            out["loss"] = torch.full_like(out["loss"], scripted[epoch])
        return out

    def crash_in_epoch_2(folder, codec, config, state):
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        real_export(folder, codec, config, state)

    monkeypatch.setattr(fused.FusedGroup, "_evaluate", evaluate)
    monkeypatch.setattr(fused, "export", crash_in_epoch_2)
    root = tmp_path / "fused"
    with pytest.raises(KeyboardInterrupt):
        fused.fit_fused(configs, root=root, device="cpu", progress=False)
    assert torch.load(runs.run_dir(configs[0], root) / "best.pt")["epoch"] == 1  # behind
    monkeypatch.setattr(fused, "export", real_export)
    resumed = fused.fit_fused(configs, root=root, device="cpu", progress=False)
    for config, metrics in zip(configs, resumed, strict=True):
        best = torch.load(runs.run_dir(config, root) / "best.pt", weights_only=True)
        assert metrics["best_epoch"] == best["epoch"] == 2
        assert metrics["best_val_loss"] == best["val_loss"] == 1.0
        history = (runs.run_dir(config, root) / "history.csv").read_text().splitlines()
        assert len(history) == 1 + 3  # header and three epochs


def test_keep_slices_weights_and_adam_moments(tmp_path):
    configs = _points(etas=(0.01, 0.3, 0.05))
    folders = {c.key: runs.run_dir(c, tmp_path) for c in configs}
    group = fused.FusedGroup(configs, configs, folders, tmp_path, torch.device("cpu"), "fp32")
    group.progress, group.log_every = False, 25
    group._train_epoch(0)
    before = {name: p.detach().clone() for name, p in group.params.items()}
    moments = {
        name: group.optimizer.state[p]["exp_avg"].clone() for name, p in group.params.items()
    }
    group._keep([0, 2])
    assert group.active == [configs[0].key, configs[2].key]
    for name, p in group.params.items():
        assert p.is_leaf and p.requires_grad
        torch.testing.assert_close(p.detach(), before[name][[0, 2]], rtol=0, atol=0)
        torch.testing.assert_close(group.optimizer.state[p]["exp_avg"], moments[name][[0, 2]])
    assert group._hyper("eta").tolist() == pytest.approx([0.01, 0.05])


def test_groups_split_a_sweep_by_everything_but_eta_and_beta():
    configs = [
        *_points(etas=(0.01, 0.3)),
        *_points(codec="joint", etas=(0.01,)),
        *_points(etas=(0.1,), betas=(2.0,)),
    ]
    found = fused.groups(configs)
    assert [[c.codec for c in group] for group in found] == [["shared"] * 3, ["joint"]]


def test_bad_groups_are_refused(tmp_path):
    with pytest.raises(ValueError, match="only in eta, beta.*codec"):
        fused.fit_fused(_points() + _points(codec="joint"), root=tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        fused.fit_fused([], root=tmp_path)
    with pytest.raises(ValueError, match="same run twice"):
        fused.fit_fused(_points(etas=(0.1, 0.1)), root=tmp_path)
    with pytest.raises(ValueError, match="not 'cityscapes'"):
        fused.fit_fused([resolve("cityscapes", "smoke")], root=tmp_path)
    with pytest.raises(ValueError, match="amp must be one of"):
        fused.fit_fused(_points(), root=tmp_path, amp="fp8")


def test_quantize_and_lower_bound_batch_under_vmap():
    y = torch.tensor([[-1.5, -0.5, 0.4, 0.5, 2.6], [0.49, -0.51, 1.5, -2.5, 3.0]])
    torch.testing.assert_close(torch.func.vmap(quantize)(y), torch.stack([quantize(r) for r in y]))
    weights = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    for bound, bound_dim in ((torch.tensor([0.11]), None), (torch.tensor([[0.11], [0.11]]), 0)):
        x = torch.tensor([[0.05, 0.2], [0.3, 0.01]], requires_grad=True)
        out = torch.func.vmap(accel.lower_bound, in_dims=(0, bound_dim))(x, bound)
        torch.testing.assert_close(out.detach(), torch.tensor([[0.11, 0.2], [0.3, 0.11]]))
        (out * weights).sum().backward()
        # Below the bound the gradient passes only when it pushes x up (CompressAI's LowerBound).
        torch.testing.assert_close(x.grad, torch.tensor([[0.0, 1.0], [1.0, -1.0]]))


def test_the_lower_bound_operator_is_registered_consistently():
    """Schema, fake (shape) kernel, autograd and compile registrations agree with the op."""
    x, bound = torch.rand(4, 5), torch.tensor([0.3])
    for dtype in (torch.float32, torch.bfloat16):
        torch.library.opcheck(accel.lower_bound, (x.to(dtype).clone().requires_grad_(), bound))
        grad = torch.randn(4, 5).to(dtype)
        torch.library.opcheck(accel._lower_bound_backward, (grad, x, bound))


@pytest.mark.slow
def test_a_compiled_fused_group_equals_the_eager_one(tmp_path, monkeypatch):
    """``compile=True`` (torch.compile of the vmapped step, eta warm-up as a tensor) trains
    the same points to float rounding, through an early stop that shrinks the group."""
    configs = _points(etas=(0.01, 0.3, 0.05), max_epochs=3, patience=3, eta_warmup=3)
    original = fused.should_stop

    def should_stop(state, config):
        return (config.key == configs[1].key and state["epoch"] >= 1) or original(state, config)

    monkeypatch.setattr(fused, "should_stop", should_stop)
    options = {"device": "cpu", "progress": False}
    eager = fused.fit_fused(configs, root=tmp_path / "eager", **options)
    compiled = fused.fit_fused(configs, root=tmp_path / "compiled", compile=True, **options)
    _assert_same(compiled, eager, rel=1e-4)
    assert [m["epochs"] for m in compiled] == [3, 1, 3]
    assert [m["compile"] for m in compiled] == [True] * 3


def test_lower_bound_matches_compressai_and_keeps_its_gradient_under_compile():
    """torch.compile over vmap silently dropped the backward of the autograd.Functions this
    replaced (pytorch/pytorch#129845); the custom operator keeps it."""
    from compressai.ops import LowerBound

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 64, generator=generator) * 0.3
    upstream = torch.randn(3, 64, generator=generator)
    reference = x.clone().requires_grad_(True)
    (LowerBound(0.11)(reference) * upstream).sum().backward()

    def loss(rows, bound):
        return torch.func.vmap(accel.lower_bound, in_dims=(0, None))(rows, bound) * upstream

    for run in (loss, torch.compile(loss, dynamic=False)):
        ours = x.clone().requires_grad_(True)
        run(ours, torch.tensor([0.11])).sum().backward()
        torch.testing.assert_close(ours.grad, reference.grad, rtol=0, atol=0)
    below = x < 0.11  # both cases of the rule occur: blocked, and passed below the bound
    assert (below & (upstream > 0) & (reference.grad == 0)).any()
    assert (below & (upstream < 0) & (reference.grad != 0)).any()


@pytest.mark.gpu
def test_fused_points_equal_separate_runs_on_the_gpu(tmp_path):
    configs = _points(etas=(0.01, 0.3))
    options = {"device": "cuda", "amp": "fp32", "progress": False}
    together = fused.fit_fused(configs, root=tmp_path / "fused", **options)
    apart = [train.fit(c, root=tmp_path / "apart", **options) for c in configs]
    _assert_same(together, apart, rel=1e-2)  # cuDNN picks other (TF32) kernels per layout


@pytest.mark.gpu
def test_a_training_step_never_waits_for_the_gpu():
    """The step queues work without a host synchronisation (Issue 11): CUDA's sync debug mode
    turns any synchronising call (.item(), a device-to-host copy) into an error."""
    from gwnlib.experiments import Experiment

    config = resolve("synthetic", "smoke", codec="shared", eta=0.1)
    experiment = Experiment(config, "cuda")
    model = experiment.codec().to("cuda")
    loss_fn = experiment.loss()
    optimizer = train.make_optimizer(model, config, torch.device("cuda"))
    x, t1, t2 = next(experiment.batches("train"))
    autocast = accel.autocast_context(torch.device("cuda"), True)
    train.backward_step(model, loss_fn, x, (t1, t2), autocast)  # warm-up: lazy initialisation
    train.update_step(model, optimizer, config.clip)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for scale in (0.5, 1.0):
            train.backward_step(model, loss_fn, x, (t1, t2), autocast, scale)
            train.update_step(model, optimizer, config.clip)
    finally:
        torch.cuda.set_sync_debug_mode("default")


#: The Python calls that read a tensor's value on the host: on a GPU each one waits for the
#: device (and ``cpu``/``numpy``/``nonzero`` copy to the host or size an output by the data).
HOST_READS = ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu",
              "nonzero")  # fmt: skip


@pytest.fixture
def host_reads(monkeypatch):
    """Records every host read of a tensor (:data:`HOST_READS`) made from Python while the test
    runs: where the value came from (file:line of the caller)."""
    reads = []
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def read(self, *args, _name=name, _original=original, **kwargs):
            caller = sys._getframe(1).f_code
            reads.append(f"{_name} in {caller.co_filename}:{caller.co_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, read)
    return reads


@pytest.mark.parametrize("codec", ["shared", "separated", "combined", "joint", "independent"])
def test_a_training_step_reads_nothing_back_on_the_cpu(codec, host_reads):
    """The CPU half of the GPU test above, which CI cannot run: the single and the fused training
    steps (forward, loss, backward, clipping, Adam; the eta warm-up too) never read a tensor's
    value on the host, so on a GPU they queue work without waiting. The authors-like step, with
    its per-sample rate logging, is the control that shows the recording works."""
    from gwnlib.experiments import Experiment
    from gwnlib.training.bench import _fused_step, _per_sample_rate_syncs

    config = resolve("synthetic", "smoke", codec=codec, eta=0.1)
    experiment = Experiment(config, "cpu")
    model, loss_fn = experiment.codec(), experiment.loss()
    optimizer = train.make_optimizer(model, config, torch.device("cpu"))
    x, t1, t2 = next(experiment.batches("train"))
    fused_step, _ = _fused_step(config, torch.device("cpu"), False, 2, x, t1, t2)
    host_reads.clear()  # building and the first batch may read values: only the steps count
    for scale in (0.5, 1.0):
        output, _ = train.backward_step(model, loss_fn, x, (t1, t2), scale=scale)
        train.update_step(model, optimizer, config.clip)
        fused_step()
    assert host_reads == []
    _per_sample_rate_syncs(output)
    assert len(host_reads) >= 8 and host_reads[0].startswith("__float__ in ")


def test_a_restarted_sweep_finds_its_group_after_some_points_finished(tmp_path, monkeypatch):
    """Point 1 finishes after epoch 1, the process dies in epoch 2; the sweep then passes only
    the two unfinished points, which resume from the group's checkpoint."""
    configs = _points(etas=(0.01, 0.3, 0.05), max_epochs=3, patience=3)
    stopping = configs[1].key
    original_stop, real_export = fused.should_stop, fused.export

    def should_stop(state, config):
        return (config.key == stopping and state["epoch"] >= 1) or original_stop(state, config)

    def crash_in_epoch_2(folder, codec, config, state):
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        real_export(folder, codec, config, state)

    monkeypatch.setattr(fused, "should_stop", should_stop)
    monkeypatch.setattr(fused, "export", crash_in_epoch_2)
    root = tmp_path / "fused"
    with pytest.raises(KeyboardInterrupt):
        fused.fit_fused(configs, root=root, device="cpu", progress=False)
    assert runs.is_finished(runs.run_dir(configs[1], root))
    monkeypatch.setattr(fused, "export", real_export)
    resumed_epochs = []
    real_train_epoch = fused.FusedGroup._train_epoch

    def record(group, epoch):
        resumed_epochs.append(epoch)
        return real_train_epoch(group, epoch)

    monkeypatch.setattr(fused.FusedGroup, "_train_epoch", record)
    rest = [configs[0], configs[2]]
    resumed = fused.fit_fused(rest, root=root, device="cpu", progress=False)
    assert resumed_epochs == [2]  # only the third epoch was left
    apart = [train.fit(c, root=tmp_path / "apart", device="cpu", progress=False) for c in rest]
    _assert_same(resumed, apart)
    # A group checkpoint that lacks a point now asked for is refused, not silently mixed.
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(fused, "export", crash_in_epoch_2)
        fused.fit_fused(_points(etas=(0.7, 0.9), max_epochs=3, patience=3), root=root,
                        device="cpu", progress=False)  # fmt: skip
    monkeypatch.setattr(fused, "export", real_export)
    with pytest.raises(RuntimeError, match="without the point"):
        fused.fit_fused(_points(etas=(0.7, 0.9, 0.8), max_epochs=3, patience=3), root=root,
                        device="cpu", progress=False)  # fmt: skip
