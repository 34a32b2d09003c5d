package queryshard

import (
	"net/url"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"
)

func TestFromForm(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    Selector
		ok      bool
		wantErr string // substring of the error; it names the parameter
	}{
		{query: "", ok: false},
		{query: "query=up&dedup=false", ok: false},
		{query: "shard=0_of_2&shard_without=", want: Selector{Index: 0, Total: 2}, ok: true},
		{query: "shard=4_of_5&shard_without=le,__name__,le", want: Selector{Index: 4, Total: 5, Labels: []string{"__name__", "le"}}, ok: true},
		{query: "shard=1_of_3&shard_by=handler,code", want: Selector{Index: 1, Total: 3, By: true, Labels: []string{"code", "handler"}}, ok: true},
		{query: "shard=1_of_3&shard_by=%C3%A9t%C3%A9.x", want: Selector{Index: 1, Total: 3, By: true, Labels: []string{"été.x"}}, ok: true},
		{query: "shard=65535_of_65536&shard_without=", want: Selector{Index: 65535, Total: 65536}, ok: true},

		{query: "shard_by=a", wantErr: `invalid parameter "shard_by": requires parameter "shard"`},
		{query: "shard_without=", wantErr: `invalid parameter "shard_without": requires parameter "shard"`},
		{query: "shard=0_of_2", wantErr: `invalid parameter "shard": requires parameter "shard_by" or "shard_without"`},
		{query: "shard=0_of_2&shard_by=a&shard_without=b", wantErr: `invalid parameter "shard_without": cannot be combined`},
		{query: "shard=0_of_2&shard=1_of_2&shard_by=a", wantErr: `invalid parameter "shard": given more than once`},
		{query: "shard=0_of_2&shard_by=a&shard_by=b", wantErr: `invalid parameter "shard_by": given more than once`},
		{query: "shard=&shard_by=a", wantErr: `invalid parameter "shard": "" is not of the form`},
		{query: "shard=0of2&shard_by=a", wantErr: `invalid parameter "shard"`},
		{query: "shard=2_of_2&shard_by=a", wantErr: `invalid parameter "shard": shard index 2 is not below the shard count 2`},
		{query: "shard=0_of_1&shard_by=a", wantErr: `invalid parameter "shard": shard count 1 is below 2`},
		{query: "shard=0_of_65537&shard_by=a", wantErr: `invalid parameter "shard": shard count 65537 is above 65536`},
		{query: "shard=0_of_9999999&shard_by=a", wantErr: `invalid parameter "shard": shard count: "9999999" is not a number of 1 to 6 digits`},
		{query: "shard=-1_of_2&shard_by=a", wantErr: `invalid parameter "shard": shard index: "-1" is not a decimal number`},
		{query: "shard=%2B1_of_2&shard_by=a", wantErr: `invalid parameter "shard": shard index: "+1" is not a decimal number`},
		{query: "shard=0_of_2_of_3&shard_by=a", wantErr: `invalid parameter "shard": shard count: "2_of_3"`},
		{query: "shard=0_of_2&shard_by=", wantErr: `invalid parameter "shard_by": names no label`},
		{query: "shard=0_of_2&shard_by=a,,b", wantErr: `invalid parameter "shard_by": empty label name`},
		{query: "shard=0_of_2&shard_without=a,", wantErr: `invalid parameter "shard_without": empty label name`},
		{query: "shard=0_of_2&shard_without=%FF", wantErr: `invalid parameter "shard_without": label name "\xff" is not valid UTF-8`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			v, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			got, ok, err := FromForm(v)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, ok)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestAddToRoundTrip(t *testing.T) {
	for _, s := range []Selector{
		{Index: 0, Total: 2},
		{Index: 2, Total: 3, Labels: []string{"__name__", "le"}},
		{Index: 1, Total: 5, By: true, Labels: []string{"code", "handler"}},
	} {
		v := url.Values{"query": {"up"}, ParamShardBy: {"stale"}, ParamShardWithout: {"stale"}}
		s.AddTo(v)
		require.Equal(t, "up", v.Get("query"))
		got, ok, err := FromForm(v)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, s, got)
	}
}

// FuzzFromForm feeds untrusted query strings to FromForm: it must not panic,
// and whatever it accepts must be valid, round-trip through AddTo, and
// match series without panicking.
func FuzzFromForm(f *testing.F) {
	for _, seed := range []string{
		"",
		"shard=0_of_2&shard_without=",
		"shard=1_of_3&shard_by=handler,code",
		"shard=4_of_5&shard_without=le,__name__",
		"shard=0_of_2&shard_by=a&shard_without=b",
		"shard=2_of_2&shard_by=a",
		"shard=0_of_65536&shard_by=%C3%A9",
		"shard=0_of_2&shard_by=a,,b",
		"shard=0_of_2&shard=1_of_2&shard_by=a",
		"shard=-1_of_2&shard_by=a",
		"shard=0_of_2&shard_without=%FF",
	} {
		f.Add(seed)
	}
	ls := labels.FromStrings("__name__", "x", "a", "1", "handler", "/", "le", "+Inf")
	f.Fuzz(func(t *testing.T, query string) {
		v, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		s, ok, err := FromForm(v)
		if err != nil {
			require.False(t, ok)
			return
		}
		if !ok {
			return
		}
		require.NoError(t, s.Validate())
		out := url.Values{}
		s.AddTo(out)
		back, ok, err := FromForm(out)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, s, back)
		in := 0
		for i := range s.Total {
			s.Index = i
			if s.Matches(ls) {
				in++
			}
		}
		require.Equal(t, 1, in)
	})
}
