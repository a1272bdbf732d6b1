"""SIGKILL at random moments: state is old or new, never mixed; the journal loses at most its torn last line."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.runtime.journal import EventJournal, load_journal
from bridge.runtime.statestore import StateStore

WRITER = r"""
import sys
from datetime import datetime, timezone
from pathlib import Path
from bridge.runtime.journal import EventJournal
from bridge.runtime.statestore import StateStore

root = Path(sys.argv[1])
store = StateStore(root)
journal = EventJournal(root / "journal.jsonl")
n = int(sys.argv[2])
padding = "x" * 3000  # large enough that a write spans several syscalls' worth of bytes
while True:
    n += 1
    store.save("state.json", {"generation": n, "padding": padding, "check": n * 7})
    journal.append(datetime.now(timezone.utc), "tick", generation=n, padding=padding)
    sys.stdout.write(f"{n}\n")
    sys.stdout.flush()
"""


@pytest.mark.slow
def test_state_and_journal_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(63380)
    store = StateStore(tmp_path)
    generation = 0
    torn = 0
    iterations = 200
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for _ in range(iterations):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(generation)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        target = rng.randint(1, 4)
        seen = generation
        for _ in range(target):
            line = proc.stdout.readline()
            if not line:
                break
            seen = int(line)
        time.sleep(rng.random() * 0.004)  # kill somewhere inside the next write
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
        state = store.load("state.json")
        assert state is not None
        assert state["check"] == state["generation"] * 7  # never a mix of two states
        # the writer reported `seen` as completed; it may have run ahead of what we read
        assert state["generation"] >= seen
        generation = state["generation"]
        events = load_journal(tmp_path / "journal.jsonl")
        assert events, "journal lost completed events"
        gens = [e["generation"] for e in events]
        assert gens == sorted(gens)
        assert gens[-1] >= seen
        # state is saved before the event is journaled: the journal is at most one behind
        assert gens[-1] in (generation - 1, generation)
        torn += not (tmp_path / "journal.jsonl").read_bytes().endswith(b"\n")
        EventJournal(tmp_path / "journal.jsonl")  # repairs a torn tail before the next writer appends
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) <= iterations  # temp files of killed writes may remain; they are never read
    assert json.loads((tmp_path / "state.json").read_text())["generation"] == generation
    # the kills really landed inside writes (otherwise this test would prove nothing)
    assert torn + len(leftovers) > 0, "no kill hit a write in progress"
    print(f"torn journal tails: {torn}, interrupted state writes: {len(leftovers)} of {iterations} kills")


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    path = tmp_path / "journal.jsonl"
    journal = EventJournal(path)
    journal.append(datetime(2026, 1, 1, tzinfo=UTC), "a", n=1)
    journal.append(datetime(2026, 1, 1, tzinfo=UTC), "b", n=2)
    with path.open("ab") as f:
        f.write(b'{"event":"c","n":')
    assert [e["n"] for e in load_journal(path)] == [1, 2]
    EventJournal(path).append(datetime(2026, 1, 1, tzinfo=UTC), "d", n=4)
    assert [e["n"] for e in load_journal(path)] == [1, 2, 4]


def test_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'{"n":1}\nnot json\n{"n":3}\n')
    with pytest.raises(ValueError, match=r"journal\.jsonl:2"):
        load_journal(path)
