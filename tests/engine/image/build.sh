#!/bin/sh
# Builds the docker module's throwaway test image (default orch-dockertest:dev) from a static
# C program, FROM scratch: nothing is pulled. Usage: build.sh [BUILD_DIR] [TAG]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../../build-docker}/dockertest-image
tag=${2:-orch-dockertest:dev}
mkdir -p "$out"
${CC:-cc} -static -O2 -o "$out/serve" "$here/serve.c"
cp "$here/Dockerfile" "$out/Dockerfile"
docker build -q -t "$tag" "$out"
