"""A real OpenSSH server on loopback for the SFTP off-site copies: ``sshd`` (Debian: openssh-server) with its own
host key, ``authorized_keys`` and an SFTP-only login (``internal-sftp``) that starts in a temp folder."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port  # type: ignore[import-not-found]

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


class SshServer:
    """``user`` logs in with a key listed by ``authorize``; ``root`` is the folder its SFTP session starts in."""

    def __init__(self, base: Path, deny: str = "") -> None:
        self.base = base
        self.deny = deny  # SFTP requests the server refuses (internal-sftp -P), e.g. "remove": a user that cannot delete
        self.root = base / "home"
        self.root.mkdir(parents=True)
        self.user = getpass.getuser()
        self.port = free_port()
        self.keys = base / "authorized_keys"
        self.keys.write_text("")
        self.host_key = base / "host_ed25519"
        self._proc: subprocess.Popen[bytes] | None = None
        self.new_host_key()

    def new_host_key(self) -> None:
        """A new host key (as after setting the server up again); the server restarts when it runs."""
        running = self._proc is not None
        self.stop()
        for f in (self.host_key, self.host_key.with_suffix(".pub")):
            f.unlink(missing_ok=True)
        subprocess.run([KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)], check=True)
        if running:
            self.start()

    def fingerprint(self) -> str:
        """What the owner reads on the server: ``256 SHA256:... comment (ED25519)``."""
        return subprocess.run([KEYGEN, "-lf", str(self.host_key.with_suffix(".pub"))], check=True,
                              capture_output=True, text=True).stdout.strip()

    def authorize(self, public_line: str) -> None:
        self.keys.write_text(self.keys.read_text() + public_line.strip() + "\n")

    def start(self) -> None:
        config = self.base / "sshd_config"
        config.write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.base / 'sshd.pid'}
AuthorizedKeysFile {self.keys}
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
LogLevel ERROR
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d {self.root}{f" -P {self.deny}" if self.deny else ""}
""")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege separation folder
        with (self.base / "sshd.log").open("ab") as log:  # the child keeps its own copy of the descriptor
            self._proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                                          stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.base / 'sshd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)
            self._proc = None

    def files(self) -> list[str]:
        """Every file under the start folder, relative, sorted."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshServer]:
    if not Path(SSHD).exists() or not Path(KEYGEN).exists():
        pytest.skip("OpenSSH's sshd is not installed (Debian: apt-get install openssh-server): SFTP tests skip")
    server = SshServer(tmp_path / "sshd")
    server.start()
    try:
        yield server
    finally:
        server.stop()
