"""Process settings rnnkit makes on import: freed memory kept for reuse (glibc)."""
import json
import subprocess
import sys

import pytest

from rnnkit.config import _glibc_mallopt

PROGRAM = """
import json, resource, torch, rnnkit
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):  # glibc settles where the block goes over the first two
    x = torch.ones(16 << 20); del x  # 64 MiB, every page touched
before = faults()
for _ in range(8):
    x = torch.ones(16 << 20); del x
print(json.dumps([rnnkit.config.KEEPS_FREED_MEMORY, faults() - before]))
"""


def _run(env_value):
    env = {"RNNKIT_KEEP_FREED_MEMORY": env_value, "OMP_NUM_THREADS": "1", "PATH": ""}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc_mallopt() is None, reason="the setting applies to glibc only")
def test_freed_workspace_is_reused_instead_of_faulted_in_again():
    kept, faults = _run("1")
    assert kept is True
    assert faults < 3 * 16384  # 8 x 64 MiB, nearly all from kept memory (glibc may move the block once or twice)

    off, faults_off = _run("0")
    assert off is False
    assert faults_off > 7 * 16384  # glibc's default: fresh pages every time
