"""heparch.identifiers: the forms of the analysis metadata's identifiers and quantities, and
how build (errors) and verify (warnings) use the one check."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heparch import identifiers as ids
from heparch.build import build
from heparch.errors import BuildRefused
from heparch.verify import verify

from clihelp import first_line, run


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("1909.09226", "1909.09226"),
        ("2101.01234v2", "2101.01234v2"),
        ("arXiv:1909.09226", "1909.09226"),
        ("https://arxiv.org/abs/1911.06660", "1911.06660"),
        ("0704.0001", "0704.0001"),
        ("1412.9999", "1412.9999"),
        ("hep-ex/0601001", "hep-ex/0601001"),
        ("hep-ph/9905221v3", "hep-ph/9905221v3"),
        ("math.AG/0601001", "math.AG/0601001"),
    ],
)
def test_arxiv_ids_old_and_new(value: str, normal: str) -> None:
    assert ids.parse_arxiv(value) == normal


@pytest.mark.parametrize(
    "value",
    ["1909.9226", "1501.0001", "1412.00001", "0612.1234", "1913.00001", "hep-ex/0801001", "foo-bar/0601001", "hep-ex/060100", "ATLAS paper", 1909.09226, ""],
)
def test_malformed_arxiv_ids(value: Any) -> None:
    with pytest.raises(ids.BadValue, match="not an arXiv id"):
        ids.parse_arxiv(value)


@pytest.mark.parametrize(
    ("parse", "value", "normal"),
    [
        (ids.parse_inspire, "ins1755298", "ins1755298"),
        (ids.parse_inspire, 1755298, "ins1755298"),
        (ids.parse_inspire, "1755298", "ins1755298"),
        (ids.parse_doi, "10.1103/PhysRevD.101.032009", "10.1103/PhysRevD.101.032009"),
        (ids.parse_doi, "https://doi.org/10.1007/JHEP12(2019)060", "10.1007/JHEP12(2019)060"),
        (ids.parse_doi, "doi:10.17182/hepdata.90607", "10.17182/hepdata.90607"),
        (ids.parse_hepdata, "10.17182/hepdata.90607", "10.17182/hepdata.90607"),
        (ids.parse_hepdata, "10.17182/hepdata.90607.v3/t2", "10.17182/hepdata.90607.v3/t2"),
        (ids.parse_hepdata, "https://doi.org/10.17182/hepdata.90607.v3/r3", "10.17182/hepdata.90607.v3/r3"),
        (ids.parse_hepdata, "ins1755298", "ins1755298"),
        (ids.parse_hepdata, "https://www.hepdata.net/record/ins1755298", "ins1755298"),
        (ids.parse_hepdata, "https://www.hepdata.net/record/90607", "10.17182/hepdata.90607"),
        (ids.parse_orcid, "0000-0002-1825-0097", "0000-0002-1825-0097"),
        (ids.parse_orcid, "https://orcid.org/0000-0002-1694-233X", "0000-0002-1694-233X"),
        (ids.parse_sqrt_s, 13, 13),
        (ids.parse_sqrt_s, 13.6, 13.6),
        (ids.parse_sqrt_s, "13 TeV", 13),
        (ids.parse_sqrt_s, "13", 13),  # text without a unit: the field's unit
        (ids.parse_sqrt_s, "1e300 TeV", 1e300),  # a float as the bare number 1e300 is, not a 301-digit integer JSON cannot hold
        (ids.parse_luminosity, "139", 139),
        (ids.parse_sqrt_s, "13.6TeV", 13.6),
        (ids.parse_sqrt_s, "7000 GeV", 7),
        (ids.parse_luminosity, 139, 139),
        (ids.parse_luminosity, "139/fb", 139),
        (ids.parse_luminosity, "139 fb^-1", 139),
        (ids.parse_luminosity, "36.1 fb-1", 36.1),
        (ids.parse_luminosity, "20.3 ifb", 20.3),
        (ids.parse_luminosity, "3 ab^-1", 3000),
        (ids.parse_luminosity, "4.7 fb^{-1}", 4.7),
        (ids.parse_luminosity, "500 pb-1", 0.5),
        (ids.parse_sqrt_s, "2760 GeV", 2.76),  # divided by 1000: 2760 * 1e-3 is 2.7600000000000002
        (ids.parse_sqrt_s, "5020 GeV", 5.02),
        (ids.parse_luminosity, "20300 pb^-1", 20.3),
        (ids.parse_arxiv_paper, "arXiv:2101.01234v2", "2101.01234"),
        (ids.parse_arxiv_paper, "https://arxiv.org/abs/hep-ex/0601001v3", "hep-ex/0601001"),
        (ids.parse_hepdata_record, "10.17182/hepdata.89408.v3/r2", "10.17182/hepdata.89408.v3"),
        (ids.parse_hepdata_record, "https://doi.org/10.17182/HEPData.90607/t1", "10.17182/hepdata.90607"),
        (ids.parse_license, "CC-BY-4.0", "CC-BY-4.0"),
        (ids.parse_license, "cc0-1.0", "CC0-1.0"),
        (ids.parse_license, "MIT OR (Apache-2.0 AND bsd-3-clause)", "MIT OR (Apache-2.0 AND BSD-3-Clause)"),
        (ids.parse_license, "GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        (ids.parse_license, "LicenseRef-ATLAS-open-data", "LicenseRef-ATLAS-open-data"),
    ],
)
def test_values_in_their_normal_form(parse: Any, value: Any, normal: Any) -> None:
    assert parse(value) == normal
    assert type(parse(value)) is type(normal)


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (ids.parse_inspire, "inspire 1755298", "not an INSPIRE record id"),
        (ids.parse_inspire, True, "not an INSPIRE record id"),
        (ids.parse_doi, "PhysRevD.101.032009", "not a DOI"),
        (ids.parse_doi, "10.1103/has space", "not a DOI"),
        (ids.parse_hepdata, "10.1103/PhysRevD.101.032009", "not a HEPData record"),
        (ids.parse_hepdata, "HEPData record 90607", "not a HEPData record"),
        (ids.parse_hepdata_record, "ins1755298", "not a HEPData DOI"),
        (ids.parse_arxiv_paper, "1913.12345", "not an arXiv id"),
        (ids.parse_orcid, "0000-0002-1825-0098", "check digit does not match \\(expected 7\\)"),
        (ids.parse_orcid, "0000-0002-1825", "not an ORCID iD"),
        (ids.parse_sqrt_s, "13 furlongs", "not a centre-of-mass energy"),
        (ids.parse_sqrt_s, 0, "not a centre-of-mass energy"),
        (ids.parse_sqrt_s, float("nan"), "not a centre-of-mass energy"),
        # beyond a double: refused as malformed (they were an OverflowError, exit 3)
        (ids.parse_sqrt_s, "1e999 TeV", "not a centre-of-mass energy"),
        pytest.param(ids.parse_sqrt_s, 10**400, "not a centre-of-mass energy", id="sqrt_s-a-400-digit-integer"),
        (ids.parse_luminosity, "1e999/fb", "not an integrated luminosity"),
        (ids.parse_luminosity, "1e306/ab", "not an integrated luminosity"),
        (ids.parse_luminosity, "139 fb", "not an integrated luminosity"),
        (ids.parse_luminosity, "-1/fb", "not an integrated luminosity"),
        (ids.parse_luminosity, "lots", "not an integrated luminosity"),
        (ids.parse_license, "MIT AND", "ends too early"),
        (ids.parse_license, "(MIT OR CC0-1.0", "ends too early"),
        (ids.parse_license, "MIT OR OR CC0-1.0", "'OR' where a license id belongs"),
        (ids.parse_license, "MIT CC0-1.0", "unexpected 'CC0-1.0'"),
        (ids.parse_license, "MIT, CC0-1.0", "cannot read"),
        (ids.parse_license, "Creative Commons", "'Creative' is not a license id of the SPDX License List"),
        (ids.parse_license, "MIT WITH Not-An-Exception", "not a license exception id"),
    ],
)
def test_malformed_values(parse: Any, value: Any, message: str) -> None:
    with pytest.raises(ids.BadValue, match=message):
        parse(value)


def test_an_id_not_in_the_pinned_list_is_its_own_kind_of_problem() -> None:
    version, licenses, _ = ids.spdx_list()
    assert version == "3.29.0"  # pinned in pyproject.toml; a new list is a deliberate change
    assert importlib.metadata.version(ids.SPDX_DISTRIBUTION) == version
    assert "cc-by-4.0" in licenses
    with pytest.raises(ids.UnknownLicense, match=f"SPDX License List {version}"):
        ids.parse_license("CC-BY-9.0")


@settings(derandomize=True, deadline=1000, max_examples=200)
@given(st.text("0123456789", min_size=15, max_size=15), st.integers(0, 14), st.integers(1, 9))
def test_the_orcid_check_digit_catches_every_single_digit_error(base: str, where: int, shift: int) -> None:
    """ISO 7064 MOD 11-2 detects every change of one digit (the property it is chosen for)."""
    good = base + ids.orcid_check_digit(base)
    groups = "-".join(good[i : i + 4] for i in range(0, 16, 4))
    assert ids.parse_orcid(groups) == groups
    wrong = base[:where] + str((int(base[where]) + shift) % 10) + base[where + 1 :]
    assert ids.orcid_check_digit(wrong) != good[15]


def test_normalise_analysis_locates_each_problem() -> None:
    analysis = {
        "arxiv": "arXiv:1909.09226",
        "license": "Foo-1.0",
        "sqrt_s_TeV": "13 TeV",
        "doi": "not a doi",
        "contacts": [{"name": "A"}, {"name": "B", "orcid": "0000-0002-1825-0098"}],
        "title": "kept as is",
    }
    out, findings = ids.normalise_analysis(analysis, "arch.yaml:analysis")
    assert out["arxiv"] == "1909.09226"
    assert out["sqrt_s_TeV"] == 13
    assert out["title"] == "kept as is"
    assert out["doi"] == "not a doi"  # a bad value is kept; the finding says so
    assert [(f.code, f.location) for f in findings] == [
        ("W013", "arch.yaml:analysis.doi"),
        ("W014", "arch.yaml:analysis.license"),
        ("W013", "arch.yaml:analysis.contacts[1].orcid"),
    ]
    assert analysis["arxiv"] == "arXiv:1909.09226"  # the input is not changed


def _write_arch_yaml(analysis: Path, body: str) -> None:
    (analysis / "arch.yaml").write_text("analysis:\n" + body)


def test_build_normalises_what_arch_yaml_gives(analysis: Path, tmp_path: Path) -> None:
    _write_arch_yaml(
        analysis,
        '  sqrt_s_TeV: "13 TeV"\n  luminosity_ifb: "139 fb^-1"\n  arxiv: "arXiv:1909.09226"\n  inspire: 1755298\n'
        "  license: cc-by-4.0\n  hepdata: https://doi.org/10.17182/hepdata.90607.v3\n"
        "  contacts: [{name: A, orcid: 'https://orcid.org/0000-0002-1825-0097'}]\n",
    )
    result = build(analysis, output=tmp_path / "b.zst")
    a = result.manifest.analysis
    assert a is not None
    assert a.contacts is not None
    assert (a.sqrt_s_TeV, a.luminosity_ifb, a.arxiv, a.inspire, a.license) == (13, 139, "1909.09226", "ins1755298", "CC-BY-4.0")
    assert a.hepdata == "10.17182/hepdata.90607.v3"  # arch.yaml wins over the patchset's reference
    assert a.contacts[0].orcid == "0000-0002-1825-0097"
    assert verify(result.output).report.findings == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('  arxiv: "ATLAS-SUSY-2018-04"\n', r"W013 arch.yaml:analysis.arxiv: 'ATLAS-SUSY-2018-04' is not an arXiv id .*; write it in that form"),
        ("  arxiv: 1909.09226\n", r"W013 arch.yaml:analysis.arxiv: 1909.09226 is a number, not an arXiv id .*quote it, \"1909.09226\""),
        ('  luminosity_ifb: "139 inverse femtobarn"\n', r"W013 arch.yaml:analysis.luminosity_ifb: .* is not an integrated luminosity in fb\^-1"),
        ("  license: CC-BY-9.0\n", r"W014 arch.yaml:analysis.license: 'CC-BY-9.0' is not a license id of the SPDX License List 3.29.0 .* or LicenseRef-<name>"),
        ("  contacts: [{name: A, orcid: 0000-0002-1825-0098}]\n", r"W013 arch.yaml:analysis.contacts\[0\].orcid: .*check digit"),
    ],
)
def test_build_refuses_a_malformed_value_naming_the_field(analysis: Path, tmp_path: Path, body: str, message: str) -> None:
    _write_arch_yaml(analysis, body)
    with pytest.raises(BuildRefused, match=message):
        build(analysis, output=tmp_path / "b.zst")
    assert not (tmp_path / "b.zst").exists()
    code, _, err = run("build", str(analysis), "-o", str(tmp_path / "b.zst"))
    assert code == 2
    assert "Traceback" not in err
    assert "arch.yaml:analysis." in first_line(err)


def test_a_value_found_in_the_files_is_normalised_or_kept_as_it_is() -> None:
    """Only what arch.yaml gives refuses the build: a value read from a published file (a
    HEPData submission's, a patchset's) in another form must not stop its preservation; it is
    kept, and verify warns (W013)."""
    from heparch.build import _typed_analysis
    from heparch.config import ArchConfig

    found = {"doi": "Phys. Rev. D 101 (2020) 032009", "sqrt_s_TeV": "13 TeV", "arxiv": "arXiv:1909.09226"}
    assert _typed_analysis(ArchConfig(), found) == {"doi": "Phys. Rev. D 101 (2020) 032009", "sqrt_s_TeV": 13, "arxiv": "1909.09226"}
    with pytest.raises(BuildRefused, match=r"W013 arch\.yaml:analysis\.doi"):
        _typed_analysis(ArchConfig(analysis={"doi": found["doi"]}), found)


def test_an_old_style_bundle_with_free_text_verifies_with_warnings(analysis: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bundle written before the checks (free text in the identifiers, a license id newer than
    the pinned list) stays valid: verify warns, once per value, and builds the others."""
    import heparch.build

    _write_arch_yaml(
        analysis,
        '  inspire: "INSPIRE 1755298"\n  arxiv: "arXiv: 1909.09226 [hep-ex]"\n  doi: "Phys. Rev. D 101 (2020) 032009"\n'
        "  license: CC-BY-5.0\n  contacts: [{name: A, orcid: 'orcid 0000-0002-1825-0097'}]\n  sqrt_s_TeV: 13\n  luminosity_ifb: 139\n",
    )
    monkeypatch.setattr(heparch.build, "_typed_analysis", lambda cfg, analysis: analysis)  # as heparch wrote before the checks
    old = build(analysis, output=tmp_path / "old.zst").output
    monkeypatch.undo()
    checked = verify(old)
    assert checked.valid
    warned = {(f.code, f.location.split("analysis.")[-1]) for f in checked.report.findings}
    assert warned == {("W013", "inspire"), ("W013", "arxiv"), ("W013", "doi"), ("W014", "license"), ("W013", "contacts[0].orcid")}
    code, _, err = run("verify", str(old))
    assert code == 0
    assert "W014" in err


def _expressions() -> st.SearchStrategy[tuple[str, str]]:
    """(an SPDX expression in any letter case, the same in the list's case) built from the pinned ids."""
    _, licenses, exceptions = ids.spdx_list()
    lic = st.sampled_from(sorted(licenses.values()))
    exc = st.sampled_from(sorted(exceptions.values()))

    def cased(text: str, upper: bool) -> str:
        return text.upper() if upper else text.lower()

    simple = st.one_of(
        st.tuples(lic, st.booleans()).map(lambda t: (cased(t[0], t[1]), t[0])),
        st.tuples(lic, exc, st.booleans()).map(lambda t: (f"{cased(t[0], t[2])} with {t[1].lower()}", f"{t[0]} WITH {t[1]}")),
    )

    def joined(children: st.SearchStrategy[tuple[str, str]]) -> st.SearchStrategy[tuple[str, str]]:
        pair = st.tuples(children, st.sampled_from(["AND", "OR"]), children)
        return pair.map(lambda t: (f"({t[0][0]} {t[1].lower()} {t[2][0]})", f"({t[0][1]} {t[1]} {t[2][1]})"))

    return st.recursive(simple, joined, max_leaves=6)


@settings(derandomize=True, deadline=1000, max_examples=100)
@given(_expressions())
def test_license_expressions_take_the_lists_case_and_keep_their_shape(pair: tuple[str, str]) -> None:
    written, normal = pair
    assert ids.parse_license(written) == normal
    assert ids.parse_license(normal) == normal


def test_find_doi_takes_the_doi_out_of_any_link() -> None:
    assert ids.find_doi("https://link.aps.org/doi/10.1103/PhysRevLett.127.051802") == "10.1103/PhysRevLett.127.051802"
    assert ids.find_doi("see the paper") is None
