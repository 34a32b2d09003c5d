package loadgen

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Workload is the set of series a load sends, cut into batches. It is built
// once; each Batch is then used by one goroutine at a time.
type Workload struct {
	cfg        WorkloadConfig
	tmpls      []seriesTemplate
	names      []string
	batches    []*Batch
	startMs    int64
	intervalMs int64
	// churnEvery is the number of rounds between churn events, churnN the
	// number of series each replaces; both 0 without churn.
	churnEvery int
	churnN     int64
	// hostsPerGen is the number of hosts of one generation of every slot.
	hostsPerGen uint64
}

// NewWorkload builds the series of cfg and cuts them into batches: the series
// of each tenant (a contiguous range of slots) into batches of cfg.BatchSize,
// the last one of a tenant possibly shorter.
func NewWorkload(cfg WorkloadConfig) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Workload{
		cfg:        cfg,
		tmpls:      hostTemplates(),
		startMs:    cfg.Start.UnixMilli(),
		intervalMs: cfg.ScrapeInterval.Milliseconds(),
	}
	w.hostsPerGen = uint64((cfg.Series + len(w.tmpls) - 1) / len(w.tmpls))
	if cfg.Churn > 0 {
		w.churnEvery = int(cfg.ChurnInterval / cfg.ScrapeInterval)
		w.churnN = int64(math.Round(cfg.Churn * float64(cfg.Series)))
	}
	for i := range min(cfg.Series, len(w.tmpls)) {
		if n := w.tmpls[i].family.name; !slices.Contains(w.names, n) {
			w.names = append(w.names, n)
		}
	}
	slices.Sort(w.names)

	for t := range cfg.Tenants {
		lo, hi := t*cfg.Series/cfg.Tenants, (t+1)*cfg.Series/cfg.Tenants
		tenant := ""
		if cfg.Tenants > 1 {
			tenant = fmt.Sprintf("tenant-%d", t)
		}
		for first := lo; first < hi; first += cfg.BatchSize {
			b := &Batch{
				w:      w,
				index:  len(w.batches),
				tenant: tenant,
				first:  first,
				slots:  make([]slotState, min(cfg.BatchSize, hi-first)),
				gens:   make([]uint64, min(cfg.BatchSize, hi-first)),
				rng:    mix(cfg.Seed ^ uint64(len(w.batches))*0xa0761d6478bd642f),
			}
			for i := range b.slots {
				b.resetSlot(i, w.startMs)
			}
			w.batches = append(w.batches, b)
		}
	}
	return w, nil
}

// Batches returns the batches, ordered by their first slot.
func (w *Workload) Batches() []*Batch { return w.batches }

// MetricNames returns the sorted distinct metric names of the series.
func (w *Workload) MetricNames() []string { return w.names }

// Timestamp returns the timestamp in milliseconds of the samples of round r.
func (w *Workload) Timestamp(r int) int64 { return w.startMs + int64(r)*w.intervalMs }

// SeriesPerHost is the number of series of one simulated node_exporter.
func (w *Workload) SeriesPerHost() int { return len(w.tmpls) }

// SeriesCreated returns the number of distinct series the batches have been at
// so far: the active ones plus those churned away. It must not be called while
// a batch is in use.
func (w *Workload) SeriesCreated() int64 {
	n := int64(w.cfg.Series)
	for _, b := range w.batches {
		for _, g := range b.gens {
			n += int64(g)
		}
	}
	return n
}

// slotState is the sample state of one series.
type slotState struct {
	v, step, base float64
	kind          valueKind
	// fresh is set until the series' first sample is made: that one has the
	// initial value.
	fresh bool
}

// Batch is the series of one request. It is not safe for concurrent use.
type Batch struct {
	w      *Workload
	index  int
	tenant string
	first  int
	slots  []slotState
	gens   []uint64
	churns int
	rng    uint64

	// body is the uncompressed request of the current series, with the value
	// of series i at offs[i] and its timestamp, a varint of tsLen bytes, 9 bytes
	// further.
	body  []byte
	offs  []int32
	tsLen int
}

// Tenant returns the tenant of the batch's series; "" for a single tenant.
func (b *Batch) Tenant() string { return b.tenant }

// Len returns the number of series of the batch.
func (b *Batch) Len() int { return len(b.slots) }

// Slots returns the first slot of the batch and the number of slots.
func (b *Batch) Slots() (first, n int) { return b.first, len(b.slots) }

// Next returns the uncompressed request with the batch's samples of round r.
// Rounds must be passed in increasing order, each once; values advance with
// every call. The request is valid until the next call.
func (b *Batch) Next(r int) []byte {
	w := b.w
	ts := w.Timestamp(r)
	if w.churnEvery > 0 {
		if k := r / w.churnEvery; k != b.churns {
			b.churn(k, ts)
		}
	}
	var tsb [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tsb[:], uint64(ts))
	if n != b.tsLen {
		b.encode(n)
	}
	body, offs := b.body, b.offs[:len(b.slots)]
	for i := range b.slots {
		s := &b.slots[i]
		r := mix(b.rng)
		b.rng++
		if s.fresh {
			s.fresh = false
		} else {
			s.v = nextValue(s.kind, s.base, s.v, s.step, r, ts)
		}
		o := int(offs[i])
		binary.LittleEndian.PutUint64(body[o:o+8], math.Float64bits(s.v))
		copy(body[o+9:o+9+n], tsb[:n])
	}
	return body
}

// resetSlot starts a new series in slot i of the batch, at its current
// generation, with its first sample at ts.
func (b *Batch) resetSlot(i int, ts int64) {
	w := b.w
	slot := uint64(b.first + i)
	t := &w.tmpls[slot%uint64(len(w.tmpls))]
	r := mix(w.cfg.Seed ^ mix(slot) ^ b.gens[i]*0xe7037ed1a0b428db)
	v, step := initialValue(t, r, w.cfg.ScrapeInterval.Seconds(), ts)
	b.slots[i] = slotState{v: v, step: step, base: t.family.base, kind: t.family.kind, fresh: true}
}

// churn brings the batch to k churn events. Event j (from 1) replaces the
// series of positions [(j-1)*churnN, j*churnN) of the slots repeated end to end,
// so after k events slot s has been replaced ceil((k*churnN - s) / Series)
// times.
func (b *Batch) churn(k int, ts int64) {
	w := b.w
	b.churns = k
	covered, series := int64(k)*w.churnN, int64(w.cfg.Series)
	changed := false
	for i := range b.gens {
		s := int64(b.first + i)
		var g uint64
		if covered > s {
			g = uint64((covered - s + series - 1) / series)
		}
		if g != b.gens[i] {
			b.gens[i] = g
			b.resetSlot(i, ts)
			changed = true
		}
	}
	if changed {
		b.tsLen = 0 // re-encode
	}
}

// labels returns the sorted labels of slot i of the batch at its current
// generation.
func (b *Batch) labels(i int, hs *host, hostID *uint64) []label {
	w := b.w
	slot := uint64(b.first + i)
	per := uint64(len(w.tmpls))
	id := slot/per + b.gens[i]*w.hostsPerGen
	if id != *hostID || hs.instance == "" {
		*hs, *hostID = hostOf(w.cfg.Seed, id), id
	}
	return seriesLabels(&w.tmpls[slot%per], hs)
}
