"""scripts/package: a Debian package of vpsgate built with dpkg-deb, from the binaries the
tests built (--binaries): its fields, its files at the paths docs/deployment.md uses, the
binaries in it reporting their version, and a stack run from the extracted files (binary,
migrations, Database/) serving a command."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from vpsgate_e2e import admin_client, make_stack, new_key, sql, wait_operation

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
                   "/usr/local/share/doc/vpsgate/deployment.md", "/usr/local/share/vpsgate/nginx/vpsgate.conf",
                   "/usr/local/share/vpsgate/Database/ORDER", "/usr/share/vpsgate/console/index.html"):
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


def test_a_stack_runs_from_the_installed_files_and_serves_a_command(package, tmp_path_factory):
    """The package's vpsgate, migrations and Database/ files, at their installed paths, set up a
    database and serve a command: nothing the package leaves out is needed."""
    root = tmp_path_factory.mktemp("installed")
    subprocess.run(["dpkg-deb", "--extract", str(package), str(root)], check=True)
    for directory in [root, *root.rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o755)  # dpkg-deb keeps the package's modes; the temporary root is 0700
    share = root / "usr/local/share/vpsgate"
    stack = make_stack("installed", binary=root / "usr/local/bin/vpsgate", instances=1, workers=2,
                       extra_env={"VPSGATE_MIGRATIONS_DIR": str(share / "migrations"), "VPSGATE_DATABASE_DIR": str(share / "Database")})
    stack.sim_binary = BINARIES / "hostinger-sim"  # the simulator is not packaged: it is for tests and staging
    stack.start()
    try:
        applied = sql(stack, "SELECT string_agg(file_name, ',' ORDER BY version) FROM schema_migrations").split(",")
        assert applied == sorted(p.name for p in (share / "migrations").glob("*.sql"))
        listed = [line for line in (share / "Database/ORDER").read_text().splitlines() if line.strip() and not line.startswith("#")]
        assert int(sql(stack, "SELECT count(*) FROM schema_objects")) == len(listed)
        client = admin_client(stack, "installed-admin")
        status, head, operation = client.json("POST", "/v1/vps/1001/restart", key=new_key())
        assert status == 202, operation
        assert wait_operation(client, head["Location"])["state"] == "succeeded"
    finally:
        stack.stop()
