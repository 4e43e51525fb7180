"""``arch export FORMAT BUNDLE -o OUT``: a verified bundle's metadata, claims and identity in the
formats of the places that keep it (docs/export.md maps every field).

- ``hepdata``: a HEPData submission directory (or ``.zip``): ``submission.yaml``, tables of the
  claimed CLs and upper limits, the likelihoods as ``HistFactory`` resources and the bundle;
- ``datacite``: DataCite Metadata Schema 4.5, JSON (or XML when OUT ends in ``.xml``);
- ``zenodo``: the legacy deposit ``metadata`` object (a ``.zenodo.json``);
- ``citation``: CITATION.cff (CFF 1.2.0);
- ``ro-crate``: a detached ``ro-crate-metadata.json`` (RO-Crate 1.1) for the unpacked bag.

Every value comes from the bundle, except what a repository assigns at deposit
(:class:`Deposit`: DOI, publisher, year). Nothing is written unless the bundle verifies in full
and the export is complete: outputs are renamed into place.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

from heparch.analysis import OpenBundle
from heparch.errors import InputError
from heparch.export import citation, datacite, hepdata, ro_crate, zenodo
from heparch.export.common import Deposit, Source, Written, check_not_input, json_bytes, source, verified, write_directory, write_file, write_zip

__all__ = ["DEFAULT_NAMES", "FORMATS", "Deposit", "Written", "export"]

#: the output name when -o is not given, per format (hepdata: a directory named after the bundle)
DEFAULT_NAMES: Final = {"datacite": "datacite.json", "zenodo": ".zenodo.json", "citation": "CITATION.cff", "ro-crate": ro_crate.METADATA}
FORMATS: Final = ("hepdata", "datacite", "zenodo", "citation", "ro-crate")


def export(fmt: str, bundle: Path | str, output: Path | str | None = None, *, deposit: Deposit | None = None) -> Written:
    """Verify ``bundle`` in full, then write its ``fmt`` export to ``output`` (a default name in
    the current directory when None, see :data:`DEFAULT_NAMES`)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    path = Path(bundle)
    deposit = deposit or Deposit()
    deposit.check()
    with verified(path) as (b, fh):
        src = source(b)
        deposit = deposit.or_recorded(src.about.deposit)  # arch.yaml's deposit: where an option is not given
        target = Path(output) if output is not None else Path(DEFAULT_NAMES.get(fmt) or f"{path.name.removesuffix('.zst')}-hepdata")
        check_not_input(target, path)
        if fmt == "hepdata":
            names = _hepdata(src, b, fh, target)
        else:
            write_file(target, _WRITERS[fmt](src, b, deposit, target))
            names = [target.name]
    return Written(fmt, str(path), src.identity, str(target), tuple(names))


def _hepdata(src: Source, b: OpenBundle, fh: BinaryIO, target: Path) -> list[str]:
    files = hepdata.files(src, b, fh)
    if target.suffix == ".zip":
        write_zip(target, files)
    else:
        write_directory(target, files)
    return [name for name, _ in files]


def _datacite(src: Source, b: OpenBundle, deposit: Deposit, target: Path) -> bytes:
    return datacite.render(datacite.metadata(src, deposit), xml=target.suffix == ".xml")


def _zenodo(src: Source, b: OpenBundle, deposit: Deposit, target: Path) -> bytes:
    return json_bytes(zenodo.metadata(src, deposit))


def _citation(src: Source, b: OpenBundle, deposit: Deposit, target: Path) -> bytes:
    return citation.render(citation.metadata(src, deposit))


def _ro_crate(src: Source, b: OpenBundle, deposit: Deposit, target: Path) -> bytes:
    return ro_crate.render(ro_crate.metadata(src, len(b.manifest_bytes)))


_WRITERS: Final[dict[str, Callable[[Source, OpenBundle, Deposit, Path], bytes]]] = {
    "datacite": _datacite,
    "zenodo": _zenodo,
    "citation": _citation,
    "ro-crate": _ro_crate,
}
