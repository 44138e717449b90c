"""The benchmark keeps working: bench/run.py at a tiny scale, and its generator's rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from autosynk.identity import normalise

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import synth  # noqa: E402


def test_bench_runs_two_nights_and_prints_the_figures(tmp_path):
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--scale",
            "tiny",
            "--work",
            str(tmp_path / "work"),
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    number = r"\d+\.\d\d"
    for stage in ("prepare", "extract", "transform", "compute_delta", "write", "commit"):
        line = rf"^{stage}\s+{number}\s+{number}\s+{number}\s+\d+\s+\d+\s+\d+$"
        assert re.search(line, out, re.M), stage
    assert re.search(rf"^yardstick R = {number} s \(json\.load of the tiny register", out, re.M)
    assert re.search(rf"^total wall {number} s = {number} R ", out, re.M)
    assert "## first night" in out and "## 1%-change night" in out
    assert re.search(r"duckdb full-outer-join diff \d+\.\d\d s; delta stage", out)
    assert re.search(r"staging rows written \d+ .* of \d+ delivered rows", out)
    assert "## targets (issue 13)" in out
    data = json.loads(figures.read_text(encoding="utf-8"))
    # R: three samples in the same run (before each night, after the last), the median kept
    samples = data["r_samples"]
    assert [s["when"] for s in samples] == [
        "before the first night",
        "before the 1%-change night",
        "after the last night",
    ]
    assert all(s["records"] > 1000 and s["peak_rss"] > 0 for s in samples)
    assert data["r"]["wall"] == sorted(s["wall"] for s in samples)[1]
    first, change = data["nights"]
    # the first night sends everything; the change night only what the mutation changed
    assert first["duckdb"]["relations_added"] > 1000
    assert 0 < change["duckdb"]["relations_added"] < first["duckdb"]["relations_added"] // 20
    assert change["rows_written_state"] < first["rows_written_state"] // 20


@pytest.mark.parametrize(
    ("birth", "serial", "style", "expected"),
    [
        ("1990-01-01", 1, 0, "19900101-0017"),
        ("1990-01-01", 1, 1, "199001010017"),
        ("1990-01-01", 1, 2, "900101-0017"),
        ("2012-02-29", 240, 0, "20120229-2403"),
    ],
)
def test_civic_numbers_are_valid_luhn_numbers(birth, serial, style, expected):
    (number,) = synth.civic_numbers(
        np.array([birth], dtype="datetime64[D]"), np.array([serial]), [style]
    )
    assert number == expected
    assert normalise(number).kind == "personnummer"


def test_mutation_changes_about_one_percent_and_keeps_ids(tmp_path):
    folder = tmp_path / "register"
    synth.generate(folder, "tiny", seed=3)
    before = msgspec.json.decode((folder / "persons.json").read_bytes())["data"]
    synth.mutate_one_percent(folder, seed=4)
    after = msgspec.json.decode((folder / "persons.json").read_bytes())["data"]
    old = {p["id"]: p for p in before}
    new = {p["id"]: p for p in after}
    assert set(old) < set(new)  # new pupils and staff arrive, nobody's id changes
    changed = sum(1 for key, person in old.items() if new[key] != person)
    assert 0 < changed + len(set(new) - set(old)) < len(old) * 0.05
    numbers = [p["civicNo"]["value"] for p in after]
    assert len({normalise(n).value for n in numbers}) == len(numbers)


@pytest.mark.parametrize(
    ("manifest", "reused"),
    [
        ({"scale": "tiny", "seed": 1, "today": "2026-12-01", "mutations": []}, True),
        ({"scale": "tiny", "seed": 1, "today": "2026-12-01", "mutations": [2]}, False),
        ({"scale": "tiny", "seed": 2, "today": "2026-12-01", "mutations": []}, False),
        ({"scale": "small", "seed": 1, "today": "2026-12-01", "mutations": []}, False),
        ({"scale": "tiny", "seed": 1, "today": "2026-11-30", "mutations": []}, False),
        (None, False),
    ],
)
def test_a_register_is_reused_only_when_unmutated_and_of_the_same_scale_seed_and_day(
    tmp_path, manifest, reused
):
    if manifest is not None:
        manifest["counts"] = {"persons": 12}
        (tmp_path / synth.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    found = synth.already_generated(tmp_path, "tiny", 1, today=synth.dt.date(2026, 12, 1))
    assert found == ({"persons": 12} if reused else None)


@pytest.mark.parametrize(
    ("years", "first_serial", "serials"),
    [
        ([1980] * 700_000, 1, 599),  # more than one serial per day of a window: still unique
        (list(range(1940, 2010)) * 5_000, 1, 599),  # clipped to 1955-2000, windows of 4 years
        ([1970] * 100_000 + [1971] * 100_000, 600, 399),
    ],
)
def test_adult_identity_numbers_are_unique_at_a_countrys_scale(years, first_serial, serials):
    births, serial = synth.adult_births(np.array(years), first_serial, serials)
    assert serial.min() >= first_serial and serial.max() < first_serial + serials
    assert np.unique(births.astype("int64") * 1000 + serial).size == len(years)
    assert births.min() >= np.datetime64("1952-01-01")  # 1955 is in the window of 1952
    assert births.max() < np.datetime64("2004-01-01")


def test_adult_births_refuse_a_window_they_cannot_number():
    with pytest.raises(ValueError, match="four-year window"):
        synth.adult_births(np.array([1980] * (1460 * 3 + 1)), 1, 3)


def test_a_measured_process_is_charged_with_its_own_memory_not_the_benchs(tmp_path):
    import run  # bench/run.py

    synth.generate(tmp_path / "register", "tiny", seed=1)
    held = bytearray(1 << 30)  # the bench holding 1 GB when it starts R (wait4 says >= 1 GB)
    try:
        sample = run.yardstick(tmp_path / "register")
    finally:
        del held
    assert 0 < sample["peak_rss"] < 200 << 20  # a tiny register's json.load, and Python
