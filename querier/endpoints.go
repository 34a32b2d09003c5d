package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/stratametrics/strata/storeapi"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/tlsconfig"
)

// Defaults of EndpointSetOptions.
const (
	// DefaultInfoInterval is how often every endpoint is asked for its Info.
	DefaultInfoInterval = 5 * time.Second
	// DefaultInfoTimeout bounds one Info call and one DNS lookup.
	DefaultInfoTimeout = 5 * time.Second
	// DefaultDiscoveryInterval is how often the SD file is re-read and dns+
	// names are re-resolved.
	DefaultDiscoveryInterval = 30 * time.Second
)

// Resolver resolves a host name to its addresses. *net.Resolver satisfies it.
// It must be safe for concurrent use.
type Resolver interface {
	// LookupIPAddr returns every A and AAAA address of host.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// EndpointSetOptions configures an EndpointSet. The zero value is an empty set
// with the default intervals.
type EndpointSetOptions struct {
	// Endpoints are static targets (--endpoint): "host:port", or
	// "dns+host:port" to fan out to every address of host.
	Endpoints []string
	// SDFile is the path of an SD file (--endpoint.sd-config-file) in the
	// format of SDConfig, re-read every DiscoveryInterval. A file that cannot
	// be read or parsed keeps the targets of the last good read.
	SDFile string
	// InfoInterval is how often each endpoint's Info is polled; zero means
	// DefaultInfoInterval.
	InfoInterval time.Duration
	// InfoTimeout bounds each Info call and DNS lookup; zero means
	// DefaultInfoTimeout.
	InfoTimeout time.Duration
	// DiscoveryInterval is how often the SD file is re-read and dns+ targets
	// are re-resolved; zero means DefaultDiscoveryInterval.
	DiscoveryInterval time.Duration
	// Resolver resolves dns+ targets; nil means a zero net.Resolver. A failed
	// lookup keeps the addresses of the last good one.
	Resolver Resolver
	// DialOptions are appended to the default options of every connection,
	// which dial without TLS; a grpc.WithTransportCredentials here replaces
	// that. TLS configured by the TLS field or an SD group's tls_config
	// takes precedence over it.
	DialOptions []grpc.DialOption
	// TLS, when not nil, makes the connections to Endpoints, and to the SD
	// file's groups without a tls_config of their own, use TLS with this
	// configuration. Servers are verified against its ServerName or else the
	// dialed host, which may be an IP address.
	TLS *tlsconfig.ClientConfig
}

// EndpointStatus is what the querier knows about one endpoint: what its
// latest successful Info call reported and how its latest call went.
type EndpointStatus struct {
	// Address is the dialed "host:port".
	Address string
	// ComponentType is the component the endpoint says it is, for example
	// "receive" or "store".
	ComponentType string
	// LabelSets are the endpoint's external label sets. Every series of the
	// endpoint carries the labels of one of them.
	LabelSets []labels.Labels
	// StoreAPI reports whether the endpoint serves the Store API. An endpoint
	// without it is never asked for series.
	StoreAPI bool
	// MinTime and MaxTime are the time range of the endpoint's data, in
	// milliseconds, inclusive. MinTime > MaxTime means it holds nothing yet.
	MinTime, MaxTime int64
	// SupportsWithoutReplicaLabels reports whether the endpoint honours
	// without_replica_labels.
	SupportsWithoutReplicaLabels bool
	// Healthy reports whether the latest Info call succeeded. Unhealthy
	// endpoints are kept, and skipped by queries.
	Healthy bool
	// LastCheck is the time of the latest Info call, LastSuccess of the
	// latest successful one; both are zero before the first.
	LastCheck, LastSuccess time.Time
	// LastError is the error of the latest Info call, nil if it succeeded.
	LastError error
}

// mayMatch reports whether the endpoint can hold series in [mint, maxt] that
// match ms: its time range overlaps, and some external label set has, for every
// matcher on one of its labels, a value that the matcher accepts. An endpoint
// without label sets can match anything.
func (s *EndpointStatus) mayMatch(mint, maxt int64, ms []*labels.Matcher) bool {
	if s.MinTime > maxt || s.MaxTime < mint {
		return false
	}
	if len(s.LabelSets) == 0 {
		return true
	}
	for _, ls := range s.LabelSets {
		if labelSetMatches(ls, ms) {
			return true
		}
	}
	return false
}

func labelSetMatches(ls labels.Labels, ms []*labels.Matcher) bool {
	for _, m := range ms {
		if ls.Has(m.Name) && !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// EndpointSet is the querier's view of its Store API endpoints: it discovers
// them from static targets and an SD file, resolves dns+ targets, keeps one
// gRPC connection per address and polls every endpoint's Info to learn its
// external labels, time range and health. Run drives it; Refresh does one
// round synchronously. It is safe for concurrent use.
type EndpointSet struct {
	opts     EndpointSetOptions
	static   []target
	resolver Resolver
	logger   *slog.Logger
	metrics  *endpointMetrics

	// discoverMu serializes discovery and guards what it remembers.
	discoverMu  sync.Mutex
	fileTargets []target            // targets of the last good SD file read
	resolved    map[string][]string // dns+ spec -> addresses of its last good lookup
	// tlsClients holds the TLS material of every configuration in use, so
	// that connections of one group share it. Guarded by discoverMu.
	tlsClients map[tlsconfig.ClientConfig]*tlsconfig.Client
	reg        prometheus.Registerer

	mu        sync.RWMutex
	endpoints map[string]*endpoint // by address
	closed    bool
}

type endpointMetrics struct {
	endpoints    *prometheus.GaugeVec
	infoRequests *prometheus.CounterVec
	sdFileReads  *prometheus.CounterVec
	dnsLookups   *prometheus.CounterVec
}

func newEndpointMetrics(reg prometheus.Registerer) *endpointMetrics {
	f := promauto.With(reg)
	return &endpointMetrics{
		endpoints: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_querier_endpoints",
			Help: "Number of discovered Store API endpoints by health.",
		}, []string{"health"}),
		infoRequests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_endpoint_info_requests_total",
			Help: "Info calls to endpoints by result.",
		}, []string{"result"}),
		sdFileReads: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_endpoint_sd_file_reads_total",
			Help: "Reads of the endpoint SD file by result.",
		}, []string{"result"}),
		dnsLookups: f.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_querier_endpoint_dns_lookups_total",
			Help: "DNS lookups of dns+ endpoint targets by result.",
		}, []string{"result"}),
	}
}

// NewEndpointSet returns a set over the static targets and SD file of opts.
// It validates the static targets and starts nothing: call Refresh or Run to
// discover and probe endpoints, and Close to release the connections.
func NewEndpointSet(opts EndpointSetOptions, reg prometheus.Registerer, logger *slog.Logger) (*EndpointSet, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.InfoInterval < 0 || opts.InfoTimeout < 0 || opts.DiscoveryInterval < 0 {
		return nil, errors.New("endpoint set intervals and timeouts must not be negative")
	}
	if opts.InfoInterval == 0 {
		opts.InfoInterval = DefaultInfoInterval
	}
	if opts.InfoTimeout == 0 {
		opts.InfoTimeout = DefaultInfoTimeout
	}
	if opts.DiscoveryInterval == 0 {
		opts.DiscoveryInterval = DefaultDiscoveryInterval
	}
	s := &EndpointSet{
		opts:      opts,
		resolver:  opts.Resolver,
		logger:    logger,
		metrics:   newEndpointMetrics(reg),
		resolved:  map[string][]string{},
		endpoints: map[string]*endpoint{},

		tlsClients: map[tlsconfig.ClientConfig]*tlsconfig.Client{},
		reg:        reg,
	}
	if opts.TLS != nil {
		if _, err := s.tlsClient(*opts.TLS); err != nil {
			return nil, fmt.Errorf("endpoint tls: %w", err)
		}
	}
	if s.resolver == nil {
		s.resolver = &net.Resolver{}
	}
	for _, spec := range opts.Endpoints {
		t, err := parseTarget(spec)
		if err != nil {
			return nil, fmt.Errorf("static endpoint: %w", err)
		}
		t.tls = opts.TLS
		s.static = append(s.static, t)
	}
	return s, nil
}

// Run discovers and probes the endpoints at once, then re-probes them every
// InfoInterval and rediscovers them every DiscoveryInterval, until ctx is
// done. It returns nil then; it does not close the set.
func (s *EndpointSet) Run(ctx context.Context) error {
	_ = s.Refresh(ctx) // Errors are logged and counted; discovery retries on the next tick.
	info := time.NewTicker(s.opts.InfoInterval)
	defer info.Stop()
	disc := time.NewTicker(s.opts.DiscoveryInterval)
	defer disc.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-info.C:
			s.probe(ctx, s.snapshot())
		case <-disc.C:
			added, _ := s.discover(ctx)
			s.probe(ctx, added)
		}
	}
}

// Refresh re-reads the SD file, re-resolves dns+ targets, updates the
// endpoints and probes every endpoint's Info, all before it returns. The error
// joins the discovery errors (SD file, DNS); each of them left the targets
// of its last good round in place. Info failures are not errors here: they make
// the endpoint unhealthy.
func (s *EndpointSet) Refresh(ctx context.Context) error {
	_, err := s.discover(ctx)
	s.probe(ctx, s.snapshot())
	return err
}

// Endpoints returns the status of every endpoint, sorted by address.
func (s *EndpointSet) Endpoints() []EndpointStatus {
	s.mu.RLock()
	out := make([]EndpointStatus, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		out = append(out, e.status())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b EndpointStatus) int { return strings.Compare(a.Address, b.Address) })
	return out
}

// Close closes the connections of all endpoints; connections in use by a
// query are closed when the query releases them. The set discovers nothing
// afterwards. Close is idempotent.
func (s *EndpointSet) Close() error {
	s.mu.Lock()
	eps := s.endpoints
	s.endpoints, s.closed = map[string]*endpoint{}, true
	s.mu.Unlock()
	var errs []error
	for _, e := range eps {
		errs = append(errs, e.retire())
	}
	s.updateHealthGauge()
	return errors.Join(errs...)
}

// discover computes the current addresses and adds and removes endpoints to
// match. It returns the endpoints it added.
func (s *EndpointSet) discover(ctx context.Context) ([]*endpoint, error) {
	s.discoverMu.Lock()
	defer s.discoverMu.Unlock()

	var errs []error
	targets := slices.Clone(s.static)
	if s.opts.SDFile != "" {
		if err := s.readSDFile(); err != nil {
			errs = append(errs, err)
		}
		targets = append(targets, s.fileTargets...)
	}

	want := map[string]dialConfig{}
	specs := map[string]bool{}
	for _, t := range targets {
		dc := newDialConfig(t.tls)
		if !t.dns {
			s.addWanted(want, t.addr, dc)
			continue
		}
		if !specs[t.spec] {
			specs[t.spec] = true
			if err := s.resolve(ctx, t); err != nil {
				errs = append(errs, err)
			}
		}
		for _, a := range s.resolved[t.spec] {
			s.addWanted(want, a, dc)
		}
	}
	for spec := range s.resolved {
		if !specs[spec] {
			delete(s.resolved, spec)
		}
	}

	added, err := s.update(want)
	if err != nil {
		errs = append(errs, err)
	}
	return added, errors.Join(errs...)
}

func (s *EndpointSet) readSDFile() error {
	data, err := os.ReadFile(s.opts.SDFile)
	if err == nil {
		var c SDConfig
		if c, err = ParseSDConfig(data); err == nil {
			var targets []target
			if targets, err = s.sdTargets(c); err == nil {
				s.fileTargets = targets
				s.metrics.sdFileReads.WithLabelValues("success").Inc()
				return nil
			}
		}
	}
	s.metrics.sdFileReads.WithLabelValues("error").Inc()
	s.logger.Warn("read endpoint sd file, keeping the previous targets", "file", s.opts.SDFile, "err", err)
	return fmt.Errorf("read endpoint sd file %q: %w", s.opts.SDFile, err)
}

// sdTargets returns the targets of c with their TLS configuration, loading
// the TLS material of every group that has its own, and drops the material
// of configurations no longer in use. Called with discoverMu held.
func (s *EndpointSet) sdTargets(c SDConfig) ([]target, error) {
	inUse := map[tlsconfig.ClientConfig]bool{}
	if s.opts.TLS != nil {
		inUse[*s.opts.TLS] = true
	}
	var targets []target
	for i, g := range c {
		tc := s.opts.TLS
		if g.TLSConfig != nil {
			tc = g.TLSConfig
			if _, err := s.tlsClient(*tc); err != nil {
				return nil, fmt.Errorf("group %d: tls_config: %w", i, err)
			}
			inUse[*tc] = true
		}
		for _, spec := range g.Targets {
			t, _ := parseTarget(spec) // Validated by ParseSDConfig.
			t.tls = tc
			targets = append(targets, t)
		}
	}
	for k := range s.tlsClients {
		if !inUse[k] {
			delete(s.tlsClients, k)
		}
	}
	return targets, nil
}

// tlsClient returns the TLS material of cfg, loading it on first use.
// Called with discoverMu held, or from NewEndpointSet.
func (s *EndpointSet) tlsClient(cfg tlsconfig.ClientConfig) (*tlsconfig.Client, error) {
	if c, ok := s.tlsClients[cfg]; ok {
		return c, nil
	}
	c, err := tlsconfig.NewClient(cfg, s.reg, s.logger)
	if err != nil {
		return nil, err
	}
	s.tlsClients[cfg] = c
	return c, nil
}

// dialConfig is how an address is dialed: with TLS or without, and with
// which TLS configuration. It is comparable, so that a changed configuration
// can be told from the one an endpoint was dialed with.
type dialConfig struct {
	tls bool
	cfg tlsconfig.ClientConfig
}

func newDialConfig(c *tlsconfig.ClientConfig) dialConfig {
	if c == nil {
		return dialConfig{}
	}
	return dialConfig{tls: true, cfg: *c}
}

// addWanted adds addr to want. An address that several targets name is
// dialed with the configuration of the first of them.
func (s *EndpointSet) addWanted(want map[string]dialConfig, addr string, dc dialConfig) {
	prev, ok := want[addr]
	if !ok {
		want[addr] = dc
		return
	}
	if prev != dc {
		s.logger.Warn("endpoint named by targets with different tls configurations, using the first", "endpoint", addr)
	}
}

func (s *EndpointSet) resolve(ctx context.Context, t target) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.InfoTimeout)
	defer cancel()
	ips, err := s.resolver.LookupIPAddr(ctx, t.host)
	if err != nil {
		s.metrics.dnsLookups.WithLabelValues("error").Inc()
		s.logger.Warn("resolve endpoint, keeping the previous addresses", "endpoint", t.spec, "err", err)
		return fmt.Errorf("resolve %q: %w", t.spec, err)
	}
	s.metrics.dnsLookups.WithLabelValues("success").Inc()
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip.String(), t.port))
	}
	slices.Sort(addrs)
	s.resolved[t.spec] = slices.Compact(addrs)
	return nil
}

// update makes the endpoints those of want: it dials new addresses, redials
// addresses whose TLS configuration changed and retires endpoints that are no
// longer wanted. Called with discoverMu held.
func (s *EndpointSet) update(want map[string]dialConfig) ([]*endpoint, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil
	}
	var (
		added   []*endpoint
		retired []*endpoint
		errs    []error
	)
	for addr, dc := range want {
		if old, ok := s.endpoints[addr]; ok {
			if old.dial == dc {
				continue
			}
			delete(s.endpoints, addr)
			retired = append(retired, old)
			s.logger.Info("endpoint tls configuration changed, reconnecting", "endpoint", addr)
		}
		e, err := s.dialEndpoint(addr, dc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.endpoints[addr] = e
		added = append(added, e)
		s.logger.Info("endpoint added", "endpoint", addr)
	}
	for addr, e := range s.endpoints {
		if _, ok := want[addr]; !ok {
			delete(s.endpoints, addr)
			retired = append(retired, e)
			s.logger.Info("endpoint removed", "endpoint", addr)
		}
	}
	s.mu.Unlock()
	for _, e := range retired {
		if err := e.retire(); err != nil {
			s.logger.Warn("close endpoint connection", "endpoint", e.addr, "err", err)
		}
	}
	s.updateHealthGauge()
	return added, errors.Join(errs...)
}

// dialEndpoint connects to addr as dc says. Called with discoverMu held, after
// the TLS material of dc was loaded.
func (s *EndpointSet) dialEndpoint(addr string, dc dialConfig) (*endpoint, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}, s.opts.DialOptions...)
	if dc.tls {
		c, err := s.tlsClient(dc.cfg)
		if err != nil {
			return nil, fmt.Errorf("dial endpoint %s: %w", addr, err)
		}
		opts = append(opts, grpc.WithTransportCredentials(c.TransportCredentials()))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial endpoint %s: %w", addr, err)
	}
	return &endpoint{
		addr:   addr,
		dial:   dc,
		conn:   conn,
		store:  storepb.NewStoreClient(conn),
		info:   infopb.NewInfoClient(conn),
		logger: s.logger,
		st:     EndpointStatus{Address: addr, MinTime: math.MaxInt64, MaxTime: math.MinInt64},
	}, nil
}

// snapshot returns the current endpoints without acquiring them.
func (s *EndpointSet) snapshot() []*endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*endpoint, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		out = append(out, e)
	}
	return out
}

// acquire returns the current endpoints, each of which keeps its connection
// open until it is released.
func (s *EndpointSet) acquire() []*endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*endpoint, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		if e.acquire() {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *endpoint) int { return strings.Compare(a.addr, b.addr) })
	return out
}

// probe calls Info on eps concurrently and records the results.
func (s *EndpointSet) probe(ctx context.Context, eps []*endpoint) {
	var wg sync.WaitGroup
	for _, e := range eps {
		wg.Go(func() {
			ictx, cancel := context.WithTimeout(ctx, s.opts.InfoTimeout)
			defer cancel()
			resp, err := e.info.Info(ictx, &infopb.InfoRequest{})
			if err != nil {
				s.metrics.infoRequests.WithLabelValues("error").Inc()
			} else {
				s.metrics.infoRequests.WithLabelValues("success").Inc()
			}
			e.record(resp, err)
		})
	}
	wg.Wait()
	s.updateHealthGauge()
}

func (s *EndpointSet) updateHealthGauge() {
	var healthy, unhealthy float64
	for _, e := range s.snapshot() {
		if e.status().Healthy {
			healthy++
		} else {
			unhealthy++
		}
	}
	s.metrics.endpoints.WithLabelValues("healthy").Set(healthy)
	s.metrics.endpoints.WithLabelValues("unhealthy").Set(unhealthy)
}

// endpoint is one dialed address.
type endpoint struct {
	addr   string
	dial   dialConfig
	conn   *grpc.ClientConn
	store  storepb.StoreClient
	info   infopb.InfoClient
	logger *slog.Logger

	mu      sync.Mutex
	st      EndpointStatus
	refs    int  // queries using the connection
	retired bool // removed from the set; close the connection when refs is 0
}

func (e *endpoint) status() EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st
}

// record stores the outcome of an Info call. A failed call keeps the metadata
// of the last successful one.
func (e *endpoint) record(resp *infopb.InfoResponse, err error) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.st.LastCheck = now
	if err != nil {
		if e.st.Healthy {
			e.logger.Warn("endpoint unhealthy", "endpoint", e.addr, "err", err)
		}
		e.st.Healthy, e.st.LastError = false, err
		return
	}
	if !e.st.Healthy {
		e.logger.Info("endpoint healthy", "endpoint", e.addr, "component", resp.GetComponentType())
	}
	e.st.Healthy, e.st.LastError, e.st.LastSuccess = true, nil, now
	e.st.ComponentType = resp.GetComponentType()
	e.st.LabelSets = e.st.LabelSets[:0:0]
	for _, ls := range resp.GetLabelSets() {
		e.st.LabelSets = append(e.st.LabelSets, storeapi.LabelsFromProto(ls.GetLabels()))
	}
	si := resp.GetStore()
	e.st.StoreAPI = si != nil
	e.st.MinTime, e.st.MaxTime = si.GetMinTime(), si.GetMaxTime()
	if si == nil {
		e.st.MinTime, e.st.MaxTime = math.MaxInt64, math.MinInt64
	}
	e.st.SupportsWithoutReplicaLabels = si.GetSupportsWithoutReplicaLabels()
}

func (e *endpoint) acquire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.retired {
		return false
	}
	e.refs++
	return true
}

func (e *endpoint) release() {
	e.mu.Lock()
	e.refs--
	closeNow := e.retired && e.refs == 0
	e.mu.Unlock()
	if closeNow {
		if err := e.conn.Close(); err != nil {
			e.logger.Warn("close endpoint connection", "endpoint", e.addr, "err", err)
		}
	}
}

// retire marks the endpoint removed and closes its connection unless a query
// still uses it, in which case the last release closes it.
func (e *endpoint) retire() error {
	e.mu.Lock()
	if e.retired {
		e.mu.Unlock()
		return nil
	}
	e.retired = true
	closeNow := e.refs == 0
	e.mu.Unlock()
	if closeNow {
		return e.conn.Close()
	}
	return nil
}
