package storeapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

// TSDBReader is the storage a TSDBStore serves. *tsdb.DB satisfies it. Both
// methods must be safe for concurrent use; the store closes every querier it
// opens, and uses the chunk bytes of a querier only until it closes it.
type TSDBReader interface {
	// ChunkQuerier returns a querier over the chunks in [mint, maxt] milliseconds.
	ChunkQuerier(mint, maxt int64) (storage.ChunkQuerier, error)
	// StartTime returns the oldest timestamp held, in milliseconds.
	StartTime() (int64, error)
}

// TSDBStore serves the Store API (storepb.StoreServer) and the Info API
// (infopb.InfoServer) over one Prometheus TSDB whose series all carry the same
// external labels. It is safe for concurrent use.
type TSDBStore struct {
	storepb.UnimplementedStoreServer
	infopb.UnimplementedInfoServer

	db        TSDBReader
	extLabels labels.Labels
	component string
	logger    *slog.Logger
}

// NewTSDBStore returns a store over db whose series get extLabels attached; an
// external label replaces a series label of the same name. component is the
// ComponentType the Info API reports, for example "receive".
func NewTSDBStore(db TSDBReader, extLabels labels.Labels, component string, logger *slog.Logger) *TSDBStore {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &TSDBStore{db: db, extLabels: extLabels, component: component, logger: logger}
}

// ExternalLabels returns the labels the store attaches to every series.
func (s *TSDBStore) ExternalLabels() labels.Labels { return s.extLabels }

// Series streams the matching series, sorted by their labels.
func (s *TSDBStore) Series(r *storepb.SeriesRequest, srv storepb.Store_SeriesServer) error {
	return serveSeries(srv.Context(), r, srv, []*TSDBStore{s})
}

// LabelNames returns the label names of the matching series, external labels included.
func (s *TSDBStore) LabelNames(ctx context.Context, r *storepb.LabelNamesRequest) (*storepb.LabelNamesResponse, error) {
	return serveLabelNames(ctx, r, []*TSDBStore{s})
}

// LabelValues returns the values of one label of the matching series.
func (s *TSDBStore) LabelValues(ctx context.Context, r *storepb.LabelValuesRequest) (*storepb.LabelValuesResponse, error) {
	return serveLabelValues(ctx, r, []*TSDBStore{s})
}

// Info reports the external labels and the time range of the store.
func (s *TSDBStore) Info(ctx context.Context, _ *infopb.InfoRequest) (*infopb.InfoResponse, error) {
	return serveInfo(ctx, s.component, []*TSDBStore{s})
}

// allSeries selects every series of a TSDB: the index's all-postings key.
var allSeries = []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "", "")}

// plan is what a request means for one store once its external labels are applied.
type plan struct {
	// empty is set when a matcher on an external label fails: no series match.
	empty bool
	// matchers are the request's matchers minus those on external labels.
	matchers []*labels.Matcher
	// ext are the external labels to attach, replica labels to drop removed.
	ext labels.Labels
	// drop are the external labels the request asked to leave out.
	drop []string
}

func (s *TSDBStore) plan(ms []*labels.Matcher, withoutReplicaLabels []string) plan {
	var p plan
	for _, m := range ms {
		if s.extLabels.Has(m.Name) {
			if !m.Matches(s.extLabels.Get(m.Name)) {
				return plan{empty: true}
			}
			continue
		}
		p.matchers = append(p.matchers, m)
	}
	b := labels.NewBuilder(s.extLabels)
	for _, name := range withoutReplicaLabels {
		if s.extLabels.Has(name) {
			p.drop = append(p.drop, name)
			b.Del(name)
		}
	}
	p.ext = b.Labels()
	return p
}

// attach returns lset with p's external labels set and its dropped labels removed.
func (p plan) attach(b *labels.Builder, lset labels.Labels) labels.Labels {
	b.Reset(lset)
	p.ext.Range(func(l labels.Label) { b.Set(l.Name, l.Value) })
	b.Del(p.drop...)
	return b.Labels()
}

// Series is one series of a response before it is sent: its labels as clients
// see them and its chunks.
type Series struct {
	Labels labels.Labels
	Chunks []*storepb.AggrChunk
}

// selectSeries appends the store's matching series to out, in no particular
// order. The chunk bytes alias the querier's, so the caller must call closeFn
// only after it has sent them.
func (s *TSDBStore) selectSeries(ctx context.Context, r *storepb.SeriesRequest, ms []*labels.Matcher, out []Series) (_ []Series, warnings []string, closeFn func(), err error) {
	p := s.plan(ms, r.GetWithoutReplicaLabels())
	if p.empty {
		return out, nil, func() {}, nil
	}
	matchers := p.matchers
	if len(matchers) == 0 {
		matchers = allSeries
	}
	q, err := s.db.ChunkQuerier(r.GetMinTime(), r.GetMaxTime())
	if err != nil {
		return out, nil, nil, fmt.Errorf("open chunk querier: %w", err)
	}
	// The error returns below set the named closeFn to nil, so the cleanup must
	// not go through it.
	closeQuerier := func() {
		if err := q.Close(); err != nil {
			s.logger.Warn("close chunk querier", "err", err)
		}
	}
	defer func() {
		if err != nil {
			closeQuerier()
		}
	}()

	// Whole chunks, untrimmed: the contract lets chunks overlap the range, and
	// re-encoding a trimmed head chunk would lose its first sample's counter-reset hint.
	hints := &storage.SelectHints{Start: r.GetMinTime(), End: r.GetMaxTime(), DisableTrimming: true}
	if r.GetSkipChunks() {
		hints.Func = "series"
	}
	set := q.Select(ctx, true, hints, matchers...)
	var (
		b  = labels.NewBuilder(labels.EmptyLabels())
		it chunks.Iterator
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return out, nil, nil, err
		}
		cs := set.At()
		sr := Series{Labels: p.attach(b, cs.Labels())}
		if !r.GetSkipChunks() {
			it = cs.Iterator(it)
			for it.Next() {
				m := it.At()
				if m.MaxTime < r.GetMinTime() || m.MinTime > r.GetMaxTime() {
					continue
				}
				raw, err := ChunkToProto(m.Chunk)
				if err != nil {
					return out, nil, nil, fmt.Errorf("series %s: %w", cs.Labels(), err)
				}
				sr.Chunks = append(sr.Chunks, &storepb.AggrChunk{MinTime: m.MinTime, MaxTime: m.MaxTime, Raw: raw})
			}
			if err := it.Err(); err != nil {
				return out, nil, nil, fmt.Errorf("iterate chunks of %s: %w", cs.Labels(), err)
			}
			if len(sr.Chunks) == 0 {
				continue
			}
		}
		out = append(out, sr)
	}
	if err := set.Err(); err != nil {
		return out, nil, nil, fmt.Errorf("select series: %w", err)
	}
	return out, annotationStrings(set.Warnings()), closeQuerier, nil
}

// ChunkEncodingFromProto returns the Prometheus encoding of a wire chunk type.
func ChunkEncodingFromProto(t storepb.Chunk_Encoding) (chunkenc.Encoding, error) {
	switch t {
	case storepb.Chunk_XOR:
		return chunkenc.EncXOR, nil
	case storepb.Chunk_HISTOGRAM:
		return chunkenc.EncHistogram, nil
	case storepb.Chunk_FLOAT_HISTOGRAM:
		return chunkenc.EncFloatHistogram, nil
	}
	return chunkenc.EncNone, fmt.Errorf("unsupported chunk encoding %s", t)
}

// ChunkToProto returns c as a raw wire chunk, its bytes not copied. Encodings
// that Thanos cannot read (XOR2) are re-encoded as XOR.
func ChunkToProto(c chunkenc.Chunk) (*storepb.Chunk, error) {
	var t storepb.Chunk_Encoding
	switch c.Encoding() {
	case chunkenc.EncXOR:
		t = storepb.Chunk_XOR
	case chunkenc.EncHistogram:
		t = storepb.Chunk_HISTOGRAM
	case chunkenc.EncFloatHistogram:
		t = storepb.Chunk_FLOAT_HISTOGRAM
	case chunkenc.EncXOR2:
		xc, err := ReencodeXOR(c)
		if err != nil {
			return nil, fmt.Errorf("re-encode xor2 chunk: %w", err)
		}
		c, t = xc, storepb.Chunk_XOR
	default:
		return nil, fmt.Errorf("unsupported chunk encoding %s", c.Encoding())
	}
	data := c.Bytes()
	return &storepb.Chunk{Type: t, Data: data, Hash: xxhash.Sum64(data)}, nil
}

// ReencodeXOR re-encodes a float chunk of another encoding (XOR2) as XOR, the
// float encoding every Store API client reads.
func ReencodeXOR(c chunkenc.Chunk) (chunkenc.Chunk, error) {
	xc := chunkenc.NewXORChunk()
	app, err := xc.Appender()
	if err != nil {
		return nil, err
	}
	it := c.Iterator(nil)
	for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
		if vt != chunkenc.ValFloat {
			return nil, fmt.Errorf("unexpected %s sample in a float chunk", vt)
		}
		t, v := it.At()
		app.Append(0, t, v)
	}
	return xc, it.Err()
}

// labelNames returns the sorted label names of the store's matching series.
func (s *TSDBStore) labelNames(ctx context.Context, r *storepb.LabelNamesRequest, ms []*labels.Matcher) ([]string, []string, error) {
	p := s.plan(ms, r.GetWithoutReplicaLabels())
	if p.empty {
		return nil, nil, nil
	}
	q, err := s.db.ChunkQuerier(r.GetStart(), r.GetEnd())
	if err != nil {
		return nil, nil, fmt.Errorf("open chunk querier: %w", err)
	}
	defer s.closeQuerier(q)
	names, annots, err := q.LabelNames(ctx, &storage.LabelHints{Limit: int(r.GetLimit())}, p.matchers...)
	if err != nil {
		return nil, nil, fmt.Errorf("label names: %w", err)
	}
	if len(names) == 0 {
		return nil, annotationStrings(annots), nil
	}
	// Names alias the querier's memory; copy them before it is closed.
	out := make([]string, 0, len(names)+p.ext.Len())
	for _, n := range names {
		if !slices.Contains(p.drop, n) {
			out = append(out, string([]byte(n)))
		}
	}
	p.ext.Range(func(l labels.Label) { out = append(out, l.Name) })
	slices.Sort(out)
	return slices.Compact(out), annotationStrings(annots), nil
}

// labelValues returns the sorted values of label on the store's matching series.
func (s *TSDBStore) labelValues(ctx context.Context, r *storepb.LabelValuesRequest, ms []*labels.Matcher) ([]string, []string, error) {
	p := s.plan(ms, r.GetWithoutReplicaLabels())
	name := r.GetLabel()
	if p.empty || slices.Contains(p.drop, name) {
		return nil, nil, nil
	}
	q, err := s.db.ChunkQuerier(r.GetStart(), r.GetEnd())
	if err != nil {
		return nil, nil, fmt.Errorf("open chunk querier: %w", err)
	}
	defer s.closeQuerier(q)

	if p.ext.Has(name) {
		// Every series carries the external value; it is the answer if any series matches.
		matchers := p.matchers
		if len(matchers) == 0 {
			matchers = allSeries
		}
		set := q.Select(ctx, false, &storage.SelectHints{Start: r.GetStart(), End: r.GetEnd(), Func: "series", Limit: 1}, matchers...)
		found := set.Next()
		if err := set.Err(); err != nil {
			return nil, nil, fmt.Errorf("select series: %w", err)
		}
		if !found {
			return nil, annotationStrings(set.Warnings()), nil
		}
		return []string{p.ext.Get(name)}, annotationStrings(set.Warnings()), nil
	}
	values, annots, err := q.LabelValues(ctx, name, &storage.LabelHints{Limit: int(r.GetLimit())}, p.matchers...)
	if err != nil {
		return nil, nil, fmt.Errorf("label values of %q: %w", name, err)
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string([]byte(v))
	}
	return out, annotationStrings(annots), nil
}

func (s *TSDBStore) closeQuerier(q storage.ChunkQuerier) {
	if err := q.Close(); err != nil {
		s.logger.Warn("close chunk querier", "err", err)
	}
}

// timeRange returns the time range of the store: from the oldest sample held to
// the end of time, since a TSDB that takes writes keeps growing.
func (s *TSDBStore) timeRange() (mint, maxt int64, err error) {
	mint, err = s.db.StartTime()
	if err != nil {
		return 0, 0, fmt.Errorf("tsdb start time: %w", err)
	}
	return mint, math.MaxInt64, nil
}

// GRPCError maps an error of a store to a gRPC status at the edge: invalid
// matchers and requests are InvalidArgument, the request's own cancellation or
// deadline its context error, anything else Internal. Statuses pass through.
func GRPCError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrInvalidMatcher), errors.Is(err, ErrInvalidRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		return status.FromContextError(ctx.Err()).Err()
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

func annotationStrings(a annotations.Annotations) []string {
	if len(a) == 0 {
		return nil
	}
	out := make([]string, 0, len(a))
	for _, err := range a {
		out = append(out, err.Error())
	}
	slices.Sort(out)
	return out
}
