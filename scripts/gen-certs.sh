#!/usr/bin/env bash
# Regenerates the development certificates in certs/ with the openssl CLI:
# a CA, a server pair for localhost / 127.0.0.1 / ::1, and a client pair
# (alice) for mTLS demos. ECDSA P-256 keys, valid for ten years.
# For development only: the private keys are committed to the repository.
set -euo pipefail
cd "$(dirname "$0")/../certs"

days=3650
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

# 1. The CA: a self-signed certificate that may sign others.
newkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" \
    -subj "/CN=edgechat development CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt

# 2. A leaf signed by the CA: sign NAME SUBJECT EXTENSIONS
sign() {
    local name=$1 subj=$2 ext=$3
    newkey "$name.key"
    openssl req -new -key "$name.key" -subj "$subj" -out "$tmp/$name.csr"
    printf '%s\n' "$ext" > "$tmp/$name.ext"
    openssl x509 -req -in "$tmp/$name.csr" -CA ca.crt -CAkey ca.key \
        -CAcreateserial -CAserial "$tmp/ca.srl" -sha256 -days "$days" \
        -extfile "$tmp/$name.ext" -out "$name.crt"
}

sign server "/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

sign client "/CN=alice" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:alice"

chmod 600 ./*.key
echo "certs/: ca.crt ca.key server.crt server.key client.crt client.key"
