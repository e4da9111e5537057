# syntax=docker/dockerfile:1
# Standalone Candado image: a static binary on distroless (CA certificates, no shell).
#   docker build -t candado .
#   docker run --rm -p 8080:8080 -e CANDADO_REDIS_URL=redis://host.docker.internal:6379/0 candado

FROM golang:1.24 AS build
WORKDIR /src
# cmd/candado is a module of its own that takes the service (the root module)
# and the client (client/) from this tree through replaces: their go.mod files
# must be there to download its dependencies.
COPY go.mod go.sum ./
COPY client/go.mod client/
COPY cmd/candado/go.mod cmd/candado/go.sum cmd/candado/
RUN go -C cmd/candado mod download
COPY . .
RUN CGO_ENABLED=0 go build -C cmd/candado -trimpath -ldflags "-s -w" -o /candado .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /candado /candado
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/candado"]
