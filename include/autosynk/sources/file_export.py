"""Source ``csv-export``: a register's nightly CSV/TSV files, turned into an SS 12000 snapshot.

The export layout (one file per kind of record, canonical column names, which are required)
is documented in ``docs/file-export.md``. A municipality whose register names its columns
differently maps them in the configuration (``columns: {personer: {civic_no: Personnummer}}``),
never in code.

Dirty exports are the norm, so two kinds of trouble are told apart:

* a file that cannot be read as a table at all (missing required file, no header, a
  required column absent, undecodable bytes) is a :class:`SourceError`: nothing is written;
* a single bad row (wrong number of fields, empty id, a date that is no date, a reference
  to a record that is not in the export) is skipped and recorded in ``problems.json``
  (``{"data": [{"file", "line", "reason"}]}``) so the quarantine report can show it.

Civic numbers never appear in a reason (:func:`autosynk.identity.mask`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autosynk.config import CsvExportSource
from autosynk.errors import ConfigError, SourceError
from autosynk.identity import mask
from autosynk.workspace import write_private

log = logging.getLogger("autosynk")

EXTENSIONS = (".csv", ".tsv", ".txt")
CANDIDATE_DELIMITERS = ",;\t|"
_DELIMITER_PREFERENCE = "\t;|,"
GUARDIAN = "Vårdnadshavare"
POPULATION_ADDRESS = "Folkbokföringsadress"
_DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")
_LIST_SEPARATORS = re.compile(r"[,;|\s]+")
_YES = {"1", "true", "ja", "j", "yes", "y", "x"}
_NO = {"", "0", "false", "nej", "n", "no"}
_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


@dataclass(frozen=True)
class ExportFile:
    """One file of the export layout (docs/file-export.md)."""

    name: str  # the file name without extension, e.g. "personer"
    columns: tuple[str, ...]  # every canonical column the file may have
    required_columns: tuple[str, ...]  # must be in the header
    required_values: tuple[str, ...]  # must be non-empty in a row
    required_file: bool = False
    dates: tuple[str, ...] = ("start", "end")
    flags: tuple[str, ...] = ()  # yes/no columns


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LAYOUT: dict[str, ExportFile] = {
    f.name: f
    for f in (
        ExportFile(
            "skolenheter",
            _names(
                "id name type school_unit_code school_types parent_id start end"
                " email phone url street postcode town"
            ),
            required_columns=_names("id name"),
            required_values=_names("id"),
            required_file=True,
        ),
        ExportFile(
            "personer",
            _names(
                "id civic_no given_name family_name security_marking status"
                " email email_type email_school email_staff email_private"
                " mobile phone work_phone street postcode town eppn"
            ),
            required_columns=_names("id civic_no given_name family_name"),
            required_values=_names("id"),
            required_file=True,
            dates=(),
        ),
        ExportFile(
            "inskrivningar",
            _names("person_id school_unit_id school_type school_year start end cancelled"),
            required_columns=_names("person_id school_unit_id"),
            required_values=_names("person_id school_unit_id"),
            flags=_names("cancelled"),
        ),
        ExportFile(
            "vardnadshavare",
            _names("child_id guardian_id relation_type"),
            required_columns=_names("child_id guardian_id"),
            required_values=_names("child_id guardian_id"),
            dates=(),
        ),
        ExportFile(
            "grupper",
            _names("id name group_type school_type school_unit_id start end"),
            required_columns=_names("id name group_type school_unit_id"),
            required_values=_names("id school_unit_id"),
        ),
        ExportFile(
            "gruppmedlemmar",
            _names("group_id person_id start end"),
            required_columns=_names("group_id person_id"),
            required_values=_names("group_id person_id"),
        ),
        ExportFile(
            "tjanster",
            _names("id person_id school_unit_id role start end"),
            required_columns=_names("id person_id school_unit_id"),
            required_values=_names("id person_id school_unit_id"),
        ),
        ExportFile(
            "uppdrag",
            _names("duty_id group_id role start end"),
            required_columns=_names("duty_id group_id role"),
            required_values=_names("duty_id group_id role"),
        ),
        ExportFile(
            "aktiviteter",
            _names("id name school_unit_id group_ids teacher_duty_ids start end"),
            required_columns=_names("id group_ids teacher_duty_ids"),
            required_values=_names("id"),
        ),
    )
}


@dataclass(frozen=True)
class Row:
    file: str  # the file's name as found, for problems.json
    line: int  # physical line in the file where the row starts (header = line 1)
    values: dict[str, str]  # canonical column -> stripped text ("" when absent)


class Problems:
    """Rejected rows, in the order met; reasons are masked."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, file: str, line: int, reason: str) -> None:
        self.entries.append({"file": file, "line": line, "reason": mask(reason)})


# --- decoding and dialect ---------------------------------------------------------------


def decode_export(data: bytes, encoding: str = "auto") -> tuple[str, str]:
    """The text of an export file and the encoding it was read with.

    ``auto``: a BOM decides (UTF-8, UTF-16); else UTF-8 if the bytes are valid UTF-8; else
    cp1252 when bytes 0x80-0x9F occur (Windows exports put € – ” there), else ISO-8859-1.
    A declared encoding is used strictly: bytes it cannot decode raise ``UnicodeDecodeError``.
    """
    if encoding.lower() != "auto":
        return data.decode(encoding), encoding
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if any(0x80 <= byte <= 0x9F for byte in data):
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are not cp1252
            pass
    return data.decode("iso-8859-1"), "iso-8859-1"


def detect_delimiter(header_line: str) -> str:
    """The delimiter of a header line among ``, ; TAB |`` (comma when it has one column).

    The candidate met most often outside quotes wins. csv.Sniffer is not used: on a single
    line it guesses "," for ``Förnamn;Efternamn;E-post, privat``. Ties go to the character
    least likely to sit inside a column name: TAB, then ``;``, ``|``, ``,``.
    """
    outside = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: outside.count(d) for d in CANDIDATE_DELIMITERS}
    best = max(_DELIMITER_PREFERENCE, key=lambda d: counts[d])  # first of the maxima
    return best if counts[best] else ","


def configured_delimiter(value: str | None) -> str | None:
    if value is None:
        return None
    value = _DELIMITER_NAMES.get(value.lower(), value)
    if len(value) != 1:
        raise ConfigError(f"source.delimiter: {value!r} is not a single character")
    return value


def parse_date(raw: str) -> str:
    """``YYYY-MM-DD`` from a date or date-time in a common export form; "" stays "".

    Raises ``ValueError`` when the value is not a real date.
    """
    value = raw.strip()
    if not value:
        return ""
    day = re.split(r"[T ]", value, maxsplit=1)[0]
    for form in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(day, form).date().isoformat()
        except ValueError:
            continue
    raise ValueError(value)


# --- one file -------------------------------------------------------------------------------


def header_mapping(cfg: CsvExportSource) -> dict[str, dict[str, str]]:
    """Per file: canonical column -> the export's header (case-insensitive), validated."""
    mapping: dict[str, dict[str, str]] = {}
    for file_name, columns in cfg.columns.items():
        spec = LAYOUT.get(file_name)
        if spec is None:
            raise ConfigError(
                f"source.columns.{file_name}: not a file of the export (known: {', '.join(LAYOUT)})"
            )
        for column in columns:
            if column not in spec.columns:
                raise ConfigError(
                    f"source.columns.{file_name}.{column}: not a column of {file_name} "
                    f"(known: {', '.join(spec.columns)})"
                )
        mapping[file_name] = dict(columns)
    return mapping


def _header_key(value: str) -> str:
    return value.replace("\ufeff", "").strip().casefold()


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, fields) for every non-blank record; quoted line breaks are kept."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        if any(field.strip() for field in fields):
            yield start, fields


def read_table(
    label: str,
    data: bytes,
    spec: ExportFile,
    problems: Problems,
    *,
    encoding: str = "auto",
    delimiter: str | None = None,
    headers: dict[str, str] | None = None,
) -> list[Row]:
    """The valid rows of one export file; bad rows go to ``problems``.

    ``label`` names the file in messages; ``headers`` maps canonical columns to the export's
    header names. Raises :class:`SourceError` when the file cannot be read as a table.
    """
    try:
        text, used = decode_export(data, encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"csv-export: {label} line {line}: not valid {encoding} ({exc.reason})"
        ) from None
    except LookupError:
        raise ConfigError(f"source.encoding: unknown encoding {encoding!r}") from None
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    if not first_line:
        raise SourceError(f"csv-export: {label} is empty (no header line)")
    sep = delimiter or detect_delimiter(first_line)
    records = _rows(text, sep)
    try:
        header_line, header = next(records)
        positions = _header_positions(label, header_line, header, spec, headers or {})
        log.info("csv-export: %s read as %s, delimiter %r", label, used, sep)
        rows = [
            row
            for line, fields in records
            if (row := _row(label, line, fields, _width(header), positions, spec, problems))
        ]
    except csv.Error as exc:
        raise SourceError(f"csv-export: {label}: not readable as CSV ({exc})") from None
    return rows


def _width(header: list[str]) -> int:
    """Header cells up to the last named one (a trailing delimiter adds an empty cell)."""
    named = [index for index, name in enumerate(header) if _header_key(name)]
    return named[-1] + 1 if named else 0


def _header_positions(
    label: str,
    line: int,
    header: list[str],
    spec: ExportFile,
    headers: dict[str, str],
) -> dict[str, int]:
    seen: dict[str, int] = {}
    duplicated: set[str] = set()
    for index, name in enumerate(header):
        key = _header_key(name)
        if key in seen:
            duplicated.add(key)
        seen.setdefault(key, index)
    positions: dict[str, int] = {}
    missing: list[str] = []
    for column in spec.columns:
        wanted = _header_key(headers.get(column, column))
        if wanted in duplicated:
            raise SourceError(f"csv-export: {label} line {line}: column {wanted!r} appears twice")
        if wanted in seen:
            positions[column] = seen[wanted]
        elif column in spec.required_columns:
            shown = column if column == headers.get(column, column) else f"{column} ({wanted})"
            missing.append(shown)
    if missing:
        raise SourceError(
            f"csv-export: {label} line {line}: required column(s) missing from the header: "
            f"{', '.join(missing)}"
        )
    return positions


def _row(
    label: str,
    line: int,
    fields: list[str],
    width: int,
    positions: dict[str, int],
    spec: ExportFile,
    problems: Problems,
) -> Row | None:
    # a trailing delimiter (on the header, the rows or both) is common and harmless:
    # empty fields past the last named column pass
    if len(fields) < width or any(f.strip() for f in fields[width:]):
        problems.add(label, line, f"{len(fields)} fields where the header has {width}")
        return None
    values = {column: fields[index].strip() for column, index in positions.items()}
    for column in spec.columns:
        values.setdefault(column, "")
    empty = [column for column in spec.required_values if not values[column]]
    if empty:
        problems.add(label, line, f"{', '.join(empty)} is empty")
        return None
    for column in spec.dates:
        try:
            values[column] = parse_date(values[column])
        except ValueError:
            problems.add(label, line, f"{column} is not a date: {values[column]!r}")
            return None
    for column in spec.flags:
        if values[column].casefold() not in _YES | _NO:
            problems.add(label, line, f"{column} is neither yes nor no: {values[column]!r}")
            return None
    return Row(label, line, values)


# --- the export as a whole ---------------------------------------------------------------------


def _find_files(folder: Path) -> dict[str, Path]:
    """Export file name (without extension) -> its path; two candidates are an error."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        stem, suffix = path.stem.casefold(), path.suffix.casefold()
        if stem not in LAYOUT or suffix not in EXTENSIONS or not path.is_file():
            continue
        if stem in found:
            raise SourceError(
                f"csv-export: {folder} holds both {found[stem].name} and {path.name}; keep one"
            )
        found[stem] = path
    return found


def read_export(cfg: CsvExportSource, problems: Problems) -> dict[str, list[Row]]:
    """Every file of the export as valid rows (absent optional files: no rows)."""
    if not cfg.path.is_dir():
        raise SourceError(f"csv-export: {cfg.path} is not a folder")
    headers = header_mapping(cfg)
    delimiter = configured_delimiter(cfg.delimiter)
    files = _find_files(cfg.path)
    missing = [name for name, spec in LAYOUT.items() if spec.required_file and name not in files]
    if missing:
        raise SourceError(
            f"csv-export: {cfg.path} lacks the required file(s) "
            f"{', '.join(f'{m}.csv' for m in missing)}"
        )
    tables: dict[str, list[Row]] = {}
    for name, spec in LAYOUT.items():
        path = files.get(name)
        if path is None:
            tables[name] = []
            continue
        tables[name] = read_table(
            path.name,
            path.read_bytes(),
            spec,
            problems,
            encoding=cfg.encoding,
            delimiter=delimiter,
            headers=headers.get(name),
        )
    return tables


def _put(record: dict[str, Any], key: str, value: Any) -> None:
    """Optional fields are left out when empty, as SS 12000 registers do."""
    if value not in ("", None, [], {}):
        record[key] = value


def _dated(record: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    _put(record, "startDate", values["start"])
    _put(record, "endDate", values["end"])
    return record


def _ids(value: str) -> list[dict[str, str]]:
    return [{"id": part} for part in _LIST_SEPARATORS.split(value) if part]


def _organisation(v: dict[str, str]) -> dict[str, Any]:
    org: dict[str, Any] = {
        "id": v["id"],
        "displayName": v["name"],
        "organisationType": v["type"] or "Skolenhet",
    }
    _put(org, "schoolUnitCode", v["school_unit_code"])
    _put(org, "schoolTypes", [t for t in _LIST_SEPARATORS.split(v["school_types"]) if t])
    if v["parent_id"]:
        org["parentOrganisation"] = {"id": v["parent_id"]}
    _put(org, "email", v["email"])
    _put(org, "phoneNumber", v["phone"])
    _put(org, "url", v["url"])
    address = {"streetAddress": v["street"], "postalCode": v["postcode"], "locality": v["town"]}
    _put(org, "address", {k: a for k, a in address.items() if a})
    return _dated(org, v)


def _person(v: dict[str, str]) -> dict[str, Any]:
    person: dict[str, Any] = {"id": v["id"]}
    _put(person, "givenName", v["given_name"])
    _put(person, "familyName", v["family_name"])
    if v["civic_no"]:
        person["civicNo"] = {"value": v["civic_no"]}
    _put(person, "securityMarking", v["security_marking"])
    _put(person, "personStatus", v["status"])
    emails = [
        {"value": v[column], "type": kind}
        for column, kind in (
            ("email", v["email_type"] or "Annan"),
            ("email_school", "Skola"),
            ("email_staff", "Personal"),
            ("email_private", "Privat"),
        )
        if v[column]
    ]
    phones = [
        {"value": v[column], "type": kind, "mobile": column == "mobile"}
        for column, kind in (("mobile", "Mobil"), ("phone", "Hem"), ("work_phone", "Arbete"))
        if v[column]
    ]
    address = {"streetAddress": v["street"], "postalCode": v["postcode"], "locality": v["town"]}
    person["emails"] = emails
    person["phoneNumbers"] = phones
    person["addresses"] = (
        [{"type": POPULATION_ADDRESS, **{k: a for k, a in address.items() if a}}]
        if any(address.values())
        else []
    )
    if v["eppn"]:
        person["eduPersonPrincipalNames"] = [v["eppn"]]
    person["enrolments"] = []
    person["responsibles"] = []
    return person


def _enrolment(v: dict[str, str]) -> dict[str, Any]:
    enrolment: dict[str, Any] = {"enroledAt": {"id": v["school_unit_id"]}}
    _put(enrolment, "schoolType", v["school_type"])
    year = v["school_year"]
    _put(enrolment, "schoolYear", int(year) if year.isdigit() else year)
    _dated(enrolment, v)
    if v["cancelled"].casefold() in _YES:
        enrolment["cancelled"] = True
    return enrolment


def _attach(
    rows: list[Row],
    owners: dict[str, dict[str, Any]],
    owner_column: str,
    owner_file: str,
    field: str,
    build: Callable[[dict[str, str]], dict[str, Any]],
    problems: Problems,
) -> None:
    """Append a sub-record built from each row to the record its ``owner_column`` names."""
    for row in rows:
        owner = owners.get(row.values[owner_column])
        if owner is None:
            problems.add(
                row.file,
                row.line,
                f"{owner_column} {row.values[owner_column]} is not in {owner_file}",
            )
            continue
        owner[field].append(build(row.values))


def convert(tables: dict[str, list[Row]], problems: Problems) -> dict[str, list[dict[str, Any]]]:
    """The five SS 12000 entity lists from the export's rows."""
    organisations = [_organisation(row.values) for row in tables["skolenheter"]]

    persons = [_person(row.values) for row in tables["personer"]]
    # duplicated ids stay in the lists (the mapping quarantines them); sub-rows go to the last
    person_by_id = {p["id"]: p for p in persons}
    _attach(
        tables["inskrivningar"],
        person_by_id,
        "person_id",
        "personer",
        "enrolments",
        _enrolment,
        problems,
    )
    _attach(
        tables["vardnadshavare"],
        person_by_id,
        "child_id",
        "personer",
        "responsibles",
        lambda v: {
            "person": {"id": v["guardian_id"]},
            "relationType": v["relation_type"] or GUARDIAN,
        },
        problems,
    )

    groups = []
    for row in tables["grupper"]:
        v = row.values
        group: dict[str, Any] = {"id": v["id"], "displayName": v["name"]}
        _put(group, "groupType", v["group_type"])
        _put(group, "schoolType", v["school_type"])
        group["organisation"] = {"id": v["school_unit_id"]}
        group["groupMemberships"] = []
        groups.append(_dated(group, v))
    _attach(
        tables["gruppmedlemmar"],
        {g["id"]: g for g in groups},
        "group_id",
        "grupper",
        "groupMemberships",
        lambda v: _dated({"person": {"id": v["person_id"]}}, v),
        problems,
    )

    duties = []
    for row in tables["tjanster"]:
        v = row.values
        duty: dict[str, Any] = {
            "id": v["id"],
            "person": {"id": v["person_id"]},
            "dutyAt": {"id": v["school_unit_id"]},
        }
        _put(duty, "dutyRole", v["role"])
        duty["assignmentRole"] = []
        duties.append(_dated(duty, v))
    _attach(
        tables["uppdrag"],
        {d["id"]: d for d in duties},
        "duty_id",
        "tjanster",
        "assignmentRole",
        lambda v: _dated({"group": {"id": v["group_id"]}, "assignmentRoleType": v["role"]}, v),
        problems,
    )

    activities = []
    for row in tables["aktiviteter"]:
        v = row.values
        activity: dict[str, Any] = {"id": v["id"]}
        _put(activity, "displayName", v["name"])
        if v["school_unit_id"]:
            activity["organisation"] = {"id": v["school_unit_id"]}
        activity["groups"] = _ids(v["group_ids"])
        activity["teachers"] = [{"duty": ref} for ref in _ids(v["teacher_duty_ids"])]
        activities.append(_dated(activity, v))

    return {
        "organisations": organisations,
        "persons": persons,
        "groups": groups,
        "duties": duties,
        "activities": activities,
    }


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode() + b"\n"


def extract(cfg: CsvExportSource, out_dir: Path) -> dict[str, int]:
    """Convert the export into the five SS 12000 list files plus ``problems.json``.

    Returns the entity counts, ``rows_read`` (rows accepted) and ``rows_rejected``.
    Nothing is written when the export cannot be read (:class:`SourceError`).
    """
    problems = Problems()
    tables = read_export(cfg, problems)
    rejected_reading = len(problems.entries)
    entities = convert(tables, problems)
    # rows that parsed but name a record the export lacks are rejected while converting
    rows_read = sum(len(rows) for rows in tables.values()) - (
        len(problems.entries) - rejected_reading
    )
    for name, records in entities.items():
        write_private(out_dir / f"{name}.json", _json({"data": records}))
    rejected = sorted(problems.entries, key=lambda p: (p["file"], p["line"]))
    write_private(out_dir / "problems.json", _json({"data": rejected}))
    if problems.entries:
        log.warning("csv-export: %d row(s) rejected, see problems.json", len(problems.entries))
    counts = {name: len(records) for name, records in entities.items()}
    counts["rows_read"] = rows_read
    counts["rows_rejected"] = len(problems.entries)
    return counts
