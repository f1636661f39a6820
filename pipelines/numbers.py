"""A call's far-end number and the country it reaches, by Google's libphonenumber rules.

The far end is the number the call connects this side to: `to` for an outbound call, `from` for
an inbound one (`far_end`). Its country is the ISO 3166-1 alpha-2 region libphonenumber names
(`phonenumbers.region_code_for_number`), or `001` for a non-geographic number (+800, +808,
+870, +878, +881, +882, +883, +888, +979). A number is read like this (one rule, `_read`, behind
`country` and `e164`):

1. A `sip:` or `tel:` URI (the scheme in any case) stands for its user part: for sip:, what comes
   before the `@` (a URI without one has no user part, so no number), up to any `;param`; for
   tel:, the number before any `;`. Anything else stands for itself.
2. Visual separators (spaces, `-`, `.`, `(`, `)`) are dropped. What is left must be `+` and ASCII
   digits, or ASCII digits only; anything else (`alice`, an empty string, letters of a vanity
   number, a second `+`) has no country.
3. `+` and digits is read as E.164. Digits only are read first as dialled in `default_region`,
   when one is given, then as E.164 with a `+` put in front. "As dialled in" is libphonenumber's
   reading with that region: the national number, with the region's trunk and international
   prefixes understood (`12065550123` or `011447400123456` under US) and the number's own region
   kept, so `8765230123` under US is Jamaica. So under US `8628964595` is a US number, though
   with no region it is a valid Chinese one (+86), and `447400123456`, no US number, is still GB.
   (`2065550123` with no region has no country: +20 is Egypt's code, but no valid number there.)
4. The first reading that `phonenumbers.is_valid_number` accepts wins; if none does, there is no
   country. Only valid numbers count because libphonenumber names a region for some invalid ones
   (+2065550123 reads as EG, +88213345678 as 001) and not for others (+447700900123, Ofcom's
   drama range, gives None).

A day can hold 100k calls over far fewer distinct numbers: `countries` reads each distinct one
once. Reading a valid number costs 45-80 µs (measured on a busy 2-core machine over 100k
distinct numbers; nearly all of it is libphonenumber's parse and validity check), so 100k
distinct numbers take some 6 s and a day of 100k calls over 5k numbers 0.3 s. Words cost about
1 µs: they never reach libphonenumber.

`default_region` must be a region libphonenumber knows (`check_region`, which validates the
NUMBERS_DEFAULT_REGION setting at start-up); an unknown one raises ValueError.

Pure: no I/O, no Dagster, no DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers

_SEPARATORS = str.maketrans("", "", " -.()")


def check_region(code: str) -> str:
    """`code` upper-cased (and stripped), if libphonenumber knows that region; else ValueError.

    The error's message names the value. `001`, libphonenumber's name for non-geographic numbers,
    is no region to read a national number in, so it is refused like any unknown code.
    """
    region = code.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{code!r} is not a region libphonenumber knows: expected an ISO 3166-1 alpha-2 "
            "code such as 'US' or 'GB'"
        )
    return region


def far_end(direction: str | None, from_number: str | None, to_number: str | None) -> str | None:
    """The number at the far end: `to` of an outbound call, `from` of an inbound one, else None."""
    if direction == "outbound":
        return to_number
    if direction == "inbound":
        return from_number
    return None


def country(number: str | None, default_region: str | None = None) -> str | None:
    """The region `number` reaches (ISO 3166-1 alpha-2, or `001`), or None if it reads as none."""
    return _country(number, _region(default_region))


def e164(number: str | None, default_region: str | None = None) -> str | None:
    """`number` as E.164 (`+` and digits) by the same reading as `country`, or None."""
    parsed = _read(number, _region(default_region))
    if parsed is None:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# E.164 calling codes that belong to no country (ITU's "non-geographic" codes), all named `001`
NON_GEOGRAPHIC = ("800", "808", "870", "878", "881", "882", "883", "888", "979")


def fraud_country(number: str | None, default_region: str | None = None) -> str | None:
    """`country`, or `001` for a number that reads as none but whose digits (any `+` dropped)
    begin with a non-geographic calling code: the fraud checks count +882 and its kin as
    satellite and premium ranges even where libphonenumber holds the number invalid."""
    return key_and_country(number, default_region)[1]


def key_and_country(
    number: str | None, default_region: str | None = None
) -> tuple[str | None, str | None]:
    """The fraud checks' key of `number` and its `fraud_country`, read once. The key: its `e164`,
    else its digits with any `+` dropped (URI user part and separators taken away as for
    `country`); None for words and empty strings."""
    region = _region(default_region)
    parsed = _read(number, region)
    if parsed is not None:
        key = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return key, phonenumbers.region_code_for_number(parsed)
    dialled = _dialled(number)
    digits = None if dialled is None else dialled.lstrip("+") or None
    if digits is not None and digits.startswith(NON_GEOGRAPHIC):
        return digits, "001"
    return digits, None


def countries(
    numbers: Iterable[str | None], default_region: str | None = None
) -> dict[str, str | None]:
    """Each distinct number of `numbers` -> its `country`, every one read once.

    None is not a key (its country is None). The keys keep the order of first appearance.
    """
    region = _region(default_region)
    found: dict[str, str | None] = {}
    for number in numbers:
        if number is not None and number not in found:
            found[number] = _country(number, region)
    return found


def _region(default_region: str | None) -> str | None:
    return None if default_region is None else check_region(default_region)


def _country(number: str | None, region: str | None) -> str | None:
    parsed = _read(number, region)
    return None if parsed is None else phonenumbers.region_code_for_number(parsed)


def _read(number: str | None, region: str | None) -> phonenumbers.PhoneNumber | None:
    """The first valid reading of `number` (the module's rule), or None."""
    dialled = _dialled(number)
    if dialled is None:
        return None
    if dialled.startswith("+"):
        readings: list[tuple[str, str | None]] = [(dialled, None)]
    else:
        readings = [(dialled, region)] if region is not None else []
        readings.append(("+" + dialled, None))
    for text, reading_region in readings:
        try:
            parsed = phonenumbers.parse(text, reading_region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            return parsed
    return None


def _dialled(number: str | None) -> str | None:
    """The `+digits` or `digits` that `number` stands for, separators dropped; else None."""
    if number is None:
        return None
    text = number.strip()
    scheme, colon, rest = text.partition(":")
    if colon and scheme.lower() == "sip":
        user, at, _host = rest.partition("@")
        if not at:
            return None
        text = user.partition(";")[0]
    elif colon and scheme.lower() == "tel":
        text = rest.partition(";")[0]
    text = text.translate(_SEPARATORS)
    digits = text[1:] if text.startswith("+") else text
    if not (digits.isascii() and digits.isdigit()):
        return None
    return text
