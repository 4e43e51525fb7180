"""The progress bar: a few lines in logs, one redrawn line on a terminal."""

from __future__ import annotations

import io

from heparch.cli._progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_gets_a_line_per_tenth_and_messages_in_between() -> None:
    out = io.StringIO()
    bar = Progress(200, "replay", stream=out)
    for done in range(1, 201):
        bar.update(done, failed=1 if done > 50 else 0)
        if done == 60:
            bar.message("FAIL p60: CLs_obs: claimed 0.1, replayed 0.2")
    bar.close()
    lines = out.getvalue().splitlines()
    bars = [line for line in lines if line.startswith("replay [")]
    assert len(bars) == 11  # the first point, then 10%, 20%, ..., 100%
    assert "] 1/200 (" in bars[0]
    assert bars[-1].startswith("replay [" + "#" * 30 + "] 200/200, 1 failed")
    assert "FAIL p60: CLs_obs: claimed 0.1, replayed 0.2" in lines


def test_terminal_redraws_one_line() -> None:
    out = _Tty()
    bar = Progress(3, "claim", stream=out)
    for done in (1, 2, 3):
        bar.update(done)
    bar.close()
    text = out.getvalue()
    assert text.count("\n") == 1  # the final newline only
    assert text.rstrip("\n").split("\r")[-1].startswith("claim [" + "#" * 30 + "] 3/3")
