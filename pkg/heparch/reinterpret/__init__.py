"""Reinterpretation: new signal points on a published likelihood, through its signal interface.

:mod:`~heparch.components.interface` derives the interface from the published signal patches;
:mod:`~heparch.reinterpret.signal` reads and checks the new points' yields;
:mod:`~heparch.reinterpret.generate` writes their patches; :mod:`~heparch.reinterpret.selftest`
is the leave-one-out self-test; :mod:`~heparch.reinterpret.run` computes points with replay's
executor (``arch reinterpret``, docs/reinterpret.md).
"""
