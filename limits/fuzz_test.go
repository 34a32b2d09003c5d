package limits

import (
	"errors"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzParse checks that no overrides file makes Parse panic, and that every
// accepted file gives valid limits.
func FuzzParse(f *testing.F) {
	f.Add([]byte(overridesFile))
	f.Add([]byte("defaults: {ingestion_rate: 1e308}\ntenants: {a: {}}\n"))
	f.Add([]byte("tenants: {a: {retention: 1y}, b: null}\n"))
	f.Add([]byte("defaults: !!binary AAAA\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		c, err := Parse(content)
		if err != nil {
			return
		}
		if err := c.Defaults.Validate(); err != nil {
			t.Fatalf("accepted invalid defaults: %v", err)
		}
		for name, l := range c.Tenants {
			if err := l.Validate(); err != nil {
				t.Fatalf("accepted invalid limits of %q: %v", name, err)
			}
		}
	})
}

// FuzzCheckSeries checks that CheckSeries never panics and refuses a series
// exactly when it breaks a limit.
func FuzzCheckSeries(f *testing.F) {
	f.Add("job", "api", "instance", "host:9090", 2, 8, 10)
	f.Add("", "", "\xff", "\x00", 0, 0, 0)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, maxLabels, maxName, maxValue int) {
		l := Limits{MaxLabelsPerSeries: maxLabels, MaxLabelNameLength: maxName, MaxLabelValueLength: maxValue}
		lset := labels.FromStrings(n1, v1, n2, v2)
		err := CheckSeries(lset, l)
		over := maxLabels > 0 && lset.Len() > maxLabels
		lset.Range(func(lb labels.Label) {
			over = over || (maxName > 0 && len(lb.Name) > maxName) || (maxValue > 0 && len(lb.Value) > maxValue)
		})
		if over != (err != nil) {
			t.Fatalf("series %s, limits %+v: over=%v, err=%v", lset, l, over, err)
		}
		var le *Error
		if err != nil && !errors.As(err, &le) {
			t.Fatalf("not a *limits.Error: %v", err)
		}
	})
}
