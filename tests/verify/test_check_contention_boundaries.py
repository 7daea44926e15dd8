"""The contention decision's exact rows, and how this process's own entry is told from the others."""

from __future__ import annotations

from dataclasses import replace

from gpubench.verify.checks.contention import ContentionReading, ProcessInfo, _split_own, decide_contention
from gpubench.verify.probing import LOST_REMEDY
from gpubench.verify.verdicts import Verdict

ALONE = ContentionReading("cuda:0", (), compute_mode=0, persistence=True, mig_current=False, mig_pending=False)
STOP = "stop them or pick another GPU; measurements now share the GPU with them."


def test_alone_on_the_gpu() -> None:
    r = decide_contention(ALONE)
    assert (r.check, r.verdict, r.value, r.threshold, r.unit, r.remedy) == (
        "contention", Verdict.PASS, 0, 0, "other processes", "")
    assert r.message == "no other processes; compute mode default, persistence on, MIG off"
    na = decide_contention(ContentionReading("cuda:0", None))
    assert (na.verdict, na.value) == (Verdict.PASS, "N/A")
    assert na.message == "no other processes; compute mode N/A, persistence N/A, MIG N/A; process list N/A"


def test_one_other_process_warns_naming_it() -> None:
    r = decide_contention(replace(ALONE, processes=(ProcessInfo(4242, "python", 3 << 30),)))
    assert (r.verdict, r.value, r.remedy) == (Verdict.WARN, 1, STOP)
    assert r.message == "1 other process(es) on cuda:0: pid 4242 (python, 3.0 GiB)"


def test_more_than_five_are_counted_not_listed() -> None:
    procs = tuple(ProcessInfo(100 + i, None, None) for i in range(7))
    r = decide_contention(replace(ALONE, processes=procs))
    assert r.message == ("7 other process(es) on cuda:0: pid 100 (?, N/A), pid 101 (?, N/A), pid 102 (?, N/A), "
                         "pid 103 (?, N/A), pid 104 (?, N/A) and 2 more")
    five = decide_contention(replace(ALONE, processes=procs[:5]))
    assert "more" not in five.message


def test_this_process_among_host_pids() -> None:
    two = (ProcessInfo(1, "a", 1 << 20), ProcessInfo(2, "b", 1 << 20))
    r = decide_contention(replace(ALONE, processes=two, self_among=True))
    assert (r.verdict, r.value) == (Verdict.WARN, 1)
    assert r.message == ("1 other process(es) on cuda:0: pid 1 (a, 1.0 MiB), pid 2 (b, 1.0 MiB) (one of these is "
                         "this process: NVML reports host PIDs and this process runs in a container)")
    just_me = decide_contention(replace(ALONE, processes=two[:1], self_among=True))
    assert (just_me.verdict, just_me.value) == (Verdict.PASS, 0)
    host = decide_contention(replace(ALONE, own_entry="pid 7: the only entry while this process holds a context "
                                                      "here (a host PID)"))
    assert host.message.endswith("; this process is pid 7: the only entry while this process holds a context "
                                 "here (a host PID)")
    assert "this process is" not in decide_contention(replace(ALONE, own_entry="pid 7")).message


def test_compute_modes() -> None:
    prohibited = decide_contention(replace(ALONE, compute_mode=2))
    assert (prohibited.verdict, prohibited.message, prohibited.remedy) == (
        Verdict.FAIL, "compute mode is prohibited: no process may use this GPU",
        "nvidia-smi -c DEFAULT -i <index> (as root).")
    other = (ProcessInfo(9, "x", None),)
    for mode, name in ((1, "exclusive_thread"), (3, "exclusive_process")):
        r = decide_contention(replace(ALONE, compute_mode=mode, processes=other))
        assert r.message == (f"WARN: 1 other process(es) on cuda:0: pid 9 (x, N/A); WARN: compute mode {name} "
                             "with another process on the GPU: this one may be refused")
        assert r.remedy == STOP + " wait for the other process or use nvidia-smi -c DEFAULT."
        assert decide_contention(replace(ALONE, compute_mode=mode)).message.startswith(
            f"no other processes; compute mode {name},")
    assert "compute mode 7," in decide_contention(replace(ALONE, compute_mode=7)).message


def test_mig_and_persistence() -> None:
    mig = decide_contention(replace(ALONE, mig_current=True, mig_pending=True))
    assert (mig.verdict, mig.message) == (Verdict.WARN,
                                          "MIG mode is on: whole-GPU measurements do not apply to a MIG slice")
    assert mig.remedy == "disable MIG (nvidia-smi -mig 0) for whole-GPU verification, or verify the MIG instance."
    instance = decide_contention(replace(ALONE, mig_current=True, mig_pending=True, mig_instance=True))
    assert instance.verdict is Verdict.PASS
    assert instance.message.endswith("MIG on; a MIG instance (the GPU's MIG mode is on)")
    pending = decide_contention(replace(ALONE, mig_pending=True, persistence=False))
    assert pending.message == ("no other processes; compute mode default, persistence off, MIG off; MIG mode change "
                               "pending a GPU reset; persistence mode off (first CUDA call of each process is "
                               "slower; nvidia-smi -pm 1)")
    assert "pending" not in decide_contention(replace(ALONE, mig_pending=None)).message


def test_nvml_errors() -> None:
    skip = decide_contention(ContentionReading("cuda:0", None, nvml_error="NoPermission"))
    assert (skip.verdict, skip.value, skip.remedy) == (Verdict.SKIP, "N/A", "")
    assert skip.message == "NVML cannot list its processes or modes: NoPermission"
    lost = decide_contention(ContentionReading("cuda:0", None, nvml_error="GpuIsLost"))
    assert (lost.verdict, lost.message, lost.remedy) == (Verdict.FAIL, "NVML lost the GPU: GpuIsLost", LOST_REMEDY)
    listed = decide_contention(replace(ALONE, nvml_error="partial"))  # processes listed: decided normally
    assert listed.verdict is Verdict.PASS


def test_split_own_entries() -> None:
    entries = [(10, 1), (20, None)]
    assert _split_own(entries, frozenset({20}), holds_context=True) == _split_own(entries, frozenset({20}), False)
    mine = _split_own(entries, frozenset({20}), holds_context=True)
    assert (mine.others, mine.how, mine.self_among, mine.host_pids) == ([(10, 1)], "pid 20", False, False)
    no_context = _split_own(entries, frozenset({99}), holds_context=False)
    assert (no_context.others, no_context.how, no_context.self_among) == (entries, None, False)
    empty = _split_own([], frozenset({99}), holds_context=True)
    assert (empty.others, empty.how) == ([], None)
    only = _split_own([(10, 1)], frozenset({99}), holds_context=True)
    assert (only.others, only.host_pids) == ([], True)
    assert only.how == "pid 10: the only entry while this process holds a context here (a host PID)"
    among = _split_own(entries, frozenset({99}), holds_context=True)
    assert (among.others, among.how, among.self_among, among.host_pids) == (entries, None, True, True)
