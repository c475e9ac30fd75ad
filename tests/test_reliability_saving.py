"""Saves killed outright leave temporary files; the next save to the folder removes them, and only them."""
import os
import signal
import subprocess
import sys
import time

import rnnkit
from rnnkit._io import _lock, atomic_write, atomic_write_bytes
from rnnkit.layers import Dense, Input


def _backdate(path, seconds=60):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_save_killed_with_sigkill_leaves_a_temp_file_that_the_next_save_removes(tmp_path):
    target = tmp_path / "model.rnnkit"
    code = (f"import sys, time; from rnnkit._io import atomic_write\n"
            f"with atomic_write({str(target)!r}) as f:\n"
            f"    f.write(b'x' * 1000); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert child.stdout.readline().strip() == b"writing"
    child.send_signal(signal.SIGKILL)
    child.wait()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".model.rnnkit.rnnkit-") and leftovers[0].endswith(".tmp")
    model = rnnkit.Sequential([Input((3,)), Dense(2)])
    model.save(tmp_path / "other.rnnkit")  # any save to the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.rnnkit"]


def test_only_rnnkits_own_older_and_unlocked_temp_files_are_removed(tmp_path):
    stale = [".a.rnnkit.rnnkit-abcd_123.tmp", ".b.keras.rnnkit-zzzzzzzz.tmp",
             ".m.rnnkit.k2j4_x9q.tmp"]  # the older naming, for the file being saved
    kept = ["notes.tmp", ".notes.tmp", ".x.rnnkit.abcdefgh.tmp",  # older naming for another file: not ours to judge
            ".a.rnnkit.rnnkit-abcdefgh.tmp.bak", ".a.rnnkit.rnnkit-ABCDEFGH.tmp", "a.rnnkit.rnnkit-abcdefgh.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"old")
        _backdate(tmp_path / name)
    newer = tmp_path / ".c.rnnkit.rnnkit-newer123.tmp"
    newer.write_bytes(b"from a save that started after this one")
    os.utime(newer, (time.time() + 60, time.time() + 60))
    live = tmp_path / ".d.rnnkit.rnnkit-live1234.tmp"
    live.write_bytes(b"a save in progress")
    _backdate(live)
    (tmp_path / "folder.rnnkit-abcdefgh.tmp").mkdir()
    with open(live, "rb") as held:
        assert _lock(held.fileno(), blocking=False)
        atomic_write_bytes(tmp_path / "m.rnnkit", b"new")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(kept + [newer.name, live.name, "folder.rnnkit-abcdefgh.tmp", "m.rnnkit"])


def test_a_failed_save_removes_its_own_temp_file_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "m.bin"
    target.write_bytes(b"old")
    try:
        with atomic_write(target) as f:
            f.write(b"partial")
            raise RuntimeError("disk full")
    except RuntimeError:
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["m.bin"] and target.read_bytes() == b"old"
