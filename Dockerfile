# syntax=docker/dockerfile:1
# Gatehouse container image: a static binary on distroless, running as non-root.
#   docker build -t gatehouse .
#   docker run -p 8080:8080 -v gatehouse-data:/data gatehouse
# The full stack (PostgreSQL, Redis, Mailpit): docker compose up (README "Container").

# Build stage. The Go version matches go.mod's `go` line (TestContainerFiles
# checks it); GOTOOLCHAIN=local makes a mismatch fail instead of downloading.
FROM golang:1.26.8-bookworm AS build
ENV GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (CGO_ENABLED=0: the SQLite driver is pure Go), reproducible paths,
# no symbol tables. There is no version variable to set with -X: the module
# build info (`go version -m`) survives -s -w. .git is not in the context, so
# it carries no VCS revision.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/gatehouse ./cmd/gatehouse
# The data dir, owned by distroless's nonroot user (65532): a new named volume
# mounted on /data takes this ownership, so the server can write to it.
RUN mkdir -p /out/data && chown 65532:65532 /out/data && chmod 700 /out/data

# Final stage: no shell, no package manager, CA certificates and tzdata only.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /gatehouse
COPY --from=build --chown=65532:65532 /out/data /data
ENV GATEHOUSE_ADDR=:8080 \
    GATEHOUSE_DATA_DIR=/data
USER nonroot
VOLUME /data
# 8080: the issuer (GATEHOUSE_ADDR). 9464: metrics, which listen on loopback inside the container unless GATEHOUSE_METRICS_ADDR=:9464.
EXPOSE 8080 9464
# GETs /readyz on GATEHOUSE_ADDR (200 = store answers and keys are loaded).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/gatehouse", "healthcheck"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
