"""Running the status page: parse ``--bind``, refuse an open bind without a token, serve with uvicorn.

:func:`check_bind` is the security rule: loopback needs no token; any other address (``0.0.0.0``, a LAN IP, a
host name) is refused without one (:class:`~pipeline.errors.UsageError`, exit 2). :class:`ServerThread` runs
uvicorn in a background thread (``saltpipe demo --serve``, the tests); :func:`serve_forever` in the foreground.
"""

from __future__ import annotations

import ipaddress
import threading
import time

from pipeline.errors import InfrastructureError, UsageError

DEFAULT_BIND = "127.0.0.1:8080"
TOKEN_ENV = "SALTPIPE_SERVE_TOKEN"


def parse_bind(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) -> (host, port); port 0 picks a free one."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--bind {bind!r} is not HOST:PORT", hint=f"for example --bind {DEFAULT_BIND}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token."""
    if not is_loopback(host) and not token:
        raise UsageError(
            f"refusing to serve the status page on {host} without a token",
            hint=f"set {TOKEN_ENV} (or --token-file) to a long random string, or bind to 127.0.0.1",
        )


def _config(app, host: str, port: int):  # type: ignore[no-untyped-def]
    import uvicorn  # pylint: disable=import-outside-toplevel

    return uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


class ServerThread:
    """uvicorn serving ``app`` in a daemon thread; :attr:`url` once :meth:`start` returned."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:  # type: ignore[no-untyped-def]
        import uvicorn  # pylint: disable=import-outside-toplevel

        self.server = uvicorn.Server(_config(app, host, port))
        self.server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
        self.thread = threading.Thread(target=self.server.run, name="saltpipe-serve", daemon=True)
        self.host = host

    def start(self, timeout: float = 15.0) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise InfrastructureError("the status page did not start", hint="is the port in use? try --bind 127.0.0.1:0")
            time.sleep(0.02)
        return self

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(app, host: str, port: int) -> None:  # type: ignore[no-untyped-def]
    """Serve in the foreground until SIGINT/SIGTERM (uvicorn's own signal handling)."""
    import uvicorn  # pylint: disable=import-outside-toplevel

    uvicorn.Server(_config(app, host, port)).run()
