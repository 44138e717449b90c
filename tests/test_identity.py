"""Identity numbers: table-driven, literal inputs and expected outputs (spec §6)."""

import pytest

from autosynk.identity import InvalidIdentity, mask, mask_shaped, normalise


@pytest.mark.parametrize(
    ("raw", "value", "kind"),
    [
        ("19900101-0017", "19900101-0017", "personnummer"),
        ("900101-0017", "19900101-0017", "personnummer"),
        ("9001010017", "19900101-0017", "personnummer"),
        ("199001010017", "19900101-0017", "personnummer"),
        (" 19900101-0017 ", "19900101-0017", "personnummer"),
        ("900101+0017", "18900101-0017", "personnummer"),  # + means 100 years or older
        ("900161-0014", "19900161-0014", "samordningsnummer"),
        ("199001610014", "19900161-0014", "samordningsnummer"),
        ("20130315-TF01", "20130315-TF01", "tf"),
        ("20130315tf01", "20130315-TF01", "tf"),
    ],
)
def test_normalise_accepts(raw, value, kind):
    identity = normalise(raw)
    assert (identity.value, identity.kind) == (value, kind)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "no identity number"),
        ("", "no identity number"),
        ("19900101-0018", "check digit"),
        ("19901301-0017", "check digit or date"),
        ("abc", "not a personnummer"),
        ("20131315-TF01", "impossible date"),
        ("2013031-TF01", "not a personnummer"),
    ],
)
def test_normalise_rejects_with_a_reason_that_hides_the_number(raw, reason):
    with pytest.raises(InvalidIdentity) as caught:
        normalise(raw)
    assert reason in str(caught.value)
    if raw:
        assert raw not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # identity numbers, wherever they stand: masked
        ("19900101-0017", "19900101-****"),
        ("pupil 199001010017 left", "pupil 19900101**** left"),
        ("900101-0017", "900101-****"),
        ("9001010017", "900101****"),
        ("900101+0017", "900101+****"),  # 100 years or older
        ("900161-0014", "900161-****"),  # samordningsnummer: day + 60
        ("20130315-TF01", "20130315-****"),
        ("20130315tf01", "20130315****"),
        ('{"civicNo": "201303152381"}', '{"civicNo": "20130315****"}'),
        ("key=20130315-2381,a=20220611-1235", "key=20130315-****,a=20220611-****"),
        # what merely holds ten or twelve digits: unchanged
        (
            "autosynk unlock cli__20261201T134346271234Z",
            "autosynk unlock cli__20261201T134346271234Z",
        ),
        ("total__20261201T203000123456Z", "total__20261201T203000123456Z"),
        ("scheduled__2026-12-01T19:30:00+00:00", "scheduled__2026-12-01T19:30:00+00:00"),
        ("plan 20261201-2030", "plan 20261201-2030"),
        ("stamp 202612012030", "stamp 202612012030"),
        ("Exempelby_20261128_2030.principals", "Exempelby_20261128_2030.principals"),
        ("Exempelby_20261128-1234.zip.pgp", "Exempelby_20261128-1234.zip.pgp"),
        (
            "sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
            "sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
        ),
        ("19900101-0018", "19900101-0018"),  # wrong check digit: not an identity number
        ("20131315-TF01", "20131315-TF01"),  # a TF number needs a real date
        ("org 123456789012345 stays", "org 123456789012345 stays"),
        ("school unit 12345678", "school unit 12345678"),
        (None, ""),
    ],
)
def test_mask(text, masked):
    assert mask(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("first party 19900101-0018: Luhn", "first party 19900101-****: Luhn"),
        ("19900101-0017", "19900101-****"),
        ("Exempelby_20261128_2030.relations:12", "Exempelby_20261128_2030.relations:12"),
        (None, ""),
    ],
)
def test_mask_shaped_masks_mistyped_numbers_too(text, masked):
    assert mask_shaped(text) == masked
