"""Simulated NVML: library, system, enumeration, identity, MIG and event functions.

Each method is named after the C symbol it stands for and takes the arguments exactly as pynvml's
wrapper passes them; it returns an ``nvmlReturn_t``. Where a detail of the real library is not
documented, the choice made here is said in a comment.
"""

from __future__ import annotations

import ctypes
from typing import Any

import pynvml

from gpubench.testing.nvml_sim.profile import error_code
from gpubench.testing.nvml_sim.state import (
    INVALID_ARGUMENT,
    NOT_FOUND,
    NOT_SUPPORTED,
    SUCCESS,
    TIMEOUT,
    UNINITIALIZED,
    DeviceRef,
    EventSet,
    MachineState,
    address,
    out,
    set_pointer,
    value,
    write_text,
)

_NO_ID = 0xFFFFFFFF  # NVML's "not applicable" for GPU / compute instance ids outside MIG
_XID: int = pynvml.nvmlEventTypeXidCriticalError
_ECC_EVENTS: int = pynvml.nvmlEventTypeSingleBitEccError | pynvml.nvmlEventTypeDoubleBitEccError
_OTHER_EVENTS: int = pynvml.nvmlEventTypePState | pynvml.nvmlEventTypeClock | _XID


class SystemFunctions(MachineState):
    # library -----------------------------------------------------------------------------------

    def nvmlInitWithFlags(self, flags: Any = 0) -> int:
        if self.profile.init_error is not None:
            return error_code(self.profile.init_error)
        self.init_count += 1
        return SUCCESS

    def nvmlInit_v2(self) -> int:
        return self.nvmlInitWithFlags(0)

    def nvmlInit(self) -> int:
        return self.nvmlInitWithFlags(0)

    def nvmlShutdown(self) -> int:
        if self.init_count == 0:
            return UNINITIALIZED
        self.init_count -= 1
        return SUCCESS

    def nvmlErrorString(self, result: Any) -> bytes:
        code = value(result)
        text = str(
            pynvml.NVMLError._errcode_to_string.get(code, f"Unknown Error (simulated NVML code {code})")
        )
        return text.encode()

    # system ------------------------------------------------------------------------------------

    def nvmlSystemGetDriverVersion(self, buf: Any, length: Any) -> int:
        if self.profile.driver_version is None:
            return NOT_SUPPORTED
        return write_text(buf, length, self.profile.driver_version)

    def nvmlSystemGetCudaDriverVersion(self, version: Any) -> int:
        if self.profile.cuda_driver_version is None:
            return NOT_SUPPORTED
        out(version).value = self.profile.cuda_driver_version
        return SUCCESS

    def nvmlSystemGetCudaDriverVersion_v2(self, version: Any) -> int:
        return self.nvmlSystemGetCudaDriverVersion(version)

    def nvmlSystemGetProcessName(self, pid: Any, buf: Any, length: Any) -> int:
        wanted = value(pid)
        for gpu in self.profile.gpus:
            for process in gpu.processes:
                if self.process_pid(process) == wanted and process.name is not None:
                    return write_text(buf, length, process.name)
        return NOT_FOUND  # a PID NVML does not know (e.g. one in another PID namespace)

    # enumeration -------------------------------------------------------------------------------

    def nvmlDeviceGetCount_v2(self, count: Any) -> int:
        out(count).value = len(self.profile.gpus)
        return SUCCESS

    def nvmlDeviceGetCount(self, count: Any) -> int:
        return self.nvmlDeviceGetCount_v2(count)

    def nvmlDeviceGetHandleByIndex_v2(self, index: Any, device: Any) -> int:
        i = value(index)
        if not 0 <= i < len(self.profile.gpus):
            return INVALID_ARGUMENT
        return self.give_handle(device, DeviceRef(i))

    def nvmlDeviceGetHandleByIndex(self, index: Any, device: Any) -> int:
        return self.nvmlDeviceGetHandleByIndex_v2(index, device)

    def nvmlDeviceGetHandleByUUID(self, uuid: Any, device: Any) -> int:
        raw = getattr(uuid, "value", uuid)
        if not isinstance(raw, bytes):
            return INVALID_ARGUMENT
        ref = self.find_uuid(raw.decode(errors="replace"))
        if ref is None:
            return NOT_FOUND
        return self.give_handle(device, ref)

    def nvmlDeviceGetHandleByPciBusId_v2(self, bus_id: Any, device: Any) -> int:
        raw = getattr(bus_id, "value", bus_id)
        if not isinstance(raw, bytes):
            return INVALID_ARGUMENT
        wanted = raw.decode(errors="replace").upper()
        for index, gpu in enumerate(self.profile.gpus):
            # NVML accepts the 4- and 8-digit domain forms
            if gpu.pci is not None and wanted in (gpu.pci.bus_id, gpu.pci.bus_id[4:]):
                return self.give_handle(device, DeviceRef(index))
        return NOT_FOUND

    # identity ----------------------------------------------------------------------------------

    def _whole_gpu(self, handle: Any) -> tuple[DeviceRef | None, int]:
        """The ref for a handle that must be a whole GPU; MIG handles get NOT_SUPPORTED.

        Assumption: NVML documents few per-function MIG rules; this simulator answers only the
        MIG-aware functions (name, UUID, memory, processes, instance ids) on a MIG device handle.
        """
        ref = self.ref(handle)
        if ref is None:
            return None, INVALID_ARGUMENT
        if ref.mig is not None:
            return None, NOT_SUPPORTED
        return ref, SUCCESS

    def nvmlDeviceGetIndex(self, handle: Any, index: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        out(index).value = ref.gpu
        return SUCCESS

    def nvmlDeviceGetName(self, handle: Any, buf: Any, length: Any) -> int:
        ref = self.ref(handle)
        if ref is None:
            return INVALID_ARGUMENT
        mig = self.mig_device(ref)
        name = self.gpu(ref).name if mig is None else f"{self.gpu(ref).name} MIG {mig.profile}"
        return write_text(buf, length, name)

    def nvmlDeviceGetUUID(self, handle: Any, buf: Any, length: Any) -> int:
        ref = self.ref(handle)
        if ref is None:
            return INVALID_ARGUMENT
        mig = self.mig_device(ref)
        return write_text(buf, length, self.gpu(ref).uuid if mig is None else mig.uuid)

    def nvmlDeviceGetSerial(self, handle: Any, buf: Any, length: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        serial = self.gpu(ref).serial
        return NOT_SUPPORTED if serial is None else write_text(buf, length, serial)

    def nvmlDeviceGetPciInfo_v3(self, handle: Any, info: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        pci, target = self.gpu(ref).pci, out(info)
        if pci is None:
            return NOT_SUPPORTED
        target.busIdLegacy = pci.bus_id[4:].encode()  # the 16-byte legacy field holds a 4-digit domain
        target.busId = pci.bus_id.encode()
        target.domain, target.bus, target.device = pci.domain, pci.bus, pci.device
        target.pciDeviceId = int(pci.device_id, 16)
        target.pciSubSystemId = int(pci.subsystem_id, 16)
        return SUCCESS

    # MIG ---------------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, handle: Any, current: Any, pending: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        mig = self.gpu(ref).mig
        if mig is None:
            return NOT_SUPPORTED
        out(current).value, out(pending).value = int(mig.current), int(mig.pending)
        return SUCCESS

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any, count: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        mig = self.gpu(ref).mig
        if mig is None:
            return NOT_SUPPORTED
        out(count).value = mig.max_devices
        return SUCCESS

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: Any, mig_device: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        mig, i = self.gpu(ref).mig, value(index)
        if mig is None:
            return NOT_SUPPORTED
        if not 0 <= i < mig.max_devices:
            return INVALID_ARGUMENT
        if i >= len(mig.devices):
            return NOT_FOUND  # an index no compute instance holds
        return self.give_handle(mig_device, DeviceRef(ref.gpu, i))

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, mig_device: Any, device: Any) -> int:
        ref = self.ref(mig_device)
        if ref is None or ref.mig is None:
            return INVALID_ARGUMENT
        return self.give_handle(device, DeviceRef(ref.gpu))

    def nvmlDeviceIsMigDeviceHandle(self, handle: Any, is_mig: Any) -> int:
        ref = self.ref(handle)
        if ref is None:
            return INVALID_ARGUMENT
        out(is_mig).value = int(ref.mig is not None)
        return SUCCESS

    def _instance_id(self, handle: Any, target: Any, which: str) -> int:
        ref = self.ref(handle)
        if ref is None:
            return INVALID_ARGUMENT
        mig = self.mig_device(ref)
        if mig is None:
            return NOT_SUPPORTED  # a whole GPU is no instance
        out(target).value = getattr(mig, which)
        return SUCCESS

    def nvmlDeviceGetGpuInstanceId(self, handle: Any, instance: Any) -> int:
        return self._instance_id(handle, instance, "gpu_instance_id")

    def nvmlDeviceGetComputeInstanceId(self, handle: Any, instance: Any) -> int:
        return self._instance_id(handle, instance, "compute_instance_id")

    # events ------------------------------------------------------------------------------------

    def nvmlEventSetCreate(self, event_set: Any) -> int:
        addr = self.new_opaque()
        self.event_sets[addr] = EventSet()
        set_pointer(out(event_set), addr)
        return SUCCESS

    def supported_events(self, gpu: int) -> int:
        """Assumption: every GPU reports XID, P-state and clock events, and ECC events when it has ECC."""
        has_ecc = self.profile.gpus[gpu].ecc_mode is not None
        return _OTHER_EVENTS | (_ECC_EVENTS if has_ecc else 0)

    def nvmlDeviceGetSupportedEventTypes(self, handle: Any, types: Any) -> int:
        ref, code = self._whole_gpu(handle)
        if ref is None:
            return code
        out(types).value = self.supported_events(ref.gpu)
        return SUCCESS

    def nvmlDeviceRegisterEvents(self, handle: Any, types: Any, event_set: Any) -> int:
        ref, code = self._whole_gpu(handle)
        events = self.event_sets.get(address(event_set) or 0)
        if ref is None or events is None:
            return code if ref is None else INVALID_ARGUMENT
        mask = value(types)
        if mask & ~self.supported_events(ref.gpu):
            return NOT_SUPPORTED
        events.registered[ref.gpu] = events.registered.get(ref.gpu, 0) | mask
        if mask & _XID:  # the profile's XIDs reach every set registered for them, once
            events.pending.extend((ref.gpu, _XID, xid) for xid in self.xid_queue[ref.gpu])
        return SUCCESS

    def deliver_xid(self, gpu: int, xid: int) -> int:
        """Queue XID ``xid`` on ``gpu`` for every event set registered for XID events; how many got it."""
        delivered = 0
        with self.lock:
            for events in self.event_sets.values():
                if events.registered.get(gpu, 0) & _XID:
                    events.pending.append((gpu, _XID, xid))
                    delivered += 1
        return delivered

    def nvmlEventSetWait_v2(self, event_set: Any, data: Any, timeout_ms: Any) -> int:
        events = self.event_sets.get(address(event_set) or 0)
        if events is None:
            return INVALID_ARGUMENT
        if not events.pending:
            return TIMEOUT  # returned at once: the simulator never blocks for timeout_ms
        gpu, kind, payload = events.pending.popleft()
        target = out(data)
        target.device = ctypes.cast(self.handle_address(DeviceRef(gpu)), pynvml.c_nvmlDevice_t)
        target.eventType, target.eventData = kind, payload
        target.gpuInstanceId = target.computeInstanceId = _NO_ID
        return SUCCESS

    def nvmlEventSetFree(self, event_set: Any) -> int:
        if self.event_sets.pop(address(event_set) or 0, None) is None:
            return INVALID_ARGUMENT
        return SUCCESS
