// Every Dapper call in the broker gets its command and row mapping generated at build time (Dapper.AOT), so the
// published native executable needs no run-time code generation.
[module: Dapper.DapperAot]
