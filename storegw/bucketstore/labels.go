package bucketstore

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/block"
)

// labelNames returns the label names of the block's series that match ms, as
// clients see them. The time filter is the whole block: mint and maxt only bound
// the series read when there are matchers on series labels.
func (b *Block) labelNames(ctx context.Context, mint, maxt int64, ms []*labels.Matcher, without []string) ([]string, error) {
	index, ok := b.plan(ms)
	if !ok {
		return nil, nil
	}
	if len(index) == 0 {
		ext, drop := b.visible(without)
		names := b.hdr.LabelNames()
		names = slices.DeleteFunc(names, func(n string) bool {
			return slices.Contains(drop, n) || (n == block.AggregateLabel && b.downsampled())
		})
		ext.Range(func(l labels.Label) { names = append(names, l.Name) })
		return names, nil
	}
	ss, err := b.series(ctx, Query{MinTime: mint, MaxTime: maxt, Matchers: ms, SkipChunks: true, WithoutReplicaLabels: without}, nil)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range ss {
		s.Labels.Range(func(l labels.Label) { names = append(names, l.Name) })
	}
	return names, nil
}

// labelValues returns the values of label name on the block's series that match
// ms, as clients see them.
func (b *Block) labelValues(ctx context.Context, mint, maxt int64, name string, ms []*labels.Matcher, without []string) ([]string, error) {
	index, ok := b.plan(ms)
	if !ok {
		return nil, nil
	}
	ext, _ := b.visible(without)
	if b.ext.Has(name) && !ext.Has(name) {
		return nil, nil // a dropped replica label
	}
	if name == block.AggregateLabel && b.downsampled() && !ext.Has(name) {
		return nil, nil // clients see the series without it
	}
	if len(index) == 0 {
		if ext.Has(name) {
			return []string{ext.Get(name)}, nil
		}
		return b.hdr.LabelValues(name), nil
	}
	ss, err := b.series(ctx, Query{MinTime: mint, MaxTime: maxt, Matchers: ms, SkipChunks: true, WithoutReplicaLabels: without}, nil)
	if err != nil {
		return nil, err
	}
	var values []string
	for _, s := range ss {
		if v := s.Labels.Get(name); v != "" {
			values = append(values, v)
		}
	}
	return values, nil
}
