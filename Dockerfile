# syntax=docker/dockerfile:1
# The broker ships as a native (AOT-compiled) executable: about half the memory of the JIT runtime and no JIT at
# start-up. The same code runs on the JIT under `dotnet run` and the tests.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
# The native link step uses gcc (OAuthBroker.csproj: CppCompilerAndLinker).
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY OAuthBroker/OAuthBroker.csproj OAuthBroker/
RUN dotnet restore OAuthBroker/OAuthBroker.csproj --runtime linux-x64
COPY OAuthBroker/ OAuthBroker/
RUN dotnet publish OAuthBroker/OAuthBroker.csproj --configuration Release --runtime linux-x64 --no-restore --output /app \
    && rm -f /app/*.dbg

# Only the native libraries the executable links against (libc, OpenSSL, ICU is not needed: invariant globalization).
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0
WORKDIR /app
COPY --from=build /app ./
# No appsettings.json: the build carries its defaults (OAuthBroker/Broker/BuiltInDefaults.cs, docs/configuration.md).
# The allowlist lives in a folder of its own: edits replace it by an atomic rename, which a single bind-mounted file
# cannot take. The database and the Data Protection key ring (which decrypts the signing key) live in /data.
COPY --chown=app:app allowed-redirects.json /config/
RUN mkdir /data && chown app:app /data /config
ENV ASPNETCORE_ENVIRONMENT=Production \
    URLS=http://+:8080 \
    Broker__DataPath=/data \
    Broker__AllowlistPath=/config/allowed-redirects.json
VOLUME ["/data", "/config"]
EXPOSE 8080
# The executable asks its own /readyz (the image has no curl): healthy once the database, allowlist and key are ready.
HEALTHCHECK --interval=15s --timeout=6s --start-period=10s --retries=3 CMD ["/app/OAuthBroker", "health"]
USER app
ENTRYPOINT ["/app/OAuthBroker"]
