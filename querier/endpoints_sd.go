package querier

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"go.yaml.in/yaml/v3"
)

// dnsPrefix marks a target whose host is resolved to all its A and AAAA
// addresses, each of which becomes an endpoint.
const dnsPrefix = "dns+"

// ErrInvalidTarget means an endpoint target is not "host:port" or
// "dns+host:port".
var ErrInvalidTarget = errors.New("invalid endpoint target")

// SDConfig is the content of an endpoint SD file (--endpoint.sd-config-file):
// a YAML list of groups of targets.
//
//	# endpoints.yaml
//	- targets: ["store-0:10901", "dns+receive.monitoring.svc:10901"]
//	- targets: ["10.0.0.7:10901"]
type SDConfig []SDGroup

// SDGroup is one group of targets of an SD file.
type SDGroup struct {
	// Targets are "host:port" addresses, dialed as they are, or
	// "dns+host:port" names, resolved to every A and AAAA address of host.
	Targets []string `yaml:"targets"`
}

// Validate checks that every target is "host:port" or "dns+host:port".
func (c SDConfig) Validate() error {
	for i, g := range c {
		for _, t := range g.Targets {
			if _, err := parseTarget(t); err != nil {
				return fmt.Errorf("group %d: %w", i, err)
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
