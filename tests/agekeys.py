"""The age tools (Debian: ``age``) for tests: a key pair made by ``age-keygen``, files opened with ``age -d``.

Import the fixture into a test module: ``from tests.agekeys import AgeKey, age_key  # noqa: F401``.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

AGE = shutil.which("age") or "/usr/bin/age"
AGE_KEYGEN = shutil.which("age-keygen") or "/usr/bin/age-keygen"


@dataclass
class AgeKey:
    """``public``: the recipient ``age1…`` the owner gives; ``identity``: the secret key file that stays with them."""

    public: str
    identity: Path

    def decrypt(self, data: bytes) -> bytes:
        """``data`` opened with the real ``age`` tool (a file this key cannot open fails the test)."""
        done = subprocess.run([AGE, "-d", "-i", str(self.identity)], input=data, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout


@pytest.fixture
def age_key(tmp_path: Path) -> AgeKey:
    if not Path(AGE).exists() or not Path(AGE_KEYGEN).exists():
        pytest.skip("the age tools are not installed (Debian: apt-get install age): encryption tests skip")
    identity = tmp_path / "age-key.txt"
    subprocess.run([AGE_KEYGEN, "-o", str(identity)], check=True, capture_output=True)
    public = next(line.split(": ", 1)[1].strip() for line in identity.read_text().splitlines()
                  if line.startswith("# public key: "))
    return AgeKey(public, identity)
