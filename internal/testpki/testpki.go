// Package testpki creates throwaway certificate authorities and certificates
// for tests of TLS between strata's components: a CA, server certificates
// valid for 127.0.0.1 and localhost, client certificates, and a second,
// unrelated CA whose certificates the first one's servers must refuse.
package testpki

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
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// CA is a certificate authority that lives as long as a test.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded.
	PEM []byte
}

// NewCA returns a self-signed CA named name, valid for a day.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &CA{Cert: cert, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Issue returns a PEM certificate with the given serial and its PEM (PKCS #8)
// key, signed by ca. A server certificate is valid for 127.0.0.1 and
// localhost and for server authentication only; a client certificate for
// client authentication only.
func (ca *CA) Issue(t testing.TB, serial int64, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("test-%d", serial)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// Serials of the certificates PKI writes.
const (
	ServerSerial      = 100
	ClientSerial      = 200
	WrongClientSerial = 300
)

// PKI is a CA, a server and a client certificate it signed, and an unrelated
// CA with a client certificate of its own, all written to files.
type PKI struct {
	Dir       string
	CA, Wrong *CA
	// CAFile holds CA's certificate, WrongCAFile Wrong's.
	CAFile, WrongCAFile string
	// ServerCert and ServerKey are a server certificate signed by CA.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client certificate signed by CA.
	ClientCert, ClientKey string
	// WrongClientCert and WrongClientKey are a client certificate signed by
	// Wrong, which servers trusting CA refuse.
	WrongClientCert, WrongClientKey string
}

// New writes a PKI to a temporary directory of t.
func New(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{
		Dir:             dir,
		CA:              NewCA(t, "strata-test-ca"),
		Wrong:           NewCA(t, "strata-wrong-ca"),
		CAFile:          filepath.Join(dir, "ca.pem"),
		WrongCAFile:     filepath.Join(dir, "wrong-ca.pem"),
		ServerCert:      filepath.Join(dir, "server.pem"),
		ServerKey:       filepath.Join(dir, "server-key.pem"),
		ClientCert:      filepath.Join(dir, "client.pem"),
		ClientKey:       filepath.Join(dir, "client-key.pem"),
		WrongClientCert: filepath.Join(dir, "wrong-client.pem"),
		WrongClientKey:  filepath.Join(dir, "wrong-client-key.pem"),
	}
	WriteFile(t, p.CAFile, p.CA.PEM)
	WriteFile(t, p.WrongCAFile, p.Wrong.PEM)
	c, k := p.CA.Issue(t, ServerSerial, true)
	WriteFile(t, p.ServerCert, c)
	WriteFile(t, p.ServerKey, k)
	c, k = p.CA.Issue(t, ClientSerial, false)
	WriteFile(t, p.ClientCert, c)
	WriteFile(t, p.ClientKey, k)
	c, k = p.Wrong.Issue(t, WrongClientSerial, false)
	WriteFile(t, p.WrongClientCert, c)
	WriteFile(t, p.WrongClientKey, k)
	return p
}

// WriteFile replaces path atomically: a temporary file in the same directory
// renamed over it, so that a reader never sees it half-written.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, errors.Join(err, f.Close()))
	require.NoError(t, os.Rename(f.Name(), path))
}
