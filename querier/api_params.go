package querier

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/stratametrics/strata/internal/apijson"
)

// Request parameters that are strata's (and Thanos') additions to the Prometheus API.
const (
	apiParamDedup               = "dedup"
	apiParamPartialResponse     = "partial_response"
	apiParamMaxSourceResolution = "max_source_resolution"
)

// RequestParams are the strata-specific parameters of one API request. They are parsed by the API
// and handed to APIOptions.Context, which stores them in the request context for the storage
// layer.
type RequestParams struct {
	// Dedup is the "dedup" parameter: merge replicas that differ only in their replica labels.
	// It defaults to true.
	Dedup bool
	// PartialResponse is the "partial_response" parameter: answer with the stores that responded,
	// and report the others as warnings, instead of failing. It defaults to true.
	PartialResponse bool
	// MaxSourceResolution is the "max_source_resolution" parameter: the coarsest downsampling
	// resolution the query may read. Zero means raw data only ("raw", "0s", or no parameter).
	// It is meaningful only when AutoDownsampling is false.
	MaxSourceResolution time.Duration
	// AutoDownsampling is true for max_source_resolution=auto, or when the parameter is absent
	// and APIOptions.AutoDownsampling is set. The Queryable then picks the resolution of each
	// selector from its step and range (AutoResolution).
	AutoDownsampling bool
	// Step is the resolution step of a range query, and zero for every other request.
	Step time.Duration
}

// apiParseRequestParams reads the strata-specific parameters of r.
func apiParseRequestParams(r *http.Request, autoDownsampling bool, step time.Duration) (RequestParams, error) {
	p := RequestParams{Dedup: true, PartialResponse: true, AutoDownsampling: autoDownsampling, Step: step}
	var err error
	if p.Dedup, err = apiParseBool(r.FormValue(apiParamDedup), true); err != nil {
		return p, fmt.Errorf("invalid parameter %q: %w", apiParamDedup, err)
	}
	if p.PartialResponse, err = apiParseBool(r.FormValue(apiParamPartialResponse), true); err != nil {
		return p, fmt.Errorf("invalid parameter %q: %w", apiParamPartialResponse, err)
	}
	switch v := r.FormValue(apiParamMaxSourceResolution); v {
	case "":
	case "auto":
		p.AutoDownsampling = true
	case "raw":
		p.AutoDownsampling = false
	default:
		d, err := apijson.ParseDuration(v)
		if err != nil {
			return p, fmt.Errorf("invalid parameter %q: %w", apiParamMaxSourceResolution, err)
		}
		if d < 0 {
			return p, fmt.Errorf("invalid parameter %q: negative resolution %q is not accepted", apiParamMaxSourceResolution, v)
		}
		p.AutoDownsampling = false
		p.MaxSourceResolution = d
	}
	return p, nil
}

func apiParseBool(s string, def bool) (bool, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseBool(s)
}

// apiParseTimeParam parses the named form value, or returns def if it is absent.
func apiParseTimeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.FormValue(name)
	if v == "" {
		return def, nil
	}
	t, err := apijson.ParseTime(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("invalid time value for '%s': %w", name, err)
	}
	return t, nil
}

// apiParseLimit parses a "limit" value; zero means no limit.
func apiParseLimit(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("limit must be non-negative")
	}
	return n, nil
}

// apiHintLimit asks the storage for one result more than the limit, so that truncation can be
// detected and reported.
func apiHintLimit(limit int) int {
	if limit > 0 && limit < math.MaxInt {
		return limit + 1
	}
	return limit
}

// apiParseMatchers parses match[] values and rejects selectors that would match every series.
func apiParseMatchers(p parser.Parser, values []string) ([][]*labels.Matcher, error) {
	sets, err := p.ParseMetricSelectors(values)
	if err != nil {
		return nil, err
	}
	for _, set := range sets {
		if !apiHasNonEmptyMatcher(set) {
			return nil, errors.New("match[] must contain at least one non-empty matcher")
		}
	}
	return sets, nil
}

func apiHasNonEmptyMatcher(set []*labels.Matcher) bool {
	for _, m := range set {
		if m != nil && !m.Matches("") {
			return true
		}
	}
	return false
}
