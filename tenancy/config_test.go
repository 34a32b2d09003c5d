package tenancy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	hashA  = HashToken("token-a")
	hashA2 = HashToken("token-a2")
	hashB  = HashToken("token-b")
)

func TestHashToken(t *testing.T) {
	// echo -n secret | sha256sum
	require.Equal(t, "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", HashToken("secret"))
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		wantErr []string // substrings, all of them; nil means success
		check   func(t *testing.T, c *Config)
	}{
		{
			name: "ok",
			in: `
tenants:
  - name: team-a
    tokens_sha256: ["` + hashA + `", "` + strings.ToUpper(hashA2) + `"]
    client_cert: {common_name: "edge-a"}
  - name: team-b
    tokens_sha256: ["` + hashB + `"]
  - name: team-c
    client_cert: {organization: "org-c", dns_san: "c.example"}
  - name: revoked
`,
			check: func(t *testing.T, c *Config) {
				require.Len(t, c.Tenants, 4)
				require.Equal(t, "edge-a", c.Tenants[0].ClientCert.CommonName)
				require.Equal(t, CertRule{Organization: "org-c", DNSSAN: "c.example"}, *c.Tenants[2].ClientCert)
			},
		},
		{name: "no tenants", in: "tenants: []\n", check: func(t *testing.T, c *Config) { require.Empty(t, c.Tenants) }},
		{name: "empty file", in: "  \n", wantErr: []string{"empty"}},
		{name: "comment only", in: "# nothing\n", wantErr: []string{"no YAML document"}},
		{name: "unknown top-level field", in: "tenants: []\ntenant: []\n", wantErr: []string{"line 2", "tenant"}},
		{name: "unknown tenant field", in: "tenants:\n  - name: a\n    tokens: [x]\n", wantErr: []string{"line 3", "tokens"}},
		{name: "unknown cert field", in: "tenants:\n  - name: a\n    client_cert: {cn: x}\n", wantErr: []string{"line 3", "cn"}},
		{name: "duplicate key", in: "tenants:\n  - name: a\n    name: b\n", wantErr: []string{"line 3", "already defined"}},
		{name: "wrong type", in: "tenants: 3\n", wantErr: []string{"line 1"}},
		{name: "second document", in: "tenants: []\n---\ntenants: []\n", wantErr: []string{"line 2", "second YAML document"}},
		{name: "bad hex", in: "tenants:\n  - name: a\n    tokens_sha256:\n      - " + strings.Repeat("zz", 32) + "\n", wantErr: []string{"line 4", "tenants[0].tokens_sha256[0]", "non-hex"}},
		{name: "short hash", in: "tenants:\n  - name: a\n    tokens_sha256: [abcd]\n", wantErr: []string{"line 3", "64 hex characters", "has 4"}},
		{
			name:    "duplicate token across tenants",
			in:      "tenants:\n  - name: a\n    tokens_sha256: [" + hashA + "]\n  - name: b\n    tokens_sha256:\n      - " + hashB + "\n      - " + hashA + "\n",
			wantErr: []string{"line 7", "tenants[1].tokens_sha256[1]", "tenants[0].tokens_sha256[0]", `tenant "a"`},
		},
		{name: "duplicate token within tenant", in: "tenants:\n  - name: a\n    tokens_sha256: [" + hashA + ", " + hashA + "]\n", wantErr: []string{"tenants[0].tokens_sha256[1]"}},
		{name: "duplicate tenant", in: "tenants:\n  - name: a\n  - name: a\n", wantErr: []string{"line 3", "tenants[1].name", "already defined"}},
		{name: "slash in name", in: "tenants:\n  - name: a/b\n", wantErr: []string{"line 2", "invalid tenant"}},
		{name: "dot dot in name", in: "tenants:\n  - name: ..\n", wantErr: []string{"invalid tenant"}},
		{name: "missing name", in: "tenants:\n  - tokens_sha256: [" + hashA + "]\n", wantErr: []string{"line 2", "empty tenant name"}},
		{name: "empty cert rule", in: "tenants:\n  - name: a\n    client_cert: {}\n", wantErr: []string{"line 3", "sets no field"}},
		{name: "duplicate cert rule", in: "tenants:\n  - name: a\n    client_cert: {common_name: x}\n  - name: b\n    client_cert: {common_name: x}\n", wantErr: []string{"line 5", `tenant "a"`}},
		{
			name:    "all errors reported",
			in:      "tenants:\n  - name: a/b\n  - name: c\n    tokens_sha256: [nothex]\n",
			wantErr: []string{"line 2", "line 4"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.NoError(t, c.Validate())
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalidConfig)
			for _, s := range tc.wantErr {
				require.Contains(t, err.Error(), s)
			}
		})
	}
}

func TestParseInvalidNameWrapsReceiveError(t *testing.T) {
	_, err := Parse([]byte("tenants:\n  - name: a/b\n"))
	require.ErrorIs(t, err, ErrInvalidTenant)
	var fe *FieldError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, 2, fe.Line)
	require.Equal(t, "tenants[0].name", fe.Path)
}

func TestParseDoesNotEchoTokens(t *testing.T) {
	// An operator pasting the token itself instead of its hash must not find
	// it in the logs.
	const secret = "my-plain-secret-token"
	_, err := Parse([]byte("tenants:\n  - name: a\n    tokens_sha256: [" + secret + "]\n"))
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret)
	// Even one of the right length.
	secret64 := strings.Repeat("q", 64)
	_, err = Parse([]byte("tenants:\n  - name: a\n    tokens_sha256: [" + secret64 + "]\n"))
	require.Error(t, err)
	require.NotContains(t, err.Error(), secret64)
}

func TestValidateConfigInCode(t *testing.T) {
	c := &Config{Tenants: []Tenant{{Name: "a", TokensSHA256: []string{"x"}}}}
	err := c.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.Contains(t, err.Error(), "tenants[0].tokens_sha256[0]")
	require.NotContains(t, err.Error(), "line")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	path := filepath.Join(dir, "tenants.yaml")
	require.NoError(t, os.WriteFile(path, []byte("tenants:\n  - name: a\n    tokens_sha256: [bad]\n"), 0o600))
	_, err = Load(path)
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), "line 3")
}
