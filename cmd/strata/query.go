package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/querier"
	"github.com/stratametrics/strata/tenancy"
	"github.com/stratametrics/strata/tlsconfig"
)

type queryConfig struct {
	httpAddress     string
	endpoints       []string
	sdFile          string
	replicaLabels   []string
	timeout         model.Duration
	maxSamples      int
	lookbackDelta   model.Duration
	partialResponse bool
	maxConcurrency  int
	infoInterval    time.Duration
	autoDownsample  bool
	rulers          []string
	endpointTLS     *tlsconfig.ClientConfig
	ruleTLS         *tlsconfig.ClientConfig
	httpTLS         *serverTLS
	tenancy         queryTenancyFlags
	// blocks, when set, is the bucket whose blocks the web UI shows.
	blocks *objstoreFlags
}

// queryTenancyFlags are the querier's tenant enforcement and authentication flags.
type queryTenancyFlags struct {
	enforce        bool
	header         string
	defaultTenant  string
	labelName      string
	tenantsFile    string
	reloadInterval time.Duration
}

func queryCommand(app *kingpin.Application) (string, func(*slog.Logger, *prometheus.Registry) error) {
	cmd := app.Command("query", "Serve the Prometheus HTTP API over every store: fan out, merge, deduplicate replicas, evaluate PromQL.")
	c := &queryConfig{}
	cmd.Flag("http-address", "Address to listen on for the web UI (/), the Prometheus HTTP API (/api/v1/...), /metrics, /-/healthy and /-/ready.").
		Default(":10902").StringVar(&c.httpAddress)
	c.httpTLS = registerServerTLS(cmd, "http")
	c.register(cmd)
	c.blocks = registerObjstoreFlags(cmd)
	return cmd.FullCommand(), func(logger *slog.Logger, reg *prometheus.Registry) error {
		return runQuery(c, logger, reg)
	}
}

// register adds the querier's flags, except the listen address, to cmd.
func (c *queryConfig) register(cmd *kingpin.CmdClause) {
	cmd.Flag("endpoint", "Store API endpoint (host:port, or dns+host:port for every address of a name) to query. Repeatable.").
		PlaceHolder("<address>").StringsVar(&c.endpoints)
	cmd.Flag("endpoint.sd-config-file", "YAML file of Store API endpoints, re-read periodically.").
		PlaceHolder("<file>").StringVar(&c.sdFile)
	cmd.Flag("endpoint.info-interval", "How often each endpoint's Info (time range, label sets) is polled.").
		Default("5s").Hidden().DurationVar(&c.infoInterval)
	cmd.Flag("query.replica-label", "Label that tells replicas of the same data apart; deduplicated away. Repeatable.").
		Default(querier.DefaultReplicaLabels()...).StringsVar(&c.replicaLabels)
	cmd.Flag("query.timeout", "Longest a query may run.").Default("2m").SetValue(&c.timeout)
	cmd.Flag("query.max-samples", "Most samples a query may hold in memory at once.").Default("50000000").IntVar(&c.maxSamples)
	cmd.Flag("query.lookback-delta", "How far back a sample is still current for instant vectors.").Default("5m").SetValue(&c.lookbackDelta)
	cmd.Flag("query.partial-response", "Answer with the data of the stores that responded, and a warning, when some fail. Per request: partial_response.").
		Default("true").BoolVar(&c.partialResponse)
	cmd.Flag("query.max-concurrency", "Stores one query fans out to at once.").Default("20").IntVar(&c.maxConcurrency)
	cmd.Flag("query.auto-downsampling", "Read downsampled data by default, at a resolution picked from each query's step and ranges. Per request: max_source_resolution.").
		Default("false").BoolVar(&c.autoDownsample)
	cmd.Flag("rule", "Base URL of a ruler's HTTP API (strata rule), such as http://ruler:10903, whose /api/v1/rules and /api/v1/alerts the querier aggregates. Repeatable.").
		PlaceHolder("<url>").StringsVar(&c.rulers)
	c.endpointTLS = tlsconfig.RegisterClientFlags(cmd, "endpoint")
	c.ruleTLS = tlsconfig.RegisterClientFlags(cmd, "rule")
	c.tenancy.register(cmd)
}

func (f *queryTenancyFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("query.enforce-tenancy", "Confine every request of the query API (query, query_range, series, labels, label values, exemplars, rules, alerts) to one tenant: the tenant label matcher is added to every selector and match[]. The tenant is the authenticated one with --auth.tenants-file, else the tenant header's, else --query.default-tenant-id. Without authentication the header is trusted: use it only behind a proxy that sets it.").
		Default("false").BoolVar(&f.enforce)
	cmd.Flag("query.tenant-header", "HTTP header that names the request's tenant.").
		Default(tenancy.DefaultTenantHeader).StringVar(&f.header)
	cmd.Flag("query.default-tenant-id", "Tenant of a request without the tenant header, when tenancy is enforced without authentication.").
		Default(querier.DefaultTenantID).StringVar(&f.defaultTenant)
	cmd.Flag("query.tenant-label-name", "Label that holds the tenant of every stored series (the receivers' --receive.tenant-label-name).").
		Default(querier.DefaultTenantLabelName).StringVar(&f.labelName)
	cmd.Flag("auth.tenants-file", "YAML tenants file mapping bearer token hashes and client certificate fields to tenants. When set, every /api/v1/ request must authenticate (401 for a missing or unknown credential, 403 for a tenant header naming another tenant; the header alone is never trusted), and authentication implies --query.enforce-tenancy with the authenticated tenant. /metrics, /-/healthy and /-/ready stay open.").
		PlaceHolder("<file>").StringVar(&f.tenantsFile)
	cmd.Flag("auth.reload-interval", "How often the tenants file is checked for changes and reloaded.").
		Default(tenancy.DefaultReloadInterval.String()).DurationVar(&f.reloadInterval)
}

// build returns the querier's Tenancy and the authenticator behind it, both nil when tenancy is
// neither enforced nor authenticated.
func (f *queryTenancyFlags) build(reg prometheus.Registerer, logger *slog.Logger) (*querier.Tenancy, *tenancy.Authenticator, error) {
	if !f.enforce && f.tenantsFile == "" {
		return nil, nil, nil
	}
	opts := querier.TenancyOptions{Header: f.header, DefaultTenant: f.defaultTenant, LabelName: f.labelName}
	var auth *tenancy.Authenticator
	if f.tenantsFile != "" {
		var err error
		if auth, err = tenancy.NewAuthenticator(f.tenantsFile, reg, logger.With("component", "tenancy")); err != nil {
			return nil, nil, fmt.Errorf("--auth.tenants-file: %w", err)
		}
		opts.Authenticator = auth
	}
	t, err := querier.NewTenancy(opts)
	if err != nil {
		return nil, nil, fmt.Errorf("query tenancy flags: %w", err)
	}
	return t, auth, nil
}

// queryComponent is a built querier: its endpoint set runs in a run group and
// its API and rules proxy are mounted on a mux.
type queryComponent struct {
	set   *querier.EndpointSet
	api   *querier.API
	rules *querier.RulesProxy
	// tenancy confines requests to a tenant; nil when it is not enforced.
	tenancy *querier.Tenancy
	// bucket, if not nil, is the bucket of --objstore.config for the UI's blocks page.
	bucket objstore.Bucket
	// auth, when tenants are authenticated, reloads the tenants file.
	auth           *tenancy.Authenticator
	reloadInterval time.Duration
	logger         *slog.Logger
}

func newQueryComponent(c *queryConfig, reg prometheus.Registerer, logger *slog.Logger) (*queryComponent, error) {
	if len(c.endpoints) == 0 && c.sdFile == "" {
		return nil, errors.New("no stores to query: give --endpoint or --endpoint.sd-config-file")
	}
	// Tenancy and the proxy are built first: they only read files and check URLs, so an
	// invalid flag leaves nothing to close.
	ten, auth, err := c.tenancy.build(reg, logger)
	if err != nil {
		return nil, err
	}
	rulesClient, err := newHTTPClientTLS("rule", c.ruleTLS, reg, logger)
	if err != nil {
		return nil, err
	}
	rules, err := querier.NewRulesProxy(querier.RulesOptions{
		Rulers:        c.rulers,
		ReplicaLabels: c.replicaLabels,
		Client:        rulesClient,
		Tenancy:       ten,
	}, reg, logger)
	if err != nil {
		return nil, fmt.Errorf("invalid --rule: %w", err)
	}
	set, err := querier.NewEndpointSet(querier.EndpointSetOptions{
		Endpoints:    c.endpoints,
		SDFile:       c.sdFile,
		InfoInterval: c.infoInterval,
		TLS:          clientTLSOrNil(c.endpointTLS),
	}, reg, logger)
	if err != nil {
		return nil, err
	}
	q := querier.NewQueryable(set, querier.Options{
		ReplicaLabels:          c.replicaLabels,
		DisablePartialResponse: !c.partialResponse,
		MaxConcurrency:         c.maxConcurrency,
	}, reg, logger)
	opts := querier.DefaultAPIOptions()
	opts.Timeout = time.Duration(c.timeout)
	opts.MaxSamples = c.maxSamples
	opts.LookbackDelta = time.Duration(c.lookbackDelta)
	opts.AutoDownsampling = c.autoDownsample
	opts.Context = querier.WithRequestParams
	opts.Tenancy = ten
	if ten != nil {
		logger.Info("query tenancy enforced", "authenticated", auth != nil, "tenant_header", ten.Header(), "tenant_label", ten.LabelName())
	}
	return &queryComponent{
		set: set, api: querier.NewAPI(q, opts, reg, logger), rules: rules, tenancy: ten,
		auth: auth, reloadInterval: c.tenancy.reloadInterval, logger: logger,
	}, nil
}

// httpMux returns every HTTP endpoint of strata query: /metrics, /-/healthy, /-/ready and the
// profiles, which stay open whatever the tenancy flags, and the API under /api/v1/, which
// authenticates and confines each request when they are set.
func (q *queryComponent) httpMux(g prometheus.Gatherer) *http.ServeMux {
	mux := opsMux(g, func() bool { return true })
	q.register(mux)
	q.registerUI(mux, q.bucket, q.logger)
	return mux
}

// parseQueryArgs parses the query command's flags other than --http-address, for tests.
func parseQueryArgs(args []string) (*queryConfig, error) {
	c := &queryConfig{}
	app := kingpin.New("strata", "")
	c.register(app.Command("query", ""))
	if _, err := app.Parse(append([]string{"query"}, args...)); err != nil {
		return nil, fmt.Errorf("query flags: %w", err)
	}
	return c, nil
}

// register mounts the Prometheus HTTP API and the rules and alerts of the rulers on mux.
func (q *queryComponent) register(mux *http.ServeMux) {
	q.api.Register(mux)
	q.rules.Register(mux)
}

// addTo runs the endpoint set's discovery and Info polling in g.
func (q *queryComponent) addTo(g *run.Group) {
	ctx, cancel := context.WithCancel(context.Background())
	g.Add(func() error { return q.set.Run(ctx) }, func(error) { cancel() })
	if q.auth != nil {
		ctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { return q.auth.Watch(ctx, q.reloadInterval) }, func(error) { cancel() })
	}
}

func (q *queryComponent) close() error {
	q.rules.Close()
	err := q.set.Close()
	if q.bucket != nil {
		err = errors.Join(err, q.bucket.Close())
	}
	return err
}

func runQuery(c *queryConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	q, err := newQueryComponent(c, reg, logger)
	if err != nil {
		return err
	}
	if q.bucket, err = c.blocks.bucket(context.Background(), reg, logger); err != nil {
		return errors.Join(err, q.close())
	}
	srv, lis, err := listenTLS(c.httpAddress, q.httpMux(reg), c.httpTLS, reg, logger)
	if err != nil {
		return errors.Join(err, q.close())
	}
	var g run.Group
	q.addTo(&g)
	addServer(&g, srv, lis, logger.With("server", "http"))
	g.Add(signalActor(context.Background(), func() {}))
	logger.Info("serving the Prometheus HTTP API", "url", c.httpTLS.scheme()+"://"+hostPort(lis.Addr().String())+"/api/v1/query")
	runErr := g.Run()
	if err := q.close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if errors.Is(runErr, errInterrupted) {
		return nil
	}
	return runErr
}
