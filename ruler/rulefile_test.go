package ruler

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/rules"
	"github.com/stretchr/testify/require"
)

func TestLoadRuleSetStrategies(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rules.yaml")
	writeFile(t, file, `
groups:
  - name: strict
    partial_response_strategy: abort
    rules:
      - record: a
        expr: vector(1)
  - name: lenient
    partial_response_strategy: WARN
    rules:
      - record: b
        expr: vector(1)
  - name: unset
    rules:
      - record: c
        expr: vector(1)
`)
	set, err := loadRuleSet([]string{filepath.Join(dir, "*.yaml")}, nil, nil)
	require.NoError(t, err)
	require.Equal(t, []string{file}, set.files)
	require.Equal(t, map[string]bool{
		rules.GroupKey(file, "strict"):  false,
		rules.GroupKey(file, "lenient"): true,
	}, set.partial)

	for name, tc := range map[string]struct {
		content string
		want    []string
	}{
		"bad strategy": {
			content: "groups:\n  - name: g\n    partial_response_strategy: sometimes\n    rules:\n      - record: a\n        expr: vector(1)\n",
			want:    []string{`group "g"`, `partial_response_strategy "sometimes"`, `want "abort" or "warn"`},
		},
		"unknown group field": {
			content: "groups:\n  - name: g\n    colour: blue\n    rules:\n      - record: a\n        expr: vector(1)\n",
			want:    []string{"line 3", "field colour not found"},
		},
		"unknown rule field": {
			content: "groups:\n  - name: g\n    rules:\n      - record: a\n        expr: vector(1)\n        severity: page\n",
			want:    []string{"line 6", "field severity not found"},
		},
		"bad expression": {
			content: "groups:\n  - name: g\n    partial_response_strategy: warn\n    rules:\n      - record: a\n        expr: sum(\n",
			want:    []string{"5:", "unclosed left parenthesis"},
		},
	} {
		t.Run(name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			writeFile(t, bad, tc.content)
			_, err := LoadFiles([]string{bad}, nil, nil)
			require.Error(t, err)
			require.Contains(t, err.Error(), bad)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

// strategyRules has a group that aborts on partial responses, by default,
// and one that warns.
const strategyRules = `
groups:
  - name: strict
    interval: 1s
    rules:
      - record: strict:up:sum
        expr: sum by (job) (up)
  - name: lenient
    interval: 1s
    partial_response_strategy: warn
    rules:
      - record: lenient:up:sum
        expr: sum by (job) (up)
`

// TestGroupPartialResponseStrategy runs two groups against a querier whose
// every answer warns about missing data: the group that aborts records
// nothing and reports the warning as its error, the one that warns records.
func TestGroupPartialResponseStrategy(t *testing.T) {
	db := openTSDB(t)
	query := queryAPI(t, db, "store 10.0.0.7:10901 is unreachable")
	rc, recvURL := startReceiver(t, nil)
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, ruleFile, strategyRules)
	r := startRuler(t, Config{
		DataDir:         t.TempDir(),
		RuleFiles:       []string{ruleFile},
		EvalInterval:    time.Minute,
		QueryURLs:       []string{query.URL},
		RemoteWriteURLs: []string{recvURL},
		FlushDeadline:   time.Second,
	})
	require.Eventually(t, func() bool { return len(rc.find("lenient:up:sum")) > 0 }, time.Minute, 50*time.Millisecond)
	require.Equal(t, 3.0, rc.find("lenient:up:sum")[0].value)

	strict := groupRule(t, r, "strict", "strict:up:sum")
	require.Eventually(t, func() bool { return strict.LastError() != nil }, time.Minute, 50*time.Millisecond)
	require.ErrorIs(t, strict.LastError(), ErrPartialResponse)
	require.Contains(t, strict.LastError().Error(), "store 10.0.0.7:10901 is unreachable")
	require.Equal(t, rules.HealthBad, strict.Health())
	require.Empty(t, rc.find("strict:up:sum"))
}

// groupRule returns the rule named name of the group named group.
func groupRule(t *testing.T, r *Ruler, group, name string) rules.Rule {
	t.Helper()
	var names []string
	for _, g := range r.Groups() {
		for _, rule := range g.Rules() {
			if g.Name() == group && rule.Name() == name {
				return rule
			}
			names = append(names, g.Name()+"/"+rule.Name())
		}
	}
	t.Fatalf("no rule %s/%s among %s", group, name, strings.Join(names, ", "))
	return nil
}

// TestGroupLimit checks that a group's limit, which strata's strict decoding
// must let through, fails a rule that yields more series than it allows.
func TestGroupLimit(t *testing.T) {
	db := openTSDB(t)
	rc, recvURL := startReceiver(t, nil)
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	writeFile(t, ruleFile, `
groups:
  - name: limited
    interval: 1s
    limit: 2
    rules:
      - record: instance:up:sum
        expr: sum by (instance) (up)
  - name: roomy
    interval: 1s
    limit: 3
    rules:
      - record: instance:up:count
        expr: count by (instance) (up)
`)
	r := startRuler(t, Config{
		DataDir:         t.TempDir(),
		RuleFiles:       []string{ruleFile},
		EvalInterval:    time.Minute,
		QueryURLs:       []string{queryAPI(t, db).URL},
		RemoteWriteURLs: []string{recvURL},
		FlushDeadline:   time.Second,
	})
	require.Eventually(t, func() bool { return len(rc.find("instance:up:count")) >= 3 }, time.Minute, 50*time.Millisecond)
	limited := groupRule(t, r, "limited", "instance:up:sum")
	require.Eventually(t, func() bool { return limited.LastError() != nil }, time.Minute, 50*time.Millisecond)
	require.ErrorContains(t, limited.LastError(), "exceeded limit of 2 with 3 series")
	require.Empty(t, rc.find("instance:up:sum"))
}
