"""The inference core: a small backend Protocol, named result types and the backends.

Backends: ``pyhf`` (the reference), ``fast`` (heparch's own HistFactory engine) and
``simplified`` (CMS-NOTE-2017-001 / Buckley et al. 2019 simplified likelihoods).
See :mod:`heparch.infer.base` for the interface.
"""
