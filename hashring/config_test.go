package hashring

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    []RingConfig
		wantErr string
	}{
		{
			name: "thanos example",
			in: `[
				{"hashring": "tenant-a", "tenants": ["a"], "endpoints": ["r1:10901", "r2:10901", "r3:10901"]},
				{"hashring": "teams", "tenants": ["team-*"], "tenant_matcher_type": "glob", "algorithm": "hashmod",
				 "endpoints": ["r4:10901"]},
				{"endpoints": [{"address": "r5:10901", "az": "eu-1a"}, {"address": "r6:10901", "az": "eu-1b"}, "r7:10901"],
				 "algorithm": "ketama", "external_labels": {"region": "eu", "cluster": "c1"}}
			]`,
			want: []RingConfig{
				{Name: "tenant-a", Tenants: []string{"a"}, Endpoints: []EndpointConfig{{Address: "r1:10901"}, {Address: "r2:10901"}, {Address: "r3:10901"}}},
				{
					Name: "teams", Tenants: []string{"team-*"}, TenantMatcherType: TenantMatcherGlob, Algorithm: AlgorithmHashmod,
					Endpoints: []EndpointConfig{{Address: "r4:10901"}},
				},
				{
					Endpoints: []EndpointConfig{{Address: "r5:10901", AZ: "eu-1a"}, {Address: "r6:10901", AZ: "eu-1b"}, {Address: "r7:10901"}},
					Algorithm: AlgorithmKetama, ExternalLabels: map[string]string{"region": "eu", "cluster": "c1"},
				},
			},
		},
		{name: "exact matcher spelled out", in: `[{"tenants":["a"],"tenant_matcher_type":"exact","endpoints":["x:1"]}]`,
			want: []RingConfig{{Tenants: []string{"a"}, TenantMatcherType: TenantMatcherExact, Endpoints: []EndpointConfig{{Address: "x:1"}}}}},
		{name: "empty array", in: `[]`, wantErr: "no hashrings in the file"},
		{name: "null", in: `null`, wantErr: "no hashrings in the file"},
		{name: "empty input", in: " \n", wantErr: "parse hashring config: the file is empty"},
		{name: "not an array", in: `{"endpoints":["x:1"]}`, wantErr: "cannot unmarshal object"},
		{name: "trailing data", in: `[{"endpoints":["x:1"]}] []`, wantErr: "unexpected data after the top-level value"},
		{name: "trailing garbage", in: `[{"endpoints":["x:1"]}] ,`, wantErr: "unexpected data after the top-level value"},
		{name: "unknown ring field", in: `[{"endpoints":["x:1"],"shuffle_sharding_config":{"shard_size":2}}]`, wantErr: `unknown field "shuffle_sharding_config"`},
		{name: "unknown endpoint field", in: `[{"endpoints":[{"address":"x:1","capnproto_address":"x:2"}]}]`, wantErr: `unknown field "capnproto_address"`},
		{name: "endpoint of wrong type", in: `[{"endpoints":[42]}]`, wantErr: "want a string or an object"},
		{name: "endpoint az of wrong type", in: `[{"endpoints":[{"address":"x:1","az":1}]}]`, wantErr: "cannot unmarshal number"},
		{name: "no endpoints", in: `[{"hashring":"h","endpoints":[]}]`, wantErr: `hashring 0 ("h"): no endpoints`},
		{name: "missing endpoints", in: `[{"endpoints":["x:1"]},{"tenants":["a"]}]`, wantErr: "hashring 1: no endpoints"},
		{name: "empty address", in: `[{"endpoints":[""]}]`, wantErr: "endpoint 0: empty address"},
		{name: "object without address", in: `[{"endpoints":[{"az":"a"}]}]`, wantErr: "endpoint 0: empty address"},
		{name: "duplicate endpoint", in: `[{"endpoints":["x:1","y:1",{"address":"x:1","az":"a"}]}]`, wantErr: `duplicate endpoint "x:1"`},
		{name: "az with hashmod", in: `[{"algorithm":"hashmod","endpoints":[{"address":"x:1","az":"a"}]}]`, wantErr: "zones need the ketama algorithm"},
		{name: "unknown algorithm", in: `[{"algorithm":"maglev","endpoints":["x:1"]}]`, wantErr: `unknown algorithm "maglev"`},
		{name: "unknown matcher", in: `[{"tenants":["a"],"tenant_matcher_type":"regex","endpoints":["x:1"]}]`, wantErr: `unknown tenant_matcher_type "regex"`},
		{name: "bad glob", in: `[{"tenants":["a["],"tenant_matcher_type":"glob","endpoints":["x:1"]}]`, wantErr: `tenant pattern "a["`},
		{name: "empty tenant", in: `[{"tenants":[""],"endpoints":["x:1"]}]`, wantErr: "empty tenant"},
		{name: "bad external label name", in: `[{"endpoints":["x:1"],"external_labels":{"":"v"}}]`, wantErr: `external label name "" is not valid`},
		{name: "empty external label value", in: `[{"endpoints":["x:1"],"external_labels":{"a":""}}]`, wantErr: `external label "a" has an empty value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestEndpointConfigJSONRoundTrip(t *testing.T) {
	in := []EndpointConfig{{Address: "a:1"}, {Address: "b:1", AZ: "z"}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `["a:1", {"address": "b:1", "az": "z"}]`, string(b))
	var out []EndpointConfig
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
}

// FuzzParseConfig checks that no input makes ParseConfig panic, and that what
// it accepts survives a round trip and builds into rings.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		`[{"hashring":"a","tenants":["t"],"endpoints":["x:1","y:1"]}]`,
		`[{"tenants":["team-*"],"tenant_matcher_type":"glob","algorithm":"hashmod","endpoints":["x:1"]}]`,
		`[{"endpoints":[{"address":"x:1","az":"a"},"y:1"],"external_labels":{"k":"v"}}]`,
		`[]`, `null`, `[{}]`, `[{"endpoints":[1]}]`, `[{"endpoints":[{"address":"x"}]}] x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfgs, err := ParseConfig(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(cfgs)
		require.NoError(t, err)
		again, err := ParseConfig(b)
		require.NoError(t, err, "re-parse %s", b)
		require.Equal(t, len(cfgs), len(again))
		// Validation leaves only the replication factor to construction.
		_, err = NewMulti(cfgs, AlgorithmKetama, 1)
		require.NoError(t, err)
	})
}
