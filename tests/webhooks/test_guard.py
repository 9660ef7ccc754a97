"""The SSRF guard refuses what an attacker would aim a webhook at, unless allow-listed."""

from __future__ import annotations

import pytest

from webhooks.guard import Guard, GuardError, parse_networks


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: table[host]


PUBLIC = Guard(resolve=resolver({"hooks.example.com": ["93.184.216.34"], "rebind.example.com": ["10.1.2.3"]}))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[::ffff:7f00:1]/hook",  # 127.0.0.1, mapped and written in hex
        "https://[64:ff9b::a00:1]/hook",  # 10.0.0.1 through NAT64
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://rebind.example.com/hook",  # a name resolving to a private address
    ],
)
def test_private_loopback_metadata_and_mapped_forms_are_refused(url: str) -> None:
    with pytest.raises(GuardError, match="webhooks may only reach public addresses"):
        PUBLIC.check(url)


def test_a_public_host_passes_and_gives_the_addresses_to_connect_to() -> None:
    assert PUBLIC.check("https://hooks.example.com/flywheel") == ["93.184.216.34"]


def test_the_allow_list_lets_tests_and_development_reach_loopback() -> None:
    local = Guard(allowed=parse_networks("127.0.0.0/8, ::1"), https_only=False, resolve=PUBLIC.resolve)
    assert local.check("http://127.0.0.1:8080/hook") == ["127.0.0.1"]
    assert local.check("http://[::1]:8080/hook") == ["::1"]
    with pytest.raises(GuardError):
        local.check("http://10.0.0.1/hook")  # still not allowed


def test_https_only_in_production_and_no_credentials_in_the_url() -> None:
    with pytest.raises(GuardError, match="https"):
        PUBLIC.check("http://hooks.example.com/hook")
    with pytest.raises(GuardError, match="must not carry a user"):
        PUBLIC.check("https://user:pw@hooks.example.com/hook")
    with pytest.raises(GuardError, match="not a CIDR"):
        parse_networks("localhost")
