package storeapi

import (
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/storeapi/storepb"
)

// Errors of the Store API helpers. Classify them with errors.Is; servers turn
// them into gRPC status codes at the edge.
var (
	// ErrInvalidMatcher means a label matcher has an unknown type or an invalid
	// regular expression. It is the client's fault: gRPC InvalidArgument.
	ErrInvalidMatcher = errors.New("invalid label matcher")
	// ErrInvalidRequest means a request is malformed, for example a label values
	// request without a label name. It is gRPC InvalidArgument.
	ErrInvalidRequest = errors.New("invalid request")
)

// LabelsToProto returns ls as wire labels, in the same (sorted) order.
func LabelsToProto(ls labels.Labels) []*storepb.Label {
	out := make([]*storepb.Label, 0, ls.Len())
	ls.Range(func(l labels.Label) {
		out = append(out, &storepb.Label{Name: l.Name, Value: l.Value})
	})
	return out
}

// LabelsFromProto returns wire labels as labels.Labels, sorted by name. The
// result does not alias the messages.
func LabelsFromProto(ls []*storepb.Label) labels.Labels {
	b := labels.NewScratchBuilder(len(ls))
	for _, l := range ls {
		b.Add(l.GetName(), l.GetValue())
	}
	b.Sort()
	return b.Labels()
}

// MatchersFromProto converts wire matchers to Prometheus matchers. An unknown
// type or a regular expression that does not compile is an error wrapping
// ErrInvalidMatcher that names the matcher.
func MatchersFromProto(ms []*storepb.LabelMatcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, 0, len(ms))
	for _, m := range ms {
		var t labels.MatchType
		switch m.GetType() {
		case storepb.LabelMatcher_EQ:
			t = labels.MatchEqual
		case storepb.LabelMatcher_NEQ:
			t = labels.MatchNotEqual
		case storepb.LabelMatcher_RE:
			t = labels.MatchRegexp
		case storepb.LabelMatcher_NRE:
			t = labels.MatchNotRegexp
		default:
			return nil, fmt.Errorf("%w: unknown type %d for label %q", ErrInvalidMatcher, m.GetType(), m.GetName())
		}
		pm, err := labels.NewMatcher(t, m.GetName(), m.GetValue())
		if err != nil {
			return nil, fmt.Errorf("%w: %s%s%q: %v", ErrInvalidMatcher, m.GetName(), t, m.GetValue(), err)
		}
		out = append(out, pm)
	}
	return out, nil
}

// MatchersToProto converts Prometheus matchers to wire matchers.
func MatchersToProto(ms []*labels.Matcher) []*storepb.LabelMatcher {
	out := make([]*storepb.LabelMatcher, 0, len(ms))
	for _, m := range ms {
		var t storepb.LabelMatcher_Type
		switch m.Type {
		case labels.MatchEqual:
			t = storepb.LabelMatcher_EQ
		case labels.MatchNotEqual:
			t = storepb.LabelMatcher_NEQ
		case labels.MatchRegexp:
			t = storepb.LabelMatcher_RE
		case labels.MatchNotRegexp:
			t = storepb.LabelMatcher_NRE
		}
		out = append(out, &storepb.LabelMatcher{Type: t, Name: m.Name, Value: m.Value})
	}
	return out
}
