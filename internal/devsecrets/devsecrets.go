// Package devsecrets makes the secrets of a local deployment (deploy/compose.yaml): a private
// certificate authority and the certificate the NATS servers present to each other on their
// cluster routes, a password per NATS user of deploy/nats/auth.conf, and an API key of the HTTP
// intake. `go run ./deploy/gensecrets` writes them to deploy/secrets/.
//
// They are for local and test setups. In production, take certificates from your own CA (or
// cert-manager) and passwords from your secret store; the file names below are only what
// compose.yaml mounts.
package devsecrets

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files written by Generate, relative to its directory.
const (
	CACert     = "nats-ca.pem"        // the local CA's certificate: what the NATS servers trust
	CAKey      = "nats-ca-key.pem"    // its private key, to sign more certificates later
	RouteCert  = "nats-route.pem"     // the NATS servers' certificate (server and client auth)
	RouteKey   = "nats-route-key.pem" // its private key
	ServerEnv  = "nats-server.env"    // the users' passwords as the NATS servers read them (WORKER_NATS_PASSWORD=...)
	APIKeys    = "api-keys"           // an API key of the HTTP intake (FULFIL_API_KEYS_FILE)
	APIKey     = "api-key"            // the same key alone, for a client's Authorization: Bearer
	passSuffix = "-nats-password"
)

// Users are the NATS users of deploy/nats/auth.conf; each gets PasswordFile(user), and the
// servers get <USER>_NATS_PASSWORD in ServerEnv.
var Users = []string{"worker", "intake", "producer", "operator"}

// PasswordFile is the file holding user's NATS password, e.g. "worker-nats-password".
func PasswordFile(user string) string { return user + passSuffix }

// PasswordEnv is the NATS servers' environment variable of user's password, e.g.
// "WORKER_NATS_PASSWORD", as deploy/nats/auth.conf reads it.
func PasswordEnv(user string) string { return strings.ToUpper(user) + "_NATS_PASSWORD" }

// Options configure Generate.
type Options struct {
	// Hosts are the DNS names and IP addresses of the route certificate (default: nats-1,
	// nats-2, nats-3, localhost and 127.0.0.1).
	Hosts []string
	// Valid is how long the certificates are valid (default one year).
	Valid time.Duration
	// Force overwrites existing files; otherwise Generate refuses to replace any.
	Force bool
}

// Generate writes the files into dir (created if missing) and returns their paths. Private
// keys are readable by the owner only; the passwords and the API key also by others, because
// compose mounts them into containers that run as another user.
func Generate(dir string, o Options) ([]string, error) {
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"nats-1", "nats-2", "nats-3", "localhost", "127.0.0.1"}
	}
	if o.Valid == 0 {
		o.Valid = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	type file struct {
		name string
		data []byte
		mode os.FileMode
	}
	var files []file
	caCert, caKey, caDER, caKeyPEM, err := newCA(o.Valid)
	if err != nil {
		return nil, err
	}
	files = append(files, file{CACert, pemBlock("CERTIFICATE", caDER), 0o644}, file{CAKey, caKeyPEM, 0o600})
	leaf, leafKey, err := newLeaf(caCert, caKey, o.Hosts, o.Valid)
	if err != nil {
		return nil, err
	}
	files = append(files, file{RouteCert, leaf, 0o644}, file{RouteKey, leafKey, 0o600})
	var env strings.Builder
	env.WriteString("# Passwords of the NATS users of deploy/nats/auth.conf, for the NATS servers (compose env_file).\n")
	for _, u := range Users {
		pw, err := Password()
		if err != nil {
			return nil, err
		}
		files = append(files, file{PasswordFile(u), []byte(pw + "\n"), 0o644})
		fmt.Fprintf(&env, "%s=%s\n", PasswordEnv(u), pw)
	}
	files = append(files, file{ServerEnv, []byte(env.String()), 0o600})
	key, err := Password()
	if err != nil {
		return nil, err
	}
	key = "fk_" + key
	files = append(files, file{APIKeys, []byte("# API keys of the HTTP intake, one per line.\n" + key + "\n"), 0o644}, file{APIKey, []byte(key + "\n"), 0o644})

	if !o.Force {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f.name)); err == nil {
				return nil, fmt.Errorf("%s exists; remove the old secrets first (or force), a running cluster keeps using them", filepath.Join(dir, f.name))
			}
		}
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		_ = os.Remove(p) // a new file gets f.mode
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// Password returns a random password of 32 lower-case letters and digits, starting with a
// letter: nats-server reads it from its environment as a plain string.
func Password() (string, error) {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const alnum = letters + "0123456789"
	b := make([]byte, 32)
	for i := range b {
		set := alnum
		if i == 0 {
			set = letters
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
		if err != nil {
			return "", err
		}
		b[i] = set[n.Int64()]
	}
	return string(b), nil
}

func newCA(valid time.Duration) (*x509.Certificate, *ecdsa.PrivateKey, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "fulfil local NATS CA", Organization: []string{"fulfil (local)"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(valid),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return cert, key, der, pemBlock("PRIVATE KEY", keyDER), nil
}

func newLeaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, valid time.Duration) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"fulfil (local)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Routes are mutual TLS: every server is both.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", keyDER), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(errors.New("devsecrets: no randomness"))
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// Names returns the names of the files Generate writes.
func Names() []string {
	names := []string{CACert, CAKey, RouteCert, RouteKey, ServerEnv, APIKeys, APIKey}
	for _, u := range Users {
		names = append(names, PasswordFile(u))
	}
	return names
}
