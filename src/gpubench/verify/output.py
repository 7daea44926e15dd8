"""What a verify run leaves behind: the verdict table on the console, ``results/verify/<run_id>.json`` and
the same run as JUnit XML (``.xml``), each file written atomically; on request the same JSON document on
stdout (``--json``) and the JUnit file at a path of the user's choosing (``--junitxml``)."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpubench import killpoints
from gpubench.verify.run import VerifyReport
from gpubench.verify.verdicts import Verdict

# --- writing --------------------------------------------------------------------------------------


# XML 1.0 cannot hold these at all, not even escaped: one in a GPU name would make the whole file unreadable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _xml(text: Any) -> str:
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def junit_xml(report: VerifyReport) -> str:
    """JUnit XML: one testcase per (device, check); FAIL -> <failure>, SKIP -> <skipped>, WARN noted in
    output.
    """
    counts = report.counts()
    total = sum(r.duration_s for r in report.results)
    suites = ET.Element("testsuites", name="gpubench verify")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="gpubench.verify",
        tests=str(len(report.results)),
        failures=str(counts["FAIL"]),
        errors="0",
        skipped=str(counts["SKIP"]),
        time=f"{total:.3f}",
        timestamp=report.started,
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", report.run_id), ("level", report.level), ("summary", report.summary())):
        ET.SubElement(props, "property", name=name, value=_xml(value))
    for r in report.results:
        case = ET.SubElement(
            suite, "testcase", classname=_xml(f"verify.{r.device}"), name=r.check, time=f"{r.duration_s:.3f}"
        )
        detail = _xml(f"value: {_fmt(r.value, r.unit)}\nthreshold: {_fmt(r.threshold, '')}\n{r.message}")
        if r.remedy:
            detail += _xml(f"\nremedy: {r.remedy}")
        if r.verdict is Verdict.FAIL:
            ET.SubElement(case, "failure", message=_xml(r.message), type="FAIL").text = detail
        elif r.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=_xml(r.message))
        else:
            ET.SubElement(case, "system-out").text = f"{r.verdict.value}: {detail}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def verdicts_json(report: VerifyReport) -> str:
    """The ``gpubench.verify/1`` document as text: byte for byte what :func:`write_report` saves."""
    from gpubench.results import to_json

    return str(to_json(report.as_dict()))


class JUnitPathError(Exception):
    """``--junitxml PATH`` cannot be written (exit 2); the run's own files under results/ are saved."""


def write_junit(report: VerifyReport, path: Path) -> Path:
    """Write the JUnit XML to ``path`` atomically (its folders created, as pytest's ``--junitxml`` does).

    Any path the user names is accepted (it is not confined to results/); one that cannot be written
    raises :class:`JUnitPathError` saying what to do."""
    from gpubench.results import atomic_write_text

    target = Path(path).expanduser()
    problem = "it is a folder; name a file, e.g. DIR/verify.xml" if target.is_dir() else ""
    if not problem:
        try:
            return atomic_write_text(target.absolute(), junit_xml(report))
        except OSError as exc:
            problem = f"{exc.strerror or exc}; name a file in a folder you can write"
    msg = f"--junitxml {target}: cannot write the JUnit XML there: {problem} (the run was saved: see the paths above)"
    raise JUnitPathError(msg)


def write_report(report: VerifyReport, results_dir: Path) -> tuple[Path, Path]:
    """Write ``<results_dir>/verify/<run_id>.json`` and ``.xml`` atomically; returns both paths."""
    from gpubench.results import atomic_write_json, atomic_write_text, safe_child

    json_path = safe_child(results_dir, "verify", f"{report.run_id}.json")
    xml_path = safe_child(results_dir, "verify", f"{report.run_id}.xml")
    killpoints.reached("verify.write.json")
    atomic_write_json(json_path, report.as_dict())
    killpoints.reached("verify.write.junit")
    atomic_write_text(xml_path, junit_xml(report))
    return json_path, xml_path


# --- printing -------------------------------------------------------------------------------------

_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.WARN: "bold yellow",
    Verdict.FAIL: "bold red",
    Verdict.SKIP: "dim",
}


def _fmt(value: Any, unit: str) -> str:
    """A value and its unit as the table and the JUnit file show it (``-`` for none)."""
    if value is None:
        return "-"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip() if unit else text


def print_report(report: VerifyReport, console: Any, paths: Sequence[Path] = (), quiet: bool = False) -> None:
    """One table (device, check, verdict, value, threshold, finding, remedy), a summary line, the paths."""
    from rich.table import Table
    from rich.text import Text

    from gpubench.console import printable

    if not quiet:
        table = Table(title=f"gpubench verify ({report.level}) {report.run_id}", show_lines=False)
        for name in ("device", "check", "verdict", "value", "threshold", "finding", "remedy"):
            table.add_column(name, overflow="fold")
        for r in report.results:
            table.add_row(
                printable(r.device),
                r.check,
                Text(r.verdict.value, style=_STYLE[r.verdict]),
                printable(_fmt(r.value, r.unit)),
                printable(_fmt(r.threshold, "")),
                printable(r.message),
                printable(r.remedy),
            )
        console.print(table)
    style = "bold red" if report.exit_code else "bold green"
    console.print(Text(report.summary(), style=style))
    if quiet:  # without the table, still say why --require-gpu failed the run
        for r in report.results:
            if r.check == "require_gpu":
                console.print(
                    Text(f"FAIL require_gpu {printable(r.device)}: {printable(r.message)}", style=style)
                )
    for device in report.devices:  # only a simulated CUDA device (tests) runs its work elsewhere
        if device.get("execution_device"):
            console.print(
                f"NOTE: {printable(device.get('device'))} is a simulated GPU: its kernels ran on "
                f"{printable(device['execution_device'])}, its NVML readings come from a profile"
            )
    for path in paths:
        console.print(f"wrote {printable(path)}")
