package receive

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/stratametrics/strata/limits"
)

// Permanent per-series and per-sample errors. Each rejects data for good (the
// request gets a 400); classify them with errors.Is.
var (
	// errInvalidLabels means a series' label set breaks the Remote-Write rules.
	errInvalidLabels = errors.New("invalid labels")
	// errBadSymbolRef means a Remote-Write 2.0 series refers to a symbol that does
	// not exist, or has an odd number of label references.
	errBadSymbolRef = errors.New("invalid symbol reference")
	// errTooFarInFuture means a sample is further ahead of the receiver's clock
	// than Options.MaxFutureSkew allows.
	errTooFarInFuture = fmt.Errorf("%w: timestamp is too far in the future", storage.ErrOutOfBounds)
	// errInvalidResetHint means a histogram carries an unknown counter reset hint.
	errInvalidResetHint = errors.New("unknown counter reset hint")
)

// reason is why data was not written; its string is a metric label value, so the
// set is fixed.
type reason uint8

const (
	reasonInvalidLabels reason = iota
	reasonInvalidSeries
	reasonInvalidHistogram
	reasonOutOfOrder
	reasonOutOfBounds
	reasonTooOld
	reasonDuplicate
	reasonTooFarInFuture
	reasonOther
	reasonLabelLimit  // a tenant's label limits (400)
	reasonSeriesLimit // the tenant's max_active_series (429, not permanent)
	numReasons
)

var reasonNames = [numReasons]string{
	reasonInvalidLabels:    "invalid_labels",
	reasonInvalidSeries:    "invalid_series",
	reasonInvalidHistogram: "invalid_histogram",
	reasonOutOfOrder:       "out_of_order",
	reasonOutOfBounds:      "out_of_bounds",
	reasonTooOld:           "too_old",
	reasonDuplicate:        "duplicate_timestamp",
	reasonTooFarInFuture:   "too_far_in_future",
	reasonOther:            "other",
	reasonLabelLimit:       "label_limit",
	reasonSeriesLimit:      "max_active_series",
}

// seriesReason is why a series whose decoding or checks set its err is rejected.
func seriesReason(err error) reason {
	if _, ok := errors.AsType[*limits.Error](err); ok {
		return reasonLabelLimit
	}
	return reasonInvalidSeries
}

// exemplarReason is why an exemplar was not written; a fixed set of label values.
type exemplarReason uint8

const (
	exemplarInvalid        exemplarReason = iota // bad labels
	exemplarStorage                              // storage refused it (out of order, too long, ...)
	exemplarNoSample                             // nothing in the request to attach it to
	exemplarSampleRejected                       // the sample it was attached to was rejected
	exemplarSeriesRejected                       // its series was rejected
	exemplarDisabled                             // Options.DisableExemplars
	numExemplarReasons
)

var exemplarReasonNames = [numExemplarReasons]string{
	exemplarInvalid:        "invalid",
	exemplarStorage:        "storage",
	exemplarNoSample:       "no_sample",
	exemplarSampleRejected: "sample_rejected",
	exemplarSeriesRejected: "series_rejected",
	exemplarDisabled:       "disabled",
}

// classifyAppendError maps an error of AppenderV2.Append to the reason a sample
// is permanently rejected. ok is false for errors that are not known to be
// permanent: those are treated as transient.
func classifyAppendError(err error) (r reason, ok bool) {
	var herr histogram.Error
	switch {
	case errors.Is(err, storage.ErrOutOfOrderSample):
		return reasonOutOfOrder, true
	case errors.Is(err, storage.ErrTooOldSample):
		return reasonTooOld, true
	case errors.Is(err, storage.ErrOutOfBounds):
		return reasonOutOfBounds, true
	case errors.Is(err, storage.ErrDuplicateSampleForTimestamp):
		return reasonDuplicate, true
	case errors.As(err, &herr):
		return reasonInvalidHistogram, true
	case errors.Is(err, storage.ErrNativeHistogramsDisabled),
		errors.Is(err, tsdb.ErrInvalidSample),
		errors.Is(err, tsdb.ErrInvalidExemplar),
		errors.Is(err, storage.ErrOutOfOrderExemplar),
		errors.Is(err, storage.ErrExemplarLabelLength):
		return reasonOther, true
	}
	return 0, false
}

// checkSeriesLabels validates the labels of one series as they were sent, and
// returns the metric name. The rules, from the Remote-Write 1.0 and 2.0 specs:
// the set is not empty; names are not empty; names and values are valid UTF-8
// (UTF-8 names are allowed, as in Prometheus 3); names are strictly increasing,
// which also rules out duplicates; and there is a non-empty __name__.
//
// Empty values: both specs say senders MUST NOT send them, but Prometheus' own
// receiver and TSDB accept them and drop the label, because in the Prometheus data
// model a label with an empty value is the same as no label. We do the same, so a
// sender that slips up does not lose data; the empty label takes part in the
// sorting and duplicate checks but is not stored.
//
// With validUTF8 set the caller vouches that every name and value is valid UTF-8.
func checkSeriesLabels(ls []wireLabel, validUTF8 bool) (name string, err error) {
	if len(ls) == 0 {
		return "", fmt.Errorf("%w: empty label set", errInvalidLabels)
	}
	prev := ""
	for i, l := range ls {
		if l.name == "" {
			return "", fmt.Errorf("%w: empty label name", errInvalidLabels)
		}
		if i > 0 {
			switch c := strings.Compare(l.name, prev); {
			case c == 0:
				return "", fmt.Errorf("%w: duplicate label name %q", errInvalidLabels, l.name)
			case c < 0:
				return "", fmt.Errorf("%w: labels not sorted by name: %q after %q", errInvalidLabels, l.name, prev)
			}
		}
		prev = l.name
		if !validUTF8 {
			if !utf8.ValidString(l.name) {
				return "", fmt.Errorf("%w: label name %q is not valid UTF-8", errInvalidLabels, l.name)
			}
			if !utf8.ValidString(l.value) {
				return "", fmt.Errorf("%w: value of label %q is not valid UTF-8", errInvalidLabels, l.name)
			}
		}
		if l.name == model.MetricNameLabel {
			name = l.value
		}
	}
	if name == "" {
		return "", fmt.Errorf("%w: missing metric name (%s)", errInvalidLabels, model.MetricNameLabel)
	}
	return name, nil
}

// checkExemplarLabels validates an exemplar's labels: names are non-empty and
// unique, names and values valid UTF-8. Exemplar labels need not be sorted; the
// length limit is enforced by storage.
func checkExemplarLabels(ls []wireLabel, validUTF8 bool) error {
	for i, l := range ls {
		if l.name == "" || !validUTF8 && (!utf8.ValidString(l.name) || !utf8.ValidString(l.value)) {
			return errors.New("invalid exemplar label")
		}
		for _, o := range ls[:i] {
			if o.name == l.name {
				return errors.New("duplicate exemplar label")
			}
		}
	}
	return nil
}

// checkHistogram validates a native histogram before it goes to storage.
func checkHistogram(w *wireHistogram) error {
	if !validResetHint(w.hint) {
		return fmt.Errorf("%w %d", errInvalidResetHint, w.hint)
	}
	if w.fh != nil {
		return w.fh.Validate()
	}
	return w.h.Validate()
}

// isStale reports whether a histogram sample is a stale marker.
func (w *wireHistogram) isStale() bool {
	if w.fh != nil {
		return value.IsStaleNaN(w.fh.Sum)
	}
	return value.IsStaleNaN(w.h.Sum)
}

// buildLabels adds the labels of a validated series to b, leaving out labels with
// an empty value.
func buildLabels(b *labels.ScratchBuilder, ls []wireLabel) {
	b.Reset()
	for _, l := range ls {
		if l.value != "" {
			addLabel(b, l.name, l.value)
		}
	}
}

// ownedLabels returns the labels built in b as a Labels value that shares no
// memory with the request body or with b (see addLabel).
func ownedLabels(b *labels.ScratchBuilder) labels.Labels {
	return b.Labels()
}

// buildExemplar returns an exemplar with owned labels.
func buildExemplar(b *labels.ScratchBuilder, ls []wireLabel, v float64, t int64) exemplar.Exemplar {
	buildLabels(b, ls)
	b.Sort()
	return exemplar.Exemplar{Labels: ownedLabels(b), Value: v, Ts: t, HasTs: t != 0}
}

// maxSeriesString bounds how much of a series' labels an error message quotes.
const maxSeriesString = 512

// formatSeries formats labels as they were sent, like labels.Labels.String, for
// error messages. Long label sets are cut short.
func formatSeries(ls []wireLabel) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			sb.WriteString(", ")
		}
		if isSimpleName(l.name) {
			sb.WriteString(l.name)
		} else {
			sb.WriteString(strconv.Quote(l.name))
		}
		sb.WriteByte('=')
		sb.WriteString(strconv.Quote(l.value))
		if sb.Len() > maxSeriesString {
			return sb.String()[:maxSeriesString] + "...}"
		}
	}
	sb.WriteByte('}')
	return sb.String()
}

func isSimpleName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0) {
			return false
		}
	}
	return true
}
