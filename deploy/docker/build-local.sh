#!/usr/bin/env bash
# Build the sluice image without a registry: the Dockerfile's runtime stage over a base made locally from
# this machine's glibc and libgcc (what distroless/cc-debian12 holds), with buildah, into an OCI archive.
# Used by the test suite (crates/sluice/tests/container_image.rs), which cannot pull base images.
#   bash deploy/docker/build-local.sh BINARY WORKDIR   -> WORKDIR/sluice-oci.tar; prints the rootfs path
set -euo pipefail
bin=$1
work=$2
repo="$(cd "$(dirname "$0")/../.." && pwd)"
B=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
ctr=$("${B[@]}" from scratch)
mnt=$("${B[@]}" mount "$ctr")
# The base: the dynamic loader and the libraries the binary links (glibc, libm, libgcc_s), CA certificates
# and a passwd/group with root, as in distroless/cc.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  mkdir -p "$mnt$(dirname "$lib")"
  cp -L "$lib" "$mnt$lib"
done
mkdir -p "$mnt/etc/ssl/certs" "$mnt/tmp" "$mnt/var/lib/sluice" "$mnt/usr/bin" "$mnt/etc/sluice"
chmod 1777 "$mnt/tmp"
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$mnt/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$mnt/etc/group"
# The runtime stage of the Dockerfile.
cp "$bin" "$mnt/usr/bin/sluice"
cp "$repo/deploy/docker/fluent.conf" "$mnt/etc/sluice/fluent.conf"
"${B[@]}" config --user 0:0 --port 24231 --entrypoint '["/usr/bin/sluice"]' --cmd '-c /etc/sluice/fluent.conf' "$ctr"
"${B[@]}" commit -q --format oci "$ctr" "oci-archive:$work/sluice-oci.tar" >/dev/null
echo "$mnt"
