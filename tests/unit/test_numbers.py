"""A far-end number's country (pipelines/numbers.py): E.164 with and without its `+`, national
numbers read in a default region first, sip: and tel: URIs, non-geographic numbers as `001`,
and None for words, empty strings, None and numbers libphonenumber does not hold valid.

Every expected value is a literal written from the numbering plans (+1 212 New York, +1 876
Jamaica, +44 74 a UK mobile, +86 28 Chengdu...), never computed by the code under test.
"""

from __future__ import annotations

import phonenumbers
import pytest

from pipelines.numbers import check_region, countries, country, e164, far_end


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+12125550123", "US"),
        ("+1 212 555 0123", "US"),
        ("+1 (212) 555-0123", "US"),
        ("+1.212.555.0123", "US"),
        ("+18765230123", "JM"),  # +1 876: Jamaica shares +1 with the US
        ("+1 876 523 0123", "JM"),
        ("+447400123456", "GB"),
        ("+447911123456", "GG"),  # libphonenumber places this UK-range mobile in Guernsey
        ("+4930123456", "DE"),
        ("+33123456789", "FR"),
        ("+20234567890", "EG"),
        ("+8628964595", "CN"),
    ],
)
def test_e164_numbers_read_as_their_region(number: str, expected: str) -> None:
    assert country(number) == expected
    assert country(number, "US") == expected  # a default region leaves `+` numbers alone


@pytest.mark.parametrize(
    "number",
    [
        "+80012345678",  # international freephone
        "+80812345678",  # shared-cost
        "+870301234567",  # Inmarsat
        "+881612345678",  # global mobile satellite
        "+8823421234",  # international networks
        "+882 342 1234",
        "+979123456789",  # international premium rate
    ],
)
def test_non_geographic_numbers_are_001(number: str) -> None:
    assert country(number) == "001"


@pytest.mark.parametrize(
    ("number", "region", "expected"),
    [
        ("2065550123", "US", "US"),
        ("(206) 555-0123", "US", "US"),
        ("12065550123", "US", "US"),  # the US trunk prefix 1
        ("8765230123", "US", "JM"),  # dialled in the US, still Jamaica's
        ("011447400123456", "US", "GB"),  # the US international prefix 011
        ("8628964595", "US", "US"),  # the region comes first ...
        ("8628964595", None, "CN"),  # ... without one, these digits are +86 28 (Chengdu)
        ("447400123456", "US", "GB"),  # no US number: read as +44
        ("447400123456", None, "GB"),
        ("12125550123", None, "US"),
        ("07400123456", "GB", "GB"),  # the UK trunk prefix 0
        ("07400123456", None, None),  # +07... is no number
        ("2065550123", None, None),  # +20 65550123 is no valid Egyptian number
    ],
)
def test_digits_only_read_in_the_default_region_first(
    number: str, region: str | None, expected: str | None
) -> None:
    assert country(number, region) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("sip:+447400123456@host;user=phone", "GB"),
        ("SIP:+447400123456@10.0.0.1:5060", "GB"),  # the scheme in any case
        ("sip:+447400123456;npdi@host", "GB"),  # the user part's own ;params are dropped
        ("sip:12125550123@carrier.example.com", "US"),
        ("sip:+18765230123@host", "JM"),
        ("sip:+80012345678@host", "001"),
        ("tel:+1-212-555-0123", "US"),
        ("TEL:+1-212-555-0123;ext=42", "US"),
        ("tel:+44.7400.123456", "GB"),
        ("sip:alice@example.com", None),
        ("sip:+447400123456", None),  # no `@`: no user part
        ("sip:10.0.0.1", None),  # a host is no number
        ("sips:+447400123456@host", None),  # only sip: and tel:
        ("mailto:+447400123456@host", None),
    ],
)
def test_uris_read_as_their_user_part(number: str, expected: str | None) -> None:
    assert country(number) == expected


def test_a_uri_user_part_of_national_digits_uses_the_default_region() -> None:
    assert country("sip:2065550123@pbx.local", "US") == "US"
    assert country("tel:2065550123", "US") == "US"
    assert country("sip:2065550123@pbx.local") is None


@pytest.mark.parametrize(
    "number",
    [
        None,
        "",
        " ",
        "+",
        "alice",
        "anonymous",
        "+1 800 FLOWERS",  # letters are no digits
        "++12125550123",
        "+12125550123x",
        "+1212555012",  # one digit short
        "+447700900123",  # Ofcom's drama range: libphonenumber holds it invalid
        "447700900123",
        "+88213345678",  # a region for libphonenumber (001), but not a valid number
        "+2065550123",  # a region for libphonenumber (EG), but not a valid number
        "+99912345678",  # no country code
        "12345",
        "+١٢١٢٥٥٥٠١٢٣",  # Arabic-Indic digits are not ASCII digits
    ],
)
def test_words_empty_and_invalid_numbers_have_no_country(number: str | None) -> None:
    assert country(number) is None
    assert country(number, "US") is None
    assert e164(number, "US") is None


def test_447700900123_is_not_gb_even_with_region_us() -> None:
    # The example; libphonenumber holds 07700 900xxx (reserved for drama) invalid.
    assert country("447700900123", "US") is None
    assert country("447400123456", "US") == "GB"


@pytest.mark.parametrize(
    ("number", "region", "expected"),
    [
        ("+1 (212) 555-0123", None, "+12125550123"),
        ("2125550123", "US", "+12125550123"),
        ("12125550123", None, "+12125550123"),
        ("8628964595", "US", "+18628964595"),
        ("8628964595", None, "+8628964595"),
        ("07400123456", "GB", "+447400123456"),
        ("011447400123456", "US", "+447400123456"),
        ("sip:+447400123456@host;user=phone", None, "+447400123456"),
        ("tel:+882-342-1234", None, "+8823421234"),
        ("2065550123", None, None),
        ("alice", "US", None),
    ],
)
def test_e164_is_the_number_as_read(number: str, region: str | None, expected: str | None) -> None:
    assert e164(number, region) == expected


def test_far_end_is_to_outbound_and_from_inbound() -> None:
    assert far_end("outbound", "+12125550123", "+447400123456") == "+447400123456"
    assert far_end("inbound", "+12125550123", "+447400123456") == "+12125550123"
    assert far_end("inbound", None, "+447400123456") is None
    assert far_end("outbound", "+12125550123", None) is None


@pytest.mark.parametrize("direction", [None, "", "Outbound", "INBOUND", "both", "unknown"])
def test_no_far_end_for_any_other_direction(direction: str | None) -> None:
    assert far_end(direction, "+12125550123", "+447400123456") is None


def test_countries_maps_each_distinct_number_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    real_parse = phonenumbers.parse

    def counting_parse(text: str, region: str | None = None) -> phonenumbers.PhoneNumber:
        parsed.append(text)
        return real_parse(text, region)

    monkeypatch.setattr(phonenumbers, "parse", counting_parse)
    calls = ["+447400123456", None, "2065550123", "+447400123456", "alice", "2065550123", None]
    assert countries(calls, "US") == {
        "+447400123456": "GB",
        "2065550123": "US",
        "alice": None,
    }
    assert sorted(parsed) == ["+447400123456", "2065550123"]  # each once; words never parsed


def test_countries_of_nothing_is_empty() -> None:
    assert countries([], None) == {}
    assert countries([None, None], "US") == {}


@pytest.mark.parametrize(
    ("code", "expected"),
    [("US", "US"), ("us", "US"), (" gb ", "GB"), ("Jm", "JM"), ("GG", "GG")],
)
def test_check_region_upper_cases_a_known_region(code: str, expected: str) -> None:
    assert check_region(code) == expected


@pytest.mark.parametrize("code", ["XX", "USA", "001", "", "U S", "UK"])
def test_check_region_names_an_unknown_value(code: str) -> None:
    with pytest.raises(ValueError, match="is not a region libphonenumber knows") as raised:
        check_region(code)
    assert repr(code) in str(raised.value)


def test_an_unknown_default_region_is_an_error_not_a_silent_fallback() -> None:
    with pytest.raises(ValueError, match="'XX'"):
        country("2065550123", "XX")
    with pytest.raises(ValueError, match="'XX'"):
        countries(["2065550123"], "XX")
    assert country("+12125550123", "us") == "US"  # a known region in lower case is fine
