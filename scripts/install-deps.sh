#!/usr/bin/env bash
# Installs every Debian 12 package recon5t needs to build, run and test. The CUDA toolkit is
# found at /usr/local/cuda when present and is not installed from here.
# R5_DEPS_MINIMAL=1 installs only what building and running the server needs (container build).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
BUILD=(
  build-essential cmake pkg-config git ca-certificates
  libfftw3-dev libismrmrd-dev libhdf5-dev libxml2-dev zlib1g-dev libpng-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  libcmocka-dev libcurl4-openssl-dev libdcmtk-dev libmicrohttpd-dev libssl-dev openssl ccache
)
# peers the tests validate against: ISMRMRD tools, DICOM validators, a PACS, gRPC Python
# client, BART for cross-checks, Prometheus (promtool and a real scraper), clang's libFuzzer,
# podman + mmdebstrap (tests/container builds and runs the image)
TEST=(
  ismrmrd-tools dcmtk dicom3tools orthanc curl procps
  python3-grpcio python3-grpc-tools python3-protobuf python3-pydicom python3-numpy python3-h5py python3-yaml python3-nibabel
  python3-xsdata python3-matplotlib
  bart prometheus clang-14 libclang-rt-14-dev
  podman mmdebstrap uidmap fuse-overlayfs slirp4netns
)
PKGS=("${BUILD[@]}")
if [ "${R5_DEPS_MINIMAL:-0}" != 1 ]; then PKGS+=("${TEST[@]}"); fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"

# Debian 12's kubectl (1.20, kustomize v2.0.3 built in), the version the manifests under
# docker/k8s must render with. Another kubectl may own /usr/bin/kubectl (Google Cloud SDK's):
# the package is unpacked into a folder of its own instead of installed over it.
if [ "${R5_DEPS_MINIMAL:-0}" != 1 ]; then
	KUBE_DIR=/usr/local/lib/recon5t/kubernetes-client
	if [ ! -x "$KUBE_DIR/usr/bin/kubectl" ]; then
		tmp=$(mktemp -d)
		(cd "$tmp" && apt-get download -qq kubernetes-client)
		$SUDO mkdir -p "$KUBE_DIR"
		$SUDO dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$KUBE_DIR"
		rm -rf "$tmp"
	fi
fi

# The BIDS validator tests/integration/test_nifti.py runs (npm bids-validator, pinned; checked
# with node 20): installed under the user's cache, where the test looks for it. Node from the
# system when present, else Debian's.
if [ "${R5_DEPS_MINIMAL:-0}" != 1 ]; then
	BIDS_VALIDATOR_VERSION=1.15.0
	BIDS_DIR="$HOME/.cache/recon5t-npm/bids-validator-$BIDS_VALIDATOR_VERSION"
	if ! command -v npm >/dev/null; then
		$SUDO apt-get install -y -qq --no-install-recommends nodejs npm
	fi
	if [ ! -x "$BIDS_DIR/node_modules/bids-validator/bin/bids-validator" ]; then
		npm install --no-audit --no-fund --prefix "$BIDS_DIR" "bids-validator@$BIDS_VALIDATOR_VERSION"
	fi
fi
