"""The csv-export source: nightly CSV/TSV files -> the SS 12000 snapshot the mapping reads."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from autosynk.config import CsvExportSource
from autosynk.errors import ConfigError, SourceError
from autosynk.mapping.engine import map_register
from autosynk.mapping.spec import load_mapping
from autosynk.register import read_snapshot
from autosynk.sources import ENTITIES
from autosynk.sources.file_export import (
    LAYOUT,
    Problems,
    configured_delimiter,
    decode_export,
    detect_delimiter,
    extract,
    header_mapping,
    parse_date,
    read_table,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "csv-export"
C1, C2, C3 = "20130315-2381", "20130422-2464", "20220611-1235"
T1, P1, G1, G2 = "19850101-1236", "19750505-1115", "19870202-4566", "19790303-7898"


def source(path: Path, **extra: Any) -> CsvExportSource:
    return CsvExportSource(kind="csv-export", path=path, **extra)


def entities(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """entity -> id -> record, as written."""
    return {
        name: {r["id"]: r for r in json.loads((folder / f"{name}.json").read_text())["data"]}
        for name in ENTITIES
    }


def problems_of(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "problems.json").read_text())["data"]


def write_export(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


UNITS = b"id,name,school_types\nu1,Ekbacken,GR\n"
PERSONS = b"id,civic_no,given_name,family_name\nc1,201303152381,Asa,Oberg\n"


# --- pure helpers, table-driven ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "text", "used"),
    [
        (b"id;namn\n", "auto", "id;namn\n", "utf-8"),
        (b"id;n\xc3\xa5mn\n", "auto", "id;nåmn\n", "utf-8"),
        (b"\xef\xbb\xbfid,n\xc3\xa5mn", "auto", "id,nåmn", "utf-8-sig"),
        (b"\xff\xfei\x00d\x00", "auto", "id", "utf-16"),
        (b"\xc5sa;\xd6berg;\xe4", "auto", "Åsa;Öberg;ä", "iso-8859-1"),
        (b"\x96 \xe5 \x80", "auto", "– å €", "cp1252"),  # 0x80-0x9F: Windows' cp1252
        (b"\x81\xe5", "auto", "\x81å", "iso-8859-1"),  # 0x81 is not cp1252 at all
        (b"\xc3\xa5", "iso-8859-1", "Ã¥", "iso-8859-1"),  # declared wins, even if wrong
    ],
)
def test_decode_export(data: bytes, declared: str, text: str, used: str) -> None:
    assert decode_export(data, declared) == (text, used)


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [
        ("id,name,type", ","),
        ("id;name;type", ";"),
        ("id\tname\ttype", "\t"),
        ("id|name|type", "|"),
        ("id", ","),
        ('"Skolformer (GR,FSK)";id;namn', ";"),
        ("Förnamn;Efternamn;E-post, privat", ";"),  # csv.Sniffer says ","
        ("Förnamn;E-post, privat", ";"),  # a tie: ";" rarely sits inside a name
        ("a,b\tc", "\t"),
    ],
)
def test_detect_delimiter(header: str, delimiter: str) -> None:
    assert detect_delimiter(header) == delimiter


@pytest.mark.parametrize(
    ("declared", "delimiter"),
    [(None, None), (";", ";"), ("tab", "\t"), ("\\t", "\t"), ("\t", "\t"), ("Pipe", "|")],
)
def test_configured_delimiter(declared: str | None, delimiter: str | None) -> None:
    assert configured_delimiter(declared) == delimiter


def test_configured_delimiter_must_be_one_character() -> None:
    with pytest.raises(ConfigError, match=r"source\.delimiter"):
        configured_delimiter(";;")


def test_unknown_declared_encoding_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"source\.encoding: unknown encoding 'latin-9000'"):
        read_table("personer.csv", PERSONS, LAYOUT["personer"], Problems(), encoding="latin-9000")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-08-15", "2026-08-15"),
        ("20260815", "2026-08-15"),
        ("2026/08/15", "2026-08-15"),
        ("2026-08-15 00:00:00", "2026-08-15"),
        ("2026-08-15T00:00:00+02:00", "2026-08-15"),
        (" ", ""),
        ("2026-13-01", None),
        ("15/08/2026", None),
        ("2026-02-30", None),
        ("snart", None),
    ],
)
def test_parse_date(raw: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError):
            parse_date(raw)
    else:
        assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("headers", "data", "expected"),
    [
        # canonical names, any case and stray spaces, columns in any order
        (
            {},
            b" Family_Name ;ID;Given_name;CIVIC_NO\nOberg;c1;Asa;201303152381\n",
            {"id": "c1", "given_name": "Asa", "family_name": "Oberg", "civic_no": "201303152381"},
        ),
        # the register's own headers, mapped in the configuration (ISO-8859-1 bytes)
        (
            {
                "id": "Elev-ID",
                "civic_no": "Personnummer",
                "given_name": "Förnamn",
                "family_name": "Efternamn",
                "email_private": "E-post, privat",
            },
            b'Elev-ID;Personnummer;F\xf6rnamn;Efternamn;"E-post, privat"\n'
            b"c1;201303152381;\xc5sa;\xd6berg;asa@example.se\n",
            {
                "id": "c1",
                "civic_no": "201303152381",
                "given_name": "Åsa",
                "family_name": "Öberg",
                "email_private": "asa@example.se",
            },
        ),
        # a mapped header is matched case-insensitively; unmapped columns keep their name
        (
            {"civic_no": "PNR"},
            b"id\tpnr\tgiven_name\tfamily_name\tmobile\nc1\t201303152381\tAsa\tOberg\t070\n",
            {
                "id": "c1",
                "civic_no": "201303152381",
                "given_name": "Asa",
                "family_name": "Oberg",
                "mobile": "070",
            },
        ),
    ],
)
def test_header_mapping(headers: dict[str, str], data: bytes, expected: dict[str, str]) -> None:
    problems = Problems()
    rows = read_table("personer.csv", data, LAYOUT["personer"], problems, headers=headers)
    assert problems.entries == []
    assert [r.line for r in rows] == [2]
    values = {k: v for k, v in rows[0].values.items() if v}
    assert values == expected


@pytest.mark.parametrize(
    ("headers", "data", "message"),
    [
        ({}, b"id;civic_no;given_name\nc1;1;A\n", "required column(s) missing from the header: "),
        (
            {"civic_no": "Personnummer"},
            b"id;civic_no;given_name;family_name\n",
            "civic_no (personnummer)",
        ),
        ({}, b"\n\n  \n", "is empty (no header line)"),
        ({}, b"id;id;civic_no;given_name;family_name\n", "column 'id' appears twice"),
    ],
)
def test_unreadable_table(headers: dict[str, str], data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=r"personer\.csv") as caught:
        read_table("personer.csv", data, LAYOUT["personer"], Problems(), headers=headers)
    assert message in str(caught.value)


def test_declared_encoding_that_does_not_fit_names_the_line() -> None:
    data = b"id,civic_no,given_name,family_name\nc1,1,\xc5sa,B\n"
    with pytest.raises(SourceError, match=r"personer.csv line 2: not valid utf-8"):
        read_table("personer.csv", data, LAYOUT["personer"], Problems(), encoding="utf-8")


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"elever": {"id": "ID"}}, "source.columns.elever: not a file of the export"),
        ({"personer": {"pnr": "Personnummer"}}, "source.columns.personer.pnr: not a column"),
    ],
)
def test_bad_header_mapping_is_a_config_error(
    tmp_path: Path, columns: dict[str, dict[str, str]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        header_mapping(source(tmp_path, columns=columns))


# --- the example export ------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("snapshot")
    return out, extract(source(EXAMPLE), out)


def test_example_files_are_as_documented() -> None:
    # the example must keep exercising ISO-8859-1, semicolons, a BOM and tabs
    personer = (EXAMPLE / "personer.csv").read_bytes()
    assert b"\xc5sa;\xd6berg" in personer  # Åsa;Öberg in ISO-8859-1
    assert (EXAMPLE / "grupper.csv").read_bytes().startswith(b"id;name;")
    assert (EXAMPLE / "tjanster.tsv").read_bytes().startswith(b"\xef\xbb\xbfid\tperson_id")


def test_example_counts_and_private_files(example_out: tuple[Path, dict[str, int]]) -> None:
    out, counts = example_out
    assert counts == {
        "organisations": 3,
        "persons": 7,
        "groups": 4,
        "duties": 2,
        "activities": 1,
        "rows_read": 31,
        "rows_rejected": 0,
    }
    for name in (*ENTITIES, "problems"):
        assert stat.S_IMODE((out / f"{name}.json").stat().st_mode) == 0o600
    assert problems_of(out) == []


def test_example_records(example_out: tuple[Path, dict[str, int]]) -> None:
    got = entities(example_out[0])
    assert got["organisations"]["ekb"] == {
        "id": "ekb",
        "displayName": "Ekbackens skola",
        "organisationType": "Skolenhet",
        "schoolUnitCode": "12345678",
        "schoolTypes": ["FSK", "GR"],
        "parentOrganisation": {"id": "hm"},
        "startDate": "2015-08-01",
    }
    assert got["organisations"]["hm"] == {
        "id": "hm",
        "displayName": "Exempelby kommun",
        "organisationType": "Huvudman",
    }
    assert got["persons"]["c1"] == {
        "id": "c1",
        "givenName": "Åsa",
        "familyName": "Öberg",
        "civicNo": {"value": "201303152381"},
        "securityMarking": "Ingen",
        "personStatus": "Aktiv",
        "emails": [{"value": "asa.oberg@elev.exempelby.se", "type": "Skola"}],
        "phoneNumbers": [],
        "addresses": [
            {
                "type": "Folkbokföringsadress",
                "streetAddress": "Storgatan 1",
                "postalCode": "12345",
                "locality": "Älvängen",
            }
        ],
        "enrolments": [
            {
                "enroledAt": {"id": "ekb"},
                "schoolType": "GR",
                "schoolYear": 7,
                "startDate": "2020-08-15",
            },
            {
                "enroledAt": {"id": "sol"},
                "schoolType": "FS",
                "startDate": "2016-08-15",
                "endDate": "2019-06-10",
            },
        ],
        "responsibles": [
            {"person": {"id": "g1"}, "relationType": "Vårdnadshavare"},
            {"person": {"id": "g2"}, "relationType": "Vårdnadshavare"},
        ],
    }
    assert got["persons"]["t1"]["phoneNumbers"] == [
        {"value": "070-123 45 67", "type": "Mobil", "mobile": True}
    ]
    assert got["persons"]["g1"]["phoneNumbers"] == [
        {"value": "08-555 123 45", "type": "Hem", "mobile": False}
    ]
    assert got["persons"]["c2"]["securityMarking"] == "Skyddad folkbokföring"
    assert got["groups"]["7a"] == {
        "id": "7a",
        "displayName": "7A",
        "groupType": "Klass",
        "schoolType": "GR",
        "organisation": {"id": "ekb"},
        "startDate": "2026-08-15",
        "endDate": "2027-06-15",
        "groupMemberships": [
            {"person": {"id": "c1"}, "startDate": "2026-08-15"},
            {"person": {"id": "c2"}, "startDate": "2026-08-15"},
        ],
    }
    assert got["groups"]["avd-bla"]["displayName"] == "Avdelning Blå"  # UTF-8 + semicolons
    assert got["duties"]["d2"] == {
        "id": "d2",
        "person": {"id": "p1"},
        "dutyAt": {"id": "sol"},
        "dutyRole": "Förskollärare",  # TSV with a BOM and CRLF
        "assignmentRole": [{"group": {"id": "avd-bla"}, "assignmentRoleType": "Förskollärare"}],
    }
    assert got["activities"]["a1"] == {
        "id": "a1",
        "displayName": "Matematik 7",
        "organisation": {"id": "ekb"},
        "groups": [{"id": "ma7"}],
        "teachers": [{"duty": {"id": "d1"}}],
    }


def test_example_maps_to_the_expected_relations(example_out: tuple[Path, dict[str, int]]) -> None:
    snapshot = read_snapshot(example_out[0])
    mapped = map_register(snapshot, load_mapping(), "exempelby", "2026-11-28", "utf-8")
    assert mapped.relations == {
        ("school_in_org", "ekb", "exempelby"),
        ("school_in_org", "sol", "exempelby"),
        ("class_in_school", "7a", "ekb"),
        ("class_in_school", "ma7", "ekb"),
        ("class_in_school", "avd-bla", "sol"),
        ("student_in_school", C1, "ekb"),  # the 2016-2019 preschool enrolment has ended
        ("student_in_school", C3, "sol"),
        ("student_in_class", C1, "7a"),
        ("student_in_class", C1, "ma7"),
        ("student_in_class", C3, "avd-bla"),
        ("staff_in_school", T1, "ekb"),
        ("staff_in_school", P1, "sol"),
        ("teacher_in_class", T1, "ma7"),  # through the activity
        ("teacher_in_class", P1, "avd-bla"),  # through the assignment role
        ("mentor_for", T1, C1),
        ("guardian_for", G1, C1),
        ("guardian_for", G2, C1),  # a 10-digit civic number in the export
        ("external_user_in_school", G1, "ekb"),
        ("external_user_in_school", G2, "ekb"),
    }
    assert mapped.quarantine == []
    assert mapped.counts["protected_persons"] == 1  # c2, never in a relation
    users = {p[1]: p[3].split("\t") for p in mapped.principals if p[0] == "user"}
    assert users[C1][:2] == ["Åsa", "Öberg"]


# --- dirty exports ---------------------------------------------------------------------------


def test_bad_rows_are_reported_and_the_rest_converted(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "skolenheter.csv": UNITS,
            "personer.csv": (
                b"id;civic_no;given_name;family_name;\n"  # trailing delimiter: harmless
                b"c1;201303152381;\xc5sa;\xd6berg\n"
                b"c2;201304222464;Bo\n"  # line 3: too few fields
                b";202206111235;Utan;Id\n"  # line 4: no id
                b'c3;202206111235;"Liam\nJr";Nguyen;\n'  # a quoted line break (lines 5-6)
                b"c4;197501051115;Per;Extra;;surplus\n"  # line 7: too many fields
            ),
            "inskrivningar.csv": (
                b"person_id,school_unit_id,start,end,cancelled\n"
                b"c1,u1,2020-08-15,,\n"
                b"c3,u1,2020-08-15,20130315-2381,\n"  # line 3: a civic number in a date
                b"c9,u1,2020-08-15,,\n"  # line 4: no such person
                b"c3,u1,2021-08-15,,kanske\n"  # line 5: not a yes/no
                b"c3,u1,2022-08-15,,ja\n"
            ),
        },
    )
    out = tmp_path / "out"
    counts = extract(source(export), out)

    assert problems_of(out) == [
        {
            "file": "inskrivningar.csv",
            "line": 3,
            "reason": "end is not a date: '20130315-****'",
        },
        {"file": "inskrivningar.csv", "line": 4, "reason": "person_id c9 is not in personer"},
        {
            "file": "inskrivningar.csv",
            "line": 5,
            "reason": "cancelled is neither yes nor no: 'kanske'",
        },
        {"file": "personer.csv", "line": 3, "reason": "3 fields where the header has 4"},
        {"file": "personer.csv", "line": 4, "reason": "id is empty"},
        {"file": "personer.csv", "line": 7, "reason": "6 fields where the header has 4"},
    ]
    assert "2381" not in (out / "problems.json").read_text()
    assert counts["rows_rejected"] == 6
    assert counts["rows_read"] == 5  # 1 unit, 2 persons, 2 enrolments
    persons = entities(out)["persons"]
    assert sorted(persons) == ["c1", "c3"]
    assert persons["c1"]["givenName"] == "Åsa"
    assert persons["c3"]["givenName"] == "Liam\nJr"  # the mapping cleans it, not us
    assert persons["c3"]["enrolments"] == [
        {"enroledAt": {"id": "u1"}, "startDate": "2022-08-15", "cancelled": True}
    ]


def test_references_to_missing_owners_are_problems(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "skolenheter.csv": UNITS,
            "personer.csv": PERSONS,
            "vardnadshavare.csv": b"child_id,guardian_id,relation_type\nc1,g1,\nc7,g1,\n",
            "grupper.csv": b"id,name,group_type,school_unit_id\n7a,7A,Klass,u1\n",
            "gruppmedlemmar.csv": b"group_id,person_id\n7a,c1\n7b,c1\n",
            "tjanster.csv": b"id,person_id,school_unit_id,role\nd1,t1,u1,L\xc3\xa4rare\n",
            "uppdrag.csv": b"duty_id,group_id,role\nd1,7a,Mentor\nd9,7a,Mentor\n",
        },
    )
    out = tmp_path / "out"
    counts = extract(source(export), out)
    assert [(p["file"], p["line"]) for p in problems_of(out)] == [
        ("gruppmedlemmar.csv", 3),
        ("uppdrag.csv", 3),
        ("vardnadshavare.csv", 3),
    ]
    assert counts["rows_rejected"] == 3
    got = entities(out)
    # an empty relation type in vardnadshavare means Vårdnadshavare
    assert got["persons"]["c1"]["responsibles"] == [
        {"person": {"id": "g1"}, "relationType": "Vårdnadshavare"}
    ]
    assert got["groups"]["7a"]["groupMemberships"] == [{"person": {"id": "c1"}}]
    assert got["duties"]["d1"]["assignmentRole"] == [
        {"group": {"id": "7a"}, "assignmentRoleType": "Mentor"}
    ]
    assert got["activities"] == {}  # an absent optional file is an empty list


def test_declared_encoding_delimiter_and_header_mapping_from_the_config(tmp_path: Path) -> None:
    export = write_export(
        tmp_path / "export",
        {
            "skolenheter.csv": b"id|namn|skolformer\nu1|\xc4lvskolan|GR,FSK\n",
            "Personer.TXT": b"id|civic_no|given_name|family_name\nc1|201303152381|\xc5sa|\xd6\n",
        },
    )
    cfg = source(
        export,
        encoding="cp1252",
        delimiter="|",
        columns={"skolenheter": {"name": "Namn", "school_types": "Skolformer"}},
    )
    extract(cfg, tmp_path / "out")
    got = entities(tmp_path / "out")
    assert got["organisations"]["u1"]["displayName"] == "Älvskolan"
    assert got["organisations"]["u1"]["schoolTypes"] == ["GR", "FSK"]
    assert got["persons"]["c1"]["givenName"] == "Åsa"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"skolenheter.csv": UNITS}, r"lacks the required file\(s\) personer.csv"),
        ({"personer.csv": PERSONS}, r"lacks the required file\(s\) skolenheter.csv"),
        (
            {"skolenheter.csv": UNITS, "personer.csv": PERSONS, "personer.tsv": PERSONS},
            "holds both personer.csv and personer.tsv",
        ),
        (
            {"skolenheter.csv": b"id,namn\nu1,X\n", "personer.csv": PERSONS},
            r"skolenheter.csv line 1: required column\(s\) missing from the header: name",
        ),
        (
            {"skolenheter.csv": UNITS, "personer.csv": PERSONS, "grupper.csv": b""},
            "grupper.csv is empty",
        ),
    ],
)
def test_unreadable_export_writes_nothing(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    export = write_export(tmp_path / "export", files)
    out = tmp_path / "out"
    with pytest.raises(SourceError, match=message):
        extract(source(export), out)
    assert not out.exists() or not any(out.iterdir())


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is not a folder"):
        extract(source(tmp_path / "nowhere"), tmp_path / "out")
