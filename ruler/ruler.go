package ruler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	commonconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/notifier"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/storage/remote"
	"github.com/prometheus/prometheus/tsdb/agent"

	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/tlsconfig"
)

// Config configures a Ruler.
type Config struct {
	// DataDir holds the agent WAL that the remote write queues read from.
	DataDir string
	// RuleFiles are glob patterns of Prometheus rule files.
	RuleFiles []string
	// EvalInterval is the evaluation interval of groups that set none.
	EvalInterval time.Duration
	// QueryURLs are base URLs of Prometheus query APIs, tried in turn.
	QueryURLs []string
	// QueryHTTPClient sends the queries to QueryURLs, for example with TLS
	// configured; nil means a default client.
	QueryHTTPClient *http.Client
	// Endpoints are Store API endpoints (host:port, or dns+host:port) that an
	// in-process PromQL engine evaluates the rules over, instead of QueryURLs.
	Endpoints []string
	// EndpointTLS, when not nil, makes the in-process engine dial Endpoints
	// with TLS; see querier.EndpointSetOptions.TLS.
	EndpointTLS *tlsconfig.ClientConfig
	// ReplicaLabels are deduplicated away by the in-process engine; nil means
	// querier.DefaultReplicaLabels().
	ReplicaLabels []string
	// PartialResponse allows answers that warn about missing data, for the
	// groups that set no partial_response_strategy.
	PartialResponse bool
	// QueryTimeout bounds one rule query; 0 leaves it to the evaluation interval.
	QueryTimeout time.Duration
	// RemoteWriteURLs receive the rule results.
	RemoteWriteURLs []string
	// RemoteWriteTLS, when not nil, configures TLS for https RemoteWriteURLs.
	RemoteWriteTLS *tlsconfig.ClientConfig
	// AlertmanagerURLs receive the alerts (http://host:port[/prefix]).
	AlertmanagerURLs []string
	// AlertmanagerTLS, when not nil, configures TLS for https
	// AlertmanagerURLs. Host names are resolved and Alertmanagers dialed by
	// IP address, so without a ServerName their certificates must hold the
	// IP addresses.
	AlertmanagerTLS *tlsconfig.ClientConfig
	// AlertmanagerTimeout bounds one send to an Alertmanager.
	AlertmanagerTimeout time.Duration
	// AlertmanagerRefreshInterval is how often Alertmanager host names are
	// resolved again; zero means DefaultAlertmanagerRefreshInterval.
	AlertmanagerRefreshInterval time.Duration
	// Resolver resolves Alertmanager host names, and dns+ endpoints; nil
	// means the system resolver.
	Resolver querier.Resolver
	// ExternalLabels are added to remote-written series and to alerts.
	ExternalLabels labels.Labels
	// ForStateDropLabels are removed from ALERTS_FOR_STATE series read back
	// for restoring, on top of the external label names: labels that other
	// components add on the way to storage, such as the receivers' tenant label.
	ForStateDropLabels []string
	// ForGracePeriod, OutageTolerance and ResendDelay are passed to
	// Prometheus' rule manager; see rules.ManagerOptions.
	ForGracePeriod  time.Duration
	OutageTolerance time.Duration
	ResendDelay     time.Duration
	// FlushDeadline bounds how long shutdown waits for queued samples to be sent.
	FlushDeadline time.Duration
	// ExternalURL is the base of alerts' generator URLs.
	ExternalURL string
}

// Validate reports the first invalid setting.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("no data directory")
	case len(c.QueryURLs) == 0 && len(c.Endpoints) == 0:
		return errors.New("nothing to query: give query URLs or Store API endpoints")
	case len(c.QueryURLs) > 0 && len(c.Endpoints) > 0:
		return errors.New("give query URLs or Store API endpoints, not both")
	case c.EvalInterval <= 0:
		return errors.New("evaluation interval must be positive")
	}
	for _, p := range c.RuleFiles {
		if _, err := filepath.Match(p, ""); err != nil {
			return fmt.Errorf("rule file pattern %q: %w", p, err)
		}
	}
	return nil
}

// Ruler evaluates rule files: see the package documentation.
type Ruler struct {
	cfg     Config
	logger  *slog.Logger
	metrics *rulerMetrics

	// query runs a rule query, with partial responses allowed or not.
	query func(ctx context.Context, q string, t time.Time, partial bool) (promql.Vector, error)
	// endpoints is the in-process engine's endpoint set, nil with QueryURLs.
	endpoints *querier.EndpointSet
	// partial maps rules.GroupKey to the partial response choice of the groups
	// that set one.
	partial atomic.Pointer[map[string]bool]

	alertmanagers *alertmanagerDiscovery
	remote        *remote.Storage
	wal           *agent.DB
	notifier      *notifier.Manager
	manager       *rules.Manager
	parser        parser.Parser

	reloadMtx sync.Mutex
	ready     atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

type rulerMetrics struct {
	reloadSuccess   prometheus.Gauge
	reloadTimestamp prometheus.Gauge
}

func newRulerMetrics(reg prometheus.Registerer) *rulerMetrics {
	return &rulerMetrics{
		reloadSuccess: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_rule_config_last_reload_successful",
			Help: "Whether the last rule reload succeeded (1) or was rejected (0).",
		}),
		reloadTimestamp: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "strata_rule_config_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful rule reload.",
		}),
	}
}

// New opens the WAL in cfg.DataDir, starts the remote write queues and loads
// the rule files; it fails when any of them is invalid. Evaluation starts with
// Run; Close releases the WAL.
func New(cfg Config, reg prometheus.Registerer, logger *slog.Logger) (_ *Ruler, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FlushDeadline <= 0 {
		cfg.FlushDeadline = time.Minute
	}
	if cfg.AlertmanagerTimeout <= 0 {
		cfg.AlertmanagerTimeout = 10 * time.Second
	}
	r := &Ruler{cfg: cfg, logger: logger, metrics: newRulerMetrics(reg), parser: parser.NewParser(parser.Options{})}
	r.partial.Store(&map[string]bool{})

	var amURLs []*url.URL
	for _, s := range cfg.AlertmanagerURLs {
		u, err := parseHTTPURL(s)
		if err != nil {
			return nil, fmt.Errorf("alertmanager URL: %w", err)
		}
		amURLs = append(amURLs, u)
	}
	r.alertmanagers = newAlertmanagerDiscovery(amURLs, cfg.Resolver, logger.With("part", "alertmanager-discovery"))
	promCfg, err := r.promConfig(amURLs)
	if err != nil {
		return nil, err
	}

	drop := append(append([]string{}, cfg.ForStateDropLabels...), externalLabelNames(cfg.ExternalLabels)...)
	var restore storage.Queryable
	if len(cfg.QueryURLs) > 0 {
		c, err := NewQueryClient(cfg.QueryURLs, cfg.PartialResponse, cfg.QueryTimeout, reg, logger.With("part", "query"))
		if err != nil {
			return nil, err
		}
		if cfg.QueryHTTPClient != nil {
			c.client = cfg.QueryHTTPClient
		}
		r.query, restore = c.QueryPartial, c.Queryable()
	} else {
		r.endpoints, r.query, restore, err = newEngine(cfg, reg, logger.With("part", "engine"))
		if err != nil {
			return nil, err
		}
	}
	// The remote storage's watchers tail <DataDir>/wal, which the agent DB writes.
	r.remote = remote.NewStorage(logger.With("part", "remote-write"), reg, func() (int64, error) { return 0, nil }, cfg.DataDir, cfg.FlushDeadline, nil, false)
	r.wal, err = agent.Open(logger.With("part", "wal"), reg, r.remote, cfg.DataDir, agent.DefaultOptions())
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open WAL in %s: %w", cfg.DataDir, err), r.remote.Close(), r.closeEndpoints())
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, r.Close())
		}
	}()
	// The queues' WAL watchers start here; with the WAL already open they
	// find it at once instead of retrying seconds later.
	if err := r.remote.ApplyConfig(promCfg); err != nil {
		return nil, fmt.Errorf("apply remote write configuration: %w", err)
	}
	// Without this the queues find new WAL records only on their periodic read.
	r.wal.SetWriteNotified(r.remote)

	r.notifier = notifier.NewManager(&notifier.Options{
		QueueCapacity:   10000,
		DrainOnShutdown: true,
		Registerer:      reg,
	}, model.UTF8Validation, logger.With("part", "notifier"))
	if err := r.notifier.ApplyConfig(promCfg); err != nil {
		return nil, fmt.Errorf("apply alertmanager configuration: %w", err)
	}

	r.manager = rules.NewManager(&rules.ManagerOptions{
		ExternalURL:     mustParseURL(cfg.ExternalURL),
		QueryFunc:       r.ruleQuery,
		NotifyFunc:      rules.SendAlerts(r.notifier, cfg.ExternalURL),
		Context:         context.Background(),
		Appendable:      r.wal,
		Queryable:       dropLabelsQueryable{Queryable: restore, drop: drop},
		GroupLoader:     fileLoader{parser: r.parser, logger: logger.With("part", "rules")},
		Logger:          logger.With("part", "rules"),
		Registerer:      reg,
		OutageTolerance: cfg.OutageTolerance,
		ForGracePeriod:  cfg.ForGracePeriod,
		ResendDelay:     cfg.ResendDelay,
		Parser:          r.parser,
	})
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// promConfig builds the Prometheus configuration the remote storage and the
// notifier take: external labels, remote write queues, Alertmanagers.
func (r *Ruler) promConfig(alertmanagers []*url.URL) (*config.Config, error) {
	c := &config.Config{GlobalConfig: config.DefaultGlobalConfig}
	c.GlobalConfig.ExternalLabels = r.cfg.ExternalLabels
	for _, s := range r.cfg.RemoteWriteURLs {
		u, err := parseHTTPURL(s)
		if err != nil {
			return nil, fmt.Errorf("remote write URL: %w", err)
		}
		rw := config.DefaultRemoteWriteConfig
		rw.URL = &commonconfig.URL{URL: u}
		// Rules have no scrape metadata to send.
		rw.MetadataConfig.Send = false
		// A ruler writes a burst per evaluation: send it at once rather than
		// after Prometheus' 5s batch deadline.
		rw.QueueConfig.BatchSendDeadline = model.Duration(time.Second)
		rw.HTTPClientConfig.TLSConfig = promTLSConfig(r.cfg.RemoteWriteTLS)
		c.RemoteWriteConfigs = append(c.RemoteWriteConfigs, &rw)
	}
	for _, u := range alertmanagers {
		am := config.DefaultAlertmanagerConfig
		am.Scheme = u.Scheme
		am.PathPrefix = u.Path
		am.Timeout = model.Duration(r.cfg.AlertmanagerTimeout)
		am.HTTPClientConfig.TLSConfig = promTLSConfig(r.cfg.AlertmanagerTLS)
		c.AlertingConfig.AlertmanagerConfigs = append(c.AlertingConfig.AlertmanagerConfigs, &am)
	}
	return c, nil
}

// promTLSConfig turns c into the TLS configuration of Prometheus' remote
// write and notifier clients, which take file names and re-read the files
// when they change; nil is the zero configuration (the system roots).
func promTLSConfig(c *tlsconfig.ClientConfig) commonconfig.TLSConfig {
	if c == nil {
		return commonconfig.TLSConfig{}
	}
	return commonconfig.TLSConfig{
		CAFile:             c.CAFile,
		CertFile:           c.CertFile,
		KeyFile:            c.KeyFile,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify,
	}
}

// Run evaluates the rules until ctx is done, then stops evaluating and sends
// the alerts still queued. Close must still be called.
func (r *Ruler) Run(ctx context.Context) error {
	if r.endpoints != nil {
		// Know the stores before the first evaluation; unreachable ones are
		// retried by the set's own loop.
		if err := r.endpoints.Refresh(ctx); err != nil {
			r.logger.Warn("first look at the Store API endpoints failed", "err", err)
		}
	}
	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(context.Background())
	if r.endpoints != nil {
		bg.Go(func() { _ = r.endpoints.Run(bgCtx) })
	}
	tsets := make(chan map[string][]*targetgroup.Group)
	bg.Go(func() { r.alertmanagers.run(bgCtx, r.amRefreshInterval(), tsets) })
	notifierDone := make(chan struct{})
	go func() {
		defer close(notifierDone)
		r.notifier.Run(tsets)
	}()
	managerDone := make(chan struct{})
	go func() {
		defer close(managerDone)
		r.manager.Run()
	}()
	r.ready.Store(true)
	r.logger.Info("ruler started", "groups", len(r.manager.RuleGroups()))

	<-ctx.Done()
	r.ready.Store(false)
	r.manager.Stop()
	<-managerDone
	r.notifier.Stop()
	<-notifierDone
	stopBg()
	bg.Wait()
	return nil
}

func (r *Ruler) amRefreshInterval() time.Duration {
	if r.cfg.AlertmanagerRefreshInterval > 0 {
		return r.cfg.AlertmanagerRefreshInterval
	}
	return DefaultAlertmanagerRefreshInterval
}

// ruleQuery is the rule manager's QueryFunc: it runs q with the partial
// response strategy of the group being evaluated, which Prometheus' rule
// groups put in the context.
func (r *Ruler) ruleQuery(ctx context.Context, q string, t time.Time) (promql.Vector, error) {
	partial := r.cfg.PartialResponse
	if origin, ok := ctx.Value(promql.QueryOrigin{}).(map[string]any); ok {
		if g, ok := origin["ruleGroup"].(map[string]string); ok {
			if p, ok := (*r.partial.Load())[rules.GroupKey(g["file"], g["name"])]; ok {
				partial = p
			}
		}
	}
	return r.query(ctx, q, t, partial)
}

// Ready reports whether rules are being evaluated.
func (r *Ruler) Ready() bool { return r.ready.Load() }

// Reload re-reads the rule files. Invalid files are rejected with an error
// naming them, and the running groups are kept.
func (r *Ruler) Reload() error {
	r.reloadMtx.Lock()
	defer r.reloadMtx.Unlock()
	set, err := loadRuleSet(r.cfg.RuleFiles, r.parser, r.logger)
	if err == nil {
		old := r.partial.Swap(&set.partial)
		if err = r.manager.Update(r.cfg.EvalInterval, set.files, r.cfg.ExternalLabels, r.cfg.ExternalURL, nil); err != nil {
			r.partial.Store(old)
		}
	}
	if err != nil {
		r.metrics.reloadSuccess.Set(0)
		r.logger.Error("rules rejected, the previous rules keep running", "err", err)
		return fmt.Errorf("reload rules: %w", err)
	}
	r.metrics.reloadSuccess.Set(1)
	r.metrics.reloadTimestamp.SetToCurrentTime()
	r.logger.Info("rules loaded", "files", len(set.files))
	return nil
}

// Groups returns the rule groups being evaluated, sorted by file and name.
func (r *Ruler) Groups() []*rules.Group { return r.manager.RuleGroups() }

// Close stops the remote write queues, after sending what they can within the
// flush deadline, and closes the WAL. Samples not sent stay in the WAL and are
// sent after the next start.
func (r *Ruler) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		if err := r.remote.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close remote write: %w", err))
		}
		if err := r.wal.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close WAL: %w", err))
		}
		if err := r.closeEndpoints(); err != nil {
			errs = append(errs, err)
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

func externalLabelNames(ls labels.Labels) []string {
	var names []string
	ls.Range(func(l labels.Label) { names = append(names, l.Name) })
	return names
}

func parseHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want http(s)://host:port[/path]", s)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, nil
}

func mustParseURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		return &url.URL{}
	}
	return u
}
