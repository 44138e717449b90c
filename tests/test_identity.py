"""Identity numbers: table-driven, literal inputs and expected outputs (spec §6)."""

import pytest

from autosynk.identity import InvalidIdentity, mask, normalise


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
        ("19900101-0017", "19900101-****"),
        ("pupil 199001010017 left", "pupil 19900101**** left"),
        ("900101-0017", "900101-****"),
        ("20130315-TF01", "20130315-****"),
        ("org 123456789012345 stays", "org 123456789012345 stays"),
        ("school unit 12345678", "school unit 12345678"),
        (None, ""),
    ],
)
def test_mask(text, masked):
    assert mask(text) == masked
