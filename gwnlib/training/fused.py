"""Fused sweeps: several (eta, beta) points of one codec trained as one batched model.

The points of a sweep that share a codec differ only in eta and beta (Eq. 12). Their codecs have
the same architecture, start from the same seeded weights and read the same batches (the batches
are a function of the seed, not of eta or beta). So N of them can be trained as *one* model whose
parameters carry a leading axis of size N: :func:`torch.func.stack_module_state` stacks them,
:func:`torch.func.vmap` over :func:`torch.func.functional_call` runs the N forward passes as
batched (grouped) kernels, and the sum of the N objectives backpropagates to each point's own
parameters only. Adam is elementwise and the gradient-norm clipping of Table 1 is done per point,
so every point takes the update of its own run, up to the order of floating-point sums.

Early stopping is per point: a point that stops is finished like an ordinary run (``best.pt`` and
``metrics.json`` in its own run directory, :mod:`gwnlib.training.train`) and dropped from the stack,
so the others go on faster. The group's resume state (stacked weights, Adam moments, every point's
counters) is written atomically after each epoch to ``<root>/<dataset>/fused-<hash>/last.pt``.

A group trains through the same epoch loop as one run (:func:`gwnlib.training.loop.train_epoch`,
with the same rate warm-up, logging and early-stopping counters); the vmap-able stand-ins for
CompressAI's layers it needs are in :mod:`gwnlib.training.accel`.

This is an execution strategy, like ``torch.compile``: it changes speed, not what is trained, and a
fused point's run directory is the same as a separate run's (``runtime.fused_points`` says how it
was trained). Entry points: :func:`fit_fused`, and ``Sweep.run(executor="fused")`` /
``python -m gwnlib sweep ... --executor fused``, which group a sweep's pending points.
"""

from __future__ import annotations

import contextlib
import time

import torch
from tqdm.auto import tqdm

from gwnlib.experiments import VISION, Experiment, RunConfig, settings_hash
from gwnlib.files import load_torch, remove_stale_temporaries, save_torch, write_json
from gwnlib.model.entropy import mask_weights
from gwnlib.model.loss import lagrangian
from gwnlib.runtime import device as resolve_device
from gwnlib.runtime import hardware, runs_dir, show_progress
from gwnlib.training.accel import autocast_context, uses_bf16, vmappable
from gwnlib.training.loop import (
    TERMS,
    make_optimizer,
    new_state,
    record_epoch,
    should_stop,
    term,
    train_epoch,
)
from gwnlib.training.runs import (
    claim,
    exclusive,
    export,
    is_finished,
    load_metrics,
    run_dir,
    warm_start,
)
from gwnlib.training.train import as_config, check_options, finish

#: The settings in which the points of one fused group may differ.
FUSED_FIELDS = ("eta", "beta")


def groups(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """``configs`` split into fusable groups: same settings except :data:`FUSED_FIELDS`, in the
    order of their first member."""
    found: dict[tuple, list[RunConfig]] = {}
    for config in configs:
        values = config.to_dict()
        key = tuple((name, values[name]) for name in sorted(values) if name not in FUSED_FIELDS)
        found.setdefault(key, []).append(config)
    return list(found.values())


def fit_fused(
    configs: list,
    root=None,
    device: str = "auto",
    amp: str = "auto",
    compile: bool = False,
    progress: bool | None = None,
    log_every: int = 25,
) -> list[dict]:
    """Train the points ``configs`` (RunConfigs or their dicts; same settings but eta and beta)
    as one batched model, each to its own early stop, and return their final metrics in order.

    Finished points are loaded, not retrained; an interrupted group resumes from its last epoch.
    ``device``, ``amp``, ``progress`` and ``log_every`` are as for
    :func:`gwnlib.training.train.fit`; ``compile`` runs the batched step under ``torch.compile``
    (the same updates to float rounding; on a GPU it fuses the entropy models' many small
    elementwise kernels).
    """
    configs = [as_config(config, {}) for config in configs]
    _check_group(configs)
    check_options(amp, log_every)
    dev = resolve_device(device)
    progress = show_progress(progress)
    root = runs_dir() if root is None else root
    folders = {config.key: run_dir(config, root) for config in configs}
    pending = [config for config in configs if not is_finished(folders[config.key])]
    if pending:
        for config in pending:
            claim(folders[config.key], config)
        # Named by the settings the points share, so that a sweep restarted after some points
        # finished (and passes only the others) finds the group's checkpoint again.
        shared = {k: v for k, v in configs[0].to_dict().items() if k not in FUSED_FIELDS}
        group_dir = folders[configs[0].key].parent / f"fused-{settings_hash(shared)}"
        group_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as locks:
            for config in pending:
                locks.enter_context(exclusive(folders[config.key]))
            locks.enter_context(exclusive(group_dir))
            group = FusedGroup(configs, pending, folders, group_dir, dev, amp, compile)
            group.fit(progress, log_every)
    return [load_metrics(folders[config.key]) for config in configs]


def _check_group(configs: list[RunConfig]) -> None:
    if not configs:
        raise ValueError("configs must hold at least one run config")
    if len({config.key for config in configs}) != len(configs):
        raise ValueError("configs holds the same run twice")
    if configs[0].dataset in VISION:
        raise ValueError(
            f"fused training supports the synthetic source and coloured MNIST, not "
            f"{configs[0].dataset!r} (frozen task models with their own batch handling)"
        )
    first = configs[0].to_dict()
    differing = sorted(
        {
            name
            for config in configs[1:]
            for name, value in config.to_dict().items()
            if name not in FUSED_FIELDS and value != first[name]
        }
    )
    if differing:
        raise ValueError(
            f"fused points may differ only in {', '.join(FUSED_FIELDS)}; these differ too: "
            f"{', '.join(differing)}"
        )


# --------------------------------------------------------------------------------------------
# The group
# --------------------------------------------------------------------------------------------


class FusedGroup:
    """The pending points ``configs`` of the group ``everyone`` (finished ones included): one
    trainer of :func:`~gwnlib.training.loop.train_epoch` (the loop of a single run too), whose
    steps are every active point's at once."""

    def __init__(self, everyone, configs, folders, group_dir, dev, amp, compile=False):
        self.configs, self.folders, self.group_dir, self.dev = configs, folders, group_dir, dev
        self.group_keys = sorted(config.key for config in configs)  # the points it trains
        self.by_key = {config.key: config for config in everyone}
        self.bf16 = uses_bf16(amp, dev)
        self.autocast = autocast_context(dev, self.bf16)
        self.runtime = {
            "device": str(dev),
            "hardware": hardware(dev),
            "amp": "bf16" if self.bf16 else "fp32",
            "compile": bool(compile),
            "channels_last": False,
            "fused_points": len(configs),
            "torch": torch.__version__,
        }
        self.experiments = {c.key: Experiment(c, dev) for c in configs}
        self.base = self.experiments[configs[0].key]  # every point reads its batches
        codecs = [self.experiments[c.key].codec() for c in configs]
        for codec, config in zip(codecs, configs, strict=True):
            if config.init_eta is not None:
                warm_start(codec, config, folders[config.key].parent.parent)
        codecs = [codec.to(dev) for codec in codecs]
        self.template = self.base.codec().to(dev)
        self.masked = vmappable(self.template)
        self.scratch = self.base.codec().to(dev)  # one point's weights, for exports
        params, self.buffers = torch.func.stack_module_state(codecs)
        self.params = {name: p.detach().requires_grad_(True) for name, p in params.items()}
        del codecs
        self._activate([c.key for c in configs])
        self.optimizer = self._optimizer()
        self.states = {c.key: new_state() for c in configs}
        loss = self.base.loss()
        self.gamma, self.distortions = loss.gamma, loss.distortions
        self.step_fn = self._batched()
        if compile:
            # One graph per number of active points (the group shrinks as points stop) and
            # grad mode (training, evaluation); the inputs keep their shapes within each.
            self.step_fn = torch.compile(self.step_fn, dynamic=False)

    # -- state ----------------------------------------------------------------------------------
    @property
    def points(self) -> int:
        """How many points step together now (the trainer's ``points``)."""
        return len(self.active)

    def _optimizer(self) -> torch.optim.Adam:
        return make_optimizer(list(self.params.values()), self.configs[0], self.dev)

    def _hyper(self, name: str) -> torch.Tensor:
        values = [getattr(self.by_key[key], name) for key in self.active]
        return torch.tensor(values, dtype=torch.float32, device=self.dev)

    def _activate(self, keys: list[str]) -> None:
        """Train the points ``keys`` (in the order of the stack) from now on: their etas and
        betas, copied to the device once here rather than at every step."""
        self.active = keys
        self.etas, self.betas = self._hyper("eta"), self._hyper("beta")

    def _point_state(self, index: int) -> dict:
        state = {name: p[index].detach() for name, p in self.params.items()}
        state.update({name: b[index] for name, b in self.buffers.items()})
        return state

    def _checkpoint(self) -> None:
        save_torch(
            self.group_dir / "last.pt",
            {
                "keys": self.group_keys,
                "active": self.active,
                "params": {name: p.detach() for name, p in self.params.items()},
                "buffers": self.buffers,
                "optimizer": self.optimizer.state_dict(),
                "states": self.states,
            },
        )

    def _resume(self) -> None:
        last = self.group_dir / "last.pt"
        if not last.is_file():
            return
        saved = load_torch(
            last, "delete it to restart this group from its first epoch", map_location=self.dev
        )
        pending = set(self.active)
        if not pending <= set(saved["keys"]):
            new = sorted(pending - set(saved["keys"]))
            raise RuntimeError(
                f"{last} holds an interrupted group without the point(s) {', '.join(new)}; "
                "finish that group first (pass only its points), or delete the file to restart"
            )
        self.group_keys = saved["keys"]
        self._activate(saved["active"])
        self.params = {name: p.requires_grad_(True) for name, p in saved["params"].items()}
        self.buffers = saved["buffers"]
        self.optimizer = self._optimizer()
        self.optimizer.load_state_dict(saved["optimizer"])
        self.states.update(saved["states"])
        # A point finished between the checkpoint and a crash is not pending any more.
        self._keep([i for i, key in enumerate(self.active) if key in pending])

    def _keep(self, indices: list[int]) -> None:
        """Drop every point but ``indices`` from the stack (weights, buffers, Adam moments)."""
        if indices == list(range(len(self.active))):
            return
        if not indices:
            self._activate([])
            return
        index = torch.tensor(indices, device=self.dev)
        old = self.optimizer
        old_params = list(self.params.values())
        self.params = {
            name: p.detach()[index].clone().requires_grad_(True) for name, p in self.params.items()
        }
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self._activate([self.active[i] for i in indices])
        self.optimizer = self._optimizer()
        for before, after in zip(old_params, self.params.values(), strict=True):
            if before in old.state:
                self.optimizer.state[after] = {
                    name: value if name == "step" else value[index].clone()
                    for name, value in old.state[before].items()
                }

    # -- the batched step -----------------------------------------------------------------------
    def _mask_weights(self) -> None:
        mask_weights((self.params[f"{n}.weight"], self.buffers[f"{n}.mask"]) for n in self.masked)

    def _batched(self):
        """The step of every point at once: ``f(params, buffers, etas, betas, scale, x, t1, t2)``
        gives each point's objective and terms. ``scale`` (the eta warm-up factor) is a tensor,
        so that a compiled step is not specialised on its value."""
        base, template = self.base, self.template
        gamma, distortions = self.gamma, self.distortions

        def point(params, buffers, eta, beta, scale, x, t1, t2):
            output = torch.func.functional_call(template, (params, buffers), (x,))
            terms = lagrangian(output, t1, t2, beta, eta, gamma, distortions)
            objective = terms["loss"] - (1 - scale) * eta * terms["rate"]
            values = {key: term(output, terms, key) for key in TERMS}
            values.update(base.task_metrics(output, t1, t2))
            return objective, values

        return torch.func.vmap(point, in_dims=(0, 0, 0, 0, None, None, None, None))

    def _scale(self, scale: float) -> torch.Tensor:
        # A fill kernel, not a host-to-device copy (which would wait for the GPU).
        return torch.full((), scale, dtype=torch.float32, device=self.dev)

    def _clip(self) -> None:
        """Table 1's gradient-norm clipping, per point (``clip_grad_norm_`` of each run)."""
        grads = [p.grad for p in self.params.values() if p.grad is not None]
        norms = torch.stack([g.flatten(1).float().norm(dim=1) for g in grads]).norm(dim=0)
        coefficient = (self.configs[0].clip / (norms + 1e-6)).clamp(max=1.0)
        for grad in grads:
            grad.mul_(coefficient.view(-1, *([1] * (grad.dim() - 1))).to(grad.dtype))

    def start_epoch(self) -> None:
        self.template.train()
        self.optimizer.zero_grad(set_to_none=True)

    def backward_step(self, x, targets, scale: float = 1.0) -> dict:
        """Forward, loss and backward of one micro-batch for every active point at once; the
        per-point terms (tensors with one value per point)."""
        self._mask_weights()
        with self.autocast():
            objective, values = self.step_fn(
                self.params, self.buffers, self.etas, self.betas, self._scale(scale), x, *targets
            )
        (objective.sum() / self.configs[0].accumulate).backward()
        return values

    def update_step(self) -> None:
        """Per-point clipping, one Adam step over the stacked weights, zeroed gradients."""
        self._clip()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _train_epoch(self, epoch: int) -> dict[str, list[float]]:
        """:func:`~gwnlib.training.loop.train_epoch` of the group: each term's epoch means, one
        per active point, rounded to float32 (as the group's history has always kept them)."""
        means = train_epoch(self, self.base, epoch, self.progress, self.log_every)
        return {key: value.float().tolist() for key, value in means.items()}

    @torch.no_grad()
    def _evaluate(self, split: str) -> dict[str, torch.Tensor]:
        self.template.eval()
        self._mask_weights()
        scale = self._scale(1.0)
        sums: dict[str, torch.Tensor] = {}
        count = 0
        for x, t1, t2 in self.base.batches(split):
            with self.autocast():
                _, values = self.step_fn(
                    self.params, self.buffers, self.etas, self.betas, scale, x, t1, t2
                )
            for key, value in values.items():
                sums[key] = sums.get(key, 0) + value.float()
            count += 1
        self.template.train()
        return {key: value / count for key, value in sums.items()}

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, progress: bool, log_every: int) -> None:
        self.progress, self.log_every = progress, log_every
        remove_stale_temporaries(self.group_dir)
        for config in self.configs:
            folder = self.folders[config.key]
            remove_stale_temporaries(folder)
            record = {"config": config.to_dict(), "runtime": self.runtime}
            write_json(folder / "config.json", record)
        self._resume()
        # A kill between the group's checkpoint and the points' files leaves history.csv and
        # best.pt one epoch behind last.pt: write them again from it (as train.fit does).
        for j, key in enumerate(self.active):
            self.scratch.load_state_dict(self._point_state(j))
            export(self.folders[key], self.scratch, self.by_key[key], self.states[key])
        self._finish_stopped()
        epochs = tqdm(
            total=max(c.max_epochs for c in self.configs),
            initial=min(self.states[key]["epoch"] for key in self.active) if self.active else 0,
            desc=f"fused {self.configs[0].codec} ({len(self.configs)} points)",
            unit="epoch",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        samples = self.base.steps("train") * self.configs[0].batch_size  # per point and epoch
        while self.active:
            epoch = self.states[self.active[0]]["epoch"]  # the active points move together
            started = time.perf_counter()
            train = self._train_epoch(epoch)
            train_seconds = time.perf_counter() - started
            val = {key: value.tolist() for key, value in self._evaluate("val").items()}
            for j, key in enumerate(self.active):
                point_train = {k: v[j] for k, v in train.items()}
                point_val = {k: v[j] for k, v in val.items()}
                record_epoch(self.states[key], point_train, point_val, train_seconds, samples)
            self._checkpoint()  # the commit point of the epoch, as last.pt of a run
            for j, key in enumerate(self.active):
                self.scratch.load_state_dict(self._point_state(j))
                export(self.folders[key], self.scratch, self.by_key[key], self.states[key])
            self._finish_stopped()
            epochs.update(1)
        epochs.close()
        for leftover in ("last.pt", ".lock"):
            with contextlib.suppress(OSError):
                (self.group_dir / leftover).unlink()
        with contextlib.suppress(OSError):
            self.group_dir.rmdir()

    def _finish_stopped(self) -> None:
        """Finish the points whose early stopping (or epoch limit) says so; drop them."""
        stopped = [k for k in self.active if should_stop(self.states[k], self.by_key[k])]
        for key in stopped:
            experiment = self.experiments[key]
            codec = experiment.codec().to(self.dev)
            loss_fn = experiment.loss()
            finish(
                self.folders[key],
                experiment,
                codec,
                loss_fn,
                self.autocast,
                self.states[key],
                self.runtime,
            )
        if stopped:
            self._keep([i for i, key in enumerate(self.active) if key not in stopped])
