"""The run configuration: unknown or missing keys are errors naming the key and line."""

import pytest

from autosynk.config import load_config
from autosynk.errors import ConfigError
from autosynk.mapping.spec import load_mapping

GOOD = """\
municipality: Exempelby
organisation_id: exempelby-kommun
source:
  kind: ss12000-files
  path: register
target:
  kind: directory
  path: out
"""


def write(tmp_path, text, name="autosynk.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_are_taken_from_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.source.path == tmp_path / "register"
    assert cfg.target.path == tmp_path / "out"
    assert cfg.staging.url == f"sqlite:///{tmp_path}/staging.db"
    assert cfg.encoding == "utf-8" and cfg.packaging == "plain"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "colour: red\n", "line 9: colour: unknown key"),
        (
            GOOD.replace("  path: register\n", "  path: register\n  bogus: 1\n"),
            "line 6: source.bogus: unknown key",
        ),
        (
            GOOD.replace("organisation_id: exempelby-kommun\n", ""),
            "organisation_id: required key is missing",
        ),
        (GOOD.replace("  path: out\n", ""), "line 6: target.path: required key is missing"),
        (GOOD + "encoding: latin-9\n", "line 9: encoding: Input should be"),
        (GOOD.replace("kind: directory", "kind: ftp"), "target"),
        ("municipality: [unclosed\n", "not valid YAML"),
        (GOOD + "packaging: zip+pgp\n", "zip+pgp needs a pgp section"),
    ],
)
def test_bad_config_names_the_key_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_mapping_override_and_errors(tmp_path):
    spec = load_mapping(write(tmp_path, "mentor_links: false\ngroup_types: [Klass]\n", "m.yaml"))
    assert spec.mentor_links is False and spec.group_types == ["Klass"]
    assert spec.school_forms["GR"] == "se.grundskoleutbildning.grundskola"  # default kept
    bad = write(
        tmp_path, "school_forms:\n  GYS: se.gymnasiesarskola\nmentorlinks: true\n", "b.yaml"
    )
    with pytest.raises(ConfigError) as caught:
        load_mapping(bad)
    text = str(caught.value)
    assert "b.yaml line 1: school_forms" in text and "not a Unikum school form" in text
    assert "b.yaml line 3: mentorlinks: unknown key" in text


def test_shipped_examples_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [
        root / "config" / "autosynk.example.yaml",
        root / "examples" / "demo" / "autosynk.yaml",
        root / "examples" / "csv-export" / "autosynk.yaml",
    ]:
        cfg = load_config(path)
        assert cfg.municipality == "Exempelby", path
