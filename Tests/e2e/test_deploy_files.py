"""The deployment files in docs/deploy/ against the code they configure. No services needed.

- docs/deploy/vpsgate.env.example names exactly the variables Configuration.swift reads,
  with the defaults the code has;
- the units start real subcommands and flags (asked of the built binaries' --help);
- the vpsgate unit's TimeoutStopSec covers the shutdown (drain, then the reconciler's stop);
- neither the units nor the example hold a secret;
- `systemd-analyze verify` accepts the units, where systemd-analyze is installed."""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs/deploy"
UNIT = DEPLOY / "vpsgate@.service"
SIM_UNIT = DEPLOY / "hostinger-sim.service"
EXAMPLE = DEPLOY / "vpsgate.env.example"
CONFIGURATION = ROOT / "Sources/VpsgateCore/Configuration.swift"
RECONCILER = ROOT / "Sources/VpsgateService/Reconciler.swift"
HOUSEKEEPER = ROOT / "Sources/VpsgateService/Housekeeper.swift"
VPSGATE_BIN = Path(os.environ.get("VPSGATE_BIN") or ROOT / ".build/debug/vpsgate")
SIM_BIN = VPSGATE_BIN.parent / "hostinger-sim"
INSTALLED = {"/usr/local/bin/vpsgate": VPSGATE_BIN, "/usr/local/bin/hostinger-sim": SIM_BIN}

# Variables a unit may set that vpsgate does not read itself: libpq reads PGPASSFILE.
LIBPQ_VARIABLES = {"PGPASSFILE"}


# MARK: - Parsing


def configuration_variables() -> set[str]:
    """Every environment variable Configuration.swift reads: the quoted VPSGATE_*/HOSTINGER_* names."""
    return set(re.findall(r'"((?:VPSGATE|HOSTINGER)_[A-Z0-9_]+)"', CONFIGURATION.read_text()))


def configuration_integer_defaults() -> dict[str, int]:
    """`integer("NAME", default: 20_000, …)` ⇒ {NAME: 20000}; defaults that are expressions are left out."""
    pairs = re.findall(r'integer\("([A-Z0-9_]+)",\s*default:\s*([0-9_]+)\s*[,)]', CONFIGURATION.read_text())
    return {name: int(value.replace("_", "")) for name, value in pairs}


def example_assignments() -> dict[str, str]:
    """`NAME=value` and `#NAME=value` lines of the example ⇒ {NAME: value} (uncommented wins)."""
    found: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#?)([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and (match.group(2) not in found or not match.group(1)):
            found[match.group(2)] = match.group(3)
    return found


def example_documented_defaults() -> dict[str, str]:
    """`# NAME (default X): …` comment lines ⇒ {NAME: X}."""
    return dict(re.findall(r"^# ([A-Z][A-Z0-9_]*) \(default ([^)]*)\)", EXAMPLE.read_text(), re.MULTILINE))


def unit_entries(path: Path, key: str) -> list[str]:
    """The values of every `key=` line in a unit file, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.split("=", 1)[1].strip() for line in text.splitlines() if line.startswith(key + "=")]


def command_words(value: str) -> list[str]:
    """An Exec*= value without systemd's prefixes (-, @, :, +, !)."""
    words = shlex.split(value)
    words[0] = words[0].lstrip("-@:+!")
    return words


def seconds(value: str) -> float:
    """A systemd time span such as `40s`, `1min 30s` or `40` (seconds) in seconds."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit or "s"]
    return total


def help_text(binary: Path, *arguments: str) -> str:
    if not binary.exists():
        pytest.fail(f"{binary} is not built (swift build, or set VPSGATE_BIN)")
    result = subprocess.run([str(binary), *arguments, "--help"], capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


# MARK: - The environment file


def test_the_example_names_only_variables_vpsgate_reads():
    unknown = set(example_assignments()) - configuration_variables()
    assert not unknown, f"not read by Configuration.swift: {sorted(unknown)}"


def test_every_variable_vpsgate_reads_is_in_the_example():
    read = configuration_variables()
    assert {"HOSTINGER_API_TOKEN", "HOSTINGER_API_TOKEN_FILE", "VPSGATE_LISTEN"} <= read, "the parser missed names"
    missing = read - set(example_assignments())
    assert not missing, f"missing from {EXAMPLE.name}: {sorted(missing)}"


def test_every_variable_in_the_example_states_its_default_and_integer_defaults_match_the_code():
    documented = example_documented_defaults()
    assert set(example_assignments()) <= set(documented), "each NAME= line needs a '# NAME (default …)' line"
    for name, default in configuration_integer_defaults().items():
        assert documented[name] == str(default), f"{name}: the example says {documented[name]}, the code {default}"


def test_the_example_holds_no_secret():
    assignments = example_assignments()
    text = EXAMPLE.read_text()
    assert not re.search(r"^HOSTINGER_API_TOKEN=", text, re.MULTILINE), "the token must not be set here"
    assert assignments.get("HOSTINGER_API_TOKEN", "") == ""
    for name, value in assignments.items():
        assert not re.search(r"postgres(?:ql)?://[^/@\s]*:[^/@\s]*@", value), f"{name} carries a password"
    assert assignments["VPSGATE_DEBUG_ROUTES"] == "0"


def test_the_production_values_are_what_the_guide_says():
    assignments = example_assignments()
    assert re.fullmatch(r"10\.\d+\.\d+\.\d+:\d+", assignments["VPSGATE_LISTEN"])
    assert re.fullmatch(r"10\.\d+\.\d+\.\d+(,10\.\d+\.\d+\.\d+)*", assignments["VPSGATE_ALLOWED_PEERS"])
    assert assignments["VPSGATE_DATABASE_URL"].startswith("postgresql://vpsgate_app@")
    # Serving hosts hold the application role's credentials only (docs/design.md#trust-boundaries).
    active = {name for name in re.findall(r"^([A-Z_]+)=", EXAMPLE.read_text(), re.MULTILINE)}
    assert not active & {"VPSGATE_MIGRATION_DATABASE_URL", "VPSGATE_ADMIN_DATABASE_URL"}, active


# MARK: - The units


def test_the_units_start_real_subcommands():
    subcommands = help_text(VPSGATE_BIN)
    commands = unit_entries(UNIT, "ExecStartPre") + unit_entries(UNIT, "ExecStart")
    # No migrate: the owner's credentials are a deploy job's, never a serving host's.
    assert [command_words(c)[1] for c in commands] == ["serve"]
    for command in commands:
        words = command_words(command)
        assert words[0] == "/usr/local/bin/vpsgate"
        assert re.search(rf"^\s+{words[1]}\s", subcommands, re.MULTILINE), f"vpsgate has no subcommand {words[1]}"
        assert len(words) == 2, f"{command}: settings come from the environment, not flags"


def test_the_simulator_unit_uses_real_flags_and_is_kept_out_of_production():
    (command,) = unit_entries(SIM_UNIT, "ExecStart")
    words = command_words(command)
    assert words[0] == "/usr/local/bin/hostinger-sim"
    flags = {word.split("=")[0] for word in words[1:] if word.startswith("--")}
    usage = help_text(SIM_BIN)
    for flag in flags:
        assert re.search(rf"{flag}\b", usage), f"hostinger-sim has no flag {flag}"
    assert "--token" not in flags, "the token goes in the environment file, not in ps output"
    assert "!/etc/vpsgate/production" in unit_entries(SIM_UNIT, "ConditionPathExists")
    assert "NEVER RUN IT IN PRODUCTION" in SIM_UNIT.read_text()


def test_the_stop_timeout_covers_the_drain_the_reconciler_and_the_housekeeper():
    (shutdown,) = re.findall(r'"VPSGATE_SHUTDOWN_TIMEOUT",\s*default:\s*(\d+)', CONFIGURATION.read_text())
    loops_ms = [int(ms) for path in (RECONCILER, HOUSEKEEPER)
                for ms in re.findall(r"func stop\(timeoutMilliseconds: Int = (\d+)\)", path.read_text())]
    assert len(loops_ms) == 2
    (stop,) = unit_entries(UNIT, "TimeoutStopSec")
    assert seconds(stop) > int(shutdown) + sum(loops_ms) / 1000, (stop, shutdown, loops_ms)
    assert unit_entries(UNIT, "KillSignal") == ["SIGTERM"]
    # The shutdown itself outlasts a Hostinger call started just before SIGTERM.
    assert int(shutdown) * 1000 > configuration_integer_defaults()["HOSTINGER_DEADLINE_MS"]


def test_the_unit_sets_only_real_variables_and_holds_no_secret():
    for assignment in unit_entries(UNIT, "Environment"):
        for name, value in re.findall(r"([A-Z][A-Z0-9_]*)=(\S*)", assignment):
            assert name in configuration_variables() | LIBPQ_VARIABLES, f"{name} is read by nothing"
            assert name != "HOSTINGER_API_TOKEN", "the token itself never goes in a unit"
    text = UNIT.read_text()
    assert not re.search(r"HOSTINGER_API_TOKEN=\S", text)
    assert not re.search(r"postgres(?:ql)?://[^/@\s]*:[^/@\s]*@", text)
    assert "HOSTINGER_API_TOKEN_FILE=%d/hostinger-token" in unit_entries(UNIT, "Environment")
    assert any(c.startswith("hostinger-token:") for c in unit_entries(UNIT, "LoadCredential"))


def test_systemd_analyze_verify_accepts_the_units():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: this one check is not made")
    with tempfile.TemporaryDirectory() as directory:
        # verify checks that the commands exist: point them at the built binaries.
        copies = []
        for source, name in ((UNIT, "vpsgate@a.service"), (SIM_UNIT, "hostinger-sim.service")):
            text = source.read_text()
            for installed, built in INSTALLED.items():
                text = text.replace(installed, str(built.resolve()))
            copy = Path(directory) / name
            copy.write_text(text)
            copies.append(copy)
        result = subprocess.run([analyze, "verify", "--man=no", *map(str, copies)],
                                capture_output=True, text=True, timeout=60)
        # Unknown keys and bad values are only warnings (exit 0): any line about our units fails.
        complaints = [line for line in (result.stdout + result.stderr).splitlines()
                      if any(copy.name in line for copy in copies)]
        assert result.returncode == 0 and not complaints, result.stdout + result.stderr
