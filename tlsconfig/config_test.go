package tlsconfig_test

import (
	"bytes"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kingpin/v2"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/stratametrics/strata/tlsconfig"
)

func TestServerConfigValidate(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(p.dir, "missing.pem")
	garbage := filepath.Join(p.dir, "garbage.pem")
	writeAtomic(t, garbage, []byte("hello"))
	otherCert, _ := p.ca.Issue(t, 7, true)
	otherCertFile := filepath.Join(p.dir, "other.crt")
	writeAtomic(t, otherCertFile, otherCert)
	truncated := filepath.Join(p.dir, "truncated.crt")
	writeAtomic(t, truncated, append(append([]byte{}, otherCert...), otherCert[:len(otherCert)/2]...))

	for _, tc := range []struct {
		name    string
		cfg     tlsconfig.ServerConfig
		wantErr []string // Substrings of the error; none means valid.
	}{
		{name: "off", cfg: tlsconfig.ServerConfig{}},
		{name: "cert and key", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey}},
		{name: "mTLS", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.caFile}},
		{name: "cert without key", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert}, wantErr: []string{"cert_file", "key_file is empty"}},
		{name: "key without cert", cfg: tlsconfig.ServerConfig{KeyFile: p.serverKey}, wantErr: []string{"cert_file is empty"}},
		{name: "client CA alone", cfg: tlsconfig.ServerConfig{ClientCAFile: p.caFile}, wantErr: []string{"client_ca_file", "cert_file and key_file are required"}},
		{name: "missing cert", cfg: tlsconfig.ServerConfig{CertFile: missing, KeyFile: p.serverKey}, wantErr: []string{"read cert_file", missing, "no such file"}},
		{name: "missing key", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: missing}, wantErr: []string{"read key_file", missing}},
		{name: "garbage cert", cfg: tlsconfig.ServerConfig{CertFile: garbage, KeyFile: p.serverKey}, wantErr: []string{garbage, "no PEM data"}},
		{name: "truncated chain", cfg: tlsconfig.ServerConfig{CertFile: truncated, KeyFile: p.serverKey}, wantErr: []string{truncated, "PEM block 2 is incomplete"}},
		{name: "key does not match", cfg: tlsconfig.ServerConfig{CertFile: otherCertFile, KeyFile: p.serverKey}, wantErr: []string{otherCertFile, p.serverKey, "private key does not match"}},
		{name: "missing client CA", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: missing}, wantErr: []string{"read CA file", missing}},
		{name: "client CA without certificates", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ClientCAFile: p.serverKey}, wantErr: []string{p.serverKey, "no PEM certificate found"}},
		{name: "negative interval", cfg: tlsconfig.ServerConfig{CertFile: p.serverCert, KeyFile: p.serverKey, ReloadInterval: -1}, wantErr: []string{"negative reload interval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.ErrorContains(t, err, want)
			}
			// The constructor refuses the same configuration.
			_, err = tlsconfig.NewServerConfig(tc.cfg, nil, nil)
			require.Error(t, err)
		})
	}
}

func TestClientConfigValidate(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(p.dir, "missing.pem")

	for _, tc := range []struct {
		name    string
		cfg     tlsconfig.ClientConfig
		wantErr []string
		isErr   error
	}{
		{name: "system roots", cfg: tlsconfig.ClientConfig{}},
		{name: "full", cfg: tlsconfig.ClientConfig{CAFile: p.caFile, CertFile: p.clientCert, KeyFile: p.clientKey, ServerName: "localhost"}},
		{name: "cert without key", cfg: tlsconfig.ClientConfig{CertFile: p.clientCert}, wantErr: []string{p.clientCert, "key_file is empty"}},
		{name: "key without cert", cfg: tlsconfig.ClientConfig{KeyFile: p.clientKey}, wantErr: []string{p.clientKey, "cert_file is empty"}},
		{name: "missing CA", cfg: tlsconfig.ClientConfig{CAFile: missing}, wantErr: []string{"read CA file", missing}, isErr: fs.ErrNotExist},
		{name: "key is not a CA", cfg: tlsconfig.ClientConfig{CAFile: p.clientKey}, wantErr: []string{p.clientKey, "no PEM certificate found"}},
		{name: "mismatched pair", cfg: tlsconfig.ClientConfig{CertFile: p.clientCert, KeyFile: p.serverKey}, wantErr: []string{"private key does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				_, err = tlsconfig.NewClient(tc.cfg, nil, nil)
				require.NoError(t, err)
				return
			}
			for _, want := range tc.wantErr {
				require.ErrorContains(t, err, want)
			}
			if tc.isErr != nil {
				require.ErrorIs(t, err, tc.isErr)
			}
			_, err = tlsconfig.NewClient(tc.cfg, nil, nil)
			require.Error(t, err)
		})
	}
}

func TestConfigYAML(t *testing.T) {
	in := `
server:
  cert_file: /s.crt
  key_file: /s.key
  client_ca_file: /ca.pem
client:
  ca_file: /ca.pem
  cert_file: /c.crt
  key_file: /c.key
  server_name: store.example
  insecure_skip_verify: true
`
	var got struct {
		Server tlsconfig.ServerConfig `yaml:"server"`
		Client tlsconfig.ClientConfig `yaml:"client"`
	}
	dec := yaml.NewDecoder(bytes.NewBufferString(in))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&got))
	require.Equal(t, tlsconfig.ServerConfig{CertFile: "/s.crt", KeyFile: "/s.key", ClientCAFile: "/ca.pem"}, got.Server)
	require.Equal(t, tlsconfig.ClientConfig{CAFile: "/ca.pem", CertFile: "/c.crt", KeyFile: "/c.key", ServerName: "store.example", InsecureSkipVerify: true}, got.Client)

	// The reload interval is not part of the file format.
	dec = yaml.NewDecoder(bytes.NewBufferString("cert_file: /s.crt\nreload_interval: 1s\n"))
	dec.KnownFields(true)
	require.ErrorContains(t, dec.Decode(&tlsconfig.ServerConfig{}), "reload_interval")
}

func TestFlags(t *testing.T) {
	app := kingpin.New("test", "")
	cmd := app.Command("query", "")
	server := tlsconfig.RegisterServerFlags(cmd, "grpc")
	client := tlsconfig.RegisterClientFlags(cmd, "endpoint")
	plain := tlsconfig.RegisterServerFlags(cmd, "")

	_, err := app.Parse([]string{"query",
		"--grpc.tls-cert=/s.crt", "--grpc.tls-key=/s.key", "--grpc.tls-client-ca=/ca.pem",
		"--endpoint.tls-ca=/ca2.pem", "--endpoint.tls-cert=/c.crt", "--endpoint.tls-key=/c.key",
		"--endpoint.tls-server-name=store", "--endpoint.tls-insecure-skip-verify",
		"--tls-cert=/h.crt",
	})
	require.NoError(t, err)
	require.Equal(t, tlsconfig.ServerConfig{CertFile: "/s.crt", KeyFile: "/s.key", ClientCAFile: "/ca.pem"}, *server)
	require.Equal(t, tlsconfig.ClientConfig{CAFile: "/ca2.pem", CertFile: "/c.crt", KeyFile: "/c.key", ServerName: "store", InsecureSkipVerify: true}, *client)
	require.Equal(t, tlsconfig.ServerConfig{CertFile: "/h.crt"}, *plain)
}
