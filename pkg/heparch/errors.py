"""One error root for heparch.

Every error a user can cause is a :class:`HeparchError`; the CLI catches it in
exactly one place, prints :meth:`HeparchError.diagnostics` and exits with
:attr:`HeparchError.exit_code` (see ``spec/exit-codes.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from heparch.findings import Finding

EXIT_OK = 0
EXIT_FAILED = 1  # the artifact was checked and failed
EXIT_USAGE = 2  # usage or input error
EXIT_INTERNAL = 3  # internal error


class HeparchError(Exception):
    """Root of every error heparch raises on purpose."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, findings: list[Finding] | None = None, option: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.findings = list(findings or [])
        #: the parameter the message is about (``"backend"``, ``"poi_bounds"``): the message speaks of the
        #: library (``backend 'x': ...``, ``use backend=pyhf``); the CLI names the flag instead (``--backend``)
        self.option = option

    def diagnostics(self) -> str:
        """One line per problem, the first being the summary."""
        lines = [self.message]
        lines += [f.one_line() for f in self.findings if f.one_line() != self.message]
        return "\n".join(lines)


class InputError(HeparchError):
    """Bad arguments or an invalid input file (exit 2)."""

    exit_code = EXIT_USAGE


class BuildRefused(InputError):
    """``arch build`` refused an input (exit 2); findings say which and why."""


class InvalidBundle(HeparchError):
    """The bundle was checked and failed (exit 1)."""

    exit_code = EXIT_FAILED


class IntegrityError(InvalidBundle):
    """Bytes read from a bundle do not match what its manifest promises (exit 1)."""


class MissingBackend(InputError):
    """An optional backend or dependency is not installed (exit 2)."""


class InferenceInputError(InputError):
    """Inputs inference cannot use: NaN yields, a covariance that is not positive
    semi-definite, an unknown modifier, a signal point that does not exist (exit 2)."""


class FitError(HeparchError):
    """A fit did not converge; the message says which and how (exit 2: this input cannot be
    computed by this backend; the default backend choice falls back to pyhf where it can)."""

    exit_code = EXIT_USAGE


class DegenerateResult(FitError):
    """A result that is not a number: a non-finite CLs or upper limit, or a degenerate Asimov
    test statistic (q_mu,A = 0); the message names the cause (exit 2; a failed point in claim
    and replay), never printed or recorded as a number."""


class AuditFailed(HeparchError):
    """The engine audit found a difference above the tolerance between the fast engine and the
    reference backend (exit 1: the claims were checked and failed; nothing is written)."""

    exit_code = EXIT_FAILED
