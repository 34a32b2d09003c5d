package querier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/tlsconfig"
)

// dnsPrefix marks a target whose host is resolved to all its A and AAAA
// addresses, each of which becomes an endpoint.
const dnsPrefix = "dns+"

// ErrInvalidTarget means an endpoint target is not "host:port" or
// "dns+host:port".
var ErrInvalidTarget = errors.New("invalid endpoint target")

// SDConfig is the content of an endpoint SD file (--endpoint.sd-config-file):
// a YAML list of groups of targets, each with an optional TLS configuration.
//
//	# endpoints.yaml
//	- targets: ["store-0:10901", "dns+receive.monitoring.svc:10901"]
//	  tls_config:
//	    ca_file: /etc/strata/ca.pem
//	    cert_file: /etc/strata/querier.pem
//	    key_file: /etc/strata/querier-key.pem
//	    server_name: store.monitoring.svc
//	- targets: ["10.0.0.7:10901"]
type SDConfig []SDGroup

// SDGroup is one group of targets of an SD file.
type SDGroup struct {
	// Targets are "host:port" addresses, dialed as they are, or
	// "dns+host:port" names, resolved to every A and AAAA address of host.
	Targets []string `yaml:"targets"`
	// TLSConfig, when present, makes the group's connections use TLS with
	// its CA, client certificate and server name (ca_file, cert_file,
	// key_file, server_name, insecure_skip_verify); an empty tls_config
	// means TLS verified against the system roots. Without it the group uses
	// the set's default, EndpointSetOptions.TLS. Relative paths are relative
	// to the working directory of the process. The files are re-read when
	// they change, for new connections.
	TLSConfig *tlsconfig.ClientConfig `yaml:"tls_config,omitempty"`
}

// Validate checks that every target is "host:port" or "dns+host:port" and
// that every tls_config is consistent and its files can be read and parsed.
func (c SDConfig) Validate() error {
	for i, g := range c {
		for _, t := range g.Targets {
			if _, err := parseTarget(t); err != nil {
				return fmt.Errorf("group %d: %w", i, err)
			}
		}
		if g.TLSConfig != nil {
			if err := g.TLSConfig.Validate(); err != nil {
				return fmt.Errorf("group %d: tls_config: %w", i, err)
			}
		}
	}
	return nil
}

// ParseSDConfig decodes an SD file strictly (unknown fields are errors) and
// validates it. An empty file is an empty configuration.
func ParseSDConfig(data []byte) (SDConfig, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c SDConfig
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("decode endpoint sd config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// target is one parsed endpoint target.
type target struct {
	spec string // as configured
	addr string // host:port without the scheme
	dns  bool
	host string
	port string
	tls  *tlsconfig.ClientConfig // nil dials without TLS
}

func parseTarget(s string) (target, error) {
	t := target{spec: s, addr: s}
	if rest, ok := strings.CutPrefix(s, dnsPrefix); ok {
		t.dns, t.addr = true, rest
	} else if strings.Contains(s, "+") {
		return target{}, fmt.Errorf("%w: %q: only the dns+ scheme is supported", ErrInvalidTarget, s)
	}
	host, port, err := net.SplitHostPort(t.addr)
	if err != nil {
		return target{}, fmt.Errorf("%w: %q: %v", ErrInvalidTarget, s, err)
	}
	if host == "" || port == "" {
		return target{}, fmt.Errorf("%w: %q: host and port are required", ErrInvalidTarget, s)
	}
	t.host, t.port = host, port
	return t, nil
}
