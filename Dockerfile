# ringlog: one image for every node (primary or replica), with ringlogctl.
#
#   docker build -t ringlog .
#   docker run -v ringlog-data:/var/lib/ringlog -p 7400:7400 ringlog
#
# Build stage: Debian's -dev packages and the same CMake targets as CI
# (deploy/build.sh). Runtime stage: only the shared libraries.
FROM debian:bookworm-slim AS build
COPY . /src
RUN /src/deploy/build.sh /src /opt/ringlog /tmp/build

FROM debian:bookworm-slim
# The runtime libraries of ringlogd and ringlogctl (deploy/check.sh checks
# that this list covers every library the binaries load).
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libspdlog1.10 libfmt9 \
      libcivetweb1 libc-ares2 libre2-9 libssl3 libstdc++6 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ringlog --shell /usr/sbin/nologin ringlog \
 && mkdir -p /var/lib/ringlog && chown ringlog:ringlog /var/lib/ringlog
COPY --from=build /opt/ringlog/bin/ringlogd /opt/ringlog/bin/ringlogctl /usr/local/bin/
USER ringlog
VOLUME /var/lib/ringlog
EXPOSE 7400 9400
ENV RINGLOG_DATA_DIR=/var/lib/ringlog \
    RINGLOG_LISTEN=0.0.0.0:7400
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
  CMD ["ringlogctl", "health", "--node", "127.0.0.1:7400"]
ENTRYPOINT ["ringlogd"]
