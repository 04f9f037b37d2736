"""GTIN check digits and barcode keys: pure rules, no I/O."""

import pytest

from ledger.barcodes import InvalidBarcode, check_digit, display_barcode, normalize_barcode


@pytest.mark.parametrize(
    ("code", "digit"),
    [
        ("96385074", 4),  # EAN-8
        ("036000291452", 2),  # UPC-A (GTIN-12)
        ("4006381333931", 1),  # EAN-13
        ("10614141000415", 5),  # GTIN-14 (a case)
        ("7891000315507", 7),
    ],
)
def test_the_gs1_check_digit(code, digit):
    assert check_digit(code[:-1]) == digit


@pytest.mark.parametrize("code", ["96385074", "036000291452", "4006381333931", "10614141000415"])
def test_every_gtin_length_is_keyed_as_gtin_14_and_shown_as_printed(code):
    key = normalize_barcode(code)
    assert key == code.zfill(14)
    assert len(key) == 14
    assert display_barcode(key) == code


@pytest.mark.parametrize("code", ["96385075", "036000291453", "4006381333932", "10614141000416"])
def test_a_wrong_check_digit_is_refused(code):
    with pytest.raises(InvalidBarcode) as refused:
        normalize_barcode(code)
    assert refused.value.code == "invalid_barcode"
    assert "check digit" in refused.value.detail


def test_a_gtin_12_and_its_ean_13_form_are_one_key():
    assert normalize_barcode("012345678905") == normalize_barcode("0012345678905")


@pytest.mark.parametrize("code", ["ABC-1", "123", "1234567890", "123456789012345"])
def test_other_codes_are_internal_codes_kept_as_they_are(code):
    assert normalize_barcode(code) == code
    assert display_barcode(code) == code


@pytest.mark.parametrize("code", ["", " x", "..", "a\x00b", 12345678, None])
def test_internal_codes_follow_the_code_rules(code):
    with pytest.raises(InvalidBarcode):
        normalize_barcode(code)
