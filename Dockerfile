# Latchkey: one static binary (pure Go, no cgo: the SQLite driver is pure Go).
#
# Base images are pinned to a release; pin them by digest too
# (image:tag@sha256:…) in your own registry mirror, and let a bot bump them.
FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/latchkey ./cmd/latchkey \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/latchkey /usr/local/bin/latchkey
# Owned by nonroot, so a named volume mounted here is writable.
COPY --from=build --chown=nonroot:nonroot /out/data /data
# The embedded SQLite database and the development secret key live here
# when no PostgreSQL URL / secret key is configured.
WORKDIR /data
ENV LATCHKEY_DATA_DIR=/data LATCHKEY_ADDR=:8080
EXPOSE 8080
# Never root: distroless's nonroot user (uid 65532).
USER nonroot:nonroot
# No shell in the image: the binary checks /ready itself (exit 0 or 1).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/latchkey", "health"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
