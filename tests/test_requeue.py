"""Slurm requeue: a point submitted through submitit is a Checkpointable whose checkpoint is the
same point again, which resumes from its run folder's last.pt; the requeue options reach
submitit, and bad values are refused with their names."""

import concurrent.futures
import os
import signal
import time
from pathlib import Path

import pytest
import submitit

from gwnlib.__main__ import main
from gwnlib.experiments import resolve
from gwnlib.training import executors, runs, train
from gwnlib.training.sweep import Sweep

# One smoke point of the synthetic source, a few short epochs (about 2 s each on a 2-core CPU).
SETTINGS = {"max_epochs": 3, "train_steps": 4, "patience": 50}
POINT = {"codec": ["joint"], "eta": [0.1]}


def epochs_done(folder: Path) -> int:
    path = folder / "history.csv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


def test_the_checkpoint_hook_resubmits_the_point_which_resumes_from_last_pt(tmp_path, monkeypatch):
    """What submitit does on Slurm's signal, done by hand: stop a point after its first epoch,
    call the checkpoint hook, write and read back its submission as submitit does, and run it:
    the point goes on from epoch 2 and its first epoch's row is kept as it was."""
    config = resolve("synthetic", "smoke", **{k: v[0] for k, v in POINT.items()}, **SETTINGS)
    options = {"root": str(tmp_path), "device": "cpu", "amp": "auto", "compile": False}
    real_epoch, epochs = train._train_epoch, []

    def stopped_after_one(run, experiment, epoch, *args):
        if epoch == 1:
            raise KeyboardInterrupt  # the job's signal, say
        return real_epoch(run, experiment, epoch, *args)

    monkeypatch.setattr(train, "_train_epoch", stopped_after_one)
    point = executors.SubmittedPoint()
    with pytest.raises(KeyboardInterrupt):
        point(config.to_dict(), options)
    folder = runs.run_dir(config, tmp_path)
    assert (folder / "last.pt").is_file() and epochs_done(folder) == 1
    first_row = (folder / "history.csv").read_text().splitlines()[1]

    delayed = point.checkpoint(config.to_dict(), options)
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is point and delayed.args == (config.to_dict(), options)
    delayed.dump(tmp_path / "submitted.pkl")  # what submitit writes before requeueing
    requeued = submitit.helpers.DelayedSubmission.load(tmp_path / "submitted.pkl")

    def counted(run, experiment, epoch, *args):
        epochs.append(epoch)
        return real_epoch(run, experiment, epoch, *args)

    monkeypatch.setattr(train, "_train_epoch", counted)
    metrics = requeued.result()
    assert epochs == [1, 2]  # resumed after epoch 1, not trained from scratch
    assert metrics["key"] == config.key and metrics["epochs"] == 3
    assert (folder / "history.csv").read_text().splitlines()[1] == first_row


def test_a_requeue_that_lands_in_a_file_write_stays_a_requeue(monkeypatch):
    """Slurm's signal can come while torch.save writes a checkpoint: submitit's handler raises
    SystemExit there, and torch's zip writer raises again on its way out ("unexpected pos"),
    which hid the requeue and failed the job (seen in the local-executor test below). The point
    ends with the handler's exception; other errors stay as they are."""

    def stopped_in_a_write(config, **kwargs):
        try:
            raise SystemExit(144)  # the handler, once the job is requeued
        finally:
            raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos")

    monkeypatch.setattr(executors, "fit", stopped_in_a_write)
    config = resolve("synthetic", "smoke", codec="joint").to_dict()
    options = {"root": "unused", "device": "cpu", "amp": "auto", "compile": False}
    with pytest.raises(SystemExit) as stopped:
        executors.SubmittedPoint()(config, options)
    assert stopped.value.code == 144

    def failed(config, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(executors, "fit", failed)
    with pytest.raises(RuntimeError, match="out of memory"):
        executors.SubmittedPoint()(config, options)


def test_the_requeue_options_reach_submitit(tmp_path, monkeypatch):
    """``--requeues`` goes to the executor as it is made (submitit takes max_num_timeout
    there, for Slurm and for local processes), ``--signal-delay`` to update_parameters; the
    jobs submitted are SubmittedPoints (submitit's debug executor: in this process)."""
    made, updated, submitted = [], [], []

    class Recording(submitit.AutoExecutor):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

        def update_parameters(self, **kwargs):
            updated.append(kwargs)
            super().update_parameters(**kwargs)

        def map_array(self, fn, *iterables):
            submitted.append(fn)
            return super().map_array(fn, *iterables)

    monkeypatch.setattr(executors.submitit, "AutoExecutor", Recording)
    args = ["sweep", "synthetic", "--where", "codec=joint", "--root", str(tmp_path), "--device",
            "cpu", "--executor", "slurm", "--cluster", "debug"]  # fmt: skip
    options = ["--requeues", "5", "--signal-delay", "120", "--timeout-min", "10"]
    assert main([*args, "--where", "eta=1", *options]) == 0
    assert made == [{"cluster": "debug", "folder": made[0]["folder"],
                     "slurm_max_num_timeout": 5, "local_max_num_timeout": 5}]  # fmt: skip
    assert updated == [{"name": "gwn-synthetic", "timeout_min": 10, "slurm_signal_delay_s": 120}]
    assert [type(fn) for fn in submitted] == [executors.SubmittedPoint]
    assert len(list(tmp_path.rglob("metrics.json"))) == 1  # the job ran the point
    # Without the options, submitit's defaults (3 requeues, 90 s) stay: nothing is passed.
    made.clear(), updated.clear()
    monkeypatch.setattr(executors, "fit", lambda config, **kwargs: {"key": config.key})
    assert main([*args, "--where", "eta=0.5"]) == 0
    assert made[0].keys() == {"cluster", "folder"} and updated == [{"name": "gwn-synthetic"}]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--requeues", "-1"], "slurm_max_num_timeout (--requeues: how many times a job stopped "
                               "at its time limit is requeued) must be an integer >= 0; got -1"),
        (["--signal-delay", "0"], "slurm_signal_delay_s (--signal-delay: seconds between Slurm's "
                                  "signal and the time limit) must be an integer from 1 to 65535; "
                                  "got 0"),
        (["--signal-delay", "70000"], "must be an integer from 1 to 65535; got 70000"),
        (["--signal-delay", "600", "--timeout-min", "10"],
         "slurm_signal_delay_s (--signal-delay) must be less than the time limit, timeout_min "
         "(--timeout-min) = 10 min = 600 s; got 600 s"),
    ],
)  # fmt: skip
def test_bad_requeue_options_are_refused_before_any_job(tmp_path, capsys, extra, message):
    args = ["sweep", "synthetic", "--where", "codec=joint", "--where", "eta=1", "--root",
            str(tmp_path), "--executor", "slurm", "--cluster", "debug", *extra]  # fmt: skip
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "submitit").exists() and not list(tmp_path.rglob("config.json"))


def test_requeue_options_need_the_slurm_executor_and_whole_numbers(tmp_path, capsys):
    assert main(["sweep", "synthetic", "--root", str(tmp_path), "--requeues", "2"]) == 2
    assert "the slurm options need --executor slurm" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: "argument --signal-delay: invalid int value"
        main(["sweep", "synthetic", "--executor", "slurm", "--signal-delay", "1.5"])
    assert "argument --signal-delay: invalid int value: '1.5'" in capsys.readouterr().err
    sweep = Sweep("synthetic", POINT, root=tmp_path, settings=SETTINGS)
    for bad in ({"slurm_max_num_timeout": True}, {"slurm_max_num_timeout": 2.0},
                {"slurm_signal_delay_s": 30.5}):  # fmt: skip
        with pytest.raises(ValueError, match=f"{next(iter(bad))} .* must be an integer"):
            sweep.run("slurm", device="cpu", cluster="debug", slurm=bad, progress=False)
    assert not list(tmp_path.rglob("config.json"))


# -- through submitit's local executor: a real signal, requeue and resume ----------------------


def task_processes(marker: str) -> list[int]:
    """Pids of submitit tasks (``python -m submitit.core._submit FOLDER``) whose folder holds
    ``marker``: the processes that train the points of a local-cluster sweep."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # ended meanwhile
            continue
        if "submitit.core._submit" in command and marker in command:
            pids.append(int(cmdline.parent.name))
    return pids


def signal_when(ready, running, marker: str, deadline: float) -> None:
    while not ready():
        if running.done():
            running.result()  # its error, if any
            pytest.fail("the sweep ended before its job could be signalled")
        assert time.time() < deadline, "the job did not get there in time"
        time.sleep(0.05)
    (pid,) = task_processes(marker)
    os.kill(pid, signal.SIGUSR2)  # what Slurm sends before the time limit or on preemption


@pytest.mark.slow  # two jobs of a few epochs each in their own processes: a minute or two
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the task in /proc")
@pytest.mark.parametrize("requeues", [1, 0])
def test_a_signalled_job_is_requeued_and_resumes_or_fails_once_out_of_requeues(tmp_path, requeues):
    """A local-cluster job gets Slurm's signal after its first epoch. With one requeue left
    it is requeued and the point is trained to its last epoch, its first epoch kept as it was
    (resumed from last.pt, not retrained); with none, the job fails saying so. A job of at
    most 10 minutes counts any signal as its time limit (submitit's rule), so the requeue is
    counted."""
    sweep = Sweep("synthetic", POINT, root=tmp_path, settings=SETTINGS)
    (config,) = sweep.configs()
    folder = runs.run_dir(config, tmp_path)
    parameters = {"timeout_min": 10, "slurm_max_num_timeout": requeues}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(sweep.run, "slurm", device="cpu", cluster="local",
                              slurm=parameters, progress=False)  # fmt: skip
        signal_when(lambda: epochs_done(folder) >= 1, running, str(tmp_path), time.time() + 120)
        first_row = (folder / "history.csv").read_text().splitlines()[1]
        if requeues == 0:
            with pytest.raises(RuntimeError, match="timed-out too many times"):
                running.result(timeout=120)
            assert not runs.is_finished(folder)
            return
        table = running.result(timeout=180)
    assert table["epochs"].tolist() == [3]
    assert (folder / "history.csv").read_text().splitlines()[1] == first_row
    (log,) = (tmp_path / "submitit").rglob("*_log.out")
    assert "Requeued job" in log.read_text() and "(0 remaining timeouts)" in log.read_text()
