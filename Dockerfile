# The lanes-manager image, for machines with a container engine (`docker build -t
# kruise-lanes/lanes-manager:0.1.0 .`). `make image` builds the same image as a tarball without one.
# A static binary on an empty base, run as 65532:65532; it writes only to the volumes the chart
# mounts, so a read-only root filesystem suits it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/kruise-lanes/kruise-lanes/cmd/internal/version.version=${VERSION} -X github.com/kruise-lanes/kruise-lanes/cmd/internal/version.commit=${COMMIT}" \
      -o /out/lanes-manager ./cmd/lanes-manager

FROM scratch
ARG VERSION=devel
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="lanes-manager" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build --chmod=0555 /out/lanes-manager /lanes-manager
USER 65532:65532
WORKDIR /
ENTRYPOINT ["/lanes-manager"]
