"""The NVML C functions the simulator answers, and the pynvml names that reach them."""

from __future__ import annotations

from collections.abc import Mapping

SIMULATED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # library and system
        "nvmlInit",
        "nvmlInit_v2",
        "nvmlInitWithFlags",
        "nvmlShutdown",
        "nvmlErrorString",
        "nvmlSystemGetDriverVersion",
        "nvmlSystemGetCudaDriverVersion",
        "nvmlSystemGetCudaDriverVersion_v2",
        "nvmlSystemGetProcessName",
        # enumeration and identity
        "nvmlDeviceGetCount",
        "nvmlDeviceGetCount_v2",
        "nvmlDeviceGetHandleByIndex",
        "nvmlDeviceGetHandleByIndex_v2",
        "nvmlDeviceGetHandleByUUID",
        "nvmlDeviceGetHandleByPciBusId_v2",
        "nvmlDeviceGetIndex",
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetSerial",
        "nvmlDeviceGetPciInfo_v3",
        # MIG
        "nvmlDeviceGetMigMode",
        "nvmlDeviceGetMaxMigDeviceCount",
        "nvmlDeviceGetMigDeviceHandleByIndex",
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
        "nvmlDeviceIsMigDeviceHandle",
        "nvmlDeviceGetGpuInstanceId",
        "nvmlDeviceGetComputeInstanceId",
        # readings
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetClockInfo",
        "nvmlDeviceGetMaxClockInfo",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetTemperatureThreshold",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetPowerManagementLimit",
        "nvmlDeviceGetTotalEnergyConsumption",
        "nvmlDeviceGetPcieThroughput",
        "nvmlDeviceGetPcieReplayCounter",
        "nvmlDeviceGetCurrPcieLinkWidth",
        "nvmlDeviceGetCurrPcieLinkGeneration",
        "nvmlDeviceGetMaxPcieLinkWidth",
        "nvmlDeviceGetMaxPcieLinkGeneration",
        "nvmlDeviceGetGpuMaxPcieLinkGeneration",
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
        "nvmlDeviceGetTotalEccErrors",
        "nvmlDeviceGetEccMode",
        "nvmlDeviceGetRemappedRows",
        "nvmlDeviceGetRetiredPagesPendingStatus",
        "nvmlDeviceGetPersistenceMode",
        "nvmlDeviceGetComputeMode",
        "nvmlDeviceGetComputeRunningProcesses_v2",
        "nvmlDeviceGetComputeRunningProcesses_v3",
        "nvmlDeviceGetSamples",
        "nvmlDeviceGetFieldValues",
        # events
        "nvmlEventSetCreate",
        "nvmlDeviceGetSupportedEventTypes",
        "nvmlDeviceRegisterEvents",
        "nvmlEventSetWait_v2",
        "nvmlEventSetFree",
        # GPU performance monitoring
        "nvmlGpmQueryDeviceSupport",
        "nvmlGpmSampleAlloc",
        "nvmlGpmSampleGet",
        "nvmlGpmSampleFree",
        "nvmlGpmMetricsGet",
    }
)
"""C symbols the simulated library exports (unless a profile lists them in ``missing_functions``).

Any other symbol is missing, as from an older driver: pynvml turns the AttributeError into
``NVMLError_FunctionNotFound``.
"""

ALIASES: Mapping[str, frozenset[str]] = {
    # pynvml's Python name -> the C symbols it calls
    "nvmlInit": frozenset({"nvmlInit", "nvmlInit_v2", "nvmlInitWithFlags"}),
    "nvmlDeviceGetCount": frozenset({"nvmlDeviceGetCount", "nvmlDeviceGetCount_v2"}),
    "nvmlDeviceGetHandleByIndex": frozenset({"nvmlDeviceGetHandleByIndex", "nvmlDeviceGetHandleByIndex_v2"}),
    "nvmlDeviceGetHandleByPciBusId": frozenset({"nvmlDeviceGetHandleByPciBusId_v2"}),
    "nvmlDeviceGetPciInfo": frozenset({"nvmlDeviceGetPciInfo_v3"}),
    "nvmlDeviceGetMemoryInfo": frozenset({"nvmlDeviceGetMemoryInfo", "nvmlDeviceGetMemoryInfo_v2"}),
    "nvmlDeviceGetComputeRunningProcesses": frozenset(
        {"nvmlDeviceGetComputeRunningProcesses_v2", "nvmlDeviceGetComputeRunningProcesses_v3"}
    ),
    "nvmlEventSetWait": frozenset({"nvmlEventSetWait_v2"}),
}
"""A fault injected on the name on the left hits every C symbol on the right."""

NO_INIT_NEEDED: frozenset[str] = frozenset(
    {"nvmlInit", "nvmlInit_v2", "nvmlInitWithFlags", "nvmlErrorString"}
)


def symbols_for(function: str) -> frozenset[str]:
    """The C symbols a fault on ``function`` (a C symbol, a pynvml name, or ``"*"``) applies to."""
    if function == "*":
        return SIMULATED_FUNCTIONS
    if function in ALIASES:
        return ALIASES[function]
    if function in SIMULATED_FUNCTIONS:
        return frozenset({function})
    msg = f"{function!r} is not a simulated NVML function; see gpubench.testing.nvml_sim.SIMULATED_FUNCTIONS"
    raise ValueError(msg)
