"""Simplified likelihoods: schema, shapes, covariance and third-moment checks.

>>> sl = {"observed": [5, 3], "background": [4.0, 2.5],
...       "covariance": [[1.0, 0.2], [0.2, 0.5]], "third_moments": [0.1, 1.2],
...       "signals": {"A": [1.0, 0.5]}}
>>> [f.code for f in check_simplified(sl, location="sl.json")]
['E067']
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

from heparch.findings import Finding
from heparch.spec import schema_check

SCHEMA: Final = "simplified-likelihood.json"
#: relative tolerance of the covariance symmetry check
SYMMETRY_RTOL: Final = 1e-6
#: relative slack of the third-moment condition (rounding of published numbers)
MOMENT_RTOL: Final = 1e-9
#: at most this many bins are named in one message
MAX_NAMED: Final = 10
_T = TypeVar("_T")


def looks_like_simplified(obj: Any) -> bool:
    """A dict with ``observed``, ``background`` and ``covariance``."""
    return isinstance(obj, dict) and all(k in obj for k in ("observed", "background", "covariance"))


def check_simplified(obj: Any, *, location: str) -> list[Finding]:
    """Findings for a simplified likelihood.

    E066: the schema, consistent shapes (every vector has n entries, the covariance is
    n x n), a symmetric (relative tolerance 1e-6) positive-definite covariance, label
    values that match the labels and name signals. E067: third moments with
    m3_i^2 > 8 m2_ii^3. W005: fields the schema does not know.
    """
    findings = schema_check.check(SCHEMA, obj, code="E066", location=location)
    findings.extend(_unknown(obj, location))
    if any(f.severity == "error" for f in findings):
        return findings
    shape = _shape_findings(obj, location)
    findings.extend(shape)
    findings.extend(_label_findings(obj, location))
    if shape:
        return findings
    findings.extend(_covariance_findings(obj["covariance"], location))
    if "third_moments" in obj:
        findings.extend(_moment_findings(obj["third_moments"], obj["covariance"], location))
    return findings


def _unknown(obj: Any, location: str) -> list[Finding]:
    return [
        Finding("W005", f"{location}:{path}", "field not in the simplified-likelihood schema 1.0.0; it is ignored")
        for path in schema_check.unknown_fields(SCHEMA, obj)
    ]


def _shape_findings(obj: Mapping[str, Any], location: str) -> list[Finding]:
    n = len(obj["observed"])
    out: list[Finding] = []

    def expect(path: str, length: int, what: str) -> None:
        if length != n:
            out.append(Finding("E066", f"{location}:{path}", f"{what} has {length} entries, observed has {n}", n, length))

    expect("$.background", len(obj["background"]), "background")
    expect("$.covariance", len(obj["covariance"]), "covariance")
    for i, row in enumerate(obj["covariance"]):
        expect(f"$.covariance[{i}]", len(row), f"covariance row {i}")
    if "third_moments" in obj:
        expect("$.third_moments", len(obj["third_moments"]), "third_moments")
    for name, yields in obj["signals"].items():
        expect(schema_check.json_path(["signals", name]), len(yields), f"signal {name!r}")
    return out


def _label_findings(obj: Mapping[str, Any], location: str) -> list[Finding]:
    values = obj.get("values")
    if values is None:
        return []
    labels = obj.get("labels")
    out = [] if labels is not None else [Finding("E066", f"{location}:$.values", "values are given but labels are not")]
    for name, row in values.items():
        out.extend(_value_row_findings(name, row, obj["signals"], labels, f"{location}:{schema_check.json_path(['values', name])}"))
    return out


def _value_row_findings(name: str, row: Sequence[Any], signals: Mapping[str, Any], labels: Sequence[str] | None, where: str) -> list[Finding]:
    """The label values of signal ``name``: it must be a signal, with one value per label."""
    out: list[Finding] = []
    if name not in signals:
        out.append(Finding("E066", where, f"{name!r} is not a signal"))
    if labels is not None and len(row) != len(labels):
        out.append(Finding("E066", where, f"has {len(row)} values for {len(labels)} labels", len(labels), len(row)))
    return out


def _covariance_findings(cov: Sequence[Sequence[float]], location: str) -> list[Finding]:
    asymmetric = _asymmetric(cov)
    if asymmetric:
        pairs = _listed(asymmetric, lambda pair: f"({pair[0]}, {pair[1]})")
        return [Finding("E066", f"{location}:$.covariance", f"covariance is not symmetric at {pairs}")]
    failed = cholesky_failure(cov)
    if failed is not None:
        return [
            Finding(
                "E066",
                f"{location}:$.covariance",
                f"covariance is not positive definite: its Cholesky factorisation fails at bin {failed}",
            )
        ]
    return []


def _listed(items: Sequence[_T], show: Callable[[_T], str]) -> str:
    """The first :data:`MAX_NAMED` of ``items`` shown, then how many more (``a, b and 3 more``)."""
    more = f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
    return ", ".join(map(show, items[:MAX_NAMED])) + more


def _asymmetric(cov: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """The pairs (j, i), j < i, where the covariance is not symmetric, by i then j."""
    found = _numpy_asymmetric(cov) if len(cov) >= LAPACK_FROM else None
    return found if found is not None else _python_asymmetric(cov)


def _python_asymmetric(cov: Sequence[Sequence[float]]) -> list[tuple[int, int]]:
    """:func:`_asymmetric` in pure Python (as fast as numpy below :data:`LAPACK_FROM` bins)."""
    return [(j, i) for i, row in enumerate(cov) for j in range(i) if _differ(row[j], cov[j][i])]


def _differ(a: float, b: float) -> bool:
    """Whether two covariance entries differ beyond :data:`SYMMETRY_RTOL`."""
    return a != b and abs(a - b) > SYMMETRY_RTOL * max(abs(a), abs(b))


def _numpy_asymmetric(cov: Sequence[Sequence[float]]) -> list[tuple[int, int]] | None:
    """:func:`_asymmetric` in numpy (0.1 s instead of 1.7 s for n = 2,000); None without numpy."""
    try:
        import numpy as np  # numpy: only for a large matrix (the format checks run without it)
    except ImportError:  # pragma: no cover - a dependency; blocked only in the layering tests
        return None
    m = np.asarray(cov, dtype=float)
    out: list[tuple[int, int]] = []
    for start in range(0, len(m), 256):  # blocks of rows: temporaries of 256 x n, not n x n
        stop = min(start + 256, len(m))
        a, b = m[start:stop, :stop], m[:stop, start:stop].T
        with np.errstate(over="ignore", invalid="ignore"):  # huge finite entries: as the Python floats do
            bad = (a != b) & (np.abs(a - b) > SYMMETRY_RTOL * np.maximum(np.abs(a), np.abs(b)))
        out.extend((int(j), int(i) + start) for i, j in np.argwhere(np.tril(bad, start - 1)))
    return out


#: above this many bins the factorisation is LAPACK's (scipy), below it pure Python is as fast
LAPACK_FROM: Final = 64


def cholesky_failure(cov: Sequence[Sequence[float]]) -> int | None:
    """The first bin at which the Cholesky factorisation of ``cov`` fails, else None.

    From :data:`LAPACK_FROM` bins on, LAPACK's ``dpotrf`` (0.05 s for n = 1200, where
    pure Python takes 8 s); its ``info`` is the order of the first leading minor that is
    not positive definite, the same bin as the pure-Python loop reports.

    >>> cholesky_failure([[4.0, 2.0], [2.0, 1.0]])
    1
    """
    if len(cov) >= LAPACK_FROM:
        failed = _lapack_cholesky_failure(cov)
        if failed != -1:
            return failed
    return _python_cholesky_failure(cov)


def _lapack_cholesky_failure(cov: Sequence[Sequence[float]]) -> int | None:
    """``dpotrf``'s verdict, or -1 when scipy is not installed (the format code must not need it)."""
    try:  # heavy optional dependency: imported only for a large covariance
        import numpy as np  # numpy: only for a large matrix (the format checks run without it)
        from scipy.linalg import lapack  # scipy: only for a large matrix
    except ImportError:  # pragma: no cover - both are dependencies; blocked only in the layering tests
        return -1
    matrix = np.asarray(cov, dtype=float)
    if not np.isfinite(matrix).all():
        return -1  # the pure-Python loop names the bin
    _factor, info = lapack.dpotrf(matrix, lower=1, clean=0, overwrite_a=1)
    if info < 0:  # pragma: no cover - an argument error of the call itself
        raise ValueError(f"dpotrf argument {-info} is invalid")
    return None if info == 0 else int(info) - 1


def _python_cholesky_failure(cov: Sequence[Sequence[float]]) -> int | None:
    """Pure Python, O(n^3/6) with the inner products done by ``sum(map(mul, ...))``: about
    20 ms for n = 90 and 0.5 s for n = 300."""
    n = len(cov)
    rows: list[list[float]] = []
    mul = operator.mul
    for i in range(n):
        row_i: list[float] = []
        source = cov[i]
        for j in range(i):
            row_j = rows[j]
            dot = sum(map(mul, row_i, row_j))
            row_i.append((source[j] - dot) / row_j[j])
        pivot = source[i] - sum(map(mul, row_i, row_i))
        if not pivot > 0.0 or not math.isfinite(pivot):
            return i
        row_i.append(math.sqrt(pivot))
        rows.append(row_i)
    return None


def breaks_moment_condition(m3: float, m2: float) -> bool:
    """Whether m3^2 > 8 m2^3 (beyond the tolerance), compared in logarithms: finite values
    up to 1.8e308 overflow the powers themselves (m3 = 1e200 gives m3^2 = inf).

    >>> breaks_moment_condition(1e200, 1e100), breaks_moment_condition(1e300, 1e300)
    (True, False)
    """
    if m3 == 0:
        return False
    if not m2 > 0:
        return True
    return 2 * math.log(abs(m3)) > math.log(8) + 3 * math.log(m2) + math.log1p(MOMENT_RTOL)


def _moment_findings(m3: Sequence[float], cov: Sequence[Sequence[float]], location: str) -> list[Finding]:
    # products, not powers: float ** raises OverflowError where * gives inf (only shown in the message)
    bad = [i for i in range(len(m3)) if breaks_moment_condition(m3[i], cov[i][i])]
    if not bad:
        return []
    named = _listed(bad, lambda i: f"{i} (m3^2 = {m3[i] * m3[i]:.6g} > 8 m2^3 = {8 * cov[i][i] * cov[i][i] * cov[i][i]:.6g})")
    word = "bin" if len(bad) == 1 else "bins"
    return [
        Finding(
            "E067",
            f"{location}:$.third_moments",
            f"third moments break m3_i^2 <= 8 m2_ii^3 in {word} {named}",
            expected="m3_i^2 <= 8 m2_ii^3",
            found=bad,
        )
    ]
