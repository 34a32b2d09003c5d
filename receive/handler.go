package receive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/limits"
)

// Header names and values of the Remote-Write protocol.
const (
	// HeaderSamplesWritten is the Remote-Write 2.0 response header with the number
	// of float samples written.
	HeaderSamplesWritten = "X-Prometheus-Remote-Write-Samples-Written"
	// HeaderHistogramsWritten is the Remote-Write 2.0 response header with the
	// number of native histogram samples written.
	HeaderHistogramsWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	// HeaderExemplarsWritten is the Remote-Write 2.0 response header with the
	// number of exemplars written.
	HeaderExemplarsWritten = "X-Prometheus-Remote-Write-Exemplars-Written"

	// ContentTypeV1 is the content type of a Remote-Write 1.0 request, with the
	// optional proto parameter spelled out.
	ContentTypeV1 = "application/x-protobuf;proto=prometheus.WriteRequest"
	// ContentTypeV2 is the content type of a Remote-Write 2.0 request.
	ContentTypeV2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"

	protoNameV1 = "prometheus.WriteRequest"
	protoNameV2 = "io.prometheus.write.v2.Request"
	mediaType   = "application/x-protobuf"
)

// maxPooledBytes bounds the buffers a batch may keep when it goes back to the
// pool, so that one huge request does not pin its memory for good.
const maxPooledBytes = 16 << 20

// Handler is the Remote-Write receiver endpoint, an http.Handler for
// POST /api/v1/receive. It is safe for concurrent use.
type Handler struct {
	opts    Options
	store   TenantStorage
	logger  *slog.Logger
	metrics *handlerMetrics
	pool    sync.Pool // *batch
	now     func() time.Time
	rate    *limits.RateLimiter
	usage   *usage
	router  *router // nil: everything is written locally
}

// NewHandler returns a Handler that writes into store. Zero fields of opts take
// their defaults; callers should check opts with Options.Validate first, because
// an invalid option (such as an invalid default tenant) otherwise shows up as an
// error in every affected request. A nil reg registers no metrics and a nil
// logger discards logs.
func NewHandler(opts Options, store TenantStorage, reg prometheus.Registerer, logger *slog.Logger) *Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := opts.Validate(); err != nil {
		logger.Error("invalid remote write receiver options", "err", err)
	}
	h := &Handler{
		opts:    opts.withDefaults(),
		store:   store,
		logger:  logger,
		metrics: newHandlerMetrics(reg),
		now:     time.Now,
		rate:    limits.NewRateLimiter(),
		usage:   newUsage(reg),
	}
	h.pool.New = func() any { return newBatch() }
	if opts.Route != nil && opts.Route.Ringer != nil {
		h.router = newRouter(h, opts.Route.withDefaults(), reg)
	}
	return h
}

// Close releases the connections to peers. In-flight requests must be done.
func (h *Handler) Close() error {
	if h.router == nil {
		return nil
	}
	return h.router.peers.close()
}

// response is what a request is answered with.
type response struct {
	code  int
	msg   string // body of non-2xx responses
	proto protocol
	// written counts go into the Remote-Write 2.0 headers.
	samples, histograms, exemplars int
	// retryAfter, in seconds, is sent as Retry-After when positive (429s).
	retryAfter int
	// discarded counts the samples not written, by tenant usage reason.
	discarded [numDiscards]int
}

// ServeHTTP handles one remote write request; see the package documentation for
// the status codes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	resp := h.serve(w, r)

	if resp.proto == protoV2 {
		hdr := w.Header()
		hdr.Set(HeaderSamplesWritten, strconv.Itoa(resp.samples))
		hdr.Set(HeaderHistogramsWritten, strconv.Itoa(resp.histograms))
		hdr.Set(HeaderExemplarsWritten, strconv.Itoa(resp.exemplars))
	}
	if resp.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	if resp.code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
	}
	switch {
	case resp.code == http.StatusNoContent:
		w.WriteHeader(resp.code)
	case resp.code == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, resp.msg, resp.code)
	default:
		http.Error(w, resp.msg, resp.code)
	}

	code := statusLabel(resp.code)
	p := resp.proto.String()
	h.metrics.requests.WithLabelValues(code, p).Inc()
	h.metrics.duration.WithLabelValues(code, p).Observe(time.Since(start).Seconds())
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) response {
	if r.Method != http.MethodPost {
		return response{code: http.StatusMethodNotAllowed, msg: "remote write takes POST, got " + r.Method}
	}
	proto, err := negotiate(r.Header)
	if err != nil {
		return response{code: http.StatusUnsupportedMediaType, msg: err.Error()}
	}
	resp := response{proto: proto}

	tenant, code, err := h.tenant(r)
	if err != nil {
		return resp.fail(code, err.Error())
	}
	lim := h.limitsFor(tenant)
	maxBody := h.opts.MaxCompressedBytes
	if lim.MaxRequestBytes > 0 && lim.MaxRequestBytes < maxBody {
		maxBody = lim.MaxRequestBytes
	}
	limitName := fmt.Sprintf("the limit of %d bytes", maxBody)
	if maxBody < h.opts.MaxCompressedBytes {
		// The tenant's own limit is the one exceeded: name it.
		limitName = fmt.Sprintf("max_request_bytes=%d", maxBody)
	}
	tooLarge := func(n int64) response {
		size := "request body"
		if n > 0 {
			size = fmt.Sprintf("request body of %d bytes", n)
		}
		return resp.fail(http.StatusRequestEntityTooLarge, size+" exceeds "+limitName)
	}
	if r.ContentLength > maxBody {
		return tooLarge(r.ContentLength)
	}

	b := h.pool.Get().(*batch)
	defer h.release(b)

	// MaxBytesReader also tells the server to close the connection instead of
	// draining an oversized body.
	body := http.MaxBytesReader(w, r.Body, maxBody)
	b.body, err = readBody(body, b.body, r.ContentLength)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge(-1)
		}
		// The connection broke or timed out; the sender may well be able to retry.
		return resp.fail(http.StatusServiceUnavailable, fmt.Sprintf("read request body: %v", err))
	}
	if len(b.body) == 0 {
		return resp.ok()
	}
	h.metrics.bodyBytes.WithLabelValues(proto.String(), "snappy").Observe(float64(len(b.body)))

	n, err := snappy.DecodedLen(b.body)
	if err != nil {
		return resp.fail(http.StatusBadRequest, fmt.Sprintf("decode snappy: %v", err))
	}
	if int64(n) > h.opts.MaxDecompressedBytes {
		return resp.fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("decompressed request of %d bytes exceeds the limit of %d bytes", n, h.opts.MaxDecompressedBytes))
	}
	if cap(b.data) < n {
		b.data = make([]byte, n)
	}
	b.data, err = snappy.Decode(b.data[:cap(b.data)], b.body)
	if err != nil {
		return resp.fail(http.StatusBadRequest, fmt.Sprintf("decode snappy: %v", err))
	}
	h.metrics.bodyBytes.WithLabelValues(proto.String(), "identity").Observe(float64(len(b.data)))

	if proto == protoV2 {
		err = b.req.decodeV2(b.data)
	} else {
		err = b.req.decodeV1(b.data)
	}
	if err != nil {
		return resp.fail(http.StatusBadRequest, fmt.Sprintf("decode %s: %v", protoName(proto), err))
	}
	if len(b.req.series) == 0 {
		// Nothing to write; Remote-Write 1.0 metadata alone is not stored.
		return resp.ok()
	}
	u := h.usage.of(tenant)
	samples := len(b.req.samples) + len(b.req.histograms)
	u.received(samples, len(b.body))
	if err := h.rate.Allow(tenant, samples, lim); err != nil {
		u.discard(discardRateLimited, samples)
		return resp.limited(err)
	}
	checkLabelLimits(&b.req, lim)
	resp = h.write(r, tenant, b, resp)
	u.discardAll(&resp.discarded)
	return resp
}

// tenant resolves the tenant of r: from its credential with an Authenticator,
// else from the tenant header, else the default tenant.
func (h *Handler) tenant(r *http.Request) (string, int, error) {
	if h.opts.Authenticator != nil {
		tenant, code, err := h.opts.Authenticator.Authenticate(r, h.opts.TenantHeader)
		if err != nil {
			return "", code, err
		}
		return tenant, 0, nil
	}
	tenant := r.Header.Get(h.opts.TenantHeader)
	if tenant == "" {
		tenant = h.opts.DefaultTenant
	}
	if err := ValidateTenant(tenant); err != nil {
		return "", http.StatusBadRequest, err
	}
	return tenant, 0, nil
}

// limitsFor returns the limits in force for tenant; none without Options.Limits.
func (h *Handler) limitsFor(tenant string) limits.Limits {
	if h.opts.Limits == nil {
		return limits.Limits{}
	}
	return h.opts.Limits.For(tenant)
}

// exemplarsDisabled reports whether tenant's exemplars are dropped.
func (h *Handler) exemplarsDisabled(tenant string) bool {
	if h.opts.DisableExemplars {
		return true
	}
	return h.opts.Limits != nil && h.opts.Limits.For(tenant).MaxExemplars == 0
}

// maxSeries is this node's share of tenant's max_active_series: each node holds
// about RF/N of a tenant's series in a ring of N nodes, so it stops taking new
// series at that share of the limit. A node that does not route, or whose
// ring is no larger than RF, holds every series it is sent and gets the whole
// limit. Zero means no limit.
func (h *Handler) maxSeries(tenant string) int {
	l := h.limitsFor(tenant).MaxActiveSeries
	if l <= 0 || h.router == nil {
		return l
	}
	ring, err := h.router.opts.Ringer.Ring(tenant)
	if err != nil {
		return l
	}
	n, rf := len(ring.Endpoints()), ring.ReplicationFactor()
	if n <= rf || rf < 1 {
		return l
	}
	return int(math.Ceil(float64(l) * float64(rf) / float64(n)))
}

// checkLabelLimits marks the series of req whose labels break a label limit of
// l as invalid, with the *limits.Error as their error, so that the write path
// rejects them (400) and writes the rest.
func checkLabelLimits(req *request, l limits.Limits) {
	if l.MaxLabelsPerSeries <= 0 && l.MaxLabelNameLength <= 0 && l.MaxLabelValueLength <= 0 {
		return
	}
	for i := range req.series {
		s := &req.series[i]
		if s.err != nil {
			continue
		}
		sl := req.labels[s.labels.lo:s.labels.hi]
		if !overLabelLimits(sl, l) {
			continue
		}
		// Only a series over a limit pays for the closures that name it.
		s.err = limits.CheckLabels(len(sl), func(yield func(name, value string) bool) {
			for _, l := range sl {
				if !yield(l.name, l.value) {
					return
				}
			}
		}, func() string { return formatSeries(sl) }, l)
	}
}

// overLabelLimits reports whether the labels sl break a label limit of l.
func overLabelLimits(sl []wireLabel, l limits.Limits) bool {
	if l.MaxLabelsPerSeries > 0 && len(sl) > l.MaxLabelsPerSeries {
		return true
	}
	for _, lb := range sl {
		if (l.MaxLabelNameLength > 0 && len(lb.name) > l.MaxLabelNameLength) ||
			(l.MaxLabelValueLength > 0 && len(lb.value) > l.MaxLabelValueLength) {
			return true
		}
	}
	return false
}

// write stores a decoded request: routed to the owners of each series when the
// handler is a router, else appended to local storage.
func (h *Handler) write(r *http.Request, tenant string, b *batch, resp response) response {
	if h.router != nil {
		return h.router.route(r.Context(), tenant, b, resp)
	}
	code, msg := h.appendLocal(r.Context(), tenant, b, writeOptions{})
	if code == http.StatusServiceUnavailable {
		return resp.fail(code, msg)
	}
	res := &b.res
	resp.samples, resp.histograms, resp.exemplars = res.samples, res.histograms, res.exemplars
	resp.code, resp.msg = code, msg
	if code == http.StatusTooManyRequests {
		resp.retryAfter = seriesLimitRetryAfter
	}
	resp.discarded = discardsOf(res)
	return resp
}

// seriesLimitRetryAfter is the Retry-After of a write refused by the active
// series limit: series leave the head at its next compaction, hours away, so a
// quick retry would only be refused again.
const seriesLimitRetryAfter = 60

// discardsOf sorts the samples res did not write into the tenant usage reasons.
func discardsOf(res *result) (d [numDiscards]int) {
	for r, n := range res.byReason {
		switch reason(r) {
		case reasonLabelLimit:
			d[discardLabelLimit] += n
		case reasonSeriesLimit:
			d[discardSeriesLimit] += n
		default:
			d[discardRejected] += n
		}
	}
	return d
}

// appendLocal appends the series of b.req that o selects to tenant's storage and
// commits, leaving the outcome in b.res. It returns 204, 400 with a message when
// some samples were rejected for good (the rest is committed), or 503 when nothing
// was written and a retry may succeed.
func (h *Handler) appendLocal(ctx context.Context, tenant string, b *batch, o writeOptions) (int, string) {
	app, err := h.store.TenantAppender(ctx, tenant)
	if err != nil {
		h.logger.Warn("open tenant appender", "tenant", tenant, "err", err)
		return http.StatusServiceUnavailable, fmt.Sprintf("storage of tenant %q unavailable: %v", tenant, err)
	}
	o.maxT = int64(math.MaxInt64)
	if h.opts.MaxFutureSkew > 0 {
		o.maxT = h.now().Add(h.opts.MaxFutureSkew).UnixMilli()
	}
	o.disableExemplars = h.exemplarsDisabled(tenant)
	o.maxSeries = h.maxSeries(tenant)
	if h.router != nil {
		o.placeTenant = tenant
	}
	if err := b.write(app, o); err != nil {
		if rerr := app.Rollback(); rerr != nil {
			err = errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		h.logger.Warn("append failed, request rolled back", "tenant", tenant, "err", err)
		return http.StatusServiceUnavailable, err.Error()
	}
	if err := app.Commit(); err != nil {
		h.logger.Warn("commit failed", "tenant", tenant, "err", err)
		return http.StatusServiceUnavailable, fmt.Sprintf("commit: %v", err)
	}

	res := &b.res
	h.metrics.observe(res)
	if !res.rejected() && res.limitedSeries == 0 {
		return http.StatusNoContent, ""
	}
	total := 0
	for i := range o.selected(len(b.req.series)) {
		s := &b.req.series[i]
		total += s.samples.len() + s.histograms.len()
	}
	var msgs []string
	if res.limitedSeries > 0 {
		msgs = append(msgs, fmt.Sprintf("%d of %d samples refused (%d new series) by the active series limit, first: %s",
			res.limitedSamples, total, res.limitedSeries, res.firstLimit))
	}
	if res.rejected() {
		msgs = append(msgs, fmt.Sprintf("%d of %d samples rejected (%d series), first: %s: %s",
			res.rejectedSamples, total, res.rejectedSeries, res.firstSeries, res.firstError))
		h.logger.Debug("samples rejected", "tenant", tenant, "rejected", res.rejectedSamples, "total", total, "first", res.firstSeries, "err", res.firstError)
	}
	if res.limitedSeries > 0 {
		return http.StatusTooManyRequests, strings.Join(msgs, "; ")
	}
	return http.StatusBadRequest, msgs[0]
}

func (r response) ok() response {
	r.code = http.StatusNoContent
	return r
}

// fail returns r as an error response; nothing was written.
func (r response) fail(code int, msg string) response {
	r.code, r.msg = code, msg
	r.samples, r.histograms, r.exemplars = 0, 0, 0
	return r
}

// limited returns r as the answer to a request refused by a limit (a
// *limits.Error); nothing was written.
func (r response) limited(err error) response {
	le, ok := errors.AsType[*limits.Error](err)
	if !ok {
		return r.fail(http.StatusTooManyRequests, err.Error())
	}
	r = r.fail(le.Status, le.Error())
	if le.Status == http.StatusTooManyRequests {
		r.retryAfter = le.RetryAfterSeconds()
	}
	return r
}

// release returns b to the pool, unless it grew too large to keep.
func (h *Handler) release(b *batch) {
	b.req.reset()
	b.res = result{}
	b.lookupCache = nil
	if cap(b.body) > maxPooledBytes || cap(b.data) > maxPooledBytes {
		// Drop the buffers and everything that may point into them.
		b.body, b.data = nil, nil
		b.req.forget()
		b.req = request{}
	}
	h.pool.Put(b)
}

// negotiate picks the protocol version from the Content-Type and checks the
// Content-Encoding, per the Remote-Write 2.0 spec. A missing Content-Type means
// 1.0, which is what old senders omit.
func negotiate(hdr http.Header) (protocol, error) {
	if enc := strings.TrimSpace(hdr.Get("Content-Encoding")); enc != "" && !strings.EqualFold(enc, "snappy") {
		return protoUnknown, fmt.Errorf("unsupported Content-Encoding %q: only snappy is supported", enc)
	}
	ct := hdr.Get("Content-Type")
	switch ct {
	case "", mediaType, ContentTypeV1:
		return protoV1, nil
	case ContentTypeV2:
		return protoV2, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, mediaType) {
		return protoUnknown, fmt.Errorf("unsupported Content-Type %q: supported are %q (Remote-Write 1.0, with or without the proto parameter) and %q (Remote-Write 2.0)", ct, ContentTypeV1, ContentTypeV2)
	}
	switch params["proto"] {
	case "", protoNameV1:
		return protoV1, nil
	case protoNameV2:
		return protoV2, nil
	default:
		return protoUnknown, fmt.Errorf("unsupported proto %q in Content-Type %q: supported are %q and %q", params["proto"], ct, protoNameV1, protoNameV2)
	}
}

func protoName(p protocol) string {
	if p == protoV2 {
		return "remote write 2.0 request"
	}
	return "remote write 1.0 request"
}

// readBody reads all of r into buf, reusing its capacity. contentLength, if
// known, sizes the buffer up front.
func readBody(r io.Reader, buf []byte, contentLength int64) ([]byte, error) {
	buf = buf[:0]
	if contentLength > 0 && int64(cap(buf)) <= contentLength {
		// One spare byte lets the final read see EOF without growing.
		buf = make([]byte, 0, contentLength+1)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// statusLabel returns the metric label of an HTTP status code without allocating.
func statusLabel(code int) string {
	switch code {
	case http.StatusNoContent:
		return "204"
	case http.StatusBadRequest:
		return "400"
	case http.StatusMethodNotAllowed:
		return "405"
	case http.StatusRequestEntityTooLarge:
		return "413"
	case http.StatusUnsupportedMediaType:
		return "415"
	case http.StatusTooManyRequests:
		return "429"
	case http.StatusServiceUnavailable:
		return "503"
	default:
		return strconv.Itoa(code)
	}
}
