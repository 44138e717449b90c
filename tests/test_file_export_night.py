"""A night from the example CSV export, with a dirty row reported in the quarantine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from autosynk.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "csv-export"


def test_csv_export_night_reports_rejected_rows(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path / "export")
    config = (tmp_path / "export" / "autosynk.yaml").read_text(encoding="utf-8")
    assert main(["run", "--config", str(tmp_path / "export" / "autosynk.yaml")]) == 0
    out = tmp_path / "export"
    summary_files = list(out.rglob("run-summary.json"))
    assert summary_files, config
    summary = json.loads(summary_files[0].read_text())
    assert summary["status"] == "committed"
    assert summary["counts"]["relations_by_type"]["student_in_school"]["add"] >= 1

    groups = next(p for p in (out).iterdir() if p.name.lower().startswith("grupper"))
    data = groups.read_bytes()
    groups.write_bytes(data + b"BROKEN;ROW\n" if data.endswith(b"\n") else data)
    assert main(["run", "--config", str(tmp_path / "export" / "autosynk.yaml")]) == 0
    summary = json.loads(summary_files[0].read_text())
    entries = [e for e in summary["quarantine"]["entries"] if e["entity"] == "export-row"]
    assert entries and entries[0]["source_id"].startswith(groups.name + ":")
