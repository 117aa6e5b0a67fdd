#!/usr/bin/env bash
# Makes a local CA and a server certificate for 127.0.0.1, ::1 and localhost, for wss:// on one machine.
#   scripts/gen-cert.sh [DIR]        (default: build/certs)
# Writes DIR/ca.pem (trust this in clients), DIR/ca-key.pem, DIR/server.pem (certificate chain for
# --tls-cert), DIR/server-key.pem (--tls-key). Idempotent: if the files exist, match and stay valid for
# 30 more days, nothing is rewritten. Prints the paths and the flags to use. Needs the openssl CLI.
set -euo pipefail

dir=${1:-build/certs}
ca=$dir/ca.pem
ca_key=$dir/ca-key.pem
cert=$dir/server.pem
key=$dir/server-key.pem
ca_days=3650
leaf_days=825          # the longest validity Apple platforms accept for a TLS server certificate
renew_seconds=$((30 * 24 * 3600))

command -v openssl >/dev/null || { echo "gen-cert.sh: openssl not found (apt-get install openssl)" >&2; exit 2; }

print_paths() {
    echo "CA certificate (trust in clients): $ca"
    echo "server certificate chain:          $cert"
    echo "server private key:                $key"
    echo "run: roomcast --tls-cert $cert --tls-key $key"
}

up_to_date() {
    [ -s "$ca" ] && [ -s "$ca_key" ] && [ -s "$cert" ] && [ -s "$key" ] || return 1
    openssl x509 -in "$cert" -noout -checkend "$renew_seconds" >/dev/null 2>&1 || return 1
    openssl x509 -in "$ca" -noout -checkend "$renew_seconds" >/dev/null 2>&1 || return 1
    openssl verify -CAfile "$ca" "$cert" >/dev/null 2>&1 || return 1
    # The key must belong to the certificate: compare public keys.
    [ "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" = "$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]
}

if up_to_date; then
    echo "gen-cert.sh: certificates in $dir are up to date"
    print_paths
    exit 0
fi

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.gen-cert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
umask 077   # private keys readable by the owner only

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca-key.pem" 2>/dev/null
openssl req -x509 -new -key "$tmp/ca-key.pem" -sha256 -days "$ca_days" -subj "/CN=roomcast local CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$tmp/ca.pem"

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server-key.pem" 2>/dev/null
openssl req -new -key "$tmp/server-key.pem" -subj "/CN=localhost" -out "$tmp/server.csr"
cat >"$tmp/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" -CAcreateserial \
    -sha256 -days "$leaf_days" -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>/dev/null
openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem" >/dev/null

chmod 644 "$tmp/ca.pem" "$tmp/server.pem"
# Move the four files into place together, so a failed run never leaves a mismatched set.
mv -f "$tmp/ca-key.pem" "$ca_key"
mv -f "$tmp/ca.pem" "$ca"
mv -f "$tmp/server-key.pem" "$key"
mv -f "$tmp/server.pem" "$cert"
echo "gen-cert.sh: wrote new certificates to $dir"
print_paths
