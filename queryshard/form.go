package queryshard

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The form parameters of a shard selector.
const (
	// ParamShard is "<index>_of_<total>", for example 0_of_3.
	ParamShard = "shard"
	// ParamShardBy is a comma-separated list of the label names that Selector.By hashes.
	ParamShardBy = "shard_by"
	// ParamShardWithout is a comma-separated list of the label names left out of the hash;
	// empty means every label.
	ParamShardWithout = "shard_without"
)

// maxTotal bounds the shard count a form may ask for. More shards than this
// would only multiply the work of a query.
const maxTotal = 1 << 16

// AddTo sets the shard parameters of s in v, replacing any there. s should be
// valid; AddTo encodes whatever it holds.
func (s Selector) AddTo(v url.Values) {
	v.Set(ParamShard, strconv.Itoa(s.Index)+"_of_"+strconv.Itoa(s.Total))
	list := strings.Join(s.Labels, ",")
	if s.By {
		v.Del(ParamShardWithout)
		v.Set(ParamShardBy, list)
	} else {
		v.Del(ParamShardBy)
		v.Set(ParamShardWithout, list)
	}
}

// FromForm reads a shard selector from v, which comes from an untrusted
// request. ok is false, with no error, when v has none of the shard
// parameters. Otherwise shard and exactly one of shard_by and shard_without
// must be given once each, and the result is valid (Selector.Validate) with
// its Labels sorted and without duplicates. Errors name the parameter, as in
// `invalid parameter "shard": ...`.
func FromForm(v url.Values) (s Selector, ok bool, err error) {
	shard, hasShard := v[ParamShard]
	by, hasBy := v[ParamShardBy]
	without, hasWithout := v[ParamShardWithout]
	switch {
	case !hasShard && !hasBy && !hasWithout:
		return Selector{}, false, nil
	case !hasShard && hasBy:
		return Selector{}, false, paramError(ParamShardBy, errors.New("requires parameter \"shard\""))
	case !hasShard:
		return Selector{}, false, paramError(ParamShardWithout, errors.New("requires parameter \"shard\""))
	case hasBy && hasWithout:
		return Selector{}, false, paramError(ParamShardWithout, errors.New("cannot be combined with \"shard_by\""))
	case !hasBy && !hasWithout:
		return Selector{}, false, paramError(ParamShard, errors.New("requires parameter \"shard_by\" or \"shard_without\""))
	}
	one := func(name string, vals []string) (string, error) {
		if len(vals) != 1 {
			return "", paramError(name, errors.New("given more than once"))
		}
		return vals[0], nil
	}
	spec, err := one(ParamShard, shard)
	if err != nil {
		return Selector{}, false, err
	}
	if s.Index, s.Total, err = parseShard(spec); err != nil {
		return Selector{}, false, paramError(ParamShard, err)
	}
	name, vals := ParamShardWithout, without
	if hasBy {
		name, vals, s.By = ParamShardBy, by, true
	}
	list, err := one(name, vals)
	if err != nil {
		return Selector{}, false, err
	}
	if list != "" {
		s.Labels = strings.Split(list, ",")
		slices.Sort(s.Labels)
		s.Labels = slices.Compact(s.Labels)
	}
	if s.By && len(s.Labels) == 0 {
		return Selector{}, false, paramError(name, errors.New("names no label"))
	}
	for _, n := range s.Labels {
		if err := validLabelName(n); err != nil {
			return Selector{}, false, paramError(name, err)
		}
	}
	return s, true, nil
}

// parseShard parses "<index>_of_<total>": decimal digits only, no sign.
func parseShard(spec string) (index, total int, err error) {
	is, ts, found := strings.Cut(spec, "_of_")
	if !found {
		return 0, 0, fmt.Errorf("%q is not of the form <index>_of_<total>", spec)
	}
	if index, err = parseCount(is); err != nil {
		return 0, 0, fmt.Errorf("shard index: %w", err)
	}
	if total, err = parseCount(ts); err != nil {
		return 0, 0, fmt.Errorf("shard count: %w", err)
	}
	switch {
	case total < 2:
		return 0, 0, fmt.Errorf("shard count %d is below 2", total)
	case total > maxTotal:
		return 0, 0, fmt.Errorf("shard count %d is above %d", total, maxTotal)
	case index >= total:
		return 0, 0, fmt.Errorf("shard index %d is not below the shard count %d", index, total)
	}
	return index, total, nil
}

// parseCount parses a non-negative decimal of at most 6 digits, which cannot
// overflow and covers every valid index and count.
func parseCount(s string) (int, error) {
	if s == "" || len(s) > 6 {
		return 0, fmt.Errorf("%q is not a number of 1 to 6 digits", s)
	}
	n := 0
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

func paramError(name string, err error) error {
	return fmt.Errorf("invalid parameter %q: %w", name, err)
}
