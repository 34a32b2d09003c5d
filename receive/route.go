package receive

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/stratametrics/strata/hashring"
)

// errPeerBackoff is the error of a forward skipped because its peer failed recently.
var errPeerBackoff = errors.New("peer unavailable, backing off")

// router places each series of a request on the hashring and writes it to its
// owners: its own share through local storage, the rest forwarded to peers.
//
// A request is acknowledged when every series is held by a quorum of its owners.
// Per series, an owner either answers definitively (it wrote the series, or it
// rejected some of its samples for good) or fails transiently (unreachable, timed
// out, not ready). A series with definitive answers from a quorum is decided: it
// was rejected if any of them rejected it (replicas hold the same data, so they
// agree), written otherwise. Then:
//
//   - any series without a quorum of definitive answers: 503, the client retries
//     (writes are idempotent: a sample already stored is accepted again);
//   - else any series rejected: 400 naming the first, the others are written;
//   - else 204.
type router struct {
	h        *Handler
	opts     RouteOptions
	peers    *peers
	metrics  *routeMetrics
	encoders sync.Pool // *forwardBuffers
	states   sync.Pool // *routeState
}

type routeMetrics struct {
	forwards        *prometheus.CounterVec
	forwardDuration prometheus.Histogram
	quorumFailures  prometheus.Counter
}

func newRouteMetrics(reg prometheus.Registerer) *routeMetrics {
	f := promauto.With(reg)
	return &routeMetrics{
		forwards: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_receive_forward_requests_total",
			Help: "Requests forwarded to peer receivers, by result: success, rejected (some samples rejected for good), unavailable, backoff (skipped, the peer failed recently) or error.",
		}, []string{"result"}),
		forwardDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:                           "strata_receive_forward_duration_seconds",
			Help:                           "Duration of requests forwarded to peer receivers.",
			Buckets:                        prometheus.DefBuckets,
			NativeHistogramBucketFactor:    1.1,
			NativeHistogramMaxBucketNumber: 100,
		}),
		quorumFailures: f.NewCounter(prometheus.CounterOpts{
			Name: "strata_receive_quorum_failures_total",
			Help: "Write requests answered 503 because some series did not reach a quorum of owners.",
		}),
	}
}

func newRouter(h *Handler, opts RouteOptions, reg prometheus.Registerer) *router {
	r := &router{
		h:       h,
		opts:    opts,
		metrics: newRouteMetrics(reg),
	}
	r.peers = &peers{opts: opts, m: map[string]*peer{}}
	r.encoders.New = func() any { return &forwardBuffers{} }
	r.states.New = func() any { return &routeState{} }
	return r
}

// forwardBuffers are one forward's reusable buffers.
type forwardBuffers struct {
	enc     encoder
	payload []byte
	frame   []byte
}

// routeState is the per-request scratch space of route, pooled.
type routeState struct {
	dest   [][]int32 // series indexes by endpoint index
	owners []int
	routed []bool  // series placed on the ring
	acks   []uint8 // definitive answers per series
	rej    []uint8 // owners that rejected some samples of the series
	rejN   []int32 // rejected samples, as the first rejecting owner counted them
	lim    []uint8 // owners that refused the series by the active series limit
	groups []forwardGroup

	firstRejection string // series and reason
	firstLimit     string // series and limit
	firstFailure   error  // first transient failure
}

func (st *routeState) reset(series, endpoints int) {
	if cap(st.dest) < endpoints {
		st.dest = make([][]int32, endpoints)
	}
	st.dest = st.dest[:endpoints]
	for i := range st.dest {
		st.dest[i] = st.dest[i][:0]
	}
	st.routed = resize(st.routed, series)
	st.acks = resize(st.acks, series)
	st.rej = resize(st.rej, series)
	st.rejN = resize(st.rejN, series)
	st.lim = resize(st.lim, series)
	st.firstRejection, st.firstLimit, st.firstFailure = "", "", nil
}

// resize returns s with length n, zeroed.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// outcome is one owner's answer for the series it was given.
type outcome struct {
	sel  []int32
	resp forwardResponse
	err  error
}

// route writes the decoded request to the owners of its series; see router.
func (r *router) route(ctx context.Context, tenant string, b *batch, resp response) response {
	ring, err := r.opts.Ringer.Ring(tenant)
	if err != nil {
		r.h.logger.Warn("no ring for tenant", "tenant", tenant, "err", err)
		return resp.fail(http.StatusServiceUnavailable, fmt.Sprintf("place series of tenant %q: %v", tenant, err))
	}
	eps := ring.Endpoints()
	r.peers.observe(ring)
	quorum := hashring.Quorum(ring.ReplicationFactor())
	req := &b.req

	st := r.states.Get().(*routeState)
	defer r.states.Put(st)
	st.reset(len(req.series), len(eps))

	// Series this node stores are placed by the series cache, which knows
	// their labels are valid and their placement.
	var cache *seriesCache
	if c, ok := r.h.store.(TenantSeriesCaches); ok {
		cache = seriesCacheIn(c.SeriesCacheSlot(tenant), time.Now())
	}
	if cache != nil {
		// The local append reuses these lookups if its appender has the same cache.
		b.lookups = resize(b.lookups, len(req.series))
		b.lookupCache = cache
	}

	// With as many endpoints as replicas, every endpoint owns every series.
	everyone := ring.ReplicationFactor() >= len(eps)

	// Invalid series are rejected here, once, rather than by every owner.
	var pre result
	for i := range req.series {
		s := &req.series[i]
		n := s.samples.len() + s.histograms.len()
		if n+s.exemplars.len() == 0 {
			continue
		}
		sl := req.labels[s.labels.lo:s.labels.hi]
		if s.err != nil {
			pre.reject(i, sl, n, seriesReason(s.err), s.err, true)
			continue
		}
		placement, placed := uint64(0), false
		if cache != nil {
			lk := cache.lookup(sl)
			b.lookups[i] = lk
			if lk.hit && (lk.e.placement != 0 || everyone) {
				placement, placed = lk.e.placement, true
			}
		}
		if !placed {
			if _, err := checkSeriesLabels(sl, req.validUTF8); err != nil {
				pre.reject(i, sl, n, reasonInvalidLabels, err, true)
				continue
			}
			if !everyone {
				buildLabels(&b.b, sl)
				b.b.Overwrite(&b.ls)
				placement = hashring.Hash(tenant, b.ls)
			}
		}
		if everyone {
			for o := range eps {
				st.dest[o] = append(st.dest[o], int32(i))
			}
			st.routed[i] = true
			continue
		}
		st.owners = ring.Owners(placement, st.owners[:0])
		for _, o := range st.owners {
			st.dest[o] = append(st.dest[o], int32(i))
		}
		st.routed[i] = true
	}
	r.h.metrics.observe(&pre)

	// Forward every remote share; each goroutine encodes its payload before
	// anything else touches the request, and local appends wait for that, because
	// storage takes ownership of the histograms it appends. Peers that own the
	// same series (in a ring of RF nodes, all of them) share one encoding.
	var encoded sync.WaitGroup
	results := make(chan outcome, len(eps))
	pending, local := 0, -1
	st.groups = st.groups[:0]
	for ep, sel := range st.dest {
		if len(sel) == 0 {
			continue
		}
		if r.h.store != nil && eps[ep].Name == r.opts.LocalEndpoint {
			local = ep
			continue
		}
		pending++
		st.groups = addToGroup(st.groups, sel, ep)
	}
	for _, g := range st.groups {
		encoded.Add(1)
		go r.forwardGroup(ctx, tenant, eps, g, b, &encoded, results)
	}
	if local >= 0 {
		encoded.Wait()
		sel := st.dest[local]
		code, msg := r.h.appendLocal(ctx, tenant, b, writeOptions{sel: sel, track: true})
		o := outcome{sel: sel}
		if code == http.StatusServiceUnavailable {
			o.err = errors.New(msg)
		} else {
			o.resp.addOutcome(&b.res, sel)
		}
		st.tally(o)
	}
	for ; pending > 0; pending-- {
		st.tally(<-results)
	}
	return r.decide(st, req, &pre, quorum, !r.h.exemplarsDisabled(tenant), resp)
}

// tally counts one owner's answer into the per-series state.
func (st *routeState) tally(o outcome) {
	if o.err != nil {
		if !forwardPermanent(o.err) {
			if st.firstFailure == nil {
				st.firstFailure = o.err
			}
			return
		}
		// The peer refuses the payload as a whole; that will not change on retry.
		for _, i := range o.sel {
			st.acks[i]++
			st.rej[i]++
		}
		if st.firstRejection == "" {
			st.firstRejection = o.err.Error()
		}
		return
	}
	for _, i := range o.sel {
		st.acks[i]++
	}
	for k, idx := range o.resp.rejected {
		if int(idx) >= len(o.sel) {
			continue // a peer's answer about series it was not sent; ignore it
		}
		i := o.sel[idx]
		if st.rej[i] == 0 {
			st.rejN[i] = o.resp.rejectedSamples[k]
		}
		st.rej[i]++
	}
	if len(o.resp.rejected) > 0 && st.firstRejection == "" {
		st.firstRejection = o.resp.message
	}
	for _, idx := range o.resp.limited {
		if int(idx) < len(o.sel) {
			st.lim[o.sel[idx]]++
		}
	}
	if len(o.resp.limited) > 0 && st.firstLimit == "" {
		st.firstLimit = o.resp.limitMessage
	}
}

// decide turns the per-series tallies into the response; see router.
func (r *router) decide(st *routeState, req *request, pre *result, quorum int, exemplars bool, resp response) response {
	var undecided, rejectedSeries, rejectedSamples, limitedSeries, limitedSamples, total int
	for i := range req.series {
		s := &req.series[i]
		n := s.samples.len() + s.histograms.len()
		total += n
		if !st.routed[i] {
			continue
		}
		if int(st.acks[i]) < quorum {
			undecided++
			continue
		}
		if st.lim[i] > 0 {
			// Refused by an owner at its series limit: the retry the 429 asks
			// for writes it to every owner.
			limitedSeries++
			limitedSamples += n
			continue
		}
		if st.rej[i] > 0 {
			rejectedSeries++
			rejectedSamples += int(st.rejN[i])
			// Which of the series' samples were rejected is the owners' business;
			// count the remainder as written, floats first.
			ok := max(n-int(st.rejN[i]), 0)
			resp.samples += min(ok, s.samples.len())
			resp.histograms += ok - min(ok, s.samples.len())
			continue
		}
		resp.samples += s.samples.len()
		resp.histograms += s.histograms.len()
		if exemplars {
			resp.exemplars += s.exemplars.len()
		}
	}
	if undecided > 0 {
		r.metrics.quorumFailures.Inc()
		return resp.fail(http.StatusServiceUnavailable, fmt.Sprintf(
			"%d of %d series did not reach a quorum of %d owners, first failure: %v", undecided, len(req.series), quorum, st.firstFailure))
	}
	resp.discarded = discardsOf(pre)
	resp.discarded[discardRejected] += rejectedSamples
	resp.discarded[discardSeriesLimit] += limitedSamples
	rejectedSeries += pre.rejectedSeries
	rejectedSamples += pre.rejectedSamples
	if rejectedSeries == 0 && limitedSeries == 0 {
		resp.code = http.StatusNoContent
		return resp
	}
	var msgs []string
	if limitedSeries > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d samples refused (%d new series) by the active series limit, first: %s",
			limitedSamples, total, limitedSeries, st.firstLimit))
	}
	if rejectedSeries > 0 {
		first := st.firstRejection
		if pre.rejected() {
			first = fmt.Sprintf("%s: %s", pre.firstSeries, pre.firstError)
		}
		msgs = append(msgs, fmt.Sprintf("%d of %d samples rejected (%d series), first: %s", rejectedSamples, total, rejectedSeries, first))
	}
	resp.msg = strings.Join(msgs, "; ")
	resp.code = http.StatusBadRequest
	if limitedSeries > 0 {
		resp.code, resp.retryAfter = http.StatusTooManyRequests, seriesLimitRetryAfter
	}
	return resp
}

// forwardGroup is a set of peers that are sent the same series.
type forwardGroup struct {
	sel []int32
	eps []int
}

// addToGroup adds peer ep with selection sel to the group of that selection.
func addToGroup(groups []forwardGroup, sel []int32, ep int) []forwardGroup {
	for i := range groups {
		if slices.Equal(groups[i].sel, sel) {
			groups[i].eps = append(groups[i].eps, ep)
			return groups
		}
	}
	return append(groups, forwardGroup{sel: sel, eps: []int{ep}})
}

// forwardGroup encodes the selected series once and writes them to every peer
// of g, sending one outcome per peer to results. It calls encoded.Done once it
// no longer reads the request.
func (r *router) forwardGroup(ctx context.Context, tenant string, eps []hashring.Endpoint, g forwardGroup, b *batch, encoded *sync.WaitGroup, results chan<- outcome) {
	fb := r.encoders.Get().(*forwardBuffers)
	defer r.encoders.Put(fb)
	req := &b.req
	raw := forwardV2
	if len(g.sel) == len(req.series) && len(b.body) > 0 {
		// The peers own every series: send them the body as received, which is
		// smaller and costs nothing to make. Its series are in the same order as
		// in g.sel, so the peers' answers index the same series.
		raw = forwardSnappy1
		if req.proto == protoV2 {
			raw = forwardSnappy2
		}
		fb.frame = appendForwardRequest(fb.frame[:0], tenant, b.body, raw)
	} else {
		fb.payload = fb.enc.encodeV2(fb.payload[:0], req, g.sel)
		fb.frame = appendForwardRequest(fb.frame[:0], tenant, fb.payload, forwardV2)
	}
	encoded.Done()

	send := func(ep int) {
		resp, err := r.forward(ctx, eps[ep], fb.frame)
		if err != nil && raw != forwardV2 && forwardPermanent(err) {
			// A peer that predates bodies as received reads one as a 2.0
			// payload and refuses it: send it the series encoded for it.
			resp, err = r.forwardEncoded(ctx, tenant, eps[ep], b.body, raw, g.sel)
		}
		results <- outcome{sel: g.sel, resp: resp, err: err}
	}
	if len(g.eps) == 1 {
		send(g.eps[0])
		return
	}
	// The frame is only read while it is sent, so the peers share it.
	var sent sync.WaitGroup
	for _, ep := range g.eps {
		sent.Go(func() { send(ep) })
	}
	sent.Wait()
}

// forwardEncoded decodes body (of encoding enc) afresh, encodes the series of sel
// as a Remote Write 2.0 payload and forwards it to ep. It works on its own copy
// of the request, since the local append may own parts of the original by now.
func (r *router) forwardEncoded(ctx context.Context, tenant string, ep hashring.Endpoint, body []byte, enc forwardEncoding, sel []int32) (forwardResponse, error) {
	nb := r.h.pool.Get().(*batch)
	defer r.h.release(nb)
	if err := r.h.decodeForwarded(nb, body, enc); err != nil {
		return forwardResponse{}, fmt.Errorf("decode the request again for %s: %w", ep.Name, err)
	}
	fb := r.encoders.Get().(*forwardBuffers)
	defer r.encoders.Put(fb)
	fb.payload = fb.enc.encodeV2(fb.payload[:0], &nb.req, sel)
	fb.frame = appendForwardRequest(fb.frame[:0], tenant, fb.payload, forwardV2)
	return r.forward(ctx, ep, fb.frame)
}

// forward writes an encoded forward request to the owner ep.
func (r *router) forward(ctx context.Context, ep hashring.Endpoint, frame []byte) (forwardResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.ForwardTimeout)
	defer cancel()
	start := time.Now()
	resp, err := r.peers.write(ctx, ep.Address, frame)
	r.metrics.forwardDuration.Observe(time.Since(start).Seconds())
	result := "success"
	switch {
	case errors.Is(err, errPeerBackoff):
		result = "backoff"
	case err != nil && forwardPermanent(err):
		result = "error"
	case err != nil:
		result = "unavailable"
	case len(resp.rejected) > 0:
		result = "rejected"
	}
	r.metrics.forwards.WithLabelValues(result).Inc()
	if err != nil {
		err = fmt.Errorf("forward to %s (%s): %w", ep.Name, ep.Address, err)
	}
	return resp, err
}

// peers holds one connection per peer address, with a bound on forwards in
// flight and a backoff after failures. Safe for concurrent use.
type peers struct {
	opts RouteOptions

	mtx      sync.Mutex
	m        map[string]*peer
	lastRing hashring.Ring
	active   map[string]bool // addresses ACTIVE in lastRing
}

type peer struct {
	conn     *grpc.ClientConn
	sem      chan struct{}
	lastUsed time.Time // guarded by peers.mtx

	mtx       sync.Mutex
	failures  int
	downUntil time.Time
}

func (p *peers) get(addr string) (*peer, error) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if pr, ok := p.m[addr]; ok {
		pr.lastUsed = time.Now()
		return pr, nil
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// gRPC's own reconnect backoff grows to two minutes by default; a peer
		// that is back must not wait that long for writes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: p.opts.ForwardMaxBackoff},
			MinConnectTimeout: p.opts.ForwardTimeout,
		}),
	}, p.opts.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to peer %s: %w", addr, err)
	}
	pr := &peer{conn: conn, sem: make(chan struct{}, p.opts.ForwardConcurrency), lastUsed: time.Now()}
	p.m[addr] = pr
	return pr, nil
}

func (p *peers) write(ctx context.Context, addr string, frame []byte) (forwardResponse, error) {
	pr, err := p.get(addr)
	if err != nil {
		return forwardResponse{}, err
	}
	pr.mtx.Lock()
	down := time.Now().Before(pr.downUntil)
	pr.mtx.Unlock()
	if down {
		return forwardResponse{}, errPeerBackoff
	}
	select {
	case pr.sem <- struct{}{}:
	case <-ctx.Done():
		return forwardResponse{}, fmt.Errorf("wait for a forward slot: %w", ctx.Err())
	}
	defer func() { <-pr.sem }()

	out := new(wrapperspb.BytesValue)
	err = pr.conn.Invoke(ctx, replicationWrite, &wrapperspb.BytesValue{Value: frame}, out)
	pr.mtx.Lock()
	if err != nil && !forwardPermanent(err) {
		pr.failures++
		backoff := min(100*time.Millisecond<<min(pr.failures-1, 16), p.opts.ForwardMaxBackoff)
		pr.downUntil = time.Now().Add(backoff/2 + rand.N(backoff/2+1))
	} else {
		pr.failures, pr.downUntil = 0, time.Time{}
	}
	pr.mtx.Unlock()
	if err != nil {
		return forwardResponse{}, err
	}
	var resp forwardResponse
	if err := resp.unmarshal(out.GetValue()); err != nil {
		return forwardResponse{}, fmt.Errorf("decode peer response: %w", err)
	}
	return resp, nil
}

// idlePeerTimeout is how long a connection to a peer that is in no ring any more
// is kept before it is closed.
const idlePeerTimeout = time.Minute

// observe notes a ring in use. When membership reports a peer ACTIVE that was not
// before (it came back), the peer's failure backoff and its connection's
// reconnect backoff are reset, so the next write reaches it. Connections to
// peers outside the new ring that have not been used for idlePeerTimeout are
// closed; a peer in another tenant's ring is used and so stays.
func (p *peers) observe(ring hashring.Ring) {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if ring == p.lastRing {
		return
	}
	p.lastRing = ring
	inRing := make(map[string]bool, len(ring.Endpoints()))
	for _, ep := range ring.Endpoints() {
		inRing[ep.Address] = true
	}
	for addr, pr := range p.m {
		if !inRing[addr] && time.Since(pr.lastUsed) > idlePeerTimeout {
			_ = pr.conn.Close() // nothing was sent on it for a while; nothing to lose
			delete(p.m, addr)
		}
	}
	prev := p.active
	p.active = map[string]bool{}
	for _, ep := range ring.Endpoints() {
		if ep.State != hashring.StateActive {
			continue
		}
		p.active[ep.Address] = true
		if prev == nil || prev[ep.Address] {
			continue
		}
		if pr, ok := p.m[ep.Address]; ok {
			pr.mtx.Lock()
			pr.failures, pr.downUntil = 0, time.Time{}
			pr.mtx.Unlock()
			pr.conn.ResetConnectBackoff()
		}
	}
}

func (p *peers) close() error {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	var errs []error
	for addr, pr := range p.m {
		if err := pr.conn.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close connection to %s: %w", addr, err))
		}
		delete(p.m, addr)
	}
	return errors.Join(errs...)
}
