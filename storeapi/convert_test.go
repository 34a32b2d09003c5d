package storeapi_test

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/stretchr/testify/require"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/storepb"
)

func TestLabelsRoundTrip(t *testing.T) {
	for _, ls := range []labels.Labels{
		labels.EmptyLabels(),
		labels.FromStrings("__name__", "up"),
		labels.FromStrings("__name__", "up", "job", "api", "tenant_id", "a"),
	} {
		require.Equal(t, ls, storeapi.LabelsFromProto(storeapi.LabelsToProto(ls)))
	}
	// Unsorted wire labels come back sorted.
	got := storeapi.LabelsFromProto([]*storepb.Label{{Name: "job", Value: "x"}, {Name: "a", Value: "y"}})
	require.Equal(t, labels.FromStrings("a", "y", "job", "x"), got)
}

func TestMatchersFromProto(t *testing.T) {
	cases := []struct {
		name    string
		in      *storepb.LabelMatcher
		want    *labels.Matcher
		wantErr string
	}{
		{"equal", &storepb.LabelMatcher{Type: storepb.LabelMatcher_EQ, Name: "a", Value: "1"}, labels.MustNewMatcher(labels.MatchEqual, "a", "1"), ""},
		{"not equal", &storepb.LabelMatcher{Type: storepb.LabelMatcher_NEQ, Name: "a", Value: "1"}, labels.MustNewMatcher(labels.MatchNotEqual, "a", "1"), ""},
		{"regexp", &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "a", Value: "1|2"}, labels.MustNewMatcher(labels.MatchRegexp, "a", "1|2"), ""},
		{"not regexp", &storepb.LabelMatcher{Type: storepb.LabelMatcher_NRE, Name: "a", Value: ".*"}, labels.MustNewMatcher(labels.MatchNotRegexp, "a", ".*"), ""},
		{"bad regexp", &storepb.LabelMatcher{Type: storepb.LabelMatcher_RE, Name: "a", Value: "("}, nil, `invalid label matcher: a=~"(": error parsing regexp`},
		{"unknown type", &storepb.LabelMatcher{Type: storepb.LabelMatcher_Type(9), Name: "a"}, nil, `invalid label matcher: unknown type 9 for label "a"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := storeapi.MatchersFromProto([]*storepb.LabelMatcher{c.in})
			if c.wantErr != "" {
				require.ErrorIs(t, err, storeapi.ErrInvalidMatcher)
				require.ErrorContains(t, err, c.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want.String(), got[0].String())
			back := storeapi.MatchersToProto(got)
			require.Len(t, back, 1)
			require.Equal(t, c.in.GetType(), back[0].GetType())
			require.Equal(t, c.in.GetName(), back[0].GetName())
			require.Equal(t, c.in.GetValue(), back[0].GetValue())
		})
	}
}
