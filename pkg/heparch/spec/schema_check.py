"""Schema checks shared by the component checkers.

Each schema is loaded from the package data of :mod:`heparch.spec` (``schemas/1.0.0/``),
``$ref``\\ s are resolved with a :class:`referencing.Registry`, and instances are checked in
two steps:

1. a *fast* check compiled once per schema into plain Python closures (the pyhf schemas
   are a small subset of JSON Schema; validating the 14 MB ATLAS 1Lbb patchset with
   ``jsonschema`` alone takes tens of seconds, the compiled check well under one);
2. only when the fast check fails, the failing parts are located by descending with the
   fast checks, :mod:`jsonschema` runs on those small parts only, and its errors become
   :class:`~heparch.findings.Finding` objects naming the JSON path.

A schema using a keyword the compiler does not know falls back to ``jsonschema`` for the
fast step too, so the compiler can only make checks faster, never laxer.

>>> check("simplified-likelihood.json", {"observed": [1]}, code="E066", location="sl.json")[0].one_line()
"E066 sl.json:$: 'background' is a required property"
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urljoin

from heparch.findings import Finding

if TYPE_CHECKING:  # imported lazily: jsonschema costs ~0.4 s at start-up and valid inputs never need it
    import jsonschema.protocols
    import referencing  # jsonschema's (~0.4 s): only when a schema is checked
    from jsonschema.exceptions import ValidationError

#: At most this many schema errors are reported per file (then one summary finding).
MAX_ERRORS: Final = 20
#: Longest message text kept from a jsonschema error.
MAX_MESSAGE: Final = 240

PYHF_BASE: Final = "https://scikit-hep.org/pyhf/schemas/1.0.0/"
HEPARCH_BASE: Final = "https://heparch.org/schemas/1.0.0/"
_PYHF_FILES: Final = (
    "defs.json",
    "workspace.json",
    "patchset.json",
    "jsonpatch.json",
    "model.json",
    "measurement.json",
)
_HEPARCH_FILES: Final = ("manifest.json", "simplified-likelihood.json", "results.json", "signal-interface.json")

Check = Callable[[Any], bool]
#: one schema error: (JSON path parts, message, expected, found)
Error = tuple[list[str | int], str, Any, Any]


# ---------------------------------------------------------------------------------------
# loading


def _read(relative: str) -> dict[str, Any]:
    """One schema document from the package data of ``heparch.spec``."""
    resource = importlib.resources.files("heparch.spec").joinpath("schemas/1.0.0/" + relative)
    document: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    return document


@functools.cache
def documents() -> dict[str, dict[str, Any]]:
    """All vendored schema documents by ``$id``."""
    out: dict[str, dict[str, Any]] = {}
    for name in _PYHF_FILES:
        doc = _read("pyhf/" + name)
        out[doc["$id"]] = doc
    for name in _HEPARCH_FILES:
        doc = _read(name)
        out[doc["$id"]] = doc
    return out


@functools.cache
def registry() -> referencing.Registry[Any]:
    """A registry holding every vendored schema under its ``$id``."""
    import referencing  # jsonschema's (~0.4 s): only when a schema is checked
    import referencing.jsonschema  # jsonschema's (~0.4 s): only when a schema is checked

    resources = []
    for uri, doc in documents().items():
        spec = referencing.jsonschema.specification_with(doc["$schema"])
        resources.append((uri, spec.create_resource(doc)))
    return referencing.Registry().with_resources(resources)


def resolve_uri(name: str) -> str:
    """Absolute schema URI for a short name.

    ``"workspace.json"`` and ``"defs.json#/definitions/sample"`` are pyhf schemas;
    ``"simplified-likelihood.json"`` and ``"results.json"`` are heparch's.
    """
    base, _, fragment = name.partition("#")
    if "://" in base:
        absolute = base
    elif PYHF_BASE + base in documents():
        absolute = PYHF_BASE + base
    else:
        absolute = HEPARCH_BASE + base
    return absolute + ("#" + fragment if fragment else "")


@functools.cache
def _jsonschema_validator(uri: str) -> jsonschema.protocols.Validator:
    """A cached ``jsonschema`` validator for the schema at ``uri`` (with fragment)."""
    import jsonschema.validators  # jsonschema (~0.5 s): only when a schema is checked

    base = uri.partition("#")[0]
    cls = jsonschema.validators.validator_for(documents()[base])
    schema = {"$schema": documents()[base]["$schema"], "$ref": uri}
    validator: jsonschema.protocols.Validator = cls(schema, registry=registry())
    return validator


# ---------------------------------------------------------------------------------------
# JSON paths


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def json_path(parts: Iterable[str | int], prefix: str = "$") -> str:
    """``$.channels[3].samples[0].data`` from path parts."""
    out = [prefix]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.match(part):
            out.append(f".{part}")
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def short(value: Any, limit: int = 60) -> str:
    """A repr of ``value`` cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------
# the fast compiled check


class _Unsupported(Exception):
    """The schema uses a keyword the compiler does not implement."""


#: keywords that change validation but are not compiled: their schemas use jsonschema
_UNSUPPORTED: Final = frozenset(
    {
        "if",
        "then",
        "else",
        "dependencies",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "propertyNames",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        "prefixItems",
        "additionalItems",
        "unevaluatedItems",
        "unevaluatedProperties",
        "multipleOf",
        "$dynamicRef",
        "$recursiveRef",
        "format",
    }
)


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return True
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int)


_TYPES: Final[dict[str, Check]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


_OBJECT_KEYWORDS: Final = ("required", "additionalProperties")
_COUNT_KEYWORDS: Final = ("minProperties", "maxProperties")
_ARRAY_KEYWORDS: Final = ("items", "minItems", "maxItems")
_BOUND_KEYWORDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_STRING_KEYWORDS: Final = ("pattern", "minLength", "maxLength")


def _has_any(node: dict[str, Any], keywords: tuple[str, ...]) -> bool:
    return any(k in node for k in keywords)


def _constrains_objects(node: dict[str, Any], kind: Any) -> bool:
    """Whether ``node`` says what an object must hold (its type, properties or object keywords)."""
    return kind == "object" or isinstance(node.get("properties"), dict) or _has_any(node, _OBJECT_KEYWORDS)


def _constrains_arrays(node: dict[str, Any], kind: Any) -> bool:
    """Whether ``node`` says what an array must hold (its type or array keywords)."""
    return kind == "array" or _has_any(node, _ARRAY_KEYWORDS)


def _tag(nodes: list[Any]) -> tuple[str, list[str]] | None:
    """The discriminator of ``anyOf`` branches that are all object schemas: the first property
    with a tag in every branch (:func:`_tag_consts`), and the branches' tags; None when there is none."""
    if not nodes or not all(isinstance(n, dict) and n.get("type") == "object" for n in nodes):
        return None
    return next(((key, consts) for key in nodes[0].get("properties", {}) if (consts := _tag_consts(nodes, key)) is not None), None)


def _tag_consts(nodes: list[dict[str, Any]], key: str) -> list[str] | None:
    """The string ``const`` of ``key`` in each of ``nodes`` when every node requires ``key`` and
    the consts are distinct (a discriminator, as pyhf's modifier ``type``); None otherwise."""
    consts = [n.get("properties", {}).get(key, {}).get("const") for n in nodes]
    if not all(key in n.get("required", ()) for n in nodes) or not all(isinstance(c, str) for c in consts):
        return None
    return consts if len(set(consts)) == len(consts) else None


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1``; key order does not matter."""
    if isinstance(a, dict) and isinstance(b, dict):
        return _objects_equal(a, b)
    if isinstance(a, list) and isinstance(b, list):
        return _arrays_equal(a, b)
    return _scalar_equal(a, b)


def _objects_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)


def _arrays_equal(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))


#: the JSON types of scalars, boolean before number (``True`` is an int in Python, not in JSON)
_SCALAR_TYPES: Final = ("boolean", "string", "number", "null")


def _scalar_type(value: Any) -> str | None:
    """The JSON type of a scalar ``value`` (None for an object, an array or a non-JSON value)."""
    return next((name for name in _SCALAR_TYPES if _TYPES[name](value)), None)


#: the Python types of parsed JSON scalars: two values of one of them are equal by ``==`` alone
_PLAIN_SCALARS: Final = frozenset((str, bool, int, float, type(None)))


def _scalar_equal(a: Any, b: Any) -> bool:
    """:func:`json_equal` where ``a`` and ``b`` are not both objects or both arrays: a boolean
    equals only a boolean (not 1), a string only a string, a number any equal number."""
    if type(a) is type(b) and type(a) in _PLAIN_SCALARS:  # most calls (an enum's strings): no type dispatch
        return bool(a == b)
    kind = _scalar_type(a)
    return kind is not None and kind == _scalar_type(b) and bool(a == b)


_PLAIN_NUMBERS: Final = frozenset((float, int))


def _all_numbers(seq: list[Any]) -> bool:
    """True when every item is a JSON number (the hot loop of pyhf workspaces and covariances:
    the types are collected at C speed, items are looked at one by one only otherwise)."""
    if set(map(type, seq)) <= _PLAIN_NUMBERS:
        return True
    for item in seq:
        kind = type(item)
        if kind is not float and kind is not int and not _is_number(item):
            return False
    return True


def _all_of(parts: Sequence[Check]) -> Check:
    if not parts:
        return lambda _value: True
    if len(parts) == 1:
        return parts[0]

    def check(value: Any) -> bool:
        for part in parts:  # noqa: SIM110 - a plain loop is faster than all() over a generator here
            if not part(value):
                return False
        return True

    return check


class _Compiler:
    """Compiles schema nodes into closures; one instance for all vendored documents."""

    def __init__(self, docs: Mapping[str, dict[str, Any]]) -> None:
        self._docs = docs
        self._cache: dict[str, Check] = {}

    # -- references ----------------------------------------------------------------------
    def node(self, uri: str) -> tuple[Any, str]:
        """The schema node at ``uri`` and its base URI."""
        base, _, fragment = uri.partition("#")
        node: Any = self._docs[base]
        for token in fragment.split("/")[1:] if fragment else []:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]
        return node, base

    def uri(self, uri: str) -> Check:
        """The compiled check of the schema at ``uri``; recursion-safe."""
        if uri in self._cache:
            return self._cache[uri]
        cell: list[Check] = []
        self._cache[uri] = lambda value: cell[0](value)
        try:
            node, base = self.node(uri)
            compiled = self.compile(node, base)
        except _Unsupported:
            del self._cache[uri]
            raise
        cell.append(compiled)
        self._cache[uri] = compiled
        return compiled

    # -- nodes ---------------------------------------------------------------------------
    def compile(self, node: Any, base: str) -> Check:
        """Compile one schema node."""
        if node is True:
            return lambda _value: True
        if node is False:
            return lambda _value: False
        if not isinstance(node, dict):
            raise _Unsupported(f"schema node {short(node)}")
        if "$id" in node:
            base = urljoin(base, node["$id"])
        if "$ref" in node and self._draft6(base):
            return self.uri(urljoin(base, node["$ref"]))
        return _all_of(self._parts(node, base))

    def _draft6(self, base: str) -> bool:
        """Whether the document of ``base`` is a draft-06 schema (where ``$ref`` replaces its siblings)."""
        return bool(self._docs[base.partition("#")[0]].get("$schema", "").startswith("http://json-schema.org/draft-06"))

    def _parts(self, node: dict[str, Any], base: str) -> list[Check]:
        """The checks of every keyword of ``node`` (``$ref`` among them, outside draft-06 documents)."""
        bad = _UNSUPPORTED.intersection(node)
        if bad or isinstance(node.get("items"), list):
            raise _Unsupported(f"keywords {sorted(bad) or ['items (array form)']}")
        parts: list[Check] = []
        if "$ref" in node:
            parts.append(self.uri(urljoin(base, node["$ref"])))
        kind = node.get("type")
        if "type" in node and kind not in ("object", "array"):  # the object/array closure checks the type itself
            parts.append(self._type(node["type"]))
        parts.extend(self._keyword_checks(node, base))
        parts.extend(self._structure_checks(node, base, kind))
        return parts

    def _structure_checks(self, node: dict[str, Any], base: str, kind: Any) -> list[Check]:
        """The object, array, property count, number and string keywords of ``node``."""
        parts: list[Check] = []
        if _constrains_objects(node, kind):
            parts.append(self._object(node, base, typed=kind == "object"))
        if _constrains_arrays(node, kind):
            parts.append(self._array(node, base, typed=kind == "array"))
        return parts + [build(node) for keywords, build in _NODE_CHECKS if _has_any(node, keywords)]

    @staticmethod
    def _type(spec: str | list[str]) -> Check:
        names = [spec] if isinstance(spec, str) else list(spec)
        tests = [_TYPES[n] for n in names]
        if len(tests) == 1:
            return tests[0]
        return lambda value: any(t(value) for t in tests)

    def _keyword_checks(self, node: dict[str, Any], base: str) -> list[Check]:
        """The checks of the value and combinator keywords of ``node`` (``const`` ... ``not``), in that order."""
        return [build(self, node[keyword], base) for keyword, build in _KEYWORD_CHECKS.items() if keyword in node]

    def _const(self, const: Any, _base: str) -> Check:
        if isinstance(const, str):
            return lambda value: isinstance(value, str) and value == const
        return lambda value: json_equal(value, const)

    def _enum(self, enum: Any, _base: str) -> Check:
        options = list(enum)
        return lambda value: any(json_equal(value, o) for o in options)

    def _all_of_schemas(self, schemas: list[Any], base: str) -> Check:
        return _all_of([self.compile(s, base) for s in schemas])

    def _one_of(self, schemas: list[Any], base: str) -> Check:
        branches = [self.compile(s, base) for s in schemas]
        return lambda value: sum(1 for b in branches if b(value)) == 1

    def _not(self, schema: Any, base: str) -> Check:
        negated = self.compile(schema, base)
        return lambda value: not negated(value)

    def _resolved(self, node: Any, base: str) -> tuple[Any, str]:
        """Follow draft-06 ``$ref`` chains (siblings are ignored there)."""
        for _ in range(32):
            if not (isinstance(node, dict) and "$ref" in node and len(node) == 1):
                break
            node, base = self.node(urljoin(base, node["$ref"]))
        return node, base

    def _discriminator(self, schemas: list[Any], base: str) -> tuple[str, dict[str, Check]] | None:
        """A property every branch requires with a distinct string ``const`` (pyhf modifiers)."""
        resolved = [self._resolved(s, base) for s in schemas]
        tag = _tag([n for n, _ in resolved])
        if tag is None:
            return None
        key, consts = tag
        return key, {c: self.compile(n, b) for c, (n, b) in zip(consts, resolved, strict=True)}

    def _any_of(self, schemas: list[Any], base: str) -> Check:
        found = self._discriminator(schemas, base)
        if found is None:
            branches = [self.compile(s, base) for s in schemas]
            return lambda value: any(b(value) for b in branches)
        key, table = found

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return False
            tag = value.get(key)
            branch = table.get(tag) if isinstance(tag, str) else None
            return branch is not None and branch(value)

        return check

    def _object(self, node: dict[str, Any], base: str, *, typed: bool) -> Check:
        properties = {k: self.compile(s, base) for k, s in node.get("properties", {}).items()}
        required = tuple(node.get("required", ()))
        extra = node.get("additionalProperties", True)
        closed = extra is False
        extra_check = None if isinstance(extra, bool) else self.compile(extra, base)
        known = frozenset(properties)

        def check(value: Any) -> bool:
            if not isinstance(value, dict):
                return not typed
            for key in required:
                if key not in value:
                    return False
            for key, item in value.items():
                sub = properties.get(key)
                if sub is not None:
                    if not sub(item):
                        return False
                elif extra_check is not None and not extra_check(item):
                    return False
            return not closed or known.issuperset(value)

        return check

    @staticmethod
    def _property_count(node: dict[str, Any]) -> Check:
        low, high = node.get("minProperties", 0), node.get("maxProperties")
        return lambda v: not isinstance(v, dict) or (len(v) >= low and (high is None or len(v) <= high))

    def _array(self, node: dict[str, Any], base: str, *, typed: bool) -> Check:
        low, high = node.get("minItems", 0), node.get("maxItems")
        item_schema = node.get("items", True)
        numbers_only = (
            isinstance(item_schema, dict)
            and item_schema.get("type") == "number"
            and all(k in ("type", "description", "minItems", "maxItems") for k in item_schema)
        )
        item = self.compile(item_schema, base)

        def check(value: Any) -> bool:
            if not isinstance(value, list):
                return not typed
            if len(value) < low or (high is not None and len(value) > high):
                return False
            if numbers_only:
                return _all_numbers(value)
            for entry in value:  # noqa: SIM110 - a plain loop is faster than all() over a generator here
                if not item(entry):
                    return False
            return True

        return check

    @staticmethod
    def _bounds(node: dict[str, Any]) -> Check:
        lo, hi = node.get("minimum"), node.get("maximum")
        xlo, xhi = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
        if isinstance(xlo, bool) or isinstance(xhi, bool):
            raise _Unsupported("draft-04 boolean exclusiveMinimum/exclusiveMaximum")

        def check(value: Any) -> bool:
            if not _is_number(value):
                return True
            return (lo is None or value >= lo) and (hi is None or value <= hi) and (xlo is None or value > xlo) and (xhi is None or value < xhi)

        return check

    @staticmethod
    def _string(node: dict[str, Any]) -> Check:
        pattern = re.compile(node["pattern"]) if "pattern" in node else None
        low, high = node.get("minLength", 0), node.get("maxLength")

        def check(value: Any) -> bool:
            if not isinstance(value, str):
                return True
            if pattern is not None and not pattern.search(value):
                return False
            return len(value) >= low and (high is None or len(value) <= high)

        return check


#: the keywords whose check needs only their node, each group with the builder of its check
_NODE_CHECKS: Final[tuple[tuple[tuple[str, ...], Callable[[dict[str, Any]], Check]], ...]] = (
    (_COUNT_KEYWORDS, _Compiler._property_count),
    (_BOUND_KEYWORDS, _Compiler._bounds),
    (_STRING_KEYWORDS, _Compiler._string),
)
#: the value and combinator keywords, each with the builder of its check from the keyword's value
_KEYWORD_CHECKS: Final[dict[str, Callable[[_Compiler, Any, str], Check]]] = {
    "const": _Compiler._const,
    "enum": _Compiler._enum,
    "allOf": _Compiler._all_of_schemas,
    "anyOf": _Compiler._any_of,
    "oneOf": _Compiler._one_of,
    "not": _Compiler._not,
}


@functools.cache
def _compiler() -> _Compiler:
    return _Compiler(documents())


def fast_check(name: str) -> Check:
    """The fast check of the schema ``name`` (see :func:`resolve_uri`)."""
    return _fast_uri(resolve_uri(name))


def is_valid(name: str, instance: Any) -> bool:
    """Whether ``instance`` validates against the schema ``name``."""
    return fast_check(name)(instance)


# ---------------------------------------------------------------------------------------
# errors -> findings


def _leaf_errors(error: ValidationError) -> Iterator[Error]:
    """An error as ``(path, message, expected, found)``; combinators resolved to their branch.

    For ``anyOf``/``oneOf`` the branch meant is the one whose errors are not about a
    ``const``/``enum`` discriminator (for a pyhf modifier: the branch whose ``type``
    matches); its errors are reported. When every branch fails on the same discriminator,
    the error says which values it may take.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield _as_tuple(error)
        return
    by_branch = _by_branch(error.context)
    meant = _meant(by_branch)
    if meant is None:
        yield _tag_error(error, _common_tag(by_branch))
        return
    for sub in meant:
        yield from _leaf_errors(sub)


def _by_branch(context: Iterable[ValidationError]) -> dict[int, list[ValidationError]]:
    """A combinator's errors by the index of the branch they come from."""
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in context:
        by_branch.setdefault(int(sub.schema_path[0]), []).append(sub)
    return by_branch


def _meant(by_branch: dict[int, list[ValidationError]]) -> list[ValidationError] | None:
    """The errors of the one branch none of whose errors is about a discriminator; None when
    there is not exactly one such branch."""
    meant = [errs for errs in by_branch.values() if not any(_discriminates(e) for e in errs)]
    return meant[0] if len(meant) == 1 else None


def _tag_error(error: ValidationError, tag: tuple[str, list[Any]] | None) -> Error:
    """The error of a combinator whose every branch fails on the discriminator ``tag`` (key, the
    values allowed): the values it may take; the combinator's own error without one."""
    if tag is None:
        return _as_tuple(error)
    key, allowed = tag
    instance: Any = error.instance
    value = instance.get(key) if isinstance(instance, dict) else None
    return [*error.absolute_path, key], f"{short(value)} is not one of {allowed}", allowed, _small(value)


def _common_tag(by_branch: dict[int, list[ValidationError]]) -> tuple[str, list[Any]] | None:
    """The member every branch rejects by ``const``/``enum``, with the values allowed."""
    per_branch = [_branch_tags(errs) for errs in by_branch.values()]
    common = set.intersection(*(set(t) for t in per_branch)) if per_branch else set()
    if not common:
        return None
    key = sorted(common)[-1] if "type" not in common else "type"
    return key, _union(tags[key] for tags in per_branch)


def _union(lists: Iterable[list[Any]]) -> list[Any]:
    """The values of ``lists``, each once (by JSON-ish ``==``), in the order first seen."""
    out: list[Any] = []
    for values in lists:
        out.extend(v for v in values if v not in out)
    return out


def _branch_tags(errs: list[ValidationError]) -> dict[str, list[Any]]:
    """The members a branch rejects by ``const``/``enum``, with the values it allows."""
    return {str(e.relative_path[0]): _allowed(e.validator, e.validator_value) for e in errs if e.validator in ("const", "enum") and len(e.relative_path) == 1}


def _allowed(keyword: Any, value: Any) -> list[Any]:
    """The values a ``const`` or ``enum`` keyword allows."""
    return list(value) if keyword == "enum" else [value]


def _discriminates(error: ValidationError) -> bool:
    """Whether ``error`` says the branch was not meant (wrong tag or wrong kind of value)."""
    depth = len(error.relative_path)
    return (error.validator in ("const", "enum") and depth <= 1) or (error.validator == "type" and depth == 0)


def _as_tuple(error: ValidationError) -> Error:
    text = error.message
    if error.validator in ("anyOf", "oneOf"):
        text = f"{short(error.instance)} is not valid under any of the given schemas"
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 3] + "..."
    if error.validator in ("$ref", "anyOf", "oneOf", "allOf", "required", "additionalProperties"):
        return list(error.absolute_path), text, None, None  # the message says it all
    return list(error.absolute_path), text, _small(error.validator_value), _small(error.instance)


def _small(value: Any) -> Any:
    """``value`` when it is small enough to put in a finding, else None."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return value if len(repr(value)) <= 80 else None


_PLAIN_OBJECT: Final = frozenset({"type", "properties", "required", "additionalProperties", "description", "title", "$schema", "$id"})
_PLAIN_ARRAY: Final = frozenset({"type", "items", "minItems", "maxItems", "description", "title", "$schema", "$id"})
_BARE_REF: Final = frozenset({"$ref", "$schema", "$id", "description"})


def _pointer(uri: str, *tokens: str) -> str:
    """``uri`` extended by JSON-pointer ``tokens`` in its fragment."""
    base, _, fragment = uri.partition("#")
    escaped = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)
    return f"{base}#{fragment}{escaped}"


def _plain(uri: str) -> tuple[str, dict[str, Any]]:
    """Follow draft-06 ``$ref``-only nodes from ``uri`` to the node that does the work."""
    compiler = _compiler()
    node, base = compiler.node(uri)
    for _ in range(32):
        if not _is_bare_ref(node):
            break
        uri = urljoin(base, node["$ref"])
        node, base = compiler.node(uri)
    if "#" not in uri:
        uri += "#"
    return uri, node if isinstance(node, dict) else {}


def _is_bare_ref(node: Any) -> bool:
    """Whether ``node`` is a ``$ref`` and nothing that validates (a description, ``$schema`` or ``$id`` at most)."""
    return isinstance(node, dict) and "$ref" in node and set(node) <= _BARE_REF


def _is_plain(node: dict[str, Any], kind: str, keywords: frozenset[str]) -> bool:
    """Whether ``node`` is a schema of type ``kind`` using only ``keywords`` (checked level by level)."""
    return node.get("type") == kind and set(node) <= keywords


def _leaf(uri: str, instance: Any, path: list[str | int], out: list[Error]) -> None:
    """jsonschema's errors for one (small) sub-instance."""
    validator = _jsonschema_validator(uri)
    for top in validator.iter_errors(instance):
        for parts, message, expected, found in _leaf_errors(top):
            out.append((path + parts, message, expected, found))


def _localize(uri: str, instance: Any, path: list[str | int], out: list[Error], limit: int) -> None:
    """Errors of a failing ``instance``, found by descending with the fast checks.

    Plain object and array schemas are checked level by level, so ``jsonschema`` only
    ever runs on the small sub-instances that fail (a 4 MB workspace with one bad field
    costs milliseconds, not seconds).
    """
    if len(out) >= limit:
        return
    uri, node = _plain(uri)
    if _is_plain(node, "object", _PLAIN_OBJECT) and isinstance(instance, dict):
        _localize_object(uri, node, instance, path, out, limit)
    elif _is_plain(node, "array", _PLAIN_ARRAY) and isinstance(instance, list):
        _localize_array(uri, node, instance, path, out, limit)
    else:
        _leaf(uri, instance, path, out)


def _localize_object(uri: str, node: dict[str, Any], instance: dict[str, Any], path: list[str | int], out: list[Error], limit: int) -> None:
    properties = node.get("properties", {})
    extra = node.get("additionalProperties", True)
    out += _missing_members(node, instance, path)
    out += _unexpected_members(properties, extra, instance, path)
    for key, value in instance.items():
        sub = _member_pointer(uri, key, properties, extra)
        if sub is not None and not _fast_uri(sub)(value):
            _localize(sub, value, [*path, key], out, limit)


def _missing_members(node: dict[str, Any], instance: dict[str, Any], path: list[str | int]) -> list[Error]:
    """An error for each member ``node`` requires and ``instance`` lacks."""
    return [(path, f"{key!r} is a required property", None, None) for key in node.get("required", ()) if key not in instance]


def _unexpected_members(properties: dict[str, Any], extra: Any, instance: dict[str, Any], path: list[str | int]) -> list[Error]:
    """One error naming the members ``instance`` has but may not (with ``additionalProperties: false``)."""
    unexpected = [k for k in instance if k not in properties]
    if extra is not False or not unexpected:
        return []
    return [(path, f"Additional properties are not allowed ({', '.join(map(repr, unexpected))} unexpected)", None, None)]


def _member_pointer(uri: str, key: str, properties: dict[str, Any], extra: Any) -> str | None:
    """The schema of the member ``key``: its property's, else ``additionalProperties``' (None: no schema)."""
    if key in properties:
        return _pointer(uri, "properties", key)
    return _pointer(uri, "additionalProperties") if isinstance(extra, dict) else None


def _localize_array(uri: str, node: dict[str, Any], instance: list[Any], path: list[str | int], out: list[Error], limit: int) -> None:
    out += _count_errors(instance, path, node.get("minItems", 0), node.get("maxItems"))
    if "items" not in node:
        return
    sub = _pointer(uri, "items")
    check_item = _fast_uri(sub)
    for index, value in enumerate(instance):
        if not check_item(value):
            _localize(sub, value, [*path, index], out, limit)
            if len(out) >= limit:
                return


def _count_errors(instance: list[Any], path: list[str | int], low: int, high: int | None) -> list[Error]:
    """An error when ``instance`` has fewer than ``low`` or more than ``high`` items."""
    errors: list[Error] = []
    if len(instance) < low:
        errors.append((path, f"has {len(instance)} items, fewer than the minimum {low}", low, len(instance)))
    if high is not None and len(instance) > high:
        errors.append((path, f"has {len(instance)} items, more than the maximum {high}", high, len(instance)))
    return errors


@functools.cache
def _fast_uri(uri: str) -> Check:
    try:
        return _compiler().uri(uri)
    except _Unsupported:
        check: Check = _jsonschema_validator(uri).is_valid
        return check


def schema_errors(name: str, instance: Any, *, limit: int = 10 * MAX_ERRORS) -> list[Error]:
    """Errors of ``instance`` against ``name``: ``(path parts, message, expected, found)``.

    Stops collecting after about ``limit`` errors.
    """
    out: list[Error] = []
    _localize(resolve_uri(name), instance, [], out, limit)
    return out


def check(
    name: str,
    instance: Any,
    *,
    code: str,
    location: str,
    prefix: str = "$",
    limit: int = MAX_ERRORS,
) -> list[Finding]:
    """Findings (``code``) for every schema error of ``instance``, at most ``limit`` of them.

    ``location`` is the file's location; each finding's location is
    ``<location>:<prefix><JSON path>``.
    """
    if is_valid(name, instance):
        return []
    errors = schema_errors(name, instance)
    if not errors:  # the fast check and jsonschema disagree: never stay silent
        return [Finding(code, f"{location}:{prefix}", f"does not validate against {resolve_uri(name)}")]
    findings = [Finding(code, f"{location}:{json_path(path, prefix)}", message, expected, found) for path, message, expected, found in errors[:limit]]
    return findings + _not_shown(len(errors), limit, code, f"{location}:{prefix}")


def _not_shown(count: int, limit: int, code: str, location: str) -> list[Finding]:
    """The summary finding of the ``count - limit`` errors beyond ``limit`` (none when there are not more)."""
    if count <= limit:
        return []
    more = f"{count - limit}" if count < 10 * MAX_ERRORS else f"at least {count - limit}"
    return [Finding(code, location, f"{more} more schema errors not shown")]


def unknown_fields(name: str, instance: Any, prefix: str = "$") -> list[str]:
    """JSON paths of object members the schema ``name`` does not list.

    Walks ``properties``, ``items``, ``additionalProperties`` and ``$ref``; an object whose
    schema lists ``properties`` and says nothing about ``additionalProperties`` is closed
    for this version, so any other member is unknown (reported as W005 by the callers).
    """
    compiler = _compiler()
    node, base = compiler.node(resolve_uri(name))
    out: list[str] = []
    _walk_unknown(compiler, node, base, instance, prefix, out)
    return out


def _may_have_members(node: dict[str, Any]) -> bool:
    """Whether values of the schema ``node`` can hold members the walk looks at (a covariance
    row of numbers cannot: its 2,000 items are not visited one by one)."""
    return any(key in node for key in ("$ref", "properties", "additionalProperties", "items"))


def _walk_unknown(compiler: _Compiler, node: Any, base: str, value: Any, path: str, out: list[str]) -> None:
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        target, target_base = compiler.node(urljoin(base, node["$ref"]))
        _walk_unknown(compiler, target, target_base, value, path, out)
    if isinstance(value, dict):
        _walk_members(compiler, node, base, value, path, out)
    elif isinstance(value, list):
        _walk_items(compiler, node, base, value, path, out)


def _walk_items(compiler: _Compiler, node: dict[str, Any], base: str, value: list[Any], path: str, out: list[str]) -> None:
    """The items of an array, each walked with the ``items`` schema where its values may have members."""
    items = node.get("items")
    if not isinstance(items, dict) or not _may_have_members(items):
        return
    for index, item in enumerate(value):
        if isinstance(item, (dict, list)):  # a scalar has no members: a covariance's 10^6 numbers cost one test each
            _walk_unknown(compiler, items, base, item, f"{path}[{index}]", out)


def _walk_members(compiler: _Compiler, node: dict[str, Any], base: str, value: dict[str, Any], path: str, out: list[str]) -> None:
    """The members of an object: each walked with its schema; without one, unknown (where the schema lists properties)."""
    properties = node.get("properties")
    extra = node.get("additionalProperties")
    for key, item in value.items():
        child = json_path([key], path)
        if isinstance(properties, dict) and key in properties:
            _walk_unknown(compiler, properties[key], base, item, child, out)
        elif isinstance(extra, dict):
            _walk_unknown(compiler, extra, base, item, child, out)
        elif isinstance(properties, dict) and extra is None:
            out.append(child)
