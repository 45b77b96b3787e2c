#!/usr/bin/env bash
# Runs every test of OAuthBroker on a fresh machine: installs what the tests need (the Node.js example's packages),
# builds, runs the whole suite, and ends with one line "tests: N passed, N failed[, N skipped]" counted from the
# test results. Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v dotnet >/dev/null || { echo "The .NET 10 SDK is required (https://dot.net)." >&2; exit 2; }

# Debian packages: Node.js for the interop tests (jose), Chromium for the admin page test (playwright-core), gcc,
# PostgreSQL, nginx.
missing=()
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# gcc links the native (AOT-compiled) broker.
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
# PostgreSQL for the PostgreSQL backend's tests: they start a throw-away cluster of their own on 127.0.0.1.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# nginx, the round-robin proxy in front of two replicas in the topology tests (started by the tests on 127.0.0.1).
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# podman (with runc) and debootstrap: the container test runs the native executable in a Debian root file system
# made like Microsoft's runtime-deps image, since no container engine or registry for those images is reachable here.
command -v podman >/dev/null || missing+=(podman)
command -v runc >/dev/null || missing+=(runc)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]} ..."
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm ci --prefix examples/node-instance --no-audit --no-fund --loglevel=error
npm ci --prefix OAuthBroker.Tests/browser --no-audit --no-fund --loglevel=error

# The native executable the Dockerfile ships, for the tests that run it (NativeBrokerTests).
dotnet publish OAuthBroker/OAuthBroker.csproj --configuration Release --runtime linux-x64 --output artifacts/native -v quiet -nologo

results=$(mktemp -d)
# The tests' PostgreSQL cluster is stopped and deleted by a watchdog of its own (OAuthBroker.Tests/Support/PostgresCluster.cs).
trap 'rm -rf "$results"' EXIT
set +e
dotnet test OAuthBroker.sln --configuration Release --logger "trx" --logger "console;verbosity=minimal" --results-directory "$results"
status=$?
# The acceptance suites again with every broker they start on PostgreSQL (a fresh database each): the login flow,
# the redirect corpus, JWT attacks, admin, the allowlist and the hardening tests hold on both backends. Tests of what
# only the allowlist file has (hand edits, file events, its lock file and mode) are left out: there the database holds it.
OAUTHBROKER_TEST_DATABASE=postgres dotnet test OAuthBroker.Tests --configuration Release --no-build \
  --filter "(FullyQualifiedName~OAuthBroker.Tests.Login|FullyQualifiedName~OAuthBroker.Tests.Security|FullyQualifiedName~OAuthBroker.Tests.Admin|FullyQualifiedName~OAuthBroker.Tests.Tokens|FullyQualifiedName~OAuthBroker.Tests.Users|FullyQualifiedName~OAuthBroker.Tests.Allowlist|FullyQualifiedName~OAuthBroker.Tests.Interop|FullyQualifiedName~OAuthBroker.Tests.Hardening)&AllowlistStoredIn!=file" \
  --logger "trx;LogFilePrefix=postgres" --logger "console;verbosity=minimal" --results-directory "$results"
postgres_status=$?
[ "$status" -ne 0 ] || status=$postgres_status
set -e

passed=0; failed=0; skipped=0; found=0
for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  found=1
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  attr() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  passed=$((passed + $(attr passed)))
  failed=$((failed + $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted)))
  skipped=$((skipped + $(attr notExecuted)))
done

if [ "$found" = 0 ]; then
  echo "No test results were written (did the build fail?)."
  status=${status:-1}; [ "$status" = 0 ] && status=1
fi

summary="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
if [ "$status" -ne 0 ] || [ "$failed" -gt 0 ]; then exit 1; fi
