"""``arch cls`` and ``arch upper-limit``: CLs and upper limits for one signal point, as ``pyhf cls`` does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from heparch.cli import _settings as opts
from heparch.cli._common import emit_json, print_result, say
from heparch.cli._progress import QUIET, status
from heparch.errors import FitError, InferenceInputError, InputError

if TYPE_CHECKING:
    from collections.abc import Callable

    from heparch.infer.backends import Choice
    from heparch.infer.base import Model, Settings, UpperLimit
    from heparch.infer.inputs import Inputs

_INPUT_HELP = "A pyhf workspace JSON, a simplified-likelihood JSON, or a bundle (.zst)."
_PATCHSET_HELP = "A pyhf patchset JSON whose patch --point is applied to a workspace INPUT (in a bundle: the logical path of one of its patchsets)."
_POINT_HELP = "The signal point: a patch of --patchset, a signal of a simplified likelihood, or a point of a bundle (its patchsets, patch files or simplified-likelihood signals)."
_PATCH_HELP = "An RFC 6902 JSON Patch file applied to the workspace after the point's patch; repeat to apply several in order."
_LIKELIHOOD_HELP = "The logical path of the likelihood to use, for a bundle that holds several."
_BACKEND_HELP = "fast (heparch's HistFactory engine), pyhf (the reference) or simplified. Default: simplified for a simplified likelihood; for a workspace fast when it supports the model, else pyhf."


def _model(
    input_: Path, patchset: Path | None, point: str | None, patch: list[Path], likelihood: str | None, backend: str | None, settings: Settings
) -> tuple[Inputs, Choice, Model]:
    from heparch.analysis import resolve  # start-up: loaded when this command runs
    from heparch.infer.backends import prepare  # start-up: loaded when this command runs

    inputs = resolve(input_, patchset=patchset, point=point, patches=patch, likelihood=likelihood, backend=backend, measurement=settings.measurement)
    try:
        choice, model = prepare(inputs, backend, settings=settings)
    except InferenceInputError as exc:  # the backends name the field; the file is named here
        if str(input_) in exc.message:
            raise
        raise InferenceInputError(f"{input_}: {exc.message}", option=exc.option) from None
    if choice.reason:
        say(choice.reason)
    for finding in inputs.warnings:  # what pyhf computes but is unusual
        say(f"warning: {finding.one_line()}")
    if inputs.kind == "simplified":  # unknown fields are ignored, with a warning
        from heparch.components.simplified import check_simplified  # start-up: loaded when this command runs

        for finding in check_simplified(inputs.spec, location=str(input_)):
            if finding.severity == "warning":
                say(f"warning: {finding.one_line()}")
    return inputs, choice, model


def _computed(inputs: Inputs, choice: Choice, model: Model, settings: Settings, compute: Callable[[Model], Any]) -> tuple[Choice, Any]:
    """``compute(model)``; where a default choice of the fast engine cannot compute the point
    (a fit does not converge), the same with pyhf, saying why on stderr."""
    from heparch.infer.backends import background_args, fallback  # start-up: loaded when this command runs

    try:
        return choice, compute(model)
    except FitError as exc:
        other = fallback(choice, exc)
        if other is None:
            raise
        say(other.reason)
        return other, compute(other.backend.background(inputs.spec, **background_args("workspace", settings)).model(inputs.patches))


def _notes(result: Any) -> None:
    for note in getattr(result, "notes", ()):
        say(f"warning: {note}")
    if getattr(result, "multimodal", False):
        say("warning: the likelihood has several minima; the lowest was taken (see 'starts' in --json)")
    if getattr(result, "underflow", ()):
        say(f"warning: {', '.join(result.underflow)} underflow double precision: reported as 0, not computed")


def _what(inputs: Inputs) -> str:
    return inputs.source + (f" point {inputs.point}" if inputs.point else "")


def _fmt(values: Any) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


def cls(
    input_: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    patchset: Path | None = typer.Option(None, "--patchset", help=_PATCHSET_HELP),
    point: str | None = typer.Option(None, "--point", help=_POINT_HELP),
    patch: list[Path] = typer.Option([], "--patch", help=_PATCH_HELP),
    likelihood: str | None = typer.Option(None, "--likelihood", help=_LIKELIHOOD_HELP),
    mu: float = typer.Option(1.0, "--mu", help="The signal strength tested."),
    backend: str | None = typer.Option(None, "--backend", help=_BACKEND_HELP),
    test_stat: str = opts.TEST_STAT,
    normsys: str = opts.NORMSYS,
    histosys: str = opts.HISTOSYS,
    poi_bounds: str | None = opts.POI_BOUNDS,
    measurement: str | None = opts.MEASUREMENT,
    json_out: bool = typer.Option(False, "--json", help='Print {"CLs_obs", "CLs_exp" (-2..+2 sigma), "backend", "settings", ...} as JSON on stdout.'),
    quiet: bool = QUIET,
) -> None:
    """CLs (observed and expected -2..+2 sigma) at signal strength --mu, with the asymptotic
    formulae of pyhf 0.7.6 (q~mu by default; --test-stat q). Exit 0 when computed, 1 for an
    invalid bundle, 2 for bad inputs or a point no backend can compute (the reason is printed).

    Example: arch cls BkgOnly.json --patchset patchset.json --point C1N2_300_150 --json
    """
    if not (math.isfinite(mu) and mu >= 0):
        raise InputError(f"--mu {mu}: must be a finite number >= 0")
    settings = opts.settings(test_stat, normsys, histosys, poi_bounds, measurement)
    with status(f"CLs at mu={mu:g} of {input_.name}{f' point {point}' if point else ''}", quiet=quiet):
        inputs, choice, model = _model(input_, patchset, point, patch, likelihood, backend, settings)
        choice, result = _computed(inputs, choice, model, settings, lambda m: m.cls(mu))
    _notes(result)
    print_result(
        f"{_what(inputs)}: CLs at mu={mu:g} ({choice.name} backend): observed {result.observed:.4g}, expected {_fmt(result.expected)}", json_out=json_out
    )
    if json_out:
        emit_json({**result.to_json(), "input": inputs.to_json()})


def upper_limit(
    input_: Path = typer.Argument(..., metavar="INPUT", help=_INPUT_HELP),
    patchset: Path | None = typer.Option(None, "--patchset", help=_PATCHSET_HELP),
    point: str | None = typer.Option(None, "--point", help=_POINT_HELP),
    patch: list[Path] = typer.Option([], "--patch", help=_PATCH_HELP),
    likelihood: str | None = typer.Option(None, "--likelihood", help=_LIKELIHOOD_HELP),
    level: float = typer.Option(0.05, "--level", help="The CLs level of the limit (0.05: 95% CL)."),
    backend: str | None = typer.Option(None, "--backend", help=_BACKEND_HELP),
    test_stat: str = opts.TEST_STAT,
    normsys: str = opts.NORMSYS,
    histosys: str = opts.HISTOSYS,
    poi_bounds: str | None = opts.POI_BOUNDS,
    measurement: str | None = opts.MEASUREMENT,
    json_out: bool = typer.Option(
        False,
        "--json",
        help='Print {"mu_up_obs", "mu_up_exp" (-2..+2 sigma), "backend", "settings", ...} as JSON on stdout; a limit above the cap is null and named in "above_cap".',
    ),
    quiet: bool = QUIET,
) -> None:
    """Upper limits on the signal strength at CLs = --level (observed and expected -2..+2
    sigma), by root finding (rtol 1e-4). A limit above the cap is reported as '> cap'.
    Exit 0 when computed, 1 for an invalid bundle, 2 for bad inputs or a point no backend can
    compute (the reason is printed).

    Example: arch upper-limit BkgOnly.json --patch patch.C1N2_300_150.json --backend pyhf --json
    """
    if not (math.isfinite(level) and 0 < level < 1):
        raise InputError(f"--level {level}: must lie strictly between 0 and 1")
    settings = opts.settings(test_stat, normsys, histosys, poi_bounds, measurement)
    with status(f"upper limit at CLs={level:g} of {input_.name}{f' point {point}' if point else ''}", quiet=quiet):
        inputs, choice, model = _model(input_, patchset, point, patch, likelihood, backend, settings)
        choice, result = _computed(inputs, choice, model, settings, lambda m: m.upper_limit(level=level))
    values = [result.observed, *result.expected]
    text = ", ".join(f"{v:.4g}" if math.isfinite(v) else f"> {result.cap:g}" for v in values)
    print_result(f"{_what(inputs)}: upper limit on mu at CLs={level:g} ({choice.name} backend): observed, expected -2..+2 sigma: {text}", json_out=json_out)
    if json_out:
        emit_json({**_limits_json(result), "input": inputs.to_json()})


def _limits_json(result: UpperLimit) -> dict[str, Any]:
    """The limits' JSON, a limit beyond the cap as null."""
    values = [result.observed, *result.expected]
    return {**result.to_json(), "mu_up_obs": _finite(values[0]), "mu_up_exp": [_finite(v) for v in values[1:]]}


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None


def register(app: typer.Typer) -> None:
    app.command("cls")(cls)
    app.command("upper-limit")(upper_limit)
