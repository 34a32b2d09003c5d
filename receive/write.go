package receive

import (
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/limits"
)

// result is the outcome of appending one request.
type result struct {
	// Appended samples, histogram samples and exemplars. They are written once the
	// appender commits, and then are what the Remote-Write 2.0 headers report.
	samples, histograms, exemplars int

	// rejectedSamples counts float and histogram samples rejected for good, in
	// rejectedSeries series; byReason splits them up.
	rejectedSamples, rejectedSeries int
	byReason                        [numReasons]int
	exemplarsDropped                [numExemplarReasons]int

	// firstSeries and firstError describe the first rejection, for the response.
	firstSeries, firstError string

	// perSeries, when tracking is on, counts the rejected samples of each series
	// by its index in the request; a series rejected as a whole with no samples
	// (an invalid exemplar-only series) counts one.
	perSeries []int32

	// limitedSeries new series with limitedSamples samples were refused because
	// the tenant is at its active series limit: a retry may pass once series go
	// idle or the limit is raised, so they are not rejected for good. limited,
	// when tracking is on, marks them by index; firstLimit describes the first.
	limitedSeries, limitedSamples int
	limited                       []bool
	firstLimit                    string
}

func (r *result) rejected() bool { return r.rejectedSeries > 0 }

// limit records that new series idx, with labels ls and n samples, was refused
// by the active series limit.
func (r *result) limit(idx int, ls []wireLabel, n int, err error) {
	if r.limited != nil {
		r.limited[idx] = true
	}
	r.limitedSeries++
	r.limitedSamples += n
	r.byReason[reasonSeriesLimit] += n
	if r.firstLimit == "" {
		r.firstLimit = formatSeries(ls) + ": " + err.Error()
	}
}

// reject records that n samples of series idx, with labels ls, were rejected.
// newSeries says whether this is the first rejection in that series.
func (r *result) reject(idx int, ls []wireLabel, n int, why reason, err error, newSeries bool) {
	if r.perSeries != nil {
		r.perSeries[idx] += int32(max(n, 1))
	}
	r.rejectedSamples += n
	r.byReason[why] += n
	if newSeries {
		r.rejectedSeries++
	}
	if r.firstError == "" {
		r.firstSeries = formatSeries(ls)
		r.firstError = err.Error()
	}
}

// orphan is a series that carries exemplars but no samples, which is how
// Prometheus sends exemplars. AppenderV2 stores exemplars only together with a
// sample, so an orphan's exemplars ride along with a sample of a series with the
// same labels in the same request, if there is one.
type orphan struct {
	series int
	ls     labels.Labels // owned
	used   bool
}

// batch is the per-request state of the write path: buffers, the decoded
// request and scratch space. Batches are pooled; one request uses one batch.
type batch struct {
	body []byte // as received
	data []byte // decompressed
	req  request

	b, eb labels.ScratchBuilder // series and exemplar labels
	ls    labels.Labels         // b.Overwrite target; aliases b's buffer

	owned     []string // Remote-Write 2.0 symbols copied for metadata, by ref
	ownedSet  []bool
	families  map[string]metadata.Metadata
	orphans   []orphan
	orphanIdx map[uint64][]int

	// lookups are the router's series cache lookups in lookupCache, by series
	// index, reused by the local append when it gets the same cache.
	lookups     []cacheLookup
	lookupCache *seriesCache

	res result
}

func newBatch() *batch {
	return &batch{b: labels.NewScratchBuilder(16), eb: labels.NewScratchBuilder(4)}
}

// writeOptions are the per-request settings of batch.write.
type writeOptions struct {
	maxT             int64 // newest acceptable timestamp
	disableExemplars bool
	// sel, if not nil, limits the write to these series indexes. Series with the
	// same labels must be selected together (they are: they have the same owners).
	sel []int32
	// track records per-series rejections in result.perSeries.
	track bool
	// placeTenant, when set, makes new series cache entries carry their ring
	// placement for this tenant, for the router.
	placeTenant string
	// maxSeries, when positive, refuses new series once the tenant's storage
	// holds this many, if the appender can tell new series (storage.GetRef)
	// and count them (ActiveSeriesCounter).
	maxSeries int
}

// ActiveSeriesCounter is implemented by appenders whose storage knows how many
// series of the tenant it holds in memory, such as the appenders of tsdbshard.
type ActiveSeriesCounter interface {
	ActiveSeries() int
}

// selected returns the indexes of the series to write.
func (o writeOptions) selected(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		if o.sel == nil {
			for i := range n {
				if !yield(i) {
					return
				}
			}
			return
		}
		for _, i := range o.sel {
			if !yield(int(i)) {
				return
			}
		}
	}
}

// write appends every valid sample of the decoded request to app and records in
// b.res what was appended and what was rejected. It returns an error only for a
// failure that is not known to be permanent; the caller must then roll back.
func (b *batch) write(app storage.AppenderV2, o writeOptions) error {
	b.res = result{perSeries: b.res.perSeries[:0], limited: b.res.limited[:0]}
	req := &b.req
	if o.track {
		b.res.perSeries = slices.Grow(b.res.perSeries, len(req.series))[:len(req.series)]
		clear(b.res.perSeries)
		b.res.limited = slices.Grow(b.res.limited, len(req.series))[:len(req.series)]
		clear(b.res.limited)
	} else {
		b.res.perSeries, b.res.limited = nil, nil
	}
	b.prepareMetadata()
	b.prepareOrphans(o)
	getRef, _ := app.(storage.GetRef)
	var counter ActiveSeriesCounter
	if o.maxSeries > 0 && getRef != nil {
		counter, _ = app.(ActiveSeriesCounter)
	}
	var cache *seriesCache
	if getRef != nil && len(b.orphans) == 0 {
		// Orphan exemplars are matched by built labels, which cached series skip.
		cache = seriesCacheOf(app, time.Now())
	}
	if cache != nil && b.lookupCache != cache {
		// Look every series up first: lookups are memory-bound, and a tight loop
		// of them lets the CPU overlap their cache misses, where lookups between
		// appends would wait for each miss in turn.
		b.lookups = resize(b.lookups, len(req.series))
		b.lookupCache = cache
		for i := range o.selected(len(req.series)) {
			s := &req.series[i]
			if s.err == nil && s.samples.len()+s.histograms.len() > 0 {
				b.lookups[i] = cache.lookup(req.labels[s.labels.lo:s.labels.hi])
			}
		}
	}

	for i := range o.selected(len(req.series)) {
		s := &req.series[i]
		n := s.samples.len() + s.histograms.len()
		if n == 0 {
			// Exemplar-only series are handled through b.orphans; a series with no
			// data at all has nothing to write.
			continue
		}
		sl := req.labels[s.labels.lo:s.labels.hi]
		if s.err != nil {
			b.res.reject(i, sl, n, seriesReason(s.err), s.err, true)
			b.dropSeriesExemplars(s, o)
			continue
		}
		var (
			ref       storage.SeriesRef
			ls        labels.Labels
			name      string
			hash      uint64 // of the built labels; 0 for cached series
			key       uint64 // of the labels as sent, in the cache
			cacheable bool
			cached    bool
			placement uint64
		)
		if cache != nil {
			var e cachedSeries
			if cache == b.lookupCache && b.lookups[i].done {
				lk := &b.lookups[i]
				key, cacheable, e, cached = lk.key, lk.cacheable, lk.e, lk.hit
			} else if key, cacheable = hashWireLabels(sl); cacheable {
				e, cached = cache.get(key, sl)
			}
			if cached {
				ref, ls, placement = e.ref, e.ls, e.placement
				if req.proto == protoV1 && len(b.families) > 0 {
					name = metricNameOf(sl) // only 1.0 metadata is looked up by name
				}
			}
		}
		if !cached {
			var err error
			if name, err = checkSeriesLabels(sl, req.validUTF8); err != nil {
				b.res.reject(i, sl, n, reasonInvalidLabels, err, true)
				b.dropSeriesExemplars(s, o)
				continue
			}
			buildLabels(&b.b, sl)
			b.b.Overwrite(&b.ls)
			hash = b.ls.Hash()
			if getRef != nil {
				ref, ls = getRef.GetRef(b.ls, hash)
			}
			if ref == 0 && counter != nil {
				// A new series: the head counts it as soon as it is appended, so
				// the count is current within this request too.
				if err := limits.CheckActiveSeries(counter.ActiveSeries(), 1, limits.Limits{MaxActiveSeries: o.maxSeries}); err != nil {
					b.res.limit(i, sl, n, err)
					b.dropSeriesExemplars(s, o)
					continue
				}
			}
			if ref == 0 {
				ls = ownedLabels(&b.b)
			}
		}

		opts := storage.AOptions{Metadata: b.metadataFor(s, name)}
		carrier := -1
		var exs []exemplar.Exemplar
		if !o.disableExemplars {
			carrier = b.carrier(s, o.maxT)
			exs = b.exemplarsFor(s, hash, carrier >= 0)
			if len(exs) == 0 {
				carrier = -1
			}
		}
		newRef, err := b.appendSeries(app, i, s, sl, ref, ls, opts, exs, carrier, o.maxT)
		if err != nil {
			return err
		}
		if cacheable && newRef != 0 && (!cached || newRef != ref) {
			e := cachedSeries{ref: newRef, ls: ls, placement: placement}
			if !cached && o.placeTenant != "" {
				e.placement = hashring.Hash(o.placeTenant, ls)
			}
			cache.put(key, e)
		}
	}

	for _, orph := range b.orphans {
		if !orph.used {
			b.res.exemplarsDropped[exemplarNoSample] += req.series[orph.series].exemplars.len()
		}
	}
	return nil
}

// appendSeries appends the samples and histogram samples of one validated series.
// exs ride along with sample number carrier (floats first, then histograms).
func (b *batch) appendSeries(app storage.AppenderV2, idx int, s *wireSeries, sl []wireLabel, ref storage.SeriesRef, ls labels.Labels,
	opts storage.AOptions, exs []exemplar.Exemplar, carrier int, maxT int64,
) (storage.SeriesRef, error) {
	req := &b.req
	rejectedBefore := false
	reject := func(n int, why reason, err error, k int) {
		b.res.reject(idx, sl, n, why, err, !rejectedBefore)
		rejectedBefore = true
		if k == carrier {
			b.res.exemplarsDropped[exemplarSampleRejected] += len(exs)
		}
	}
	// appended handles the outcome of one Append; it reports whether the sample
	// was appended.
	appended := func(newRef storage.SeriesRef, err error, k int) (bool, error) {
		if err == nil {
			ref = newRef
			if k == carrier {
				b.res.exemplars += len(exs)
			}
			return true, nil
		}
		var perr *storage.AppendPartialError
		if errors.As(err, &perr) {
			ref = newRef
			if k == carrier {
				failed := min(len(perr.ExemplarErrors), len(exs))
				b.res.exemplars += len(exs) - failed
				b.res.exemplarsDropped[exemplarStorage] += failed
			}
			return true, nil
		}
		why, ok := classifyAppendError(err)
		if !ok {
			return false, fmt.Errorf("append to series %s: %w", formatSeries(sl), err)
		}
		reject(1, why, err, k)
		return false, nil
	}

	k := 0
	for j := s.samples.lo; j < s.samples.hi; j, k = j+1, k+1 {
		smp := &req.samples[j]
		if smp.t > maxT {
			reject(1, reasonTooFarInFuture, errTooFarInFuture, k)
			continue
		}
		o := opts
		if k == carrier {
			o.Exemplars = exs
		}
		newRef, err := app.Append(ref, ls, smp.st, smp.t, smp.v, nil, nil, o)
		ok, err := appended(newRef, err, k)
		if err != nil {
			return 0, err
		}
		if ok {
			b.res.samples++
		}
	}
	for j := s.histograms.lo; j < s.histograms.hi; j, k = j+1, k+1 {
		hs := &req.histograms[j]
		if err := checkHistogram(hs); err != nil {
			reject(1, reasonInvalidHistogram, err, k)
			continue
		}
		if hs.t > maxT {
			reject(1, reasonTooFarInFuture, errTooFarInFuture, k)
			continue
		}
		o := opts
		if k == carrier {
			o.Exemplars = exs
		}
		newRef, err := app.Append(ref, ls, hs.st, hs.t, 0, hs.h, hs.fh, o)
		ok, err := appended(newRef, err, k)
		if err != nil {
			return 0, err
		}
		if ok {
			b.res.histograms++
		}
	}
	return ref, nil
}

// carrier picks the sample of s that carries the series' exemplars: the newest
// float sample that storage will not ignore exemplars for (stale markers carry
// none) and that is not too far in the future, else such a histogram sample.
// It returns the sample's position (floats first), or -1.
func (b *batch) carrier(s *wireSeries, maxT int64) int {
	req := &b.req
	for j := s.samples.hi - 1; j >= s.samples.lo; j-- {
		if smp := &req.samples[j]; !value.IsStaleNaN(smp.v) && smp.t <= maxT {
			return int(j - s.samples.lo)
		}
	}
	for j := s.histograms.hi - 1; j >= s.histograms.lo; j-- {
		if hs := &req.histograms[j]; !hs.isStale() && hs.t <= maxT {
			return s.samples.len() + int(j-s.histograms.lo)
		}
	}
	return -1
}

// exemplarsFor returns the valid exemplars of s and of the orphans with its
// labels (b.ls, hashed to hash), sorted by timestamp, with owned labels. Without a
// carrier they are all dropped, and orphans are left for a later series.
func (b *batch) exemplarsFor(s *wireSeries, hash uint64, hasCarrier bool) []exemplar.Exemplar {
	req := &b.req
	var matched []int
	if len(b.orphans) > 0 && hasCarrier {
		for _, oi := range b.orphanIdx[hash] {
			if o := &b.orphans[oi]; !o.used && labels.Equal(o.ls, b.ls) {
				o.used = true
				matched = append(matched, o.series)
			}
		}
	}
	n := s.exemplars.len()
	for _, si := range matched {
		n += req.series[si].exemplars.len()
	}
	if n == 0 {
		return nil
	}
	if !hasCarrier {
		b.res.exemplarsDropped[exemplarNoSample] += n
		return nil
	}
	exs := make([]exemplar.Exemplar, 0, n)
	add := func(sp span) {
		for j := sp.lo; j < sp.hi; j++ {
			e := &req.exemplars[j]
			el := req.exLabels[e.labels.lo:e.labels.hi]
			if err := checkExemplarLabels(el, req.validUTF8); err != nil {
				b.res.exemplarsDropped[exemplarInvalid]++
				continue
			}
			exs = append(exs, buildExemplar(&b.eb, el, e.v, e.t))
		}
	}
	add(s.exemplars)
	for _, si := range matched {
		add(req.series[si].exemplars)
	}
	if !slices.IsSortedFunc(exs, compareExemplarTs) {
		slices.SortStableFunc(exs, compareExemplarTs)
	}
	return exs
}

func compareExemplarTs(a, b exemplar.Exemplar) int {
	switch {
	case a.Ts < b.Ts:
		return -1
	case a.Ts > b.Ts:
		return 1
	}
	return 0
}

// dropSeriesExemplars records the exemplars of a rejected series as dropped.
func (b *batch) dropSeriesExemplars(s *wireSeries, o writeOptions) {
	if !o.disableExemplars {
		b.res.exemplarsDropped[exemplarSeriesRejected] += s.exemplars.len()
	}
}

// prepareOrphans validates the exemplar-only series of the request and indexes
// them by the hash of their labels. Invalid ones are rejected like any series.
// With exemplars disabled, every exemplar is dropped, but the labels of
// exemplar-only series are still checked, so that the status code does not
// depend on the option.
func (b *batch) prepareOrphans(o writeOptions) {
	disable := o.disableExemplars
	b.orphans = b.orphans[:0]
	clear(b.orphanIdx)
	req := &b.req
	for i := range o.selected(len(req.series)) {
		if disable {
			b.res.exemplarsDropped[exemplarDisabled] += req.series[i].exemplars.len()
		}
	}
	for i := range o.selected(len(req.series)) {
		s := &req.series[i]
		if s.samples.len()+s.histograms.len() > 0 || s.exemplars.len() == 0 {
			continue
		}
		sl := req.labels[s.labels.lo:s.labels.hi]
		err := s.err
		why := seriesReason(err)
		if err == nil {
			why = reasonInvalidLabels
			_, err = checkSeriesLabels(sl, req.validUTF8)
		}
		if err != nil {
			b.res.reject(i, sl, 0, why, err, true)
			if !disable {
				b.res.exemplarsDropped[exemplarSeriesRejected] += s.exemplars.len()
			}
			continue
		}
		if disable {
			continue
		}
		buildLabels(&b.b, sl)
		ls := ownedLabels(&b.b)
		if b.orphanIdx == nil {
			b.orphanIdx = map[uint64][]int{}
		}
		h := ls.Hash()
		b.orphanIdx[h] = append(b.orphanIdx[h], len(b.orphans))
		b.orphans = append(b.orphans, orphan{series: i, ls: ls})
	}
}

// prepareMetadata readies metadata lookups: for Remote-Write 2.0 the cache of
// owned symbol copies, for 1.0 the metadata by metric family, if the request
// carries any.
func (b *batch) prepareMetadata() {
	req := &b.req
	switch req.proto {
	case protoV2:
		n := len(req.symbols)
		if cap(b.owned) < n {
			b.owned = make([]string, n)
			b.ownedSet = make([]bool, n)
		} else {
			b.owned = b.owned[:n]
			b.ownedSet = b.ownedSet[:n]
			clear(b.owned)
			clear(b.ownedSet)
		}
	case protoV1:
		clear(b.families)
		for _, m := range req.metadata {
			if !m.usable() {
				continue
			}
			if b.families == nil {
				b.families = map[string]metadata.Metadata{}
			}
			b.families[strings.Clone(m.family)] = metadata.Metadata{
				Type: metricType(m.typ),
				Help: strings.Clone(m.help),
				Unit: strings.Clone(m.unit),
			}
		}
	}
}

// usable reports whether Remote-Write 1.0 family metadata can be stored: it names
// a family and all its strings are valid UTF-8. Other entries are ignored, here
// and when the request is forwarded, so every replica stores the same.
func (m *familyMetadata) usable() bool {
	return m.family != "" && utf8.ValidString(m.family) && utf8.ValidString(m.help) && utf8.ValidString(m.unit)
}

// metadataFor returns the metadata of a series with metric name name, with
// strings that storage may keep.
func (b *batch) metadataFor(s *wireSeries, name string) metadata.Metadata {
	switch b.req.proto {
	case protoV2:
		m := metadata.Metadata{
			Type: metricType(s.meta.typ),
			Help: b.ownedSymbol(s.meta.helpRef),
			Unit: b.ownedSymbol(s.meta.unitRef),
		}
		if m.Type == model.MetricTypeUnknown && m.Help == "" && m.Unit == "" {
			return metadata.Metadata{}
		}
		return m
	case protoV1:
		if len(b.families) == 0 {
			return metadata.Metadata{}
		}
		if m, ok := b.families[name]; ok {
			return m
		}
		// Series of histograms, summaries and counters carry a suffix that the
		// family name may lack.
		for _, suffix := range familySuffixes {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if m, ok := b.families[base]; ok {
					return m
				}
			}
		}
	}
	return metadata.Metadata{}
}

var familySuffixes = []string{"_bucket", "_count", "_sum", "_total", "_created", "_info", "_gcount", "_gsum"}

// ownedSymbol returns a copy of a (validated) symbol that does not alias the
// request, copying each symbol at most once per request.
func (b *batch) ownedSymbol(ref uint32) string {
	if ref == 0 || int(ref) >= len(b.owned) {
		return ""
	}
	if !b.ownedSet[ref] {
		b.owned[ref] = strings.Clone(b.req.symbols[ref])
		b.ownedSet[ref] = true
	}
	return b.owned[ref]
}

// metricType maps the metric type enums of both protocol versions, which share
// their numbering, to a Prometheus metric type.
func metricType(t int32) model.MetricType {
	switch t {
	case 1:
		return model.MetricTypeCounter
	case 2:
		return model.MetricTypeGauge
	case 3:
		return model.MetricTypeHistogram
	case 4:
		return model.MetricTypeGaugeHistogram
	case 5:
		return model.MetricTypeSummary
	case 6:
		return model.MetricTypeInfo
	case 7:
		return model.MetricTypeStateset
	default:
		return model.MetricTypeUnknown
	}
}
