import random

import numpy as np
import pytest
import torch

import gwnlib
from gwnlib import runtime

HAS_CUDA = torch.cuda.is_available()


def test_auto_device_prefers_cuda(monkeypatch):
    expected = "cuda" if HAS_CUDA else "cpu"
    assert gwnlib.device("auto").type == expected
    assert gwnlib.device().type == expected
    # Where torch sees a GPU (as on a user's machine), "auto" takes it, without a GPU here.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert gwnlib.device("auto").type == gwnlib.device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gwnlib.device("auto").type == "cpu"


def test_cpu_device():
    assert gwnlib.device("cpu") == torch.device("cpu")


@pytest.mark.skipif(HAS_CUDA, reason="this machine has a GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_gpu_is_a_clear_error(name):
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        gwnlib.device(name)


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda:x", "CPU", ""])
def test_unknown_device_lists_accepted_values(name):
    with pytest.raises(ValueError, match=r"device must be one of auto, cpu, cuda, cuda:N"):
        gwnlib.device(name)


def test_device_must_be_a_string():
    with pytest.raises(TypeError, match="device must be a string"):
        gwnlib.device(0)


@pytest.mark.gpu
def test_cuda_device_and_generator_on_gpu():
    dev = gwnlib.device("cuda")
    assert dev.type == "cuda"
    last = torch.device(f"cuda:{torch.cuda.device_count() - 1}")
    a = torch.rand(4, generator=gwnlib.torch_generator(3, last), device=last)
    b = torch.rand(4, generator=gwnlib.torch_generator(3, last), device=last)
    assert a.device == last and torch.equal(a, b)
    assert "CUDA" in gwnlib.hardware(dev)
    with pytest.raises(RuntimeError, match="CUDA device"):
        gwnlib.device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.parametrize("preset", gwnlib.PRESETS)
def test_known_presets(preset):
    assert gwnlib.check_preset(preset) == preset


@pytest.mark.parametrize("preset", ["full", "Smoke", "", None])
def test_unknown_preset_lists_accepted_values(preset):
    with pytest.raises(ValueError, match="preset must be one of smoke, short, paper"):
        gwnlib.check_preset(preset)


def draws():
    return (
        [random.random() for _ in range(3)],
        np.random.rand(3).tolist(),  # noqa: NPY002  (the legacy global state is what we seed)
        torch.rand(3).tolist(),
    )


def test_seed_everything_repeats_every_generator():
    gwnlib.seed_everything(1234)
    first = draws()
    gwnlib.seed_everything(1234)
    assert draws() == first
    gwnlib.seed_everything(1235)
    other = draws()
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_torch_generator_is_independent_of_global_state():
    a = torch.rand(5, generator=gwnlib.torch_generator(7))
    torch.rand(100)  # moves the global generator, not ours
    b = torch.rand(5, generator=gwnlib.torch_generator(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(5, generator=gwnlib.torch_generator(8)))


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises((TypeError, ValueError), match="seed must be an integer"):
        gwnlib.seed_everything(seed)
    with pytest.raises((TypeError, ValueError), match="seed must be an integer"):
        gwnlib.torch_generator(seed)


def test_numpy_integer_seed_is_accepted():
    gwnlib.seed_everything(np.int64(5))


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(gwnlib.DATA_DIR_ENV, str(tmp_path))
    assert gwnlib.data_dir() == tmp_path.resolve()


def test_data_dir_defaults_to_the_checkout(monkeypatch):
    monkeypatch.delenv(gwnlib.DATA_DIR_ENV, raising=False)
    root = runtime.PROJECT_ROOT
    assert gwnlib.data_dir() == root / "data"
    assert (root / "data" / "README.md").is_file()


def test_blank_data_dir_variable_means_default(monkeypatch):
    monkeypatch.setenv(gwnlib.DATA_DIR_ENV, "  ")
    assert gwnlib.data_dir() == runtime.PROJECT_ROOT / "data"


def test_hardware_names_the_cpu():
    text = gwnlib.hardware("cpu")
    assert text.startswith("CPU: ") and "cores" in text


def test_setup_checks_seeds_and_records():
    rt = gwnlib.setup("smoke", "cpu", seed=11)
    assert (rt.preset, rt.device, rt.seed) == ("smoke", torch.device("cpu"), 11)
    assert "smoke" in rt.caption() and rt.hardware in rt.caption()
    after_setup = torch.rand(2)
    gwnlib.seed_everything(11)
    assert torch.equal(after_setup, torch.rand(2))
    assert "smoke" in str(rt) and torch.__version__ in str(rt)


def test_setup_fails_before_work_on_bad_parameters():
    with pytest.raises(ValueError, match="preset must be one of"):
        gwnlib.setup("quick", "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        gwnlib.setup("smoke", "metal")


def test_cache_dir_is_separate_from_the_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv(gwnlib.CACHE_DIR_ENV, str(tmp_path))
    assert gwnlib.cache_dir() == tmp_path.resolve()
    monkeypatch.delenv(gwnlib.CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gwnlib.cache_dir() == (tmp_path / "xdg" / "gwnlib").resolve()


def test_progress_bars_follow_the_argument_then_the_environment(monkeypatch):
    from gwnlib.runtime import show_progress

    monkeypatch.delenv("GWN_PROGRESS", raising=False)
    assert show_progress() is True and show_progress(False) is False
    monkeypatch.setenv("GWN_PROGRESS", "0")
    assert show_progress() is False and show_progress(True) is True


def test_check_int_accepts_integers_from_its_floor_and_names_the_parameter():
    from gwnlib.runtime import check_int

    assert check_int("steps", 3) == 3 and check_int("epoch", np.int64(0), low=0) == 0
    assert type(check_int("steps", np.int32(2))) is int
    for bad in (0, -1, True, 2.0, "2", None):
        with pytest.raises(ValueError, match=r"steps must be an integer >= 1; got "):
            check_int("steps", bad)
    with pytest.raises(ValueError, match=r"retries must be an integer >= 0; got -1"):
        check_int("retries", -1, low=0)
