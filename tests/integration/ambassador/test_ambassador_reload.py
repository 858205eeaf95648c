"""Hot reload of --config under load: the file replaced atomically (os.replace), or swapped
the way the kubelet updates a mounted ConfigMap (a new directory, then the `..data`
symlink renamed over), or reloaded on SIGHUP. The split follows, no request fails, and a
bad file is refused with one clear line while the old configuration keeps serving."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from support.ambassador_fixtures import (  # noqa: F401 - fixtures, used by name
    Ambassador,
    EchoServer,
    Load,
    StartAmbassador,
    StartServer,
    start_ambassador_fixture,
    start_server_fixture,
)
from support.processes import wait_for

CHECK_EVERY = ("--config-check-interval", "0.2s")
RELOAD_WITHIN = 10.0
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.MULTILINE)  # a record's start


def config_text(server1: EchoServer, w1: int, server2: EchoServer, w2: int) -> str:
    return (
        "# the ambassador's upstream group\n"
        "upstreams:\n"
        f'  - "{server1.url} weight={w1}"\n'
        f"  - url: {server2.url}\n"
        f"    weight: {w2}\n"
        "method: round_robin\n"
    )


def replace(path: Path, text: str) -> None:
    """Write a new file beside it and rename it over: readers see the old or the new."""
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    os.replace(new, path)


def rejection(ambassador: Ambassador) -> str:
    """The last 'new configuration rejected' log record, with any lines it spans."""
    log = ambassador.log()
    start = log.rindex("\n", 0, log.rindex("new configuration rejected")) + 1
    end = TIMESTAMP.search(log, start + 1)
    return log[start : end.start() if end else len(log)].rstrip("\n")


def wait_for_weights(ambassador: Ambassador, want: dict[str, int]) -> None:
    wait_for(lambda: ambassador.weights() == want, RELOAD_WITHIN, f"weights {want}")


def test_replaced_file_changes_the_split_under_load(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    config = tmp_path / "ambassador.yaml"
    config.write_text(config_text(server1, 1, server2, 1))
    ambassador = start_ambassador("--config", str(config), *CHECK_EVERY)
    assert ambassador.split(400) == {"server1": 200, "server2": 200}

    with Load(ambassador.port, connections=3) as load:
        load.wait_for_more(200)
        replace(config, config_text(server1, 3, server2, 1))
        wait_for_weights(ambassador, {server1.url: 3, server2.url: 1})
        load.wait_for_more(300)
    load.stop()

    assert load.failures() == [], load.failures()[:5]
    assert ambassador.split(400) == {"server1": 300, "server2": 100}
    assert f"configuration reloaded ({config} changed)" in ambassador.log()


def test_configmap_symlink_swap_changes_the_split_under_load(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    """The kubelet's layout: config.yaml → ..data/config.yaml, ..data → ..<timestamp>/.
    An update writes a new timestamped directory and renames a new ..data over the old;
    the file the ambassador was given never changes (it is the same symlink)."""
    volume = tmp_path / "configmap"
    volume.mkdir()

    def publish(version: str, text: str) -> None:
        directory = volume / f"..2024_01_01_00_00_0{version}"
        directory.mkdir()
        (directory / "ambassador.yaml").write_text(text)
        (volume / "..data_tmp").symlink_to(directory.name)
        os.replace(volume / "..data_tmp", volume / "..data")

    server1, server2 = start_server("server1"), start_server("server2")
    publish("1", config_text(server1, 1, server2, 1))
    (volume / "ambassador.yaml").symlink_to("..data/ambassador.yaml")
    ambassador = start_ambassador("--config", str(volume / "ambassador.yaml"), *CHECK_EVERY)
    assert ambassador.weights() == {server1.url: 1, server2.url: 1}

    with Load(ambassador.port, connections=3) as load:
        load.wait_for_more(200)
        publish("2", config_text(server1, 3, server2, 1))
        wait_for_weights(ambassador, {server1.url: 3, server2.url: 1})
        load.wait_for_more(300)
    load.stop()

    assert load.failures() == [], load.failures()[:5]
    assert ambassador.split(400) == {"server1": 300, "server2": 100}


def test_invalid_config_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    config = tmp_path / "ambassador.yaml"
    config.write_text(config_text(server1, 3, server2, 1))
    ambassador = start_ambassador("--config", str(config), *CHECK_EVERY)
    good = {server1.url: 3, server2.url: 1}

    bad_files = [
        ("upstreams: [unclosed\n", "line 2, column 1: expected ',' or ']'"),  # not YAML
        (  # a server parameter nginx does not have
            f'upstreams:\n  - "{server1.url} weight=1 colour=blue"\n  - "{server2.url}"\n',
            "unknown server parameter 'colour=blue'",
        ),
        (  # a key the file does not have
            f'upstreams:\n  - "{server1.url}"\nbalance: random\n',
            "unknown keys ['balance']",
        ),
        ("upstreams: []\n", "no upstream servers"),
    ]
    with Load(ambassador.port, connections=3) as load:
        for text, why in bad_files:
            rejected = ambassador.log().count("new configuration rejected")
            replace(config, text)
            wait_for(
                lambda r=rejected: ambassador.log().count("new configuration rejected") > r,
                RELOAD_WITHIN,
                f"rejection of {text!r}",
            )
            record = rejection(ambassador)
            assert "ERROR" in record and "keeping the old one" in record, record
            assert str(config) in record and why in record, record
            assert ambassador.weights() == good
            load.wait_for_more(100)
    load.stop()

    assert load.failures() == [], load.failures()[:5]
    assert ambassador.split(400) == {"server1": 300, "server2": 100}
    assert ambassador.proc.poll() is None

    # ... and a good file after the bad ones is taken.
    replace(config, config_text(server1, 1, server2, 1))
    wait_for_weights(ambassador, {server1.url: 1, server2.url: 1})


@pytest.mark.parametrize("interval", ["1h", "0"])
def test_sighup_reloads_at_once(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador, interval: str
) -> None:
    """With the file check an hour apart or off (0), only SIGHUP can have reloaded it."""
    server1, server2 = start_server("server1"), start_server("server2")
    config = tmp_path / "ambassador.yaml"
    config.write_text(config_text(server1, 1, server2, 1))
    ambassador = start_ambassador("--config", str(config), "--config-check-interval", interval)

    with Load(ambassador.port, connections=3) as load:
        load.wait_for_more(200)
        replace(config, config_text(server1, 3, server2, 1))
        time.sleep(1.0)  # a check of the file would have seen it by now
        assert ambassador.weights() == {server1.url: 1, server2.url: 1}
        ambassador.proc.send_signal(signal.SIGHUP)
        wait_for_weights(ambassador, {server1.url: 3, server2.url: 1})
        load.wait_for_more(200)
    load.stop()

    assert load.failures() == [], load.failures()[:5]
    assert "configuration reloaded (SIGHUP)" in ambassador.log()
    assert ambassador.split(400) == {"server1": 300, "server2": 100}

    # A bad file on SIGHUP: refused, and the process lives on.
    replace(config, "upstreams: {\n")
    ambassador.proc.send_signal(signal.SIGHUP)
    wait_for(
        lambda: "new configuration rejected (SIGHUP)" in ambassador.log(),
        RELOAD_WITHIN,
        "rejection on SIGHUP",
    )
    assert ambassador.proc.poll() is None
    assert ambassador.weights() == {server1.url: 3, server2.url: 1}


def test_change_right_after_start_is_not_lost(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    """A ConfigMap updated while the pod starts: the change lands before the first check."""
    server1, server2 = start_server("server1"), start_server("server2")
    config = tmp_path / "ambassador.yaml"
    config.write_text(config_text(server1, 1, server2, 1))
    ambassador = start_ambassador("--config", str(config), "--config-check-interval", "2s")
    replace(config, config_text(server1, 3, server2, 1))  # well within the first 2 s
    wait_for_weights(ambassador, {server1.url: 3, server2.url: 1})


def test_bad_yaml_is_refused_in_one_line_naming_file_and_line(
    tmp_path: Path, start_server: StartServer, start_ambassador: StartAmbassador
) -> None:
    server1, server2 = start_server("server1"), start_server("server2")
    config = tmp_path / "ambassador.yaml"
    config.write_text(config_text(server1, 3, server2, 1))
    ambassador = start_ambassador("--config", str(config), *CHECK_EVERY)
    replace(config, config_text(server1, 3, server2, 1) + "health: {path: /healthz\n")
    wait_for(lambda: "new configuration rejected" in ambassador.log(), RELOAD_WITHIN, "rejection")
    record = rejection(ambassador)
    assert "\n" not in record, record
    assert f"{config}: line " in record and "<unicode string>" not in record, record
