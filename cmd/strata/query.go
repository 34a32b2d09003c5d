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

	"github.com/stratametrics/strata/querier"
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
}

func queryCommand(app *kingpin.Application) (string, func(*slog.Logger, *prometheus.Registry) error) {
	cmd := app.Command("query", "Serve the Prometheus HTTP API over every store: fan out, merge, deduplicate replicas, evaluate PromQL.")
	c := &queryConfig{}
	cmd.Flag("http-address", "Address to listen on for the Prometheus HTTP API (/api/v1/...), /metrics, /-/healthy and /-/ready.").
		Default(":10902").StringVar(&c.httpAddress)
	c.httpTLS = registerServerTLS(cmd, "http")
	c.register(cmd)
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
}

// queryComponent is a built querier: its endpoint set runs in a run group and
// its API and rules proxy are mounted on a mux.
type queryComponent struct {
	set   *querier.EndpointSet
	api   *querier.API
	rules *querier.RulesProxy
}

func newQueryComponent(c *queryConfig, reg prometheus.Registerer, logger *slog.Logger) (*queryComponent, error) {
	if len(c.endpoints) == 0 && c.sdFile == "" {
		return nil, errors.New("no stores to query: give --endpoint or --endpoint.sd-config-file")
	}
	// The proxy is built first: it only checks its URLs, so an invalid --rule leaves nothing
	// to close.
	rulesClient, err := newHTTPClientTLS("rule", c.ruleTLS, reg, logger)
	if err != nil {
		return nil, err
	}
	rules, err := querier.NewRulesProxy(querier.RulesOptions{
		Rulers:        c.rulers,
		ReplicaLabels: c.replicaLabels,
		Client:        rulesClient,
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
	return &queryComponent{set: set, api: querier.NewAPI(q, opts, reg, logger), rules: rules}, nil
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
}

func (q *queryComponent) close() error {
	q.rules.Close()
	return q.set.Close()
}

func runQuery(c *queryConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	q, err := newQueryComponent(c, reg, logger)
	if err != nil {
		return err
	}
	mux := opsMux(reg, func() bool { return true })
	q.register(mux)
	srv, lis, err := listenTLS(c.httpAddress, mux, c.httpTLS, reg, logger)
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
