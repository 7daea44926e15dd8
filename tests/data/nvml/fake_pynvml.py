"""A fake ``pynvml`` module driven by the JSON readings in this folder (installed with nvml.reset_for_tests).

It implements the handful of NVML calls gpubench makes, with NVML's semantics: a value written as
``"NotSupported"`` raises like ``NVMLError_NotSupported``; a list given for a reading that is polled
(temperature, clock event reasons, PCIe link, replay counter) is returned one element per call, the last
one repeating.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).parent
NOT_SUPPORTED = "NotSupported"


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""

    def __init__(self, value: int, text: str) -> None:
        super().__init__(text)
        self.value = value


class NVMLError_NotSupported(NVMLError):
    def __init__(self) -> None:
        super().__init__(3, "Not Supported")


class NVMLError_Timeout(NVMLError):
    def __init__(self) -> None:
        super().__init__(10, "Timeout")


class NVMLError_NotFound(NVMLError):
    def __init__(self) -> None:
        super().__init__(6, "Not Found")


class _Handle:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.cursor: dict[str, int] = {}

    def get(self, key: str, polled: bool = False) -> Any:
        if key not in self.spec:
            raise NVMLError_NotSupported()
        value = self.spec[key]
        if polled and isinstance(value, list):
            i = self.cursor.get(key, 0)
            self.cursor[key] = i + 1
            value = value[min(i, len(value) - 1)]
        if value == NOT_SUPPORTED:
            raise NVMLError_NotSupported()
        return value


class FakePynvml:
    """The module object: attribute access gives NVML functions."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.handles = [_Handle(d) for d in data["devices"]]
        self.calls: list[str] = []

    # system
    def nvmlInit(self) -> None:
        return None

    def nvmlSystemGetDriverVersion(self) -> str:
        return str(self.data["driver_version"])

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return int(self.data["cuda_driver_version"])

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return int(self.data["cuda_driver_version"])

    def nvmlDeviceGetCount(self) -> int:
        return len(self.handles)

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        for h in self.handles:
            for p in h.spec.get("processes", []) if isinstance(h.spec.get("processes"), list) else []:
                if p["pid"] == pid:
                    return str(p["name"])
        raise NVMLError_NotFound()

    # handles
    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> _Handle:
        for h in self.handles:
            if h.spec["uuid"] == uuid:
                return h
        raise NVMLError_NotFound()

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        return self.handles[index]

    def nvmlDeviceGetIndex(self, h: _Handle) -> int:
        return int(h.spec["index"])

    def nvmlDeviceGetName(self, h: _Handle) -> str:
        return str(h.get("name"))

    def nvmlDeviceGetMemoryInfo(self, h: _Handle) -> SimpleNamespace:
        total = int(h.get("memory_total"))
        return SimpleNamespace(total=total, free=total, used=0)

    def nvmlDeviceGetPciInfo_v3(self, h: _Handle) -> SimpleNamespace:
        pci = h.get("pci")
        return SimpleNamespace(
            domain=pci["domain"], bus=pci["bus"], device=pci["device"], busId=pci["busId"].encode()
        )

    # memory health
    def nvmlDeviceGetEccMode(self, h: _Handle) -> list[int]:
        return list(h.get("ecc_mode"))

    def nvmlDeviceGetTotalEccErrors(self, h: _Handle, error_type: int, counter: int) -> int:
        assert (error_type, counter) == (1, 0), "gpubench reads volatile uncorrected errors only"
        return int(h.get("ecc_volatile_uncorrected", polled=True))

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: _Handle) -> int:
        return int(h.get("retired_pages_pending"))

    def nvmlDeviceGetRemappedRows(self, h: _Handle) -> tuple[int, int, int, int]:
        return tuple(h.get("remapped_rows"))  # type: ignore[return-value]

    def nvmlDeviceGetFieldValues(self, h: _Handle, ids: list[int]) -> list[SimpleNamespace]:
        out = []
        for field_id in ids:
            assert field_id == 230, "only NVML_FI_DEV_GET_GPU_RECOVERY_ACTION is faked"
            value = h.spec.get("recovery_action", NOT_SUPPORTED)
            ret = 3 if value == NOT_SUPPORTED else 0
            out.append(SimpleNamespace(nvmlReturn=ret, value=SimpleNamespace(uiVal=0 if ret else int(value))))
        return out

    # under load
    def nvmlDeviceGetCurrentClocksEventReasons(self, h: _Handle) -> int:
        return int(h.get("clocks_event_reasons", polled=True))

    def nvmlDeviceGetTemperature(self, h: _Handle, sensor: int) -> int:
        return int(h.get("temperature", polled=True))

    def nvmlDeviceGetTemperatureThreshold(self, h: _Handle, kind: int) -> int:
        thresholds = h.get("temperature_thresholds")
        if str(kind) not in thresholds:
            raise NVMLError_NotSupported()
        return int(thresholds[str(kind)])

    def _pcie(self, h: _Handle, key: str) -> int:
        pcie = h.get("pcie")
        if key not in pcie or pcie[key] == NOT_SUPPORTED:
            raise NVMLError_NotSupported()
        value = pcie[key]
        return int(value[-1] if isinstance(value, list) else value)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: _Handle) -> int:
        return self._pcie(h, "curr_gen")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: _Handle) -> int:
        return self._pcie(h, "curr_width")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._pcie(h, "max_gen")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: _Handle) -> int:
        return self._pcie(h, "max_width")

    def nvmlDeviceGetGpuMaxPcieLinkGeneration(self, h: _Handle) -> int:
        return self._pcie(h, "gpu_max_gen")

    def nvmlDeviceGetPcieReplayCounter(self, h: _Handle) -> int:
        return int(h.get("replay_counter", polled=True))

    # XID events
    def nvmlEventSetCreate(self) -> dict[str, Any]:
        return {"events": []}

    def nvmlDeviceRegisterEvents(self, h: _Handle, mask: int, es: dict[str, Any]) -> None:
        events = h.get("xid_events")
        es["events"].extend(SimpleNamespace(eventType=0x8, eventData=x) for x in events)

    def nvmlEventSetWait_v2(self, es: dict[str, Any], timeout_ms: int) -> SimpleNamespace:
        if not es["events"]:
            raise NVMLError_Timeout()
        return es["events"].pop(0)  # type: ignore[no-any-return]

    def nvmlEventSetFree(self, es: dict[str, Any]) -> None:
        return None

    # contention and modes
    def nvmlDeviceGetComputeRunningProcesses(self, h: _Handle) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used_memory"]) for p in h.get("processes")]

    def nvmlDeviceGetComputeMode(self, h: _Handle) -> int:
        return int(h.get("compute_mode"))

    def nvmlDeviceGetPersistenceMode(self, h: _Handle) -> int:
        return int(h.get("persistence_mode"))

    def nvmlDeviceGetMigMode(self, h: _Handle) -> list[int]:
        return list(h.get("mig_mode"))


def load(name: str) -> dict[str, Any]:
    """The fixture ``name`` (without .json) from this folder."""
    return json.loads((HERE / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def fixtures() -> list[str]:
    return sorted(p.stem for p in HERE.glob("*.json"))
