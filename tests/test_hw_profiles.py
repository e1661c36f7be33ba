"""Hardware profiles: the built-ins, the schema's errors, the fingerprint and detect()."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hwnas.errors import InputError, NotFoundError
from hwnas.hw_profiles import (
    check_pinned,
    collect_fingerprint,
    detect,
    dump_profile,
    list_profiles,
    load_profile,
    mismatches,
    parse_profile,
    profile_names,
    write_profile,
)
from hwnas.hw_profiles.fingerprint import Fingerprint, gpu_info, throttle_names

VALID = """
schema_version: 1
name: my-cpu
device: cpu
backend: torch
dtype: fp32
threads: 2
batch: 1
workloads:
  prefill: [32, 128]
  decode:
    - {context: 144}
primary: {prefill_tokens: 128, decode_tokens: 32}
"""


def _data(**changes):
    d = yaml.safe_load(VALID)
    d.update(changes)
    return d


def _err(data_or_text) -> str:
    text = data_or_text if isinstance(data_or_text, str) else yaml.safe_dump(data_or_text)
    with pytest.raises(InputError) as e:
        parse_profile(text, source="p.yaml")
    return str(e.value)


def test_builtin_profiles_cover_the_issue():
    names = set(profile_names())
    assert {"cpu-torch-fp32", "cpu-torch-bf16", "cpu-torch-int8", "cpu-onnxruntime-fp32",
            "cpu-openvino-fp32", "cpu-ipex-bf16", "cuda-torch-fp16",
            "h200-torch-bf16"} <= names
    by = {p.name: p for p in list_profiles()}
    assert (by["cpu-torch-int8"].backend, by["cpu-torch-int8"].dtype) == ("torch", "int8")
    assert by["h200-torch-bf16"].device == "cuda:0"
    assert by["h200-torch-bf16"].fingerprint == {"gpu_name": "NVIDIA H200"}
    for p in by.values():  # the contract: primary workloads are always profiled
        pre, dec = p.primary_workloads
        assert pre in p.workloads.names() and dec in p.workloads.names()


def test_default_profile_primary_metric():
    hw = load_profile("cpu-torch-fp32")
    assert hw.primary.prefill_tokens == 128 and hw.primary.decode_tokens == 32
    assert hw.primary.decode_context == 144
    assert hw.primary.compose(100.0, 2.0) == 164.0
    assert hw.primary_workloads == ("prefill@128", "decode@144")


def test_valid_profile_round_trips():
    hw = parse_profile(VALID)
    assert parse_profile(dump_profile(hw)) == hw
    from pydantic import ValidationError
    with pytest.raises(ValidationError):  # frozen
        hw.threads = 4  # type: ignore[misc]


@pytest.mark.parametrize("text, needles", [
    ("name: [unclosed\n", ["p.yaml", "malformed YAML", "line"]),
    ("- just\n- a list\n", ["expected a YAML mapping"]),
])
def test_malformed_yaml(text, needles):
    msg = _err(text)
    for n in needles:
        assert n in msg


def test_unknown_backend_names_value_and_allowed():
    msg = _err(_data(backend="tensorrt"))
    assert "p.yaml" in msg and "'backend'" in msg and "'tensorrt'" in msg
    assert "torch, onnxruntime, openvino, ipex" in msg


def test_missing_field():
    d = _data()
    del d["workloads"]
    assert "missing field 'workloads'" in _err(d)
    d = _data()
    del d["schema_version"]
    assert "missing field 'schema_version'" in _err(d)


def test_unknown_field_lists_allowed_fields():
    msg = _err(_data(treads=2))
    assert "unknown field 'treads'" in msg and "threads" in msg


def test_wrong_schema_version():
    assert "schema_version 1" in _err(_data(schema_version=2))


@pytest.mark.parametrize("change, needle", [
    ({"primary": {"prefill_tokens": 256, "decode_tokens": 32}}, "primary.prefill_tokens=256"),
    ({"primary": {"prefill_tokens": 128, "decode_tokens": 64}}, "context: 160"),
    ({"workloads": {"prefill": [0, 128], "decode": [{"context": 144}]}}, "prefill length 0"),
    ({"workloads": {"prefill": [128, 128], "decode": [{"context": 144}]}}, "repeat"),
    ({"workloads": {"prefill": [128], "decode": [{"context": 144, "tokens": 4}]}},
     "workloads.decode.0.tokens"),
    ({"device": "gpu"}, "cpu, cuda, cuda:N"),
    ({"device": "cuda:0", "backend": "openvino"}, "cannot run on device"),
    ({"dtype": "int4"}, "fp32, bf16, fp16, int8"),
    ({"backend": "onnxruntime", "dtype": "int8"}, "does not run dtype 'int8'"),
    ({"threads": -1}, "'threads'"),
    ({"name": "My CPU"}, "lower-case"),
])
def test_impossible_profiles(change, needle):
    assert needle in _err(_data(**change))


def test_file_name_must_match(tmp_path):
    f = tmp_path / "other.yaml"
    f.write_text(VALID)
    with pytest.raises(InputError, match="rename one"):
        load_profile(str(f))
    g = tmp_path / "my-cpu.yaml"
    g.write_text(VALID)
    assert load_profile(str(g)).name == "my-cpu"


def test_unknown_profile_did_you_mean():
    with pytest.raises(NotFoundError, match="Did you mean 'cpu-torch-fp32'"):
        load_profile("cpu-torch-fp33")
    with pytest.raises(InputError, match="no such file"):
        load_profile("/nowhere/profile.yaml")


def _fp(**kw) -> Fingerprint:
    base = dict(cpu_model="AMD EPYC 9654", cpu_vendor="AuthenticAMD",
                isa=("avx2", "avx512f"), logical_cores=2, usable_cores=2, memory_gib=23.5,
                governor="performance", machine="x86_64", versions={"torch": "2.13.0"})
    base.update(kw)
    return Fingerprint(**base)  # type: ignore[arg-type]


def test_fingerprint_collect_and_key_stability():
    fp = collect_fingerprint("cpu")
    assert fp.logical_cores >= 1 and fp.memory_gib > 0 and fp.cpu_model
    assert "torch" in fp.versions and fp.hwnas_version
    again = collect_fingerprint("cpu")
    assert fp.key() == again.key() and fp.key(["torch"]) == again.key(["torch"])
    d = fp.to_dict()
    assert d["key"] == fp.key() and isinstance(d["isa"], list)


def test_fingerprint_key_ignores_git_and_other_libraries():
    a = _fp(git_hash="abc", versions={"torch": "2.13.0", "openvino": "1"})
    b = _fp(git_hash="def", versions={"torch": "2.13.0"})
    assert a.key(["torch"]) == b.key(["torch"])
    assert a.key() != b.key()
    assert _fp(cpu_model="Intel Xeon").key(["torch"]) != b.key(["torch"])


def test_pinned_fingerprint_mismatch():
    fp = _fp()
    assert mismatches({"cpu_model": "AMD EPYC", "isa": ["avx2"], "logical_cores": 2}, fp) == []
    diffs = mismatches({"cpu_model": "Xeon", "isa": ["amx_bf16"], "logical_cores": 64}, fp)
    assert len(diffs) == 3 and "amx_bf16" in diffs[1]
    with pytest.raises(InputError, match="pinned to another machine.*--force"):
        check_pinned("p", {"gpu_name": "NVIDIA H200"}, fp)
    assert check_pinned("p", {"gpu_name": "NVIDIA H200"}, fp, force=True)
    assert "not a fingerprint field" in mismatches({"colour": "red"}, fp)[0]


class FakeNVML:
    """Just enough of pynvml for gpu_info / gpu_state."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_TEMPERATURE_GPU = 1, 2, 0

    class NVMLError(Exception):
        pass

    def __init__(self, reasons: int = 0x4) -> None:
        self.reasons = reasons

    def nvmlInit(self): pass
    def nvmlDeviceGetHandleByIndex(self, i): return ("h", i)
    def nvmlDeviceGetName(self, h): return b"NVIDIA H200"
    def nvmlDeviceGetUUID(self, h): return "GPU-1234"
    def nvmlSystemGetDriverVersion(self): return "570.1"
    def nvmlDeviceGetMemoryInfo(self, h): return type("M", (), {"total": 141 * 2**30})()
    def nvmlDeviceGetPowerManagementLimit(self, h): return 700000
    def nvmlDeviceGetMaxClockInfo(self, h, c): return 1980 if c == 1 else 3200
    def nvmlDeviceGetClockInfo(self, h, c): return 1755 if c == 1 else 3200
    def nvmlDeviceGetTemperature(self, h, s): return 41
    def nvmlDeviceGetPowerUsage(self, h): return 123000
    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h): return self.reasons


def test_gpu_fingerprint_through_fake_nvml():
    info = gpu_info("cuda:0", FakeNVML(0x4 | 0x40))
    assert info["name"] == "NVIDIA H200" and info["uuid"] == "GPU-1234"
    assert info["memory_gib"] == 141.0 and info["power_limit_w"] == 700.0
    assert info["throttle_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    fp = collect_fingerprint("cuda:0", nvml=FakeNVML())
    assert fp.gpu_name == "NVIDIA H200" and mismatches({"gpu_name": "H200"}, fp) == []
    assert throttle_names(0) == []


def test_gpu_fingerprint_error_is_clear():
    class Broken(FakeNVML):
        def nvmlInit(self):
            raise FakeNVML.NVMLError("Driver Not Loaded")
    with pytest.raises(InputError, match="NVML cannot read the GPU"):
        gpu_info("cuda:0", Broken())


def test_detect_writes_a_loadable_profile(tmp_path):
    hw = detect(device="cpu")
    assert hw.device == "cpu" and hw.backend == "torch" and hw.dtype == "fp32"
    assert mismatches(hw.fingerprint, collect_fingerprint("cpu")) == []
    path = write_profile(hw)
    assert load_profile(hw.name) == hw and path.is_file()
    out = write_profile(hw, tmp_path / f"{hw.name}.yaml")
    assert load_profile(str(out)) == hw


def test_builtin_yaml_files_are_the_package_data():
    from hwnas.hw_profiles.loader import builtin_dir
    assert sorted(p.stem for p in Path(builtin_dir()).glob("*.yaml")) == sorted(
        p.name for p in list_profiles() if p.name in profile_names())


def test_demo_default_profile_follows_this_machine(hwnas_cache, monkeypatch):
    """The demo's default profile runs on any CPU: on a machine its pin does not match, a
    copy with the same settings pinned to this machine is written once and reused."""
    import hwnas.hw_profiles as hp
    from hwnas.hw_profiles.fingerprint import mismatches
    from hwnas.pipeline.demo import DEFAULT_HW, profile_for_this_machine

    monkeypatch.setattr(hp, "collect_fingerprint", lambda device="cpu": _fp())
    assert profile_for_this_machine(DEFAULT_HW) == DEFAULT_HW  # the pin matches
    other = _fp(cpu_model="AMD EPYC 7B13", isa=("avx2", "fma"), logical_cores=4,
                usable_cores=4)
    monkeypatch.setattr(hp, "collect_fingerprint", lambda device="cpu": other)
    said: list[str] = []
    name = profile_for_this_machine(DEFAULT_HW, said.append)
    assert name != DEFAULT_HW and name.startswith(DEFAULT_HW + "-") and said
    mine, base = load_profile(name), load_profile(DEFAULT_HW)
    assert not mismatches(mine.fingerprint, other) and mismatches(base.fingerprint, other)
    assert mine.threads == 4 and mine.workloads == base.workloads
    assert mine.timer == base.timer and mine.backend == base.backend
    said.clear()
    assert profile_for_this_machine(DEFAULT_HW, said.append) == name and not said  # reused
