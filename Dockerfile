# Multi-stage build: a static gatewayd (and ctcsim) on a distroless base,
# running as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/gatewayd ./cmd/gatewayd \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/ctcsim ./cmd/ctcsim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatewayd /out/ctcsim /usr/local/bin/
USER nonroot:nonroot
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/gatewayd"]
CMD ["serve"]
