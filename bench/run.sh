#!/usr/bin/env bash
# Every benchmark, in Release: the full-flow comparison of the broker (the native executable the Dockerfile ships,
# and the JIT build beside it) with the peer (Grant 5 on express, bench/GrantPeer) and the minimal reference broker
# (bench/FlowBench) and the BenchmarkDotNet micro-benchmarks (bench/MicroBench). Not part of the test suite; timings
# are reported, never asserted. Results go to bench/results/. Pass --quick for a short smoke run of the flow part, and
# --tls to serve the fake GitHub over HTTPS with HTTP/2, as GitHub does (results in flow-tls.json).
# For profiling: dotnet bench/FlowBench/bin/Release/net10.0/FlowBench.dll --profile SECONDS [grant|reference|reference-crypto|large|postgres] [--concurrency N] runs one server
# at concurrency 16 (or N) after its settle and prints its pid (for perf stat, perf record or dotnet-trace).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build OAuthBroker/OAuthBroker.csproj -c Release -v quiet
dotnet publish OAuthBroker/OAuthBroker.csproj -c Release -r linux-x64 -o artifacts/native -v quiet -nologo
dotnet build bench/ReferenceBroker/ReferenceBroker.csproj -c Release -v quiet
dotnet build bench/FlowBench/FlowBench.csproj -c Release -v quiet
(cd bench/GrantPeer && npm ci --no-audit --no-fund --silent)
dotnet run -c Release --project bench/FlowBench --no-build -- "$@"
if [[ " $* " != *" --quick "* ]]; then
  dotnet run -c Release --project bench/MicroBench -- --filter '*' --artifacts bench/results/micro
fi
