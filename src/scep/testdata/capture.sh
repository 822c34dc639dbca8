#!/usr/bin/env bash
# Regenerates the captured micromdm scepclient PKCSReq in this directory (README.md lists the
# files). Guards against codec regressions on a real client's bytes without needing scepclient
# at test time: message.test.ts parses, verifies and decrypts the capture with ca.key.
#
# Needs: openssl, python3, scepclient (Debian package `scep`, 2.1.0). Loopback only.
# Usage: src/scep/testdata/capture.sh   (from anywhere)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill "${stub:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$here/ca.key" -days 36500 \
  -subj "/O=certpost test/CN=SCEP capture CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign" \
  -out "$here/ca.pem" 2>/dev/null
openssl x509 -in "$here/ca.pem" -outform DER -out "$work/ca.der"

# Stub SCEP server: GetCACert, GetCACaps, and PKIOperation recorded then answered with 500.
cat >"$work/stub.py" <<'PY'
import http.server, sys, urllib.parse
ca, out = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, ctype, body):
        self.send_response(code); self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        op = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query).get('operation', [''])[0]
        if op == 'GetCACert': self.reply(200, 'application/x-x509-ca-cert', open(ca, 'rb').read())
        elif op == 'GetCACaps': self.reply(200, 'text/plain', b'POSTPKIOperation\nSHA-256\nAES\nDES3\nSCEPStandard\nRenewal')
        else: self.reply(400, 'text/plain', b'')
    def do_POST(self):
        open(out, 'wb').write(self.rfile.read(int(self.headers['Content-Length'])))
        self.reply(500, 'text/plain', b'captured')
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
python3 "$work/stub.py" "$work/ca.der" "$here/pkcsreq-micromdm-2.1.0.der" >"$work/port" &
stub=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
(cd "$work" && scepclient -server-url "http://127.0.0.1:$port/scep" -challenge secret \
  -private-key key.pem -certificate cert.pem -cn test-device >/dev/null 2>&1 || true)
test -s "$here/pkcsreq-micromdm-2.1.0.der"
echo "captured $(wc -c <"$here/pkcsreq-micromdm-2.1.0.der") bytes"
