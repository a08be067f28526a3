"""One builder per device kind: a (Source, Recognizer) pair from a device config and its profile."""

from stockwire.errors import ConfigError


def tcp_endpoint(device: str, tcp: str) -> tuple[str, int]:
    """(host, port) of a device's `tcp = "host:port"`."""
    host, _, port = tcp.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"device {device!r}: tcp {tcp!r} is not host:port")
    return host, int(port)
