package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/internal/testpki"
	"github.com/stratametrics/strata/tlsconfig"
)

// TestUpReceiverArgs checks that strata up gives its remote write TLS and
// tenants file to the receiver on the public address only: the others, which
// take strata's own writes without credentials, listen on loopback.
func TestUpReceiverArgs(t *testing.T) {
	p := testpki.New(t)
	for _, tc := range []struct {
		name       string
		args       []string
		wantTLS    tlsconfig.ServerConfig
		wantTenant string
		wantLimits string
	}{
		{name: "no flags"},
		{
			name: "mutual TLS and tenants",
			args: []string{
				"--remote-write.address=127.0.0.1:19291",
				"--remote-write.tls-cert=" + p.ServerCert, "--remote-write.tls-key=" + p.ServerKey, "--remote-write.tls-client-ca=" + p.CAFile,
				"--auth.tenants-file=tenants.yaml", "--limits.config-file=limits.yaml",
			},
			wantTLS:    tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey, ClientCAFile: p.CAFile},
			wantTenant: "tenants.yaml",
			wantLimits: "limits.yaml",
		},
		{
			name:    "TLS without client certificates",
			args:    []string{"--remote-write.tls-cert=" + p.ServerCert, "--remote-write.tls-key=" + p.ServerKey},
			wantTLS: tlsconfig.ServerConfig{CertFile: p.ServerCert, KeyFile: p.ServerKey},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc, err := parseCommandArgs(registerUp, tc.args)
			require.NoError(t, err)
			require.Equal(t, tc.wantTLS != tlsconfig.ServerConfig{}, uc.rwTLS.enabled())
			for i := range upReceivers {
				rc, err := parseReceiveArgs(upReceiverArgs(uc, i, "{type: FILESYSTEM, config: {directory: bucket}}", "127.0.0.1:7946"))
				require.NoError(t, err)
				require.Equal(t, tc.wantLimits, rc.tenancy.limitsFile, "receiver %d", i)
				if i == 0 {
					require.Equal(t, uc.rwAddress, rc.rwAddress)
					require.Equal(t, tc.wantTLS, *rc.rwTLS.cfg)
					require.Equal(t, tc.wantTenant, rc.tenancy.tenantsFile)
					require.Empty(t, rc.cluster.join)
					continue
				}
				require.Equal(t, "127.0.0.1:0", rc.rwAddress, "receiver %d", i)
				require.False(t, rc.rwTLS.enabled(), "receiver %d", i)
				require.Empty(t, rc.tenancy.tenantsFile, "receiver %d", i)
				require.Equal(t, []string{"127.0.0.1:7946"}, rc.cluster.join, "receiver %d", i)
			}
		})
	}
}
