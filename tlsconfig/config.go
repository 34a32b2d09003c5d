package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultReloadInterval is how often, at most, the files behind a configuration
// are checked for changes when ReloadInterval is zero.
const DefaultReloadInterval = time.Second

// Errors that callers may want to classify with errors.Is.
var (
	// ErrNoCertificate is returned when a server configuration has no
	// certificate and key; check ServerConfig.Enabled before building one.
	ErrNoCertificate = errors.New("cert_file and key_file are required")
	// ErrNoServerName is returned by the verification of a server certificate
	// when there is no name to check it against: ClientConfig.ServerName is
	// empty and the server was dialled by IP address through TLSConfig.
	ErrNoServerName = errors.New("no server name to verify the server certificate against; set server_name or use TransportCredentials or DialTLSContext")
)

// ServerConfig is the TLS configuration of a server. The zero value means TLS
// is off. A ClientCAFile turns on mutual TLS: clients must present a
// certificate signed by one of its CAs.
type ServerConfig struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`

	// ReloadInterval bounds how often the files are checked for changes;
	// zero means DefaultReloadInterval. It is not part of the file format.
	ReloadInterval time.Duration `yaml:"-"`
}

// Enabled reports whether any TLS setting is given.
func (c ServerConfig) Enabled() bool {
	return c.CertFile != "" || c.KeyFile != "" || c.ClientCAFile != ""
}

// Validate checks that the fields are consistent and that every named file can
// be read and parsed. The zero value is valid (TLS off).
func (c ServerConfig) Validate() error {
	if !c.Enabled() {
		return nil
	}
	if err := c.validateFields(); err != nil {
		return err
	}
	if _, err := loadKeyPair(c.CertFile, c.KeyFile); err != nil {
		return err
	}
	if c.ClientCAFile != "" {
		if _, err := loadCAPool(c.ClientCAFile); err != nil {
			return err
		}
	}
	return nil
}

func (c ServerConfig) validateFields() error {
	switch {
	case c.CertFile == "" && c.KeyFile == "":
		if c.ClientCAFile != "" {
			return fmt.Errorf("client_ca_file %q is set: %w", c.ClientCAFile, ErrNoCertificate)
		}
		return ErrNoCertificate
	case c.KeyFile == "":
		return fmt.Errorf("cert_file %q is set but key_file is empty", c.CertFile)
	case c.CertFile == "":
		return fmt.Errorf("key_file %q is set but cert_file is empty", c.KeyFile)
	case c.ReloadInterval < 0:
		return fmt.Errorf("negative reload interval %s", c.ReloadInterval)
	}
	return nil
}

// ClientConfig is the TLS configuration of a client. The zero value verifies
// servers against the system roots and presents no client certificate.
type ClientConfig struct {
	// CAFile holds the CAs the server certificate must chain to; empty means
	// the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server certificate must be valid for, and
	// the SNI sent; empty means the host that is dialled.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify turns off verification of the server certificate.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`

	// ReloadInterval bounds how often the files are checked for changes;
	// zero means DefaultReloadInterval. It is not part of the file format.
	ReloadInterval time.Duration `yaml:"-"`
}

// Validate checks that the fields are consistent and that every named file can
// be read and parsed.
func (c ClientConfig) Validate() error {
	if err := c.validateFields(); err != nil {
		return err
	}
	if c.CertFile != "" {
		if _, err := loadKeyPair(c.CertFile, c.KeyFile); err != nil {
			return err
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAPool(c.CAFile); err != nil {
			return err
		}
	}
	return nil
}

func (c ClientConfig) validateFields() error {
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return fmt.Errorf("cert_file %q is set but key_file is empty", c.CertFile)
	case c.KeyFile != "" && c.CertFile == "":
		return fmt.Errorf("key_file %q is set but cert_file is empty", c.KeyFile)
	case c.ReloadInterval < 0:
		return fmt.Errorf("negative reload interval %s", c.ReloadInterval)
	}
	return nil
}

func (c ClientConfig) reloadInterval() time.Duration {
	if c.ReloadInterval == 0 {
		return DefaultReloadInterval
	}
	return c.ReloadInterval
}

func (c ServerConfig) reloadInterval() time.Duration {
	if c.ReloadInterval == 0 {
		return DefaultReloadInterval
	}
	return c.ReloadInterval
}

func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key_file: %w", err)
	}
	return parseKeyPair(certFile, keyFile, certPEM, keyPEM)
}

func parseKeyPair(certFile, keyFile string, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	// X509KeyPair stops at the first PEM block it cannot decode, so a chain
	// cut off in the middle of an intermediate would load as a bare leaf.
	if _, err := decodeAllPEM(certPEM); err != nil {
		return nil, fmt.Errorf("parse cert_file %q: %w", certFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load key pair from cert_file %q and key_file %q: %w", certFile, keyFile, err)
	}
	return &cert, nil
}

func loadCAPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	return parseCAPool(file, data)
}

func parseCAPool(file string, data []byte) (*x509.CertPool, error) {
	blocks, err := decodeAllPEM(data)
	if err != nil {
		return nil, fmt.Errorf("parse CA file %q: %w", file, err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, b := range blocks {
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse CA file %q: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("parse CA file %q: no PEM certificate found", file)
	}
	return pool, nil
}

// decodeAllPEM decodes every PEM block in data and fails if anything that
// starts like a block does not decode, which is what a truncated file looks
// like.
func decodeAllPEM(data []byte) ([]*pem.Block, error) {
	var blocks []*pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if bytes.Contains(rest, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("PEM block %d is incomplete", len(blocks)+1)
	}
	if len(blocks) == 0 {
		return nil, errors.New("no PEM data found")
	}
	return blocks, nil
}
