"""Fixture grains of one typical minion per OS family, as ``salt-call grains.items`` reports them on a
current release of each (trimmed to the grains formulas branch on). ``saltpipe init`` writes the families a
repository's map files mention, Debian and RedHat always; ``saltpipe fixtures import`` replaces them with the
real grains of sample minions."""

from __future__ import annotations

from typing import Any


def _grains(minion_id: str, **os: Any) -> dict[str, Any]:
    host = minion_id
    return {
        "id": minion_id,
        "host": host,
        "nodename": host,
        "fqdn": f"{host}.example.net",
        "domain": "example.net",
        "localhost": host,
        "fqdn_ip4": ["192.0.2.10"],
        "ipv4": ["127.0.0.1", "192.0.2.10"],
        "ip4_interfaces": {"lo": ["127.0.0.1"], "eth0": ["192.0.2.10"]},
        "ipv6": ["::1"],
        "kernel": "Linux",
        "cpuarch": "x86_64",
        "num_cpus": 2,
        "mem_total": 3913,
        "virtual": "kvm",
        "init": "systemd",
        "saltversion": "3006.28",
        "saltversioninfo": [3006, 28],
        "pythonversion": [3, 10, 14, "final", 0],
        "path": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "shell": "/bin/sh",
        "selinux": {"enabled": False, "enforced": "Disabled"},
        "roles": [],
        **os,
    }


#: os_family -> [(minion id, grains)], most common release first.
OS_FIXTURES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "Debian": [
        ("debian-12", _grains(
            "debian-12", os="Debian", os_family="Debian", osfullname="Debian", osrelease="12", osmajorrelease=12,
            osrelease_info=[12], oscodename="bookworm", osfinger="Debian-12", osarch="amd64",
            lsb_distrib_id="Debian", lsb_distrib_codename="bookworm", lsb_distrib_release="12", kernelrelease="6.1.0-28-amd64",
        )),
        ("ubuntu-2204", _grains(
            "ubuntu-2204", os="Ubuntu", os_family="Debian", osfullname="Ubuntu", osrelease="22.04", osmajorrelease=22,
            osrelease_info=[22, 4], oscodename="jammy", osfinger="Ubuntu-22.04", osarch="amd64",
            lsb_distrib_id="Ubuntu", lsb_distrib_codename="jammy", lsb_distrib_release="22.04", kernelrelease="5.15.0-126-generic",
        )),
    ],
    "RedHat": [
        ("rocky-9", _grains(
            "rocky-9", os="Rocky", os_family="RedHat", osfullname="Rocky Linux", osrelease="9.5", osmajorrelease=9,
            osrelease_info=[9, 5], oscodename="Blue Onyx", osfinger="Rocky Linux-9", osarch="x86_64",
            lsb_distrib_id="Rocky Linux", lsb_distrib_codename="Blue Onyx", lsb_distrib_release="9.5",
            kernelrelease="5.14.0-503.14.1.el9_5.x86_64", selinux={"enabled": True, "enforced": "Enforcing"},
        )),
    ],
    "Suse": [
        ("leap-15", _grains(
            "leap-15", os="SUSE", os_family="Suse", osfullname="Leap", osrelease="15.6", osmajorrelease=15,
            osrelease_info=[15, 6], oscodename="openSUSE Leap 15.6", osfinger="Leap-15", osarch="x86_64",
            lsb_distrib_id="openSUSE Leap", lsb_distrib_codename="openSUSE Leap 15.6", lsb_distrib_release="15.6",
            kernelrelease="6.4.0-150600.23.25-default",
        )),
    ],
    "Arch": [
        ("arch", _grains(
            "arch", os="Arch", os_family="Arch", osfullname="Arch Linux", osrelease="rolling", osrelease_info=["rolling"],
            oscodename="", osfinger="Arch-rolling", osarch="x86_64", lsb_distrib_id="Arch",
            lsb_distrib_codename="", lsb_distrib_release="rolling", kernelrelease="6.12.1-arch1-1",
        )),
    ],
    "Alpine": [
        ("alpine-3", _grains(
            "alpine-3", os="Alpine", os_family="Alpine", osfullname="Alpine Linux", osrelease="3.20.3", osmajorrelease=3,
            osrelease_info=[3, 20, 3], oscodename="", osfinger="Alpine-3", osarch="x86_64", init="openrc",
            lsb_distrib_id="Alpine", lsb_distrib_codename="", lsb_distrib_release="3.20.3", kernelrelease="6.6.58-0-lts",
        )),
    ],
}

#: Written whatever the repository mentions: the two families most fleets run.
ALWAYS = ("Debian", "RedHat")


def fixture_minions(families: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``{minion id: grains}`` for :data:`ALWAYS` plus the mentioned ``families`` saltpipe has grains for."""
    out: dict[str, dict[str, Any]] = {}
    for family in OS_FIXTURES:
        if family in ALWAYS or family in families:
            for minion_id, grains in OS_FIXTURES[family]:
                out[minion_id] = grains
    return out
