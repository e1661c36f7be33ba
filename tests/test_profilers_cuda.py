"""The CUDA path with fakes (no GPU on this machine): CUDA-event timing, NVML telemetry with
throttle reasons before/after, the GPU fingerprint pin and the clear no-GPU error. It runs
for real only on a machine with an NVIDIA GPU (not lent to this task)."""

from __future__ import annotations

import time

import pytest
import torch
from transformers import LlamaConfig

from hwnas.errors import InputError
from hwnas.hw_profiles import load_profile
from hwnas.profilers import profile_layers
from hwnas.profilers.backends import backend_name
from hwnas.profilers.backends.cuda import CudaEventTimer, TorchCUDA
from hwnas.profilers.shape import ModelShape
from hwnas.store import Store


class FakeEvent:
    """A CUDA event that timestamps on record(); elapsed_time needs synchronize() first."""

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.t: float | None = None
        self.synced = False

    def record(self) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        self.synced = True

    def elapsed_time(self, end: FakeEvent) -> float:
        assert end.synced, "read before the end event synchronised"
        return (end.t - self.t) * 1000.0  # type: ignore[operator]


class FakeCudaAPI:
    torch_device = "cpu"  # where modules really go in this fake
    Event = FakeEvent

    def __init__(self, n: int = 1) -> None:
        self.n, self.current = n, None

    def is_available(self) -> bool:
        return self.n > 0

    def device_count(self) -> int:
        return self.n

    def set_device(self, i: int) -> None:
        self.current = i

    def get_device_properties(self, i: int) -> object:
        return type("Props", (), {"L2_cache_size": 60 * 2**20})()


class FakeNVML:
    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        pass

    def __init__(self, name: str = "NVIDIA H200") -> None:
        self.name, self.samples = name, 0

    def nvmlInit(self): pass
    def nvmlDeviceGetHandleByIndex(self, i): return i
    def nvmlDeviceGetName(self, h): return self.name
    def nvmlDeviceGetUUID(self, h): return "GPU-fake"
    def nvmlSystemGetDriverVersion(self): return "570.1"
    def nvmlDeviceGetMemoryInfo(self, h): return type("M", (), {"total": 141 * 2**30})()
    def nvmlDeviceGetPowerManagementLimit(self, h): return 700000
    def nvmlDeviceGetMaxClockInfo(self, h, c): return 1980
    def nvmlDeviceGetClockInfo(self, h, c): return 1755
    def nvmlDeviceGetTemperature(self, h, s): return 40
    def nvmlDeviceGetPowerUsage(self, h): return 100000

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        self.samples += 1
        return 0x1 if self.samples == 1 else 0x4  # idle before, power-capped after


def shape() -> ModelShape:
    return ModelShape.from_config(LlamaConfig(
        hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
        num_hidden_layers=2, vocab_size=256, max_position_embeddings=8192), name="tiny")


def test_torch_on_cuda_device_is_the_cuda_backend():
    assert backend_name(load_profile("h200-torch-bf16")) == "cuda"
    assert backend_name(load_profile("cpu-torch-fp32")) == "torch"


def test_no_gpu_is_a_clear_error():
    hw = load_profile("cuda-torch-fp16")
    with pytest.raises(InputError, match="sees no GPU"):
        TorchCUDA(api=FakeCudaAPI(0), nvml=FakeNVML()).check(hw)
    if not torch.cuda.is_available():  # the real torch.cuda on this CPU-only machine
        with pytest.raises(InputError, match="sees no GPU"):
            TorchCUDA().check(hw)


def test_cuda_event_timer_reads_after_synchronize():
    t = CudaEventTimer(FakeCudaAPI(), lambda: time.sleep(0.002))
    assert 1.5 < t.time_once() < 50


def test_profile_on_fake_h200_records_telemetry(tmp_path):
    hw = load_profile("h200-torch-bf16")
    backend = TorchCUDA(api=FakeCudaAPI(), nvml=FakeNVML())
    backend.check(hw)
    hw = hw.model_copy(update={"workloads": hw.workloads.model_copy(
        update={"prefill": (128,), "decode": hw.workloads.decode[:1]})})
    store = Store(tmp_path / "s.sqlite")
    s = profile_layers(hw, shape(), store, backend=backend)
    assert s.complete and s.measured == 2 * (len(shape().space.width_choices) * 2 + 2)
    rec = store.measurements(kind="layer")[0]
    assert rec["spec"]["device"] == "cuda:0" and rec["spec"]["dtype"] == "bf16"
    fp = rec["fingerprint"]
    assert fp["gpu"]["name"] == "NVIDIA H200" and fp["gpu"]["uuid"] == "GPU-fake"
    tel = fp["telemetry"]
    assert fp["gpu"]["throttle_reasons"] == ["gpu_idle"]  # sampled first, at fingerprinting
    assert tel["before"]["throttle_reasons"] == ["sw_power_cap"]
    assert tel["after"]["throttle_reasons"] == ["sw_power_cap"]
    assert tel["after"]["clocks_mhz"]["sm"] == 1755


def test_h200_pin_rejects_another_gpu(tmp_path):
    hw = load_profile("h200-torch-bf16")
    backend = TorchCUDA(api=FakeCudaAPI(), nvml=FakeNVML(name="NVIDIA A100-SXM4-80GB"))
    with pytest.raises(InputError, match="gpu_name: pinned 'NVIDIA H200'.*A100.*--force"):
        profile_layers(hw, shape(), Store(tmp_path / "s.sqlite"), backend=backend)
