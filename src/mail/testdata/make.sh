#!/bin/sh
# Regenerates the mail test certificates: a root CA, an issuing CA under it, and a user
# certificate under that (EC P-256, valid for 100 years), with the user key. Test-only; never
# trust them. Run from anywhere: sh src/mail/testdata/make.sh
set -eu
cd "$(dirname "$0")"
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
ec='-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes'
openssl req -x509 $ec -keyout "$t/root.key" -out root.pem -days 36500 \
  -subj '/O=certpost tests/CN=mail test root CA' \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -new $ec -keyout "$t/issuing.key" -out "$t/issuing.csr" \
  -subj '/O=certpost tests/CN=mail test issuing CA'
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$t/ca.ext"
openssl x509 -req -in "$t/issuing.csr" -CA root.pem -CAkey "$t/root.key" -days 36500 \
  -set_serial 0x1001 -extfile "$t/ca.ext" -out issuing.pem
openssl req -new $ec -keyout user.key -out "$t/user.csr" \
  -subj '/O=certpost tests/CN=Alice Example (Contoso)/emailAddress=alice@example.com'
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth,emailProtection\nsubjectAltName=email:alice@example.com\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' > "$t/user.ext"
openssl x509 -req -in "$t/user.csr" -CA issuing.pem -CAkey "$t/issuing.key" -days 36500 \
  -set_serial 0x0a11ce -extfile "$t/user.ext" -out user.pem
