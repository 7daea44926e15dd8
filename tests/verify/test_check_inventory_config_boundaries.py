"""The inventory and config decisions' exact rows, with NVML's count at exactly PyTorch's."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.config import ConfigReading, decide_config
from gpubench.verify.checks.inventory import Inventory, decide_inventory
from gpubench.verify.verdicts import Verdict

INV = Inventory(device="cuda:1", torch_count=2, nvml_count=2, cuda_visible_devices=None)


def test_inventory_present() -> None:
    r = decide_inventory(INV)
    assert (r.check, r.device, r.verdict, r.message) == ("inventory", "cuda:1", Verdict.PASS, "cuda:1 present")
    assert (r.value, r.threshold, r.remedy) == ("torch 2, NVML 2, CVD unset", "cuda:1 exists", "")
    assert r.readings["torch_count"] == 2


def test_nvml_seeing_more_gpus_warns_only_when_nothing_hides_them() -> None:
    more = decide_inventory(replace(INV, nvml_count=3))
    assert more.verdict is Verdict.WARN
    assert more.message == ("NVML sees 3 GPU(s) but PyTorch only 2 with CUDA_VISIBLE_DEVICES unset: a GPU may be "
                            "in a bad state or hidden")
    assert more.remedy == ("compare `nvidia-smi -L` with `gpubench info`; check `dmesg` for Xid errors on the "
                           "missing GPU.")
    hidden = decide_inventory(replace(INV, nvml_count=3, cuda_visible_devices="0,1"))
    assert (hidden.verdict, hidden.value) == (Verdict.PASS, "torch 2, NVML 3, CVD '0,1'")
    assert decide_inventory(replace(INV, nvml_count=1)).verdict is Verdict.PASS


def test_unusable_device_fails_with_its_reason_and_remedy() -> None:
    r = decide_inventory(replace(INV, nvml_count=None, unusable_code="index", unusable_reason="cuda:1 > count",
                                 unusable_remedy="pick cuda:0"))
    assert (r.verdict, r.message, r.remedy) == (Verdict.FAIL, "cuda:1 unusable: cuda:1 > count", "pick cuda:0")
    assert r.value == "torch 2, NVML N/A, CVD unset"
    no_remedy = decide_inventory(replace(INV, unusable_reason="gone"))
    assert (no_remedy.message, no_remedy.remedy) == ("cuda:1 unusable: gone", "")


def test_nvml_count_not_readable_is_noted() -> None:
    assert decide_inventory(replace(INV, nvml_count=None)).message == "cuda:1 present; NVML count N/A (not readable)"
    r = decide_inventory(replace(INV, nvml_count=None, nvml_error="NVML not available"))
    assert (r.verdict, r.message) == (Verdict.PASS, "cuda:1 present; NVML count N/A (NVML not available)")


CONF = ConfigReading(device="cuda:1", device_source="./dl.config.sdn:2:11", files=("./dl.config.sdn",),
                     dtype="f32", dtype_problem=None, device_problem=None)


def test_config_valid() -> None:
    r = decide_config(CONF)
    assert (r.check, r.verdict, r.value, r.threshold, r.remedy) == (
        "config", Verdict.PASS, "./dl.config.sdn", "file found, valid", "")
    assert r.message == "valid (./dl.config.sdn); device cuda:1 from ./dl.config.sdn:2:11; dtype f32 usable"
    assert r.readings["files"] == ["./dl.config.sdn"]


def test_config_defaults_only_warns() -> None:
    r = decide_config(replace(CONF, files=(), device_source="default"))
    assert (r.verdict, r.value) == (Verdict.WARN, "defaults")
    assert r.message == ("no dl.config.sdn found (looked in ./, --config/GPUBENCH_CONFIG, ~/.simple/, "
                         "~/.config/gpubench/); built-in defaults used")
    assert r.remedy == "create ./dl.config.sdn (e.g. `dl:` / `  device: cuda:1`) or pass --config FILE."


def test_config_dtype_problem_fails_and_warnings_are_noted() -> None:
    r = decide_config(replace(CONF, dtype="bf16", dtype_problem="needs compute capability 8.0",
                              warnings=("unknown key dl.devcie", "x")))
    assert (r.verdict, r.remedy) == (Verdict.FAIL, "set dl.dtype to f32 or f16.")
    assert r.message == ("dtype bf16 on cuda:1: needs compute capability 8.0; warning: unknown key dl.devcie; "
                         "warning: x")
    unusable = decide_config(replace(CONF, files=("a.sdn", "b.sdn"), device_problem="no such GPU"))
    assert unusable.message == ("valid (a.sdn, b.sdn); device cuda:1 from ./dl.config.sdn:2:11; dtype f32 not "
                                "checked: cuda:1 unusable (see inventory)")
