"""scripts/package: a Debian package of vpsgate built with dpkg-deb, from the binaries the
tests built (--binaries), checked without installing it: its fields, its files at the paths
docs/deployment.md uses, and the binaries in it reporting their version. No services."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARIES = Path(os.environ.get("VPSGATE_BIN") or ROOT / ".build/debug/vpsgate").parent


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    if not (BINARIES / "vpsgate").exists() or not (BINARIES / "vpsgatectl").exists():
        pytest.skip(f"vpsgate and vpsgatectl are not built in {BINARIES}")
    output = tmp_path_factory.mktemp("dist")
    done = subprocess.run([str(ROOT / "scripts/package"), "--binaries", str(BINARIES), "--output", str(output)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    deb = Path(done.stdout.strip().splitlines()[-1])
    assert deb.parent == output and deb.exists()
    return deb


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True).stdout.strip()


def test_the_package_is_named_and_versioned_after_the_binaries(package):
    version = subprocess.run([str(BINARIES / "vpsgate"), "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    expected = re.sub("-", ".", version.replace("-dev", "~dev", 1))
    assert field(package, "Package") == "vpsgate"
    assert field(package, "Version") == expected
    assert package.name == f"vpsgate_{expected}_{field(package, 'Architecture')}.deb"
    assert "libpq5" in field(package, "Depends") and "libcurl4" in field(package, "Depends")


def test_the_package_holds_the_files_at_the_deployment_guides_paths(package):
    listing = subprocess.run(["dpkg-deb", "--contents", str(package)], capture_output=True, text=True, check=True).stdout
    paths = {line.split()[-1].removeprefix(".") for line in listing.splitlines()}
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}
    for needed in ("/usr/local/bin/vpsgate", "/usr/local/bin/vpsgatectl", "/lib/systemd/system/vpsgate@.service",
                   "/usr/local/share/doc/vpsgate/deployment.md", "/usr/local/share/vpsgate/nginx/vpsgate.conf"):
        assert needed in paths, needed
    migrations = {p.name for p in (ROOT / "Migrations").glob("*.sql")}
    assert {Path(p).name for p in paths if p.startswith("/usr/local/share/vpsgate/migrations/") and p.endswith(".sql")} == migrations
    unit = (ROOT / "docs/deploy/vpsgate@.service").read_text()
    assert "ExecStart=/usr/local/bin/vpsgate serve" in unit
    assert "VPSGATE_MIGRATIONS_DIR=/usr/local/share/vpsgate/migrations" in (ROOT / "docs/deploy/vpsgate.env.example").read_text()


def test_the_packaged_binaries_report_their_version(package, tmp_path):
    subprocess.run(["dpkg-deb", "--extract", str(package), str(tmp_path)], check=True)
    for program in ("vpsgate", "vpsgatectl"):
        packaged = subprocess.run([str(tmp_path / "usr/local/bin" / program), "--version"], capture_output=True, text=True,
                                  check=True).stdout
        built = subprocess.run([str(BINARIES / program), "--version"], capture_output=True, text=True, check=True).stdout
        assert packaged == built and packaged.startswith(f"{program} ")


def test_a_wrong_argument_is_a_usage_error_and_builds_nothing(tmp_path):
    done = subprocess.run([str(ROOT / "scripts/package"), "--nonsense"], capture_output=True, text=True)
    assert done.returncode == 64 and "usage" in done.stderr
    done = subprocess.run([str(ROOT / "scripts/package"), "--binaries", str(tmp_path), "--output", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode != 0 and not list(tmp_path.glob("*.deb"))
