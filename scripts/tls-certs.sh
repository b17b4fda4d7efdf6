#!/usr/bin/env bash
# Makes a private certificate authority and a server certificate signed by
# it, for safecity-server's HTTPS (--tls-cert, --tls-key) and for the edges
# and browsers that are to trust it ([server] ca in the edge's config):
#
#   scripts/tls-certs.sh DIR NAME [NAME...]
#
# NAMEs are the DNS names and IP addresses the server is reached by; the
# first is also its common name. Writes, in DIR:
#   ca.pem       the CA certificate: give it to edges and clients
#   ca.key       the CA key: keep it offline (mode 0600)
#   server.pem   the server certificate (825 days)
#   server.key   its key (mode 0600)
# A CA already in DIR is reused, so a new server certificate keeps the trust
# edges have. Needs the openssl command.
set -euo pipefail
if [[ $# -lt 2 ]]; then
  echo "usage: $0 DIR NAME [NAME...]   (names: DNS names or IP addresses of the server)" >&2
  exit 2
fi
command -v openssl >/dev/null || { echo "$0: needs openssl (apt-get install openssl)" >&2; exit 1; }
dir=$1
shift
mkdir -p "$dir"
umask 077
san=""
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
    san+="${san:+,}IP:$name"
  else
    san+="${san:+,}DNS:$name"
  fi
done
if [[ ! -f $dir/ca.pem || ! -f $dir/ca.key ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days 3650 -subj "/CN=safecity CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$dir/server.key" -subj "/CN=$1" 2>/dev/null |
  openssl x509 -req -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 825 \
    -out "$dir/server.pem" -extfile <(printf '%s\n' \
      "subjectAltName=$san" \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth") 2>/dev/null
rm -f "$dir/ca.srl"
chmod 0644 "$dir/ca.pem" "$dir/server.pem"
echo "$dir/ca.pem: the CA (give to edges: [server] ca); $dir/server.pem and $dir/server.key: --tls-cert and --tls-key"
