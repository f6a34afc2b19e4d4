# citymesh as a container image: a static binary on an empty base image, run
# as an unprivileged user, its state in the volume /data. docs/deploy.md says
# how to run it.
#
#   docker build -t citymesh .
#   docker run --rm -it -v citymesh-data:/data citymesh passwd -c /data/passwd ops
#   docker run -d -p 1883:1883 -v citymesh-data:/data citymesh
#
# By default the node listens for MQTT on 0.0.0.0:1883 and requires a login
# from the password file /data/passwd: it refuses to start without that
# file. Its HTTP endpoints (/healthz, /metrics) stay on the container's
# loopback; see docs/deploy.md to publish them.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/citymesh ./cmd/citymesh \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/citymesh /usr/local/bin/citymesh
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
VOLUME /data
# MQTT, MQTT over TLS, MQTT over WebSocket, HTTP.
EXPOSE 1883 8883 8083 8080
ENTRYPOINT ["/usr/local/bin/citymesh"]
CMD ["serve", "--data", "/data", "--mqtt", "0.0.0.0:1883", "--ws", "0.0.0.0:8083", "--http", "127.0.0.1:8080", "--password-file", "/data/passwd"]
