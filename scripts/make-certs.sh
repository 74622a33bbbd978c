#!/bin/sh
# make-certs.sh DIR [NAME...]: certificates for recon5td's TLS and mutual TLS, with openssl.
#   DIR/ca.crt, ca.key              the CA that signs the server and the clients (tls_client_ca)
#   DIR/server.crt, server.key      SAN localhost, 127.0.0.1 and every NAME given (tls_cert, tls_key)
#   DIR/console.crt/.key, research.crt/.key, monitor.crt/.key, admin.crt/.key
#                                   client certificates, CN = the role (auth.h's CN rule)
#   DIR/foreign-ca.crt, foreign.crt/.key
#                                   a second CA and a client it signed (recon5td must refuse it)
# For tests and a first deployment; keys are written 0600. Serial numbers are random.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 DIR [DNS-NAME-OR-IP...]" >&2; exit 2; }
dir=$1
shift
command -v openssl >/dev/null || { echo "make-certs.sh: openssl not found" >&2; exit 2; }
mkdir -p "$dir"
umask 077
days=${R5_CERT_DAYS:-825}

san="DNS:localhost,IP:127.0.0.1"
for n in "$@"; do
	case $n in
	*[!0-9.]*) san="$san,DNS:$n" ;;
	*) san="$san,IP:$n" ;;
	esac
done

ca() { # NAME CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days "$days" -subj "/CN=$2" \
		-keyout "$dir/$1.key" -out "$dir/$1.crt" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}

leaf() { # NAME CN CA EXT
	ext="$dir/$1.ext"
	printf '%s\n' "$4" > "$ext"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -subj "/CN=$2" -keyout "$dir/$1.key" -out "$dir/$1.csr" 2>/dev/null
	openssl x509 -req -sha256 -days "$days" -in "$dir/$1.csr" -CA "$dir/$3.crt" -CAkey "$dir/$3.key" \
		-set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$dir/$1.crt" 2>/dev/null
	rm -f "$dir/$1.csr" "$ext"
}

ca ca "recon5t test CA"
ca foreign-ca "recon5t foreign CA"
leaf server recon5td ca "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
for role in console research monitor admin; do
	leaf "$role" "$role" ca "$client_ext"
done
leaf foreign console foreign-ca "$client_ext"
chmod 0644 "$dir"/*.crt
echo "make-certs.sh: certificates in $dir (server SAN $san)" >&2
