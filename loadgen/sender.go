package loadgen

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
)

// Header values of the two protocols.
const (
	contentTypeRW1 = "application/x-protobuf"
	contentTypeRW2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionRW1     = "0.1.0"
	versionRW2     = "2.0.0"
	userAgent      = "strata-bench-write"
)

// maxLag bounds how far, in sample time, one sender may run ahead of the
// slowest. Prometheus TSDBs (strata's, Prometheus', ...) reject in-order
// samples older than half a block range (1h by default) behind the newest
// sample of the head, so senders must stay well within that.
const maxLag = 5 * time.Minute

// maxErrorMessages is how many error messages a report keeps.
const maxErrorMessages = 5

// NewClient returns an HTTP client for conns concurrent requests to the same
// hosts, over HTTP/1.1 with keep-alive, without transparent compression. A nil
// tlsConfig uses the system roots.
func NewClient(tlsConfig *tls.Config, conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tlsConfig,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			// Request bodies are 10-200 KiB: write them in few system calls.
			WriteBufferSize: 128 << 10,
		},
	}
}

// Phases of a run; a request counts for the measured window when it ends in
// phaseMeasure.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

// shared is what the senders of a run share.
type shared struct {
	client *http.Client
	phase  atomic.Int32
	stop   chan struct{} // closed when senders must not start another request
	prog   *progress
	errs   errorLog
	rate   float64 // per sender, samples per second; 0 is unlimited
}

func (s *shared) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// progress tracks the rounds each sender completed and holds back a sender that
// is more than lag rounds ahead of the slowest.
type progress struct {
	mu      sync.Mutex
	cond    sync.Cond
	rounds  []int
	lag     int
	stopped bool
}

func newProgress(senders int, interval time.Duration) *progress {
	p := &progress{rounds: make([]int, senders), lag: max(1, int(maxLag/interval))}
	p.cond.L = &p.mu
	return p
}

// wait blocks a sender until it may start round r: until no sender has
// completed fewer than r-lag rounds. It returns false if the run stopped.
func (p *progress) wait(r int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.stopped && r-p.minLocked() > p.lag {
		p.cond.Wait()
	}
	return !p.stopped
}

// done records that sender i completed rounds [0, r).
func (p *progress) done(i, r int) {
	p.mu.Lock()
	p.rounds[i] = r
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *progress) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *progress) min() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.minLocked()
}

func (p *progress) minLocked() int {
	m := p.rounds[0]
	for _, r := range p.rounds[1:] {
		m = min(m, r)
	}
	return m
}

// errorLog counts failed requests by status code (or "transport") and keeps the
// first messages. Failures are rare, so one mutex for all senders is enough.
type errorLog struct {
	mu       sync.Mutex
	counts   map[string]int64
	messages []string
}

func (l *errorLog) add(key, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.counts == nil {
		l.counts = map[string]int64{}
	}
	l.counts[key]++
	if len(l.messages) < maxErrorMessages {
		l.messages = append(l.messages, msg)
	}
}

// windowStats are a sender's numbers for the measured window.
type windowStats struct {
	requests, samples, acked, bytes int64
	latency                         histogram
}

// sender sends its batches round after round, one request at a time.
type sender struct {
	id      int
	sh      *shared
	batches []*Batch
	headers []http.Header // of each batch
	req     *http.Request
	body    reqBody
	buf     []byte // the compressed request
	timer   *time.Timer

	// Pacing with a rate: sent samples since base.
	base time.Time
	sent int64

	ackedTotal    int64
	failedSamples int64
	minT, maxT    int64 // of acknowledged samples
	window        windowStats
}

func newSender(id int, sh *shared, url string, batches []*Batch, headers []http.Header) (*sender, error) {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	s := &sender{
		id:      id,
		sh:      sh,
		batches: batches,
		headers: headers,
		req:     req,
		timer:   time.NewTimer(time.Hour),
		minT:    math.MaxInt64,
		maxT:    math.MinInt64,
	}
	s.timer.Stop()
	s.body.done = make(chan struct{}, 1)
	s.body.done <- struct{}{} // no request in flight yet
	return s, nil
}

func (s *sender) run() {
	defer s.timer.Stop()
	defer s.body.wait()
	for r := 0; ; r++ {
		if !s.sh.prog.wait(r) {
			return
		}
		for j, b := range s.batches {
			if s.sh.stopped() {
				return
			}
			raw := b.Next(r)
			s.body.wait() // the transport may read the previous body after Do returned
			s.buf = s2.EncodeSnappy(s.buf[:cap(s.buf)], raw)
			if !s.pace(b.Len()) {
				s.body.done <- struct{}{} // nothing in flight
				return
			}
			s.send(b, s.headers[j], b.w.Timestamp(r))
		}
		s.sh.prog.done(s.id, r+1)
	}
}

// pace waits until n more samples are due at the sender's rate; false if the run
// stopped meanwhile. A sender that falls behind by more than a second does not
// catch up in a burst.
func (s *sender) pace(n int) bool {
	if s.sh.rate <= 0 {
		return true
	}
	now := time.Now()
	if s.base.IsZero() {
		s.base = now
	}
	due := s.base.Add(time.Duration(float64(s.sent) / s.sh.rate * float64(time.Second)))
	s.sent += int64(n)
	switch d := due.Sub(now); {
	case d > 0:
		s.timer.Reset(d)
		select {
		case <-s.timer.C:
		case <-s.sh.stop:
			s.timer.Stop()
			return false
		}
	case d < -time.Second:
		s.base, s.sent = now, int64(n)
	}
	return true
}

// send sends s.buf, the compressed samples of b at timestamp ts, and accounts
// for the outcome. Requests are not retried.
func (s *sender) send(b *Batch, hdr http.Header, ts int64) {
	n := int64(b.Len())
	s.body.reset(s.buf)
	s.req.Header = hdr
	s.req.Body = &s.body
	s.req.ContentLength = int64(len(s.buf))

	start := time.Now()
	resp, err := s.sh.client.Do(s.req)
	lat := time.Since(start)
	if s.sh.phase.Load() == phaseMeasure {
		w := &s.window
		w.requests++
		w.samples += n
		w.bytes += int64(len(s.buf))
		w.latency.record(lat)
	}
	if err != nil {
		s.failedSamples += n
		s.sh.errs.add("transport", err.Error())
		return
	}
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if !ok {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		s.sh.errs.add(strconv.Itoa(resp.StatusCode), fmt.Sprintf("%s: %s: %s", s.req.URL, resp.Status, strings.TrimSpace(string(msg))))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if !ok {
		s.failedSamples += n
		return
	}
	s.ackedTotal += n
	if s.sh.phase.Load() == phaseMeasure {
		s.window.acked += n
	}
	s.minT, s.maxT = min(s.minT, ts), max(s.maxT, ts)
}

// reqBody is a request body over a reused buffer. The transport closes it,
// possibly after Do returned; done gets a value on the first Close, so that
// wait tells when the buffer may be overwritten.
type reqBody struct {
	rd     bytes.Reader
	closed atomic.Bool
	done   chan struct{}
}

func (b *reqBody) reset(p []byte) {
	b.rd.Reset(p)
	b.closed.Store(false)
}

// wait blocks until the body of the previous request has been closed.
func (b *reqBody) wait() { <-b.done }

func (b *reqBody) Read(p []byte) (int, error) { return b.rd.Read(p) }

func (b *reqBody) WriteTo(w io.Writer) (int64, error) { return b.rd.WriteTo(w) }

func (b *reqBody) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.done <- struct{}{}
	}
	return nil
}
