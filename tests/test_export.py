"""arch export (issue 14 item 3): each format written from a verified bundle and checked by the
format's own validator (hepdata-validator, datacite's schema 4.5, the CFF 1.2.0 schema, roc-validator);
refusals name the missing field and write nothing."""

from __future__ import annotations

import gc
import hashlib
import io
import json
import shutil
import socket
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from datacite import schema45
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from ruamel.yaml import YAML

import heparch
from heparch.build import build
from heparch.errors import InputError
from heparch.export import DEFAULT_NAMES, Deposit, citation, export, hepdata, ro_crate, zenodo

from clihelp import run
from conftest import EXAMPLE, ONE_LBB

with warnings.catch_warnings():  # hepdata-validator 0.3.6 imports jsonschema's deprecated RefResolutionError
    warnings.simplefilter("ignore", DeprecationWarning)
    from hepdata_validator.full_submission_validator import FullSubmissionValidator

DEPOSIT = Deposit(doi="10.5281/zenodo.1234567", publisher="Zenodo", year=2026)
DEPOSIT_ARGS = ("--doi", "10.5281/zenodo.1234567", "--publisher", "Zenodo", "--year", "2026")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "toy.zst"
    build(EXAMPLE, output=out)
    return out


def _variant(tmp_path: Path, name: str, analysis: dict[str, Any], drop: tuple[str, ...] = ()) -> Path:
    """The example bundle built with its analysis metadata changed (``drop``: fields removed)."""
    src = shutil.copytree(EXAMPLE, tmp_path / name)
    rt = YAML()
    data = rt.load((src / "arch.yaml").read_text("utf-8"))
    for key in drop:
        data["analysis"].pop(key, None)
    data["analysis"].update(analysis)
    buf = io.StringIO()
    rt.dump(data, buf)
    (src / "arch.yaml").write_text(buf.getvalue(), "utf-8")
    return build(src, output=tmp_path / f"{name}.zst").output


def _hepdata_problems(**where: str) -> list[str]:
    """hepdata-validator's messages about a submission (``directory=`` or ``archive=``); empty when valid."""
    with warnings.catch_warnings():  # the validator leaves its data files open (ResourceWarning)
        warnings.simplefilter("ignore", ResourceWarning)
        validator = FullSubmissionValidator()
        valid = validator.validate(**where)
        found = [f"{f}: {m.message}" for f, ms in validator.get_messages().items() for m in ms]
        del validator
        gc.collect()
    assert valid == (found == []), found
    return found


def _results() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLE / "results.json").read_text("utf-8"))
    return data


# --- hepdata ---------------------------------------------------------------------------------


def test_hepdata_directory_validates_and_holds_the_claims(toy: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub"
    written = export("hepdata", toy, out)
    assert _hepdata_problems(directory=str(out)) == []
    docs = list(yaml.safe_load_all((out / "submission.yaml").read_text("utf-8")))
    resources = {r["location"]: r for r in docs[0]["additional_resources"]}
    assert resources["BkgOnly.json"]["type"] == "HistFactory"
    assert resources["patchset.json"]["type"] == "HistFactory"
    assert (out / "BkgOnly.json").read_bytes() == (EXAMPLE / "BkgOnly.json").read_bytes()
    assert (out / "toy.zst").read_bytes() == toy.read_bytes()
    assert written.identity in resources["toy.zst"]["description"]
    table = yaml.safe_load((out / docs[1]["data_file"]).read_text("utf-8"))
    claimed = _results()["points"]
    observed = [v["value"] for v in table["dependent_variables"][0]["values"]]
    assert observed == [p["CLs_obs"] for p in claimed.values()]  # numbers, in the claims' order
    median = table["dependent_variables"][3]
    assert median["header"]["name"] == "CLs expected median"
    assert [v["value"] for v in median["values"]] == [p["CLs_exp"][2] for p in claimed.values()]
    patches = json.loads((EXAMPLE / "patchset.json").read_text("utf-8"))["patches"]
    values = {p["metadata"]["name"]: p["metadata"]["values"] for p in patches}
    assert [h["header"]["name"] for h in table["independent_variables"]] == ["m1", "m2"]
    assert [v["value"] for v in table["independent_variables"][0]["values"]] == [values[p][0] for p in claimed]
    assert {"name": "cmenergies", "values": [13000]} in docs[1]["keywords"]


def test_hepdata_zip_validates(toy: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub.zip"
    export("hepdata", toy, out)
    assert _hepdata_problems(archive=str(out)) == []
    with zipfile.ZipFile(out) as archive:
        assert {"submission.yaml", "CLs_1.yaml", "BkgOnly.json", "patchset.json", "toy.zst"} == set(archive.namelist())
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_hepdata_tables_of_upper_limits(tmp_path: Path) -> None:
    src = shutil.copytree(EXAMPLE, tmp_path / "ul")
    results = _results()
    first = next(iter(results["points"]))
    results["points"][first] |= {"mu_up_obs": 0.5, "mu_up_exp": [0.2, 0.3, 0.4, 0.6, 0.8]}
    (src / "results.json").write_text(json.dumps(results), "utf-8")
    bundle = build(src, output=tmp_path / "ul.zst").output
    out = tmp_path / "sub"
    export("hepdata", bundle, out)
    assert _hepdata_problems(directory=str(out)) == []
    table = yaml.safe_load((out / "upper_limits_1.yaml").read_text("utf-8"))
    assert [v["value"] for v in table["dependent_variables"][0]["values"]] == [0.5]
    assert [v["value"] for v in table["dependent_variables"][5]["values"]] == [0.8]


@pytest.mark.slow
def test_hepdata_of_1lbb_with_its_pyhf_reference_claims(tmp_path: Path) -> None:
    """The 1Lbb likelihood with the pyhf reference CLs of its 125 points (shared data, with their
    provenance) as claims: a submission that hepdata-validator accepts, the points' masses as independent
    variables; ~10 s (build, full verification)."""
    src = tmp_path / "lbb"
    src.mkdir()
    for name in ("BkgOnly.json", "patchset.json"):
        shutil.copyfile(ONE_LBB / name, src / name)
    ref = json.loads((ONE_LBB / "reference_pyhf_cls.json").read_text("utf-8"))
    settings = {k: ref["settings"][k] for k in ("mu", "test_stat", "calctype", "interpolation")}
    (src / "results.json").write_text(json.dumps({"likelihood": "BkgOnly.json", "backend": "pyhf", "settings": settings, "points": ref["points"]}), "utf-8")
    (src / "arch.yaml").write_text("analysis:\n  axes: {m1: 'm(C1/N2) [GeV]'}\n", "utf-8")
    bundle = build(src, output=tmp_path / "lbb.zst").output
    out = tmp_path / "submission"
    export("hepdata", bundle, out)
    assert _hepdata_problems(directory=str(out)) == []
    table = yaml.safe_load((out / "CLs_1.yaml").read_text("utf-8"))
    assert len(table["dependent_variables"][0]["values"]) == len(ref["points"]) == 125
    assert [v["header"]["name"] for v in table["independent_variables"]] == ["m(C1/N2) [GeV]", "m2"]
    first = next(iter(ref["points"]))
    assert table["dependent_variables"][0]["values"][0]["value"] == ref["points"][first]["CLs_obs"]


#: the analysis metadata a HEPData submission carries back to arch build (docs/export.md, "Round trip")
ROUND_TRIP_KEPT = ("description", "hepdata", "luminosity_ifb", "sqrt_s_TeV")


def test_hepdata_export_builds_back_with_the_same_likelihood_and_patchset(toy: Path, tmp_path: Path) -> None:
    """Issue 14: ``arch export hepdata`` of the example, then ``arch build`` of that submission (the
    importer reads submission.yaml and its resources): the likelihood and patchset are the same bytes;
    what differs is documented in docs/export.md and pinned here."""
    export("hepdata", toy, tmp_path / "sub")
    code, _, err = run("build", str(tmp_path / "sub"), "-o", str(tmp_path / "again.zst"))
    assert code == 0, err
    with heparch.open(toy) as a, heparch.open(tmp_path / "again.zst") as b:
        before = {f.path: f for f in a.manifest.files}
        after = {f.path: f for f in b.manifest.files}
        for path, role in (("BkgOnly.json", "likelihood"), ("patchset.json", "patchset")):
            assert (after[path].role, after[path].digest, after[path].annotations) == (role, before[path].digest, before[path].annotations)
        # the claims and the simplified likelihood travel as HEPData tables and the bundle itself, not as components
        assert {p: f.role for p, f in after.items() if p not in before} == {
            "CLs_1.yaml": "attachment",
            "submission.yaml": "attachment",
            "toy.zst": "attachment",
        }
        assert sorted(set(before) - set(after)) == ["README.md", "code/fit.py", "results.json", "simplified.json"]
        assert b.read_bytes("toy.zst") == toy.read_bytes()
        old, new = a.manifest.analysis, b.manifest.analysis
        assert old is not None
        assert new is not None
        assert new.model_dump(exclude_none=True) == {k: v for k, v in old.model_dump(exclude_none=True).items() if k in ROUND_TRIP_KEPT}
        assert (b.manifest.name, b.manifest.created) == (None, None)
        assert b.identity != a.identity


def test_hepdata_refuses_a_bundle_without_claims(analysis: Path, tmp_path: Path) -> None:
    bundle = build(analysis, output=tmp_path / "plain.zst").output
    code, out, err = run("export", "hepdata", str(bundle), "-o", str(tmp_path / "sub"))
    assert code == 2
    assert out == ""
    assert "no claimed results" in err
    assert "arch claim" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ana", "plain.zst"]


@settings(derandomize=True, deadline=2000, max_examples=200)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False)
        | st.integers()
        | st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")))
        | st.sampled_from(["on", "no", "1e5", "2026-01-01", "0777"]),
        max_size=5,
    )
)
def test_table_values_read_back_as_written(values: list[Any]) -> None:
    """With PyYAML, as HEPData reads them: YAML 1.1 (it reads ``1e-05`` and ``on`` otherwise than 1.2)."""
    assert list(yaml.safe_load_all(hepdata.dump([{"values": values}, {"n": 1}]))) == [{"values": values}, {"n": 1}]


def test_hepdata_refuses_two_files_of_one_name(toy: Path, tmp_path: Path) -> None:
    named = shutil.copyfile(toy, tmp_path / "BkgOnly.json")  # the bundle file named as its likelihood
    with pytest.raises(InputError, match=r"two files of the HEPData export would be named 'BkgOnly\.json'"):
        export("hepdata", named, tmp_path / "sub")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["BkgOnly.json"]


def test_flat_names() -> None:
    assert hepdata.flat_name("RegionA/BkgOnly.json") == "RegionA_BkgOnly.json"


# --- datacite --------------------------------------------------------------------------------


def test_datacite_json_and_xml_validate(toy: Path, tmp_path: Path) -> None:
    code, out, err = run("export", "datacite", str(toy), "-o", str(tmp_path / "dc.json"), *DEPOSIT_ARGS, "--json")
    assert code == 0, err
    identity = json.loads(out)["identity"]
    record = json.loads((tmp_path / "dc.json").read_text("utf-8"))
    assert schema45.validate(record), [e.message for e in schema45.validator.iter_errors(record)]
    assert record["doi"] == DEPOSIT.doi
    assert record["publicationYear"] == "2026"
    assert record["publisher"] == {"name": "Zenodo"}
    assert {"alternateIdentifier": identity, "alternateIdentifierType": "heparch bundle identity (sha256 of data/manifest.json)"} in record[
        "alternateIdentifiers"
    ]
    assert record["creators"] == [{"name": "heparch example (toy)", "nameType": "Organizational"}]
    export("datacite", toy, tmp_path / "dc.xml", deposit=DEPOSIT)
    root = etree.fromstring((tmp_path / "dc.xml").read_bytes())
    ns = {"d": "http://datacite.org/schema/kernel-4"}
    assert root.findtext("d:identifier", namespaces=ns) == DEPOSIT.doi
    assert root.findtext("d:alternateIdentifiers/d:alternateIdentifier", namespaces=ns) == identity


def test_datacite_related_identifiers(tmp_path: Path) -> None:
    bundle = _variant(
        tmp_path, "linked", {"inspire": "ins1755298", "arxiv": "1909.09226", "hepdata": "10.17182/hepdata.90607.v3", "doi": "10.1140/epjc/s10052-020-8050-3"}
    )
    export("datacite", bundle, tmp_path / "dc.json", deposit=DEPOSIT)
    record = json.loads((tmp_path / "dc.json").read_text("utf-8"))
    assert schema45.validate(record), [e.message for e in schema45.validator.iter_errors(record)]
    related = {(r["relatedIdentifierType"], r["relatedIdentifier"], r["relationType"]) for r in record["relatedIdentifiers"]}
    assert related == {
        ("URL", "https://inspirehep.net/literature/1755298", "IsSupplementTo"),
        ("arXiv", "arXiv:1909.09226", "IsSupplementTo"),
        ("DOI", "10.1140/epjc/s10052-020-8050-3", "IsSupplementTo"),
        ("DOI", "10.17182/hepdata.90607.v3", "IsDerivedFrom"),
    }


@pytest.mark.parametrize(("missing", "option"), [("--doi", "DOI"), ("--publisher", "publisher"), ("--year", "publication year")])
def test_datacite_refuses_without_deposit_values(toy: Path, tmp_path: Path, missing: str, option: str) -> None:
    args = list(DEPOSIT_ARGS)
    i = args.index(missing)
    del args[i : i + 2]
    code, out, err = run("export", "datacite", str(toy), "-o", str(tmp_path / "dc.json"), *args)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: cannot export datacite: the {option} is missing; give {missing}")
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "dc.json").exists()


def _with_deposit(tmp_path: Path, deposit: dict[str, Any]) -> Path:
    """The example bundle built with arch.yaml's ``deposit:`` mapping."""
    src = shutil.copytree(EXAMPLE, tmp_path / "deposited")
    rt = YAML()
    data = rt.load((src / "arch.yaml").read_text("utf-8"))
    data["deposit"] = deposit
    buf = io.StringIO()
    rt.dump(data, buf)
    (src / "arch.yaml").write_text(buf.getvalue(), "utf-8")
    return build(src, output=tmp_path / "deposited.zst").output


def test_datacite_takes_the_deposit_arch_yaml_records_and_the_options_win(tmp_path: Path) -> None:
    """Issue 14 item 3: ``deposit:`` in arch.yaml (doi, publisher, year) is used where an option is not given."""
    bundle = _with_deposit(tmp_path, {"doi": "10.5281/zenodo.7654321", "publisher": "CERN Open Data", "year": 2025})
    code, _, err = run("export", "datacite", str(bundle), "-o", str(tmp_path / "dc.json"))
    assert code == 0, err
    record = json.loads((tmp_path / "dc.json").read_text("utf-8"))
    assert schema45.validate(record), [e.message for e in schema45.validator.iter_errors(record)]
    assert (record["doi"], record["publisher"], record["publicationYear"]) == ("10.5281/zenodo.7654321", {"name": "CERN Open Data"}, "2025")
    code, _, err = run("export", "datacite", str(bundle), "-o", str(tmp_path / "dc2.json"), "--publisher", "Zenodo", "--year", "2026")
    assert code == 0, err
    record = json.loads((tmp_path / "dc2.json").read_text("utf-8"))
    assert (record["doi"], record["publisher"], record["publicationYear"]) == ("10.5281/zenodo.7654321", {"name": "Zenodo"}, "2026")
    export("zenodo", bundle, tmp_path / ".zenodo.json")
    assert json.loads((tmp_path / ".zenodo.json").read_text("utf-8"))["doi"] == "10.5281/zenodo.7654321"
    export("citation", bundle, tmp_path / "CITATION.cff", deposit=Deposit(doi="10.5281/zenodo.1"))
    assert yaml.safe_load((tmp_path / "CITATION.cff").read_text("utf-8"))["doi"] == "10.5281/zenodo.1"


def test_a_partial_deposit_still_needs_the_rest(tmp_path: Path) -> None:
    bundle = _with_deposit(tmp_path, {"doi": "10.5281/zenodo.7654321"})
    code, _, err = run("export", "datacite", str(bundle), "-o", str(tmp_path / "dc.json"))
    assert code == 2
    assert err.strip() == "error: cannot export datacite: the publisher is missing; give --publisher NAME (e.g. Zenodo) or deposit.publisher in arch.yaml"
    assert not (tmp_path / "dc.json").exists()
    with pytest.raises(InputError) as refused:  # the library names the parameter; the CLI (above) the flag
        export("datacite", bundle, tmp_path / "dc.json")
    assert (refused.value.option, refused.value.message) == (
        "publisher",
        "cannot export datacite: the publisher is missing; give publisher=NAME (e.g. Zenodo) or deposit.publisher in arch.yaml",
    )


@pytest.mark.parametrize(
    ("deposit", "message"),
    [
        ({"doi": "https://doi.org/10.5281/zenodo.1"}, "deposit.doi: String should match pattern"),
        ({"year": "2026"}, "deposit.year: Input should be a valid integer"),
        ({"year": 26}, "deposit.year: Input should be greater than or equal to 1000"),
        ({"publsher": "Zenodo"}, "deposit.publsher: Extra inputs are not permitted"),
    ],
)
def test_a_bad_deposit_refuses_the_build(tmp_path: Path, deposit: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=f"arch.yaml: {message}"):
        _with_deposit(tmp_path, deposit)
    assert not (tmp_path / "deposited.zst").exists()


def test_a_malformed_doi_is_refused_before_verifying(toy: Path, tmp_path: Path) -> None:
    code, _, err = run("export", "zenodo", str(toy), "-o", str(tmp_path / "z.json"), "--doi", "https://doi.org/10.5281/zenodo.1")
    assert code == 2
    assert err.strip() == "error: --doi 'https://doi.org/10.5281/zenodo.1': not a DOI; give it as 10.NNNN/suffix, without https://doi.org/"
    assert list(tmp_path.iterdir()) == []


# --- zenodo ----------------------------------------------------------------------------------


def test_zenodo_metadata_passes_its_self_check(toy: Path, tmp_path: Path) -> None:
    written = export("zenodo", toy, tmp_path / ".zenodo.json", deposit=DEPOSIT)
    meta = json.loads((tmp_path / ".zenodo.json").read_text("utf-8"))
    assert zenodo.problems(meta) == []
    assert meta["upload_type"] == "dataset"
    assert meta["publication_date"] == "2026-01-01"
    assert meta["doi"] == DEPOSIT.doi
    assert meta["license"] == "cc0-1.0"
    assert written.identity in meta["notes"]


def test_zenodo_self_check_finds_problems() -> None:
    bad = {
        "upload_type": "data",
        "title": "t",
        "creators": [{"affiliation": "x"}],
        "publication_date": "2026-13-01",
        "related_identifiers": [{"identifier": "x", "relation": "supplements"}],
    }
    found = zenodo.problems(bad)
    assert "metadata.description: required" in found
    assert any(p.startswith("metadata.upload_type: 'data'") for p in found)
    assert "metadata.creators[0].name: required (a non-empty string)" in found
    assert any(p.startswith("metadata.publication_date: '2026-13-01'") for p in found)
    assert any(p.startswith("metadata.related_identifiers[0].relation: 'supplements'") for p in found)
    with pytest.raises(InputError, match=r"^cannot export zenodo: metadata.description: required \(and 4 more\)$"):
        zenodo.check(bad)


def test_zenodo_refuses_without_a_description(tmp_path: Path) -> None:
    bundle = _variant(tmp_path, "bare", {}, drop=("description",))
    code, _, err = run("export", "zenodo", str(bundle), "-o", str(tmp_path / "z.json"))
    assert code == 2
    assert "analysis.description is missing; add analysis.description to arch.yaml" in err
    assert not (tmp_path / "z.json").exists()


# --- citation --------------------------------------------------------------------------------


def test_vendored_cff_schema_is_the_recorded_one() -> None:
    schema_file = Path(citation.__file__).parent / "schemas" / citation.SCHEMA
    readme = (schema_file.parent / "README.md").read_text("utf-8")
    assert f"sha256 of the file: {hashlib.sha256(schema_file.read_bytes()).hexdigest()}" in readme
    assert citation.schema()["$id"] == "https://citation-file-format.github.io/1.2.0/schema.json"


def test_citation_validates_against_cff_1_2_0(toy: Path, tmp_path: Path) -> None:
    export("citation", toy, tmp_path / "CITATION.cff", deposit=DEPOSIT)
    cff = yaml.safe_load((tmp_path / "CITATION.cff").read_text("utf-8"))
    cff["date-released"] = str(cff["date-released"])  # PyYAML reads YAML 1.1 dates as dates (the schema's note)
    assert citation.problems(cff) == []
    assert cff["authors"] == [{"name": "heparch example (toy)"}]
    assert cff["license"] == "CC0-1.0"
    assert cff["doi"] == DEPOSIT.doi
    assert cff["identifiers"][0]["type"] == "other"
    assert cff["identifiers"][0]["value"].startswith("sha256:")
    assert citation.problems(cff | {"license": "Not-A-License"}) != []


def test_citation_refuses_a_license_cff_does_not_know(tmp_path: Path) -> None:
    bundle = _variant(tmp_path, "lic", {"license": "LicenseRef-internal"})
    with pytest.raises(InputError, match=r"^cannot export citation: license: .*CFF 1\.2\.0 schema"):
        export("citation", bundle, tmp_path / "CITATION.cff")
    assert not (tmp_path / "CITATION.cff").exists()


def test_citation_refuses_without_authors(tmp_path: Path) -> None:
    bundle = _variant(tmp_path, "anon", {}, drop=("collaboration", "contacts"))
    with pytest.raises(InputError, match=r"the authors are missing; add analysis\.collaboration or analysis\.contacts"):
        export("citation", bundle, tmp_path / "CITATION.cff")


def test_one_creators_rule_each_format_in_its_own_form(tmp_path: Path) -> None:
    """Without a collaboration the named contacts are the creators (a contact without a name is
    left out); without either every format refuses, naming what it needs."""
    people = [{"name": "A. Physicist", "email": "a@example.org", "affiliation": "CERN"}, {"email": "anonymous@example.org"}]
    bundle = _variant(tmp_path, "people", {"contacts": people}, drop=("collaboration",))
    for fmt in ("datacite", "zenodo", "citation"):
        export(fmt, bundle, tmp_path / f"{fmt}.out", deposit=DEPOSIT)
    assert json.loads((tmp_path / "datacite.out").read_text("utf-8"))["creators"] == [{"name": "A. Physicist"}]
    assert json.loads((tmp_path / "zenodo.out").read_text("utf-8"))["creators"] == [{"name": "A. Physicist", "affiliation": "CERN"}]
    assert yaml.safe_load((tmp_path / "citation.out").read_text("utf-8"))["authors"] == [{"name": "A. Physicist", "email": "a@example.org"}]
    anon = _variant(tmp_path, "nobody", {"contacts": people[1:]}, drop=("collaboration",))
    for fmt, what in (("datacite", "the creators"), ("zenodo", "the creators"), ("citation", "the authors")):
        with pytest.raises(InputError, match=rf"^cannot export {fmt}: {what} are missing; add analysis\.collaboration or analysis\.contacts \(with a name\)"):
            export(fmt, anon, tmp_path / f"{fmt}.anon", deposit=DEPOSIT)


# --- ro-crate --------------------------------------------------------------------------------


def _rocrate_terms() -> set[str]:
    import rocrate

    shipped = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_text("utf-8"))
    return set(shipped["@context"])


def _check_crate(crate: dict[str, Any], where: Path) -> None:
    """RO-Crate 1.1's structure, offline: the metadata descriptor, the root dataset, every part
    described, every property a term of the RO-Crate context (rocrate's copy) or a local one; and
    the crate as the rocrate package reads it (from ``where``)."""
    from rocrate.rocrate import ROCrate

    local = set(crate["@context"][1])
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert crate["@context"][0] == ro_crate.CONTEXT
    assert graph[ro_crate.METADATA]["conformsTo"] == {"@id": ro_crate.PROFILE}
    assert graph[ro_crate.METADATA]["about"] == {"@id": "./"}
    assert graph["./"]["@type"] == "Dataset"
    assert all(part["@id"] in graph for part in graph["./"]["hasPart"])
    terms = _rocrate_terms() | local
    unknown = {k for e in crate["@graph"] for k in e if not k.startswith("@") and ":" not in k and k not in terms}
    assert unknown == set()
    where.mkdir()
    (where / ro_crate.METADATA).write_text(json.dumps(crate), "utf-8")
    read = ROCrate(where)
    assert read.root_dataset["identifier"] == graph["./"]["identifier"]
    assert sorted(e.id for e in read.data_entities) == sorted(p["@id"] for p in graph["./"]["hasPart"])


def test_ro_crate_describes_the_bag(toy: Path, tmp_path: Path) -> None:
    export("ro-crate", toy, tmp_path / "ro-crate-metadata.json")
    crate = json.loads((tmp_path / "ro-crate-metadata.json").read_text("utf-8"))
    _check_crate(crate, tmp_path / "read")
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert crate["@context"][1] == {"sha256": "https://heparch.org/spec/bundle#sha256"}
    blob = graph["data/blobs/sha256/" + hashlib.sha256((EXAMPLE / "BkgOnly.json").read_bytes()).hexdigest()]
    assert blob["name"] == "BkgOnly.json"
    assert blob["contentSize"] == str((EXAMPLE / "BkgOnly.json").stat().st_size)
    assert graph["data/manifest.json"]["sha256"] == graph["./"]["identifier"].removeprefix("sha256:")
    assert not any(i.startswith("data/") and not i.startswith(("data/blobs/sha256/", "data/manifest.json")) for i in graph)


@pytest.mark.slow
def test_ro_crate_of_1lbb(one_lbb_bundle: Path, tmp_path: Path) -> None:
    code, out, err = run("export", "ro-crate", str(one_lbb_bundle), "-o", str(tmp_path / "crate.json"), "--json")
    assert code == 0, err
    crate = json.loads((tmp_path / "crate.json").read_text("utf-8"))
    _check_crate(crate, tmp_path / "read")
    assert {e["@id"]: e for e in crate["@graph"]}["./"]["citation"] == {"@id": "https://www.hepdata.net/record/ins1755298"}
    assert json.loads(out)["files"] == ["crate.json"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"the test tried to reach {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:ConjunctiveGraph is deprecated:DeprecationWarning")  # rdflib 7, used by roc-validator
def test_ro_crate_passes_roc_validator_offline(toy: Path, tmp_path: Path, no_network: None) -> None:
    """roc-validator (the test extra) with its HTTP cache warmed from the RO-Crate context that
    rocrate ships, offline; ~8 s."""
    from rocrate_validator import services

    cache = _warm_cache(tmp_path / "cache")
    export("ro-crate", toy, tmp_path / "ro-crate-metadata.json")
    crate = json.loads((tmp_path / "ro-crate-metadata.json").read_text("utf-8"))
    settings = {"profile_identifier": "ro-crate-1.1", "offline": True, "cache_path": str(cache), "requirement_severity": "REQUIRED"}
    result = services.validate_metadata_as_dict(crate, settings)
    assert result.passed(), [i.message for i in result.get_issues()]
    broken = crate | {"@graph": [e for e in crate["@graph"] if e["@id"] != "./"]}  # no root dataset: the validator must object
    assert not services.validate_metadata_as_dict(broken, settings).passed()


def _warm_cache(cache: Path) -> Path:
    import requests
    import rocrate
    import urllib3
    from rocrate_validator.utils.http import HttpRequester

    context = (Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_bytes()
    requester = HttpRequester.initialize_cache(cache_path=str(cache), offline=True)
    response = requests.Response()
    response.status_code = 200
    response.url = ro_crate.CONTEXT
    response.headers["Content-Type"] = "application/ld+json"
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(context), headers={"Content-Type": "application/ld+json"}, status=200, preload_content=False, request_url=ro_crate.CONTEXT
    )
    response._content = context
    response.request = requests.Request("GET", ro_crate.CONTEXT).prepare()
    requester.session.cache.save_response(response)
    assert requester.has_cached(ro_crate.CONTEXT)
    return cache


# --- common ----------------------------------------------------------------------------------


def test_an_invalid_bundle_exports_nothing(toy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.zst"
    data = bytearray(toy.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    code, out, err = run("export", "citation", str(bad), "-o", str(tmp_path / "CITATION.cff"))
    assert code == 1
    assert out == ""
    assert "does not verify; nothing exported" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.zst"]


def test_hepdata_refuses_a_non_empty_directory(toy: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "keep.txt").write_text("mine")
    code, _, err = run("export", "hepdata", str(toy), "-o", str(tmp_path / "sub"))
    assert code == 2
    assert "exists and is not an empty directory" in err
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"]  # no staging directory left


def test_the_bundle_is_never_overwritten(toy: Path, tmp_path: Path) -> None:
    before = toy.read_bytes()
    for fmt in ("hepdata", "citation"):
        code, _, err = run("export", fmt, str(toy), "-o", str(toy))
        assert code == 2
        assert "is the bundle being exported" in err
    assert toy.read_bytes() == before


def test_default_output_names(toy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for fmt in ("hepdata", "datacite", "zenodo", "citation", "ro-crate"):
        code, out, err = run("export", fmt, str(toy), *DEPOSIT_ARGS, "--json")
        assert code == 0, err
        assert json.loads(out)["output"] == {"hepdata": "toy-hepdata", **DEFAULT_NAMES}[fmt]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["toy-hepdata", *DEFAULT_NAMES.values()])


def test_unknown_format_is_a_usage_error(toy: Path) -> None:
    code, _, err = run("export", "bibtex", str(toy))
    assert code == 2
    assert "bibtex" in err
    with pytest.raises(InputError, match="unknown export format 'bibtex'"):
        export("bibtex", toy, "x")


def test_the_exports_are_reproducible(toy: Path, tmp_path: Path) -> None:
    for fmt, name in (("datacite", "a.json"), ("zenodo", "b.json"), ("citation", "c.cff"), ("ro-crate", "d.json")):
        export(fmt, toy, tmp_path / f"1{name}", deposit=DEPOSIT)
        export(fmt, toy, tmp_path / f"2{name}", deposit=DEPOSIT)
        assert (tmp_path / f"1{name}").read_bytes() == (tmp_path / f"2{name}").read_bytes(), fmt
