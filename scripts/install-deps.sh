#!/usr/bin/env bash
# Installs every Debian 12 package recon5t needs to build, run and test (CPU path; the CUDA
# toolkit is found at /usr/local/cuda when present and is not installed from here).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS=(
  build-essential cmake pkg-config git ca-certificates
  libfftw3-dev libismrmrd-dev ismrmrd-tools libhdf5-dev libxml2-dev zlib1g-dev libpng-dev
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  libcmocka-dev libcurl4-openssl-dev
  dcmtk libdcmtk-dev dicom3tools orthanc
  python3-grpcio python3-protobuf python3-pydicom python3-numpy python3-h5py
  bart
)
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}"
