# Shared by scripts/run, scripts/test and scripts/bench: find the toolchain and install
# what is missing. Sourced, not run.

VPSGATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# swift may live outside PATH on a fresh machine.
if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

# ensure_packages [test|bench]: installs the Debian packages vpsgate needs (and pytest for tests).
ensure_packages() {
    local purpose=${1:-run}
    local need=()
    [ -e /usr/include/fcgiapp.h ] || need+=(libfcgi-dev)
    [ -e /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -e /usr/include/curl/curl.h ] || need+=(libcurl4-openssl-dev)
    [ -e /usr/include/postgresql/libpq-fe.h ] || need+=(libpq-dev)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v openssl >/dev/null 2>&1 || need+=(openssl)
    command -v curl >/dev/null 2>&1 || need+=(curl)
    command -v runuser >/dev/null 2>&1 || need+=(util-linux)
    command -v ip >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 || need+=(iproute2)
    command -v python3 >/dev/null 2>&1 || need+=(python3 python3-pip)
    if [ "$purpose" = test ]; then
        command -v faketime >/dev/null 2>&1 || need+=(faketime)
        # promtool checks the metrics and the shipped alert rules.
        command -v promtool >/dev/null 2>&1 || need+=(prometheus)
        # The console's browser tests drive Debian's Chromium (Playwright downloads no browser here).
        command -v chromium >/dev/null 2>&1 || need+=(chromium)
        # The completion scripts are checked by each shell's own parser.
        command -v zsh >/dev/null 2>&1 || need+=(zsh)
        command -v fish >/dev/null 2>&1 || need+=(fish)
        # The pooling and failover tests: PgBouncer, and pg_auto_failover for the server's version.
        command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
        if ! command -v pg_autoctl >/dev/null 2>&1; then
            local pg_version
            pg_version=$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sed 's#/usr/lib/postgresql/\([0-9]*\)/.*#\1#' | sort -n | tail -1)
            need+=("postgresql-${pg_version:-15}-auto-failover")
        fi
    fi
    if [ "$purpose" = bench ]; then
        command -v wrk >/dev/null 2>&1 || need+=(wrk)
    fi
    if [ ${#need[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "vpsgate needs these Debian packages: ${need[*]}; install them as root (apt-get install -y ${need[*]})" >&2
            return 1
        fi
        echo "[vpsgate] installing ${need[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    # standardwebhooks: the reference verifier the webhook tests check signatures with; mcp:
    # the official MCP client the tests of `vpsgatectl mcp` connect with; playwright and
    # axe-playwright-python: the console's browser tests (Playwright's driver ships in its
    # wheel; the browser is Debian's chromium above); opentelemetry-proto: the trace tests'
    # OTLP receiver decodes what vpsgate exports with it.
    local python_packages=(pytest openapi-schema-validator prometheus-client schemathesis standardwebhooks mcp playwright axe-playwright-python opentelemetry-proto)
    if [ "$purpose" = test ] && ! python3 -c 'import pytest, openapi_schema_validator, prometheus_client, schemathesis, standardwebhooks, mcp, playwright, axe_playwright_python, opentelemetry.proto' 2>/dev/null; then
        echo "[vpsgate] installing ${python_packages[*]}" >&2
        python3 -m pip install --quiet "${python_packages[@]}" 2>/dev/null \
            || python3 -m pip install --quiet --break-system-packages "${python_packages[@]}"
    fi
    command -v swift >/dev/null 2>&1 || { echo "swift is not installed (expected at /opt/swift)" >&2; return 1; }
}
