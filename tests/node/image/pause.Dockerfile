# The pod sandbox image for the local node's containerd (localhost/pause:bbconn): pause.c,
# compiled static by tests/node/image.sh into the build context, and nothing else.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
