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
  libcmocka-dev libcurl4-openssl-dev libdcmtk-dev
)
# peers the tests validate against: ISMRMRD tools, DICOM validators, a PACS, gRPC Python
# client, BART for cross-checks
TEST=(
  ismrmrd-tools dcmtk dicom3tools orthanc curl procps
  python3-grpcio python3-grpc-tools python3-protobuf python3-pydicom python3-numpy python3-h5py
  bart
)
PKGS=("${BUILD[@]}")
if [ "${R5_DEPS_MINIMAL:-0}" != 1 ]; then PKGS+=("${TEST[@]}"); fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
