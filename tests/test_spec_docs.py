"""The specification documents in ``spec/`` agree with the code and with themselves.

- every ```json example names its schema (``<!-- schema: NAME -->`` on the line before the
  fence) and validates against ``spec/schemas/1.0.0/NAME``;
- the worked example of ``bundle-v1.md`` is self-consistent and is what heparch builds;
- ``validation-codes.md`` equals :data:`heparch.spec.codes.CODES`, and every anchor exists;
- ``spec/schemas/`` equals the packaged copy, and every schema is a valid JSON Schema;
- ``exit-codes.md`` covers every command of the typer app.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import referencing.jsonschema

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
SCHEMAS = SPEC / "schemas"
PACKAGED = ROOT / "pkg" / "heparch" / "spec" / "schemas"
SCHEMA_DIR = SCHEMAS / "1.0.0"
BUNDLE_V1 = SPEC / "bundle-v1.md"
CODES_MD = SPEC / "validation-codes.md"
EXIT_MD = SPEC / "exit-codes.md"
DOCS = sorted(SPEC.glob("*.md"))

_FENCE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
_COMMENT = re.compile(r"^<!--\s*(?P<text>.*?)\s*-->\s*$")
_SCHEMA_COMMENT = re.compile(r"^schema:\s*(?P<name>\S+)$")


# ---------------------------------------------------------------------------------------
# reading the documents


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a spec document."""

    doc: str
    line: int  # 1-based line of the opening fence
    lang: str
    text: str  # the lines between the fences, each ending with a newline
    comments: tuple[str, ...]  # HTML comments directly above the fence, top to bottom

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def schema(self) -> str | None:
        """The schema named by the comment immediately before the fence."""
        if not self.comments:
            return None
        found = _SCHEMA_COMMENT.match(self.comments[-1])
        return found.group("name") if found else None

    def marked(self, prefix: str) -> str | None:
        """The value of a ``<!-- prefix: value -->`` comment above the fence, if any."""
        for comment in self.comments:
            if comment.startswith(prefix + ":"):
                return comment[len(prefix) + 1 :].strip()
        return None


def blocks(doc: Path) -> list[Block]:
    """Every fenced code block of ``doc`` with the comments above it."""
    lines = doc.read_text("utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        comments: list[str] = []
        j = i - 1
        while j >= 0 and (found := _COMMENT.match(lines[j])):
            comments.insert(0, found.group("text"))
            j -= 1
        end = i + 1
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        assert end < len(lines), f"{doc.name}:{i + 1}: code block is not closed"
        text = "".join(line + "\n" for line in lines[i + 1 : end])
        out.append(Block(doc.name, i + 1, opening.group("lang"), text, tuple(comments)))
        i = end + 1
    return out


ALL_BLOCKS = [b for doc in DOCS for b in blocks(doc)]
JSON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "json"]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before de-duplication)."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> list[str]:
    """Explicit ``<a id>`` anchors and heading slugs of ``doc``, in order."""
    text = doc.read_text("utf-8")
    found = re.findall(r'<a\s+(?:id|name)="([^"]+)"', text)
    found += [github_slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.MULTILINE)]
    return found


# ---------------------------------------------------------------------------------------
# schemas


def schema_files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (bytecode caches left out)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@cache
def schema_documents() -> dict[str, dict[str, Any]]:
    """The schemas of format 1.0.0 by file name relative to ``spec/schemas/1.0.0``."""
    return {p.relative_to(SCHEMA_DIR).as_posix(): json.loads(p.read_text("utf-8")) for p in sorted(SCHEMA_DIR.rglob("*.json"))}


@cache
def registry() -> referencing.Registry[Any]:
    """Every 1.0.0 schema under its ``$id``, so relative ``$ref``s (pyhf's ``defs.json``) resolve."""
    pairs = []
    for doc in schema_documents().values():
        spec = referencing.jsonschema.specification_with(doc.get("$schema", ""), default=referencing.jsonschema.DRAFT202012)
        pairs.append((doc["$id"], spec.create_resource(doc)))
    return referencing.Registry().with_resources(pairs)


def validator(name: str) -> Any:
    """A validator for ``spec/schemas/1.0.0/<name>``: draft 2020-12 for heparch's own schemas,
    the declared draft (06) for the vendored pyhf ones."""
    documents = schema_documents()
    assert name in documents, f"no schema {name!r} in spec/schemas/1.0.0 (have {sorted(documents)})"
    schema = documents[name]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    # refer to the schema by its $id: in draft-06 a top-level $ref hides the $id beside it,
    # so pyhf's relative refs ("defs.json#/...") would have no base URI
    return cls({"$schema": schema["$schema"], "$ref": schema["$id"]}, registry=registry())


# ---------------------------------------------------------------------------------------
# (a) JSON examples validate against the schema they name


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=[b.id for b in JSON_BLOCKS])
def test_json_example_validates_against_its_schema(block: Block) -> None:
    assert block.schema is not None, f"{block.id}: a ```json example needs <!-- schema: NAME --> on the line before it"
    obj = json.loads(block.text)
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in validator(block.schema).iter_errors(obj)]
    assert errors == [], f"{block.id} does not validate against {block.schema}"


def test_spec_has_the_required_examples() -> None:
    named = {b.schema for b in JSON_BLOCKS if b.doc == BUNDLE_V1.name}
    assert {"manifest.json", "simplified-likelihood.json", "results.json"} <= named


def test_yaml_examples_are_valid_arch_yaml(tmp_path: Path) -> None:
    from heparch import config

    yaml_blocks = [b for b in ALL_BLOCKS if b.lang == "yaml"]
    assert yaml_blocks
    for block in yaml_blocks:
        path = tmp_path / "arch.yaml"
        path.write_text(block.text, "utf-8")
        config.load(path)  # raises InputError naming the field


# ---------------------------------------------------------------------------------------
# the worked example


def _worked() -> dict[str, Any]:
    mine = [b for b in ALL_BLOCKS if b.doc == BUNDLE_V1.name]
    example = {b.marked("worked-example"): b for b in mine if b.marked("worked-example")}
    return {
        "manifest": json.loads(example["manifest"].text),
        "canonical": example["canonical"].text,
        "arch.yaml": example["arch.yaml"].text,
        "files": {b.marked("file"): b.text.encode("utf-8") for b in mine if b.marked("file")},
        "derived": {b.marked("derived"): b.text for b in mine if b.marked("derived")},
    }


def test_worked_example_files_match_the_manifest() -> None:
    worked = _worked()
    entries = {f["path"]: f for f in worked["manifest"]["files"]}
    assert set(worked["files"]) == set(entries), "every file of the example manifest is shown, and only those"
    for path, data in worked["files"].items():
        entry = entries[path]
        assert entry["digest"] == "sha256:" + hashlib.sha256(data).hexdigest(), path
        assert entry["size"] == len(data), path
        assert entry["fixity"]["sha512"] == hashlib.sha512(data).hexdigest(), path


def test_worked_example_identity_and_tag_files() -> None:
    from heparch.spec import strictjson
    from heparch.spec.models import Manifest
    from heparch.store import layout

    worked = _worked()
    canonical = strictjson.canonical(worked["manifest"])
    assert worked["canonical"] == canonical.decode("utf-8") + "\n"
    derived = worked["derived"]
    assert derived["identity"].strip() == layout.identity(canonical) == "sha256:" + hashlib.sha256(canonical).hexdigest()
    agent = layout.agent_of(derived["bag-info.txt"].encode("utf-8"))
    assert agent is not None
    head = layout.head_files(Manifest.from_json(worked["manifest"]), canonical, agent)
    for name in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt"):
        assert derived[name] == head[name].decode("utf-8"), name
    frames = derived[layout.FRAMES].encode("ascii")
    assert re.fullmatch(rb"(?:(?:head|payload) [0-9]+ [1-9][0-9]* [0-9a-f]{64}\n)+", frames)
    assert derived["tagmanifest-sha256.txt"] == layout.tag_manifest(head, {layout.FRAMES: frames}).decode("utf-8")


def test_worked_example_builds_to_the_stated_bundle(tmp_path: Path) -> None:
    from heparch.build import build
    from heparch.store import layout, tar, zframes
    from heparch.store.reader import RawStream, TarStream
    from heparch.verify import verify

    worked = _worked()
    source = tmp_path / "toy"
    for path, data in worked["files"].items():
        target = source.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (source / "arch.yaml").write_text(worked["arch.yaml"], "utf-8")
    result = build(source, output=tmp_path / "toy.zst")
    assert result.identity == worked["derived"]["identity"].strip()
    checked = verify(result.output)
    assert checked.valid
    assert checked.report.findings == []
    # every tag file as the bundle holds it (frames-sha256.txt: with the pinned zstandard)
    with result.output.open("rb") as fh:
        stream = TarStream(RawStream(fh))
        while (entry := stream.next_header()) is not None:
            name = entry[0].removeprefix(tar.ROOT)
            data = stream.read_data(name, entry[1])
            if name in worked["derived"]:
                assert data.decode("utf-8") == worked["derived"][name], name
            elif name == layout.MANIFEST:
                assert data.decode("utf-8") + "\n" == worked["canonical"]
    # the prose of the worked example: stream length, frames, first bytes
    text = BUNDLE_V1.read_text("utf-8")
    total = re.search(r"(\d+) bytes in all", text)
    first = re.search(r"the first beginning\s+`([0-9a-f ]+)`", text)
    assert total is not None
    assert first is not None
    with result.output.open("rb") as fh:
        frames = list(zframes.walk_frames(fh))
        fh.seek(0)
        start = fh.read(7)
    assert sum(f.content_size for f in frames) == int(total.group(1))
    assert [f.stored for f in frames] == [False, True, False], "three frames: compressed head, stored signature part, compressed payload"
    assert start == bytes.fromhex(first.group(1))


# ---------------------------------------------------------------------------------------
# (b), (c) validation codes and anchors


def codes_table() -> list[tuple[str, str, str]]:
    """The rows of the ``| code | requirement | anchor |`` table."""
    lines = CODES_MD.read_text("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^\|\s*code\s*\|\s*requirement\s*\|\s*anchor\s*\|\s*$", line))
    assert re.match(r"^\|(\s*:?-+:?\s*\|){3}\s*$", lines[start + 1]), "the header row is followed by a separator row"
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        assert len(cells) == 3, f"row has {len(cells)} cells: {line}"
        code, sentence, anchor_cell = cells
        link = re.fullmatch(r"\[(?P<text>[^\]]+)\]\(bundle-v1\.md#(?P<anchor>[^)]+)\)", anchor_cell)
        assert link is not None, f"{code}: anchor must be a link [a](bundle-v1.md#a), got {anchor_cell}"
        assert link.group("text") == link.group("anchor"), f"{code}: link text and anchor differ: {anchor_cell}"
        rows.append((code, sentence, link.group("anchor")))
    return rows


def test_validation_codes_table_equals_codes() -> None:
    from heparch.spec.codes import CODES

    assert codes_table() == [(code, sentence, anchor) for code, (sentence, anchor) in CODES.items()]


def test_codes_say_must_and_should() -> None:
    from heparch.spec.codes import CODES

    for code, (sentence, _) in CODES.items():
        word = "MUST" if code.startswith("E") else "SHOULD"
        assert word in sentence, f"{code}: an {code[0]} code states a {word} requirement"


def test_every_code_anchor_exists_in_bundle_v1() -> None:
    from heparch.spec.codes import CODES

    present = set(anchors(BUNDLE_V1))
    missing = sorted({anchor for _, anchor in CODES.values()} - present)
    assert missing == [], f"anchors used in heparch.spec.codes but missing from bundle-v1.md: {missing}"


def test_explicit_anchors_are_unique() -> None:
    for doc in DOCS:
        ids = re.findall(r'<a\s+id="([^"]+)"', doc.read_text("utf-8"))
        assert len(ids) == len(set(ids)), f"{doc.name}: duplicate anchors"


def test_links_between_spec_documents_resolve() -> None:
    for doc in DOCS:
        text = doc.read_text("utf-8")
        text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            path, _, fragment = target.partition("#")
            file = (doc.parent / path) if path else doc
            assert file.exists(), f"{doc.name}: link to missing {target}"
            if fragment and file.suffix == ".md":
                assert fragment in anchors(file), f"{doc.name}: link to missing anchor {target}"


def test_verify_levels_named_in_spec() -> None:
    from heparch.verify import LEVELS

    text = BUNDLE_V1.read_text("utf-8")
    for level in LEVELS:
        assert f"| `{level}`" in text, f"verification level {level} is not described in bundle-v1.md"


# ---------------------------------------------------------------------------------------
# (d), (e) schemas


def test_schemas_equal_packaged_copy() -> None:
    here, packaged = schema_files(SCHEMAS), schema_files(PACKAGED)
    assert sorted(here) == sorted(packaged), "spec/schemas and pkg/heparch/spec/schemas hold different files"
    differ = sorted(name for name in here if here[name] != packaged[name])
    assert differ == [], f"differ between spec/schemas and pkg/heparch/spec/schemas: {differ}"


SCHEMA_PATHS = sorted(p for p in SCHEMAS.rglob("*.json"))


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=[p.relative_to(SCHEMAS).as_posix() for p in SCHEMA_PATHS])
def test_schema_is_valid(path: Path) -> None:
    schema = json.loads(path.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    declared = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    declared.check_schema(schema)
    assert "$id" in schema
    if path.parent.name != "pyhf":  # heparch's own schemas: draft 2020-12, ids under heparch.org
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://heparch.org/schemas/{path.parent.name}/{path.name}"


def test_schema_ids_are_unique() -> None:
    ids = [doc["$id"] for doc in schema_documents().values()]
    assert len(ids) == len(set(ids))


# ---------------------------------------------------------------------------------------
# (f) exit codes


PLANNED = ("cls", "upper-limit", "replay", "claim", "simplify", "sign", "keygen")


def exit_code_sections() -> dict[str, bool]:
    """Command name -> planned, from the ``### arch <command>`` headings of exit-codes.md."""
    out = {}
    for name, rest in re.findall(r"^#{2,4}\s+arch\s+([a-z][a-z0-9-]*)(.*)$", EXIT_MD.read_text("utf-8"), flags=re.MULTILINE):
        out[name] = "(planned)" in rest
    return out


def registered_commands() -> set[str]:
    from heparch.cli.main import app

    names = set()
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else None)
        assert name, f"command without a name: {info}"
        names.add(name)
    return names


def test_exit_codes_cover_every_command() -> None:
    sections = exit_code_sections()
    commands = registered_commands()
    missing = sorted(commands - set(sections))
    assert missing == [], f"exit-codes.md has no section for: {missing}"
    wrongly_planned = sorted(c for c in commands if sections[c])
    assert wrongly_planned == [], f"implemented commands marked (planned) in exit-codes.md: {wrongly_planned}"
    unknown = sorted(c for c, planned in sections.items() if not planned and c not in commands)
    assert unknown == [], f"exit-codes.md describes commands the app does not have (mark them planned): {unknown}"
    absent = sorted(c for c in PLANNED if c not in sections and c not in commands)
    assert absent == [], f"planned commands missing from exit-codes.md: {absent}"


def test_exit_code_values_match_errors() -> None:
    from heparch import errors

    text = EXIT_MD.read_text("utf-8")
    assert (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_USAGE, errors.EXIT_INTERNAL) == (0, 1, 2, 3)
    for code in (0, 1, 2, 3):
        assert re.search(rf"^\| {code} \|", text, flags=re.MULTILINE), f"exit code {code} is not in the table"
    assert errors.InvalidBundle.exit_code == errors.IntegrityError.exit_code == 1
    assert errors.InputError.exit_code == errors.BuildRefused.exit_code == errors.MissingBackend.exit_code == 2
    assert errors.HeparchError.exit_code == 3
