"""Device parsing, the exact reasons a device cannot be used, fallback, and dtype support."""

from __future__ import annotations

import pytest

from gpubench.devices import (
    CudaDeviceInfo,
    CudaProbe,
    DeviceError,
    DeviceSpec,
    dtype_support,
    parse_device,
    parse_device_list,
    probe_cuda,
    resolve,
    torch_dtype_name,
    why_unusable,
)


def gpu(index: int, name: str = "NVIDIA H100 80GB HBM3", cc: tuple[int, int] = (9, 0)) -> CudaDeviceInfo:
    return CudaDeviceInfo(index, name, 80 * 2**30, cc, f"GPU-0000000{index}-aaaa-bbbb-cccc-dddddddddddd", None)


def probe(n: int = 0, **kw: object) -> CudaProbe:
    base: dict[str, object] = {
        "torch_version": "2.14.1+cu130",
        "cuda_build": "13.0",
        "cuda_available": n > 0,
        "device_count": n,
        "devices": tuple(gpu(i) for i in range(n)),
        "nvml_device_count": n or None,
    }
    base.update(kw)
    return CudaProbe(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "kind", "index", "name"),
    [
        ("cpu", "cpu", None, "cpu"),
        ("CPU ", "cpu", None, "cpu"),
        ("gpu", "cuda", 0, "cuda:0"),
        ("cuda", "cuda", 0, "cuda:0"),
        ("cuda:0", "cuda", 0, "cuda:0"),
        ("cuda:1", "cuda", 1, "cuda:1"),
        ("cuda:12", "cuda", 12, "cuda:12"),
    ],
)
def test_parse_device_accepts_the_documented_forms(text: str, kind: str, index: int | None, name: str) -> None:
    spec = parse_device(text)
    assert (spec.kind, spec.index, spec.name) == (kind, index, name)
    assert spec.text == text


@pytest.mark.parametrize("text", ["", "cuda:", "cuda:-1", "cuda:x", "gpu:1", "tpu", "cuda 1", "cuda:1:2"])
def test_parse_device_rejects_other_forms_naming_the_allowed_ones(text: str) -> None:
    with pytest.raises(DeviceError, match=r"expected one of cpu, gpu \(= cuda:0\), cuda \(= cuda:0\), cuda:N"):
        parse_device(text)


def test_parse_device_explains_non_cuda_backends() -> None:
    with pytest.raises(DeviceError, match="drives NVIDIA GPUs through CUDA"):
        parse_device("mps")


def test_parse_device_list_keeps_order_and_drops_duplicates() -> None:
    assert [s.name for s in parse_device_list("cuda:1, cuda:0,gpu,cpu")] == ["cuda:1", "cuda:0", "cpu"]
    assert [s.name for s in parse_device_list(["cpu"])] == ["cpu"]
    with pytest.raises(DeviceError, match="no device named"):
        parse_device_list(" , ")


def test_torch_missing_is_the_first_reason_even_for_cpu() -> None:
    p = CudaProbe(None, torch_error="ModuleNotFoundError: No module named 'torch'")
    problem = why_unusable(parse_device("cpu"), p)
    assert problem is not None and problem.code == "torch_missing"
    assert "No module named 'torch'" in problem.reason and "pip install torch" in problem.remedy


def test_cpu_only_build_names_the_build() -> None:
    problem = why_unusable(parse_device("cuda:1"), probe(cuda_build=None, torch_version="2.14.1+cpu"))
    assert problem is not None and problem.code == "cpu_only_build"
    assert "2.14.1+cpu" in problem.reason and "cuda:1" in problem.reason
    assert "CUDA build of PyTorch" in problem.remedy


def test_no_driver_quotes_what_nvml_said() -> None:
    p = probe(0, nvml_error="NVML not available: NVMLError_LibraryNotFound")
    problem = why_unusable(parse_device("cuda:1"), p)
    assert problem is not None and problem.code == "no_driver"
    assert "NVMLError_LibraryNotFound" in problem.reason and "nvidia-smi" in problem.remedy


def test_cuda_visible_devices_hiding_the_gpu_is_named() -> None:
    p = probe(1, cuda_visible_devices="0", nvml_device_count=2)
    problem = why_unusable(parse_device("cuda:1"), p)
    assert problem is not None and problem.code == "hidden_by_cvd"
    assert "CUDA_VISIBLE_DEVICES='0'" in problem.reason and "NVML sees 2 GPU(s)" in problem.reason
    assert "renumbers" in problem.remedy


def test_empty_cuda_visible_devices_hides_every_gpu() -> None:
    p = probe(0, cuda_visible_devices="", nvml_device_count=2)
    problem = why_unusable(parse_device("cuda:0"), p)
    assert problem is not None and problem.code == "hidden_by_cvd"


def test_cuda_visible_devices_naming_a_missing_gpu_is_blamed_not_the_driver() -> None:
    # one GPU in the machine, CUDA_VISIBLE_DEVICES=7: CUDA sees none, NVML still sees the one
    p = probe(0, cuda_visible_devices="7", nvml_device_count=1)
    problem = why_unusable(parse_device("cuda:1"), p)
    assert problem is not None and problem.code == "hidden_by_cvd"
    assert "CUDA_VISIBLE_DEVICES='7' exposes 0 GPU(s)" in problem.reason


def test_index_beyond_count_lists_the_devices_there_are() -> None:
    problem = why_unusable(parse_device("cuda:1"), probe(1))
    assert problem is not None and problem.code == "index_out_of_range"
    assert "only 1 GPU(s) visible (cuda:0 (NVIDIA H100 80GB HBM3))" in problem.reason
    assert "cuda:0..cuda:0" in problem.remedy


def test_usable_devices_have_no_reason() -> None:
    assert why_unusable(parse_device("cuda:1"), probe(2)) is None
    assert why_unusable(parse_device("cpu"), probe(0)) is None


def test_fallback_next_picks_the_next_usable_gpu_then_wraps() -> None:
    two = probe(2)
    assert resolve(parse_device("cuda:1"), two).fallback is False
    three_visible_one_missing = probe(2)
    r = resolve(parse_device("cuda:5"), three_visible_one_missing, "next")
    # nothing after 5; wraps around to cuda:0
    assert r.device == DeviceSpec("cuda", 0) and r.fallback
    assert r.note.startswith("FALLBACK: cuda:5 requested but unusable (only 2 GPU(s) visible")
    assert r.note.endswith("ran on cuda:0 instead")


def test_fallback_next_without_gpus_is_cpu_and_cpu_policy_is_cpu() -> None:
    assert resolve(parse_device("cuda:1"), probe(0), "next").device == DeviceSpec("cpu")
    assert resolve(parse_device("cuda:3"), probe(2), "cpu").device == DeviceSpec("cpu")


def test_fallback_none_gives_no_device_and_the_reason() -> None:
    r = resolve(parse_device("cuda:1"), probe(0), "none")
    assert r.device is None and not r.fallback
    assert r.note.startswith("cuda:1 unusable: no usable NVIDIA driver")


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="expected one of next, cpu, none"):
        resolve(parse_device("cpu"), probe(0), "later")


def test_dtype_support_by_compute_capability() -> None:
    p = CudaProbe("2.14.1", cuda_build="13.0", cuda_available=True, device_count=2,
                  devices=(gpu(0, "Tesla V100", (7, 0)), gpu(1, "NVIDIA A100", (8, 0))))
    v100 = dtype_support(parse_device("cuda:0"), p)
    assert v100["f32"] is None and v100["f16"] is None
    assert v100["bf16"] is not None and "compute capability 7.0" in v100["bf16"]
    assert all(reason is None for reason in dtype_support(parse_device("cuda:1"), p).values())
    assert all(reason is None for reason in dtype_support(parse_device("cpu"), p).values())
    missing = dtype_support(parse_device("cuda:7"), p)
    assert missing["f32"] == "cuda:7 is not available"


def test_torch_dtype_names() -> None:
    assert [torch_dtype_name(d) for d in ("f16", "bf16", "f32", "f64")] == [
        "float16", "bfloat16", "float32", "float64"]
    with pytest.raises(ValueError, match="expected one of f16, bf16, f32, f64"):
        torch_dtype_name("f8")


def test_probe_on_this_machine_agrees_with_torch() -> None:
    torch = pytest.importorskip("torch")
    p = probe_cuda()
    assert p.torch_version == str(torch.__version__)
    assert p.cuda_build == torch.version.cuda
    assert p.device_count == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert len(p.devices) == p.device_count
    if p.device_count == 0:
        # the reason names what is missing, whatever this machine lacks
        assert why_unusable(parse_device("cuda:0"), p) is not None
