package storeapi

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// The serve functions implement the Store and Info APIs over a set of TSDB
// stores: one for a TSDBStore, every tenant's for a MultiStore.

// serveSeries answers a Series request from stores. Each store's series are
// collected with their external labels attached, then all of them are sorted
// together, so that the stream is sorted by the labels the client sees whatever
// the external labels do to the TSDBs' own order.
func serveSeries(ctx context.Context, r *storepb.SeriesRequest, srv storepb.Store_SeriesServer, stores []*TSDBStore) (err error) {
	ms, err := MatchersFromProto(r.GetMatchers())
	if err != nil {
		return GRPCError(ctx, err)
	}

	var (
		all      []Series
		warnings []string
		closers  []func()
	)
	// Chunk bytes alias the queriers' memory until everything is sent.
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for _, s := range stores {
		var (
			w       []string
			closeFn func()
		)
		all, w, closeFn, err = s.selectSeries(ctx, r, ms, all)
		if err != nil {
			return GRPCError(ctx, err)
		}
		closers = append(closers, closeFn)
		warnings = append(warnings, w...)
	}

	all = MergeSeries(all)
	if limit := r.GetLimit(); limit > 0 && int64(len(all)) > limit {
		all = all[:limit]
	}
	for _, w := range warnings {
		if err := srv.Send(&storepb.SeriesResponse{Result: &storepb.SeriesResponse_Warning{Warning: w}}); err != nil {
			return GRPCError(ctx, fmt.Errorf("send warning: %w", err))
		}
	}
	return GRPCError(ctx, SendSeries(srv, all, r.GetResponseBatchSize()))
}

// MergeSeries sorts series by labels and joins series with equal labels (from
// different stores, or different TSDB series that the external labels made
// equal) into one, with chunks sorted by min time.
func MergeSeries(all []Series) []Series {
	slices.SortStableFunc(all, func(a, b Series) int { return labels.Compare(a.Labels, b.Labels) })
	out := all[:0]
	for _, s := range all {
		if n := len(out); n > 0 && labels.Equal(out[n-1].Labels, s.Labels) {
			out[n-1].Chunks = append(out[n-1].Chunks, s.Chunks...)
			continue
		}
		out = append(out, s)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Chunks, func(a, b *storepb.AggrChunk) int {
			if c := cmp.Compare(a.GetMinTime(), b.GetMinTime()); c != 0 {
				return c
			}
			return cmp.Compare(a.GetMaxTime(), b.GetMaxTime())
		})
	}
	return out
}

// SendSeries streams sorted series, batchSize per frame when batchSize > 1.
func SendSeries(srv storepb.Store_SeriesServer, all []Series, batchSize int64) error {
	if batchSize <= 1 {
		for _, s := range all {
			resp := &storepb.SeriesResponse{Result: &storepb.SeriesResponse_Series{Series: s.proto()}}
			if err := srv.Send(resp); err != nil {
				return fmt.Errorf("send series: %w", err)
			}
		}
		return nil
	}
	for batch := range slices.Chunk(all, int(min(batchSize, math.MaxInt32))) {
		b := &storepb.SeriesBatch{Series: make([]*storepb.Series, 0, len(batch))}
		for _, s := range batch {
			b.Series = append(b.Series, s.proto())
		}
		if err := srv.Send(&storepb.SeriesResponse{Result: &storepb.SeriesResponse_Batch{Batch: b}}); err != nil {
			return fmt.Errorf("send series batch: %w", err)
		}
	}
	return nil
}

func (s Series) proto() *storepb.Series {
	return &storepb.Series{Labels: LabelsToProto(s.Labels), Chunks: s.Chunks}
}

// serveLabelNames answers a LabelNames request from stores.
func serveLabelNames(ctx context.Context, r *storepb.LabelNamesRequest, stores []*TSDBStore) (*storepb.LabelNamesResponse, error) {
	ms, err := MatchersFromProto(r.GetMatchers())
	if err != nil {
		return nil, GRPCError(ctx, err)
	}
	resp := &storepb.LabelNamesResponse{}
	for _, s := range stores {
		names, warnings, err := s.labelNames(ctx, r, ms)
		if err != nil {
			return nil, GRPCError(ctx, err)
		}
		resp.Names = append(resp.Names, names...)
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	resp.Names = SortedLimited(resp.Names, r.GetLimit())
	return resp, nil
}

// serveLabelValues answers a LabelValues request from stores.
func serveLabelValues(ctx context.Context, r *storepb.LabelValuesRequest, stores []*TSDBStore) (*storepb.LabelValuesResponse, error) {
	if r.GetLabel() == "" {
		return nil, GRPCError(ctx, fmt.Errorf("%w: label name is empty", ErrInvalidRequest))
	}
	ms, err := MatchersFromProto(r.GetMatchers())
	if err != nil {
		return nil, GRPCError(ctx, err)
	}
	resp := &storepb.LabelValuesResponse{}
	for _, s := range stores {
		values, warnings, err := s.labelValues(ctx, r, ms)
		if err != nil {
			return nil, GRPCError(ctx, err)
		}
		resp.Values = append(resp.Values, values...)
		resp.Warnings = append(resp.Warnings, warnings...)
	}
	resp.Values = SortedLimited(resp.Values, r.GetLimit())
	return resp, nil
}

// SortedLimited sorts and de-duplicates label names or values and keeps the
// first limit (if > 0), as LabelNames and LabelValues answer them.
func SortedLimited(ss []string, limit int64) []string {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	if limit > 0 && int64(len(ss)) > limit {
		ss = ss[:limit]
	}
	return ss
}

// serveInfo describes stores: one label set per distinct external label set,
// and the union of their time ranges. Without stores the time range is empty
// (min > max), so that clients skip the component until data arrives.
func serveInfo(ctx context.Context, component string, stores []*TSDBStore) (*infopb.InfoResponse, error) {
	info := &infopb.StoreInfo{
		MinTime:                      math.MaxInt64,
		MaxTime:                      math.MinInt64,
		SupportsWithoutReplicaLabels: true,
	}
	resp := &infopb.InfoResponse{ComponentType: component, Store: info}
	var sets []labels.Labels
	for _, s := range stores {
		mint, maxt, err := s.timeRange()
		if err != nil {
			return nil, GRPCError(ctx, err)
		}
		info.MinTime, info.MaxTime = min(info.MinTime, mint), max(info.MaxTime, maxt)
		if !s.extLabels.IsEmpty() {
			sets = append(sets, s.extLabels)
		}
	}
	slices.SortFunc(sets, labels.Compare)
	sets = slices.CompactFunc(sets, labels.Equal)
	for _, ls := range sets {
		resp.LabelSets = append(resp.LabelSets, &storepb.LabelSet{Labels: LabelsToProto(ls)})
	}
	return resp, nil
}
