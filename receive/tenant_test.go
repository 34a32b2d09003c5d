package receive

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateTenant(t *testing.T) {
	for _, tc := range []struct {
		tenant  string
		wantErr string
	}{
		{tenant: "default-tenant"},
		{tenant: "team_a:prod@eu-1.x"},
		{tenant: "a.b"},
		{tenant: strings.Repeat("a", MaxTenantLength)},
		{tenant: "", wantErr: "empty tenant name"},
		{tenant: strings.Repeat("a", MaxTenantLength+1), wantErr: "129 bytes long"},
		{tenant: ".", wantErr: `"." is not a tenant name`},
		{tenant: "..", wantErr: `contains ".."`},
		{tenant: "../x", wantErr: `contains ".."`},
		{tenant: "a..b", wantErr: `contains ".."`},
		{tenant: "a/b", wantErr: `contains "/"`},
		{tenant: "/", wantErr: `contains "/"`},
		{tenant: `a\b`, wantErr: `contains "\\"`},
		{tenant: "a b", wantErr: `contains " "`},
		{tenant: "a\nb", wantErr: `contains "\n"`},
		{tenant: "ä", wantErr: `contains "\xc3"`},
		{tenant: "a%2fb", wantErr: `contains "%"`},
	} {
		t.Run(tc.tenant, func(t *testing.T) {
			err := ValidateTenant(tc.tenant)
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidTenant)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "zero value means defaults", opts: Options{}},
		{name: "custom", opts: Options{TenantHeader: "X-Scope-OrgID", DefaultTenant: "anonymous", MaxCompressedBytes: 1 << 20, MaxDecompressedBytes: 4 << 20}},
		{name: "bad header", opts: Options{TenantHeader: "X Tenant"}, wantErr: "not a valid HTTP header name"},
		{name: "bad default tenant", opts: Options{DefaultTenant: "a/b"}, wantErr: "default tenant"},
		{name: "negative size", opts: Options{MaxCompressedBytes: -1}, wantErr: "negative"},
		{name: "compressed over decompressed", opts: Options{MaxCompressedBytes: 10 << 20, MaxDecompressedBytes: 1 << 20}, wantErr: "exceed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}
