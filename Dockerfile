# syntax=docker/dockerfile:1
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY OAuthBroker/OAuthBroker.csproj OAuthBroker/
RUN dotnet restore OAuthBroker/OAuthBroker.csproj
COPY OAuthBroker/ OAuthBroker/
RUN dotnet publish OAuthBroker/OAuthBroker.csproj --configuration Release --no-restore --output /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
WORKDIR /app
COPY --from=build /app ./
COPY appsettings.json ./
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
USER app
ENTRYPOINT ["dotnet", "OAuthBroker.dll"]
