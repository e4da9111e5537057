# syntax=docker/dockerfile:1
# Standalone Candado image: a static binary on distroless (CA certificates, no shell).
#   docker build -t candado .
#   docker run --rm -p 8080:8080 -e CANDADO_REDIS_URL=redis://host.docker.internal:6379/0 candado

FROM golang:1.24 AS build
WORKDIR /src
COPY go.mod go.sum ./
# go.mod replaces the client module with ./client: its go.mod must be there to download.
COPY client/go.mod client/
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /candado ./cmd/candado

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /candado /candado
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/candado"]
