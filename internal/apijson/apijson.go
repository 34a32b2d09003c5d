// Package apijson writes the parts of Prometheus HTTP API answers that need
// care to match Prometheus' own bytes: timestamps, sample values, label sets
// and strings, and reads time and duration parameters as Prometheus does.
// The querier and the query frontend both use it, so that an answer through
// the frontend is byte for byte the querier's and both read a request alike.
//
// Prometheus' codec is built on jsoniter. Two details of it are matched on
// purpose:
//   - Label names and values are written without HTML escaping ("<" stays
//     "<"), while every other string of the envelope (errors, warnings, label
//     name and value lists) is HTML-escaped as encoding/json does.
//   - Sample values are quoted strings formatted with 'f' and the shortest
//     precision, except that magnitudes below 1e-6 or at or above 1e21 use
//     'e', like encoding/json does for numbers.
package apijson

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
)

const hexDigits = "0123456789abcdef"

// AppendTimestamp writes a millisecond timestamp as a JSON number of seconds. A whole second
// has no fraction ("1435781451"); otherwise the fraction always has three digits ("1.100",
// "-0.001"), exactly as Prometheus writes it.
func AppendTimestamp(b []byte, t int64) []byte {
	if t < 0 {
		b = append(b, '-')
		t = -t
	}
	b = strconv.AppendInt(b, t/1000, 10)
	if frac := t % 1000; frac != 0 {
		b = append(b, '.')
		if frac < 100 {
			b = append(b, '0')
		}
		if frac < 10 {
			b = append(b, '0')
		}
		b = strconv.AppendInt(b, frac, 10)
	}
	return b
}

// AppendFloat writes a sample value as a quoted string: "1.5", "+Inf", "-Inf", "NaN".
func AppendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = append(b, '"')
	b = strconv.AppendFloat(b, f, format, -1, 64)
	return append(b, '"')
}

// AppendLabels writes a label set as a JSON object in label order.
func AppendLabels(b []byte, ls labels.Labels) []byte {
	b = append(b, '{')
	first := true
	ls.Range(func(l labels.Label) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = AppendLabelString(b, l.Name)
		b = append(b, ':')
		b = AppendLabelString(b, l.Value)
	})
	return append(b, '}')
}

// AppendLabelString quotes a label name or value the way Prometheus does: control characters,
// quotes and backslashes are escaped, HTML characters are not. Invalid UTF-8 becomes U+FFFD so
// that the output stays valid JSON.
func AppendLabelString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendString quotes s like encoding/json does, HTML escaping included.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // Marshalling a string cannot fail.
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
