"""Replay: recompute a bundle's claimed results and compare them within their tolerances.

``outcome`` holds the named results of a replay (one :class:`~heparch.replay.outcome.PointOutcome`
per point, a :class:`~heparch.replay.outcome.ReplayReport` for the run), ``report`` renders
them (summary table, JSON, JUnit XML, a self-contained HTML page).
"""
