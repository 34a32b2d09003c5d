package ruler

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"go.yaml.in/yaml/v3"
)

// PartialResponseStrategyField is the rule group field, beyond Prometheus'
// rule file format, that sets how the group's queries treat an answer with
// missing data: "abort" (the default) fails the evaluation, "warn" accepts it
// and logs the warning.
const PartialResponseStrategyField = "partial_response_strategy"

// Partial response strategies of a rule group.
const (
	StrategyAbort = "abort"
	StrategyWarn  = "warn"
)

// ruleFile is a rule file as strata reads it: Prometheus' format plus
// PartialResponseStrategyField on groups. Decoding strictly into it rejects
// every other unknown field, as Prometheus does.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	rulefmt.RuleGroup       `yaml:",inline"`
	PartialResponseStrategy string `yaml:"partial_response_strategy,omitempty"`
}

// ruleSet is a validated set of rule files.
type ruleSet struct {
	files []string
	// partial maps rules.GroupKey(file, group) to whether the group accepts
	// partial responses; groups that set no strategy are absent.
	partial map[string]bool
}

// LoadFiles expands the glob patterns and validates every rule file found:
// Prometheus' rulefmt checks, expressions included, plus the groups'
// partial_response_strategy. The error names each invalid file. A pattern that
// matches nothing is logged, not an error, so that a directory may start
// empty. It returns the files, sorted.
func LoadFiles(patterns []string, p parser.Parser, logger *slog.Logger) ([]string, error) {
	set, err := loadRuleSet(patterns, p, logger)
	if err != nil {
		return nil, err
	}
	return set.files, nil
}

func loadRuleSet(patterns []string, p parser.Parser, logger *slog.Logger) (*ruleSet, error) {
	if p == nil {
		p = parser.NewParser(parser.Options{})
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	set := &ruleSet{partial: map[string]bool{}}
	for _, pat := range patterns {
		matches, err := filepath.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("rule file pattern %q: %w", pat, err)
		}
		if len(matches) == 0 {
			logger.Warn("rule file pattern matches no file", "pattern", pat)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				set.files = append(set.files, m)
			}
		}
	}
	sort.Strings(set.files)
	var errs []error
	for _, f := range set.files {
		_, strategies, ferrs := parseRuleFile(f, p, logger)
		errs = append(errs, ferrs...)
		for group, partial := range strategies {
			set.partial[rules.GroupKey(f, group)] = partial
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// parseRuleFile reads and validates one rule file. It returns the groups in
// Prometheus' form and, by group name, whether the groups that set a strategy
// accept partial responses. Every error is prefixed with the file name.
func parseRuleFile(file string, p parser.Parser, logger *slog.Logger) (*rulefmt.RuleGroups, map[string]bool, []error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, []error{fmt.Errorf("%s: %w", file, err)}
	}
	strategies, errs := groupStrategies(b)
	if len(errs) == 0 {
		// Unknown fields were rejected above; Prometheus' parser must only
		// skip the strategy field.
		var groups *rulefmt.RuleGroups
		groups, errs = rulefmt.Parse(b, true, model.UTF8Validation, p, logger)
		if len(errs) == 0 {
			return groups, strategies, nil
		}
	}
	for i := range errs {
		errs[i] = fmt.Errorf("%s: %w", file, errs[i])
	}
	return nil, nil, errs
}

// groupStrategies decodes content strictly as a rule file with strategies and
// returns the strategies set, by group name.
func groupStrategies(content []byte) (map[string]bool, []error) {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	var f ruleFile
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, []error{err}
	}
	var errs []error
	strategies := map[string]bool{}
	for _, g := range f.Groups {
		switch s := strings.ToLower(g.PartialResponseStrategy); s {
		case "":
		case StrategyAbort, StrategyWarn:
			strategies[g.Name] = s == StrategyWarn
		default:
			errs = append(errs, fmt.Errorf("group %q: %s %q: want %q or %q", g.Name, PartialResponseStrategyField, g.PartialResponseStrategy, StrategyAbort, StrategyWarn))
		}
	}
	return strategies, errs
}

// fileLoader is the rule manager's GroupLoader: it reads files as LoadFiles
// validates them.
type fileLoader struct {
	parser parser.Parser
	logger *slog.Logger
}

// Load implements rules.GroupLoader.
func (l fileLoader) Load(file string, _ bool, _ model.ValidationScheme) (*rulefmt.RuleGroups, []error) {
	groups, _, errs := parseRuleFile(file, l.parser, l.logger)
	return groups, errs
}

// Parse implements rules.GroupLoader.
func (l fileLoader) Parse(query string) (parser.Expr, error) { return l.parser.ParseExpr(query) }
