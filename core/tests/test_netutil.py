"""Privacy truncation of client addresses and the camera-network allow-list (SSRF guard)."""

from __future__ import annotations

import pytest
from alarmcloud.netutil import AddressNotAllowed, check_camera_address, truncate_ip


@pytest.mark.parametrize(
    ("ip", "kept"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
        ("fe80::1%eth0", "fe80::/48"),
        (None, "unknown"),
        ("garbage", "invalid"),
    ],
)
def test_client_addresses_are_truncated(ip: str | None, kept: str) -> None:
    assert truncate_ip(ip) == kept


def test_camera_in_allowed_network_resolves_to_ip() -> None:
    assert check_camera_address("127.0.0.1", ["127.0.0.0/8"]) == "127.0.0.1"
    assert check_camera_address("localhost", ["127.0.0.0/8", "::1/128"]) in {"127.0.0.1", "::1"}


def test_camera_outside_allowed_networks_refused() -> None:
    with pytest.raises(AddressNotAllowed, match="outside the allowed camera networks"):
        check_camera_address("169.254.169.254", ["192.168.0.0/16", "10.0.0.0/8"])


def test_unresolvable_camera_host_refused() -> None:
    with pytest.raises(AddressNotAllowed, match="cannot resolve"):
        check_camera_address("no-such-host.invalid", ["0.0.0.0/0"])
