package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/limits"
	"github.com/stratametrics/strata/objstore"
	"github.com/stratametrics/strata/receive"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
	"github.com/stratametrics/strata/tenancy"
	"github.com/stratametrics/strata/tlsconfig"
	"github.com/stratametrics/strata/tsdbshard"
)

// replicaLabel is the external label that tells replicas of the same data apart.
const replicaLabel = "receive_replica"

// Receive modes.
const (
	modeBoth     = "both"
	modeRouter   = "router"
	modeIngestor = "ingestor"
)

type receiveConfig struct {
	rwAddress   string
	httpAddress string
	grpcAddress string
	nodeName    string
	labels      []string
	objstore    *objstoreFlags
	mode        string
	cluster     clusterFlags

	rwTLS, httpTLS, grpcTLS *serverTLS
	peerTLS                 *tlsconfig.ClientConfig

	tenantHeader    string
	defaultTenant   string
	tenantLabelName string
	maxCompressed   int64
	maxDecompressed int64

	tsdbPath          string
	retention         model.Duration
	idleTimeout       model.Duration
	oooWindow         model.Duration
	futureWindow      model.Duration
	maxExemplars      int64
	walCompression    bool
	shipInterval      time.Duration
	replayConcurrency int
	shutdownTimeout   time.Duration

	tenancy tenancyFlags
}

// parseReceiveArgs parses `receive` flags into a configuration, with every
// default applied; strata up builds its receivers with it.
func parseReceiveArgs(args []string) (*receiveConfig, error) {
	return parseCommandArgs(registerReceive, args)
}

// registerReceive registers the receive command and its flags on app.
func registerReceive(app *kingpin.Application) (*kingpin.CmdClause, *receiveConfig) {
	cmd := app.Command("receive", "Accept Prometheus remote write, replicate it over the receive ring into per-tenant TSDBs, and ship their blocks to object storage.")
	c := &receiveConfig{}
	hostname, _ := os.Hostname()

	cmd.Flag("remote-write.address", "Address to listen on for remote write requests (path /api/v1/receive).").
		Default(":19291").StringVar(&c.rwAddress)
	cmd.Flag("http-address", "Address to listen on for /metrics, /-/healthy, /-/ready and /api/v1/ring.").
		Default(":10902").StringVar(&c.httpAddress)
	cmd.Flag("grpc-address", "Address to listen on for gRPC: writes forwarded by other receivers, and the Store API over the local tenant TSDBs.").
		Default(":10901").StringVar(&c.grpcAddress)
	cmd.Flag("cluster.node-name", "Unique name of this node in the ring; the default value of the receive_replica external label.").
		Default(hostname).StringVar(&c.nodeName)
	cmd.Flag("label", `External label added to every block, as name="value". Repeatable. receive_replica defaults to the node name.`).
		PlaceHolder(`name="value"`).StringsVar(&c.labels)
	cmd.Flag("receive.mode", "router: place and forward series, store nothing; ingestor: store what it is sent, never forward; both: route and store its own share.").
		Default(modeBoth).EnumVar(&c.mode, modeBoth, modeRouter, modeIngestor)
	c.objstore = registerObjstoreFlags(cmd)
	c.cluster.register(cmd)
	c.rwTLS = registerServerTLS(cmd, "remote-write")
	c.httpTLS = registerServerTLS(cmd, "http")
	c.grpcTLS = registerServerTLS(cmd, "grpc")
	c.peerTLS = tlsconfig.RegisterClientFlags(cmd, "receive.peer")

	cmd.Flag("receive.tenant-header", "HTTP header that names the tenant of a write request.").
		Default(receive.DefaultTenantHeader).StringVar(&c.tenantHeader)
	cmd.Flag("receive.default-tenant-id", "Tenant of requests that carry no tenant header.").
		Default(receive.DefaultTenant).StringVar(&c.defaultTenant)
	cmd.Flag("receive.tenant-label-name", "External label that carries the tenant on stored data.").
		Default(tsdbshard.DefaultTenantLabelName).StringVar(&c.tenantLabelName)
	cmd.Flag("receive.max-compressed-bytes", "Largest accepted request body, snappy-compressed, in bytes; larger requests get 413.").
		Default(fmt.Sprint(receive.DefaultMaxCompressedBytes)).Int64Var(&c.maxCompressed)
	cmd.Flag("receive.max-decompressed-bytes", "Largest accepted request after decompression, in bytes; larger requests get 413.").
		Default(fmt.Sprint(receive.DefaultMaxDecompressedBytes)).Int64Var(&c.maxDecompressed)

	cmd.Flag("tsdb.path", "Directory of the per-tenant TSDBs.").Default("./data").StringVar(&c.tsdbPath)
	cmd.Flag("tsdb.retention", "How long local blocks are kept. A block is deleted only after it was shipped. 0 keeps them forever.").
		Default("15d").SetValue(&c.retention)
	cmd.Flag("tsdb.idle-tenant-timeout", "A tenant without writes for this long is flushed, shipped, closed and, once shipped, removed locally. 0 disables.").
		Default("3h").SetValue(&c.idleTimeout)
	cmd.Flag("tsdb.out-of-order.time-window", "Accept samples up to this much older than a series' newest sample. 0 disables out-of-order ingestion.").
		Default("0s").SetValue(&c.oooWindow)
	cmd.Flag("tsdb.too-far-in-future.time-window", "Reject samples more than this far ahead of the receiver's clock. 0 (the default, as in Prometheus) disables the check.").
		Default("0s").SetValue(&c.futureWindow)
	cmd.Flag("tsdb.max-exemplars", "Exemplars kept in memory per tenant. 0 stores no exemplars.").
		Default("0").Int64Var(&c.maxExemplars)
	cmd.Flag("tsdb.wal-compression", "Compress the WAL with snappy.").Default("true").BoolVar(&c.walCompression)
	cmd.Flag("shipper.interval", "How often new blocks are shipped to object storage.").
		Default("30s").Hidden().DurationVar(&c.shipInterval)
	cmd.Flag("tsdb.replay-concurrency", "Tenants whose WAL is replayed in parallel on start. 0 means one per CPU.").
		Default("0").Hidden().IntVar(&c.replayConcurrency)
	cmd.Flag("shutdown-timeout", "How long shutdown may take to flush and ship every tenant.").
		Default("10m").DurationVar(&c.shutdownTimeout)
	c.tenancy.register(cmd)

	return cmd, c
}

func runReceive(c *receiveConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	r, err := newReceiver(c, reg, reg, logger)
	if err != nil {
		return err
	}
	var g run.Group
	r.addTo(&g)
	// Leave the ring first, so peers route this node's series elsewhere while it
	// answers what is in flight.
	g.Add(signalActor(context.Background(), r.leave))
	runErr := g.Run()
	if err := r.close(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	logger.Info("shutdown complete")
	if errors.Is(runErr, errInterrupted) {
		return nil
	}
	return runErr
}

// receiver is one `strata receive`, built and listening but not yet running:
// addTo runs it in a run group, close flushes and releases it once the group ended.
type receiver struct {
	c       *receiveConfig
	logger  *slog.Logger
	ext     labels.Labels
	cl      *cluster
	mgr     *tsdbshard.Manager // nil for a router
	bkt     objstore.Bucket
	handler *receive.Handler
	auth    *tenancy.Authenticator // nil without --auth.tenants-file
	limits  *limits.Overrides
	grpcSrv *grpc.Server
	grpcLis net.Listener
	rwSrv   *http.Server
	rwLis   net.Listener
	opsSrv  *http.Server // nil without --http-address
	opsLis  net.Listener
	ctx     context.Context
	cancel  context.CancelFunc
}

// newReceiver builds a receiver registering its metrics with reg. Its HTTP
// endpoint, when c.httpAddress is set, serves the metrics of gatherer.
func newReceiver(c *receiveConfig, reg prometheus.Registerer, gatherer prometheus.Gatherer, logger *slog.Logger) (_ *receiver, err error) {
	r := &receiver{c: c, logger: logger}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			r.cancel()
			for _, l := range []net.Listener{r.grpcLis, r.rwLis, r.opsLis} {
				if l != nil {
					_ = l.Close()
				}
			}
			if r.bkt != nil {
				_ = r.bkt.Close()
			}
		}
	}()

	ext, err := parseLabels(c.labels)
	if err != nil {
		return nil, err
	}
	if !ext.Has(replicaLabel) {
		if c.nodeName == "" {
			return nil, errors.New("no receive_replica label and no node name: set --label or --cluster.node-name")
		}
		ext = labels.NewBuilder(ext).Set(replicaLabel, c.nodeName).Labels()
	}
	r.ext = ext
	rwOpts := receive.Options{
		TenantHeader:         c.tenantHeader,
		DefaultTenant:        c.defaultTenant,
		MaxCompressedBytes:   c.maxCompressed,
		MaxDecompressedBytes: c.maxDecompressed,
		MaxFutureSkew:        time.Duration(c.futureWindow),
		DisableExemplars:     c.maxExemplars == 0,
	}

	if r.grpcLis, err = net.Listen("tcp", c.grpcAddress); err != nil {
		return nil, fmt.Errorf("listen for grpc: %w", err)
	}
	if r.cl, err = c.cluster.build(c.mode, c.nodeName, r.grpcLis.Addr(), reg, logger); err != nil {
		return nil, err
	}
	if r.cl.ringer != nil && c.mode != modeIngestor {
		dialOpts, err := newGRPCClientTLS("receive.peer", c.peerTLS, reg, logger)
		if err != nil {
			return nil, err
		}
		rwOpts.Route = &receive.RouteOptions{
			Ringer:         r.cl.ringer,
			LocalEndpoint:  r.cl.localEndpoint,
			ForwardTimeout: c.cluster.forwardTimeout,
			DialOptions:    dialOpts,
		}
	}
	if err := rwOpts.Validate(); err != nil {
		return nil, err
	}
	if r.auth, r.limits, err = c.tenancy.build(limits.Limits{
		MaxExemplars:     int(c.maxExemplars),
		OutOfOrderWindow: c.oooWindow,
	}, reg, logger); err != nil {
		return nil, err
	}
	if r.auth != nil {
		rwOpts.Authenticator = r.auth
	}
	// Exemplars are then dropped per tenant, by its max_exemplars.
	rwOpts.Limits, rwOpts.DisableExemplars = r.limits, false

	var (
		store receive.TenantStorage
		ready = func() bool { return true }
	)
	if c.mode != modeRouter {
		if r.bkt, err = c.objstore.bucket(context.Background(), reg, logger); err != nil {
			return nil, err
		}
		if r.bkt == nil {
			logger.Warn("no object storage configured: blocks stay on local disk only")
		}
		r.mgr, err = tsdbshard.NewManager(tsdbshard.Options{
			Dir:                   c.tsdbPath,
			ExternalLabels:        ext,
			TenantLabelName:       c.tenantLabelName,
			Bucket:                r.bkt,
			Retention:             time.Duration(c.retention),
			IdleTenantTimeout:     time.Duration(c.idleTimeout),
			OutOfOrderTimeWindow:  time.Duration(c.oooWindow),
			MaxExemplars:          c.maxExemplars,
			ShipInterval:          c.shipInterval,
			ReplayConcurrency:     c.replayConcurrency,
			DisableWALCompression: !c.walCompression,
			TenantLimits: func(tenant string) tsdbshard.TenantLimits {
				l := r.limits.For(tenant)
				return tsdbshard.TenantLimits{OutOfOrderTimeWindow: time.Duration(l.OutOfOrderWindow), MaxExemplars: int64(l.MaxExemplars)}
			},
		}, reg, logger)
		if err != nil {
			return nil, err
		}
		store, ready = r.mgr, r.mgr.Ready
	}
	r.handler = receive.NewHandler(rwOpts, store, reg, logger)

	grpcOpts, err := c.grpcTLS.grpcOptions(reg, logger)
	if err != nil {
		return nil, err
	}
	r.grpcSrv = grpc.NewServer(grpcOpts...)
	if r.mgr != nil {
		r.handler.RegisterReplication(r.grpcSrv)
		stores := r.mgr.StoreServer()
		storepb.RegisterStoreServer(r.grpcSrv, stores)
		infopb.RegisterInfoServer(r.grpcSrv, stores)
	}

	rwMux := http.NewServeMux()
	rwMux.Handle(receive.Path, r.handler)
	if r.rwSrv, r.rwLis, err = listenTLS(c.rwAddress, rwMux, c.rwTLS, reg, logger); err != nil {
		return nil, fmt.Errorf("listen for remote write: %w", err)
	}
	if c.httpAddress != "" {
		ops := opsMux(gatherer, ready)
		ops.Handle("/api/v1/ring", r.cl.statusHandler())
		ops.Handle("/api/v1/tenants", tenantsHandler([]*receiver{r}, 1))
		if r.opsSrv, r.opsLis, err = listenTLS(c.httpAddress, ops, c.httpTLS, reg, logger); err != nil {
			return nil, fmt.Errorf("listen for http: %w", err)
		}
	}
	return r, nil
}

// addTo adds the receiver's storage, membership and servers to g.
func (r *receiver) addTo(g *run.Group) {
	logger := r.logger
	if r.mgr != nil {
		g.Add(func() error {
			if err := r.mgr.Open(r.ctx); err != nil {
				return err
			}
			logger.Info("receiving remote write", "url", r.c.rwTLS.scheme()+"://"+hostPort(r.rwLis.Addr().String())+receive.Path, "labels", r.ext.String(), "mode", r.c.mode)
			return r.mgr.Run(r.ctx)
		}, func(error) { r.cancel() })
	}
	for _, actor := range r.cl.actors {
		g.Add(func() error { return actor(r.ctx) }, func(error) { r.cancel() })
	}
	g.Add(func() error {
		r.c.tenancy.watch(r.ctx, r.auth, r.limits, r.applyLimits, logger)
		return nil
	}, func(error) { r.cancel() })
	addServer(g, r.rwSrv, r.rwLis, logger.With("server", "remote-write"))
	if r.opsSrv != nil {
		addServer(g, r.opsSrv, r.opsLis, logger.With("server", "http"))
	}
	g.Add(func() error {
		logger.Info("listening", "server", "grpc", "address", r.grpcLis.Addr().String())
		return r.grpcSrv.Serve(r.grpcLis)
	}, func(error) {
		r.grpcSrv.GracefulStop()
	})
}

// applyLimits applies reloaded limits that live in the tenants' TSDBs.
func (r *receiver) applyLimits() error {
	if r.mgr == nil {
		return nil
	}
	return r.mgr.ApplyTenantLimits()
}

// leave takes the receiver out of the ring ahead of shutdown.
func (r *receiver) leave() { r.cl.leave(r.logger) }

// close runs after the group ended: servers are shut down and in-flight writes
// answered, so nothing can append any more. It flushes every head into blocks,
// ships them, and releases everything.
func (r *receiver) close() error {
	r.cancel()
	var errs []error
	if r.mgr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), r.c.shutdownTimeout)
		defer cancel()
		r.logger.Info("flushing and shipping every tenant before exit")
		if err := r.mgr.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close tenant storage: %w", err))
		}
	}
	r.cl.shutdown(r.logger)
	if err := r.handler.Close(); err != nil {
		errs = append(errs, err)
	}
	if r.bkt != nil {
		if err := r.bkt.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close bucket: %w", err))
		}
	}
	return errors.Join(errs...)
}

var errInterrupted = errors.New("interrupted")

// signalActor ends the run group on SIGINT or SIGTERM, calling onSignal first.
func signalActor(ctx context.Context, onSignal func()) (func() error, func(error)) {
	sigCtx, cancel := context.WithCancel(ctx)
	return func() error {
			c := make(chan os.Signal, 1)
			signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(c)
			select {
			case s := <-c:
				onSignal()
				return fmt.Errorf("%w by %s", errInterrupted, s)
			case <-sigCtx.Done():
				return nil
			}
		}, func(error) {
			cancel()
		}
}

func listen(addr string, h http.Handler) (*http.Server, net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}, lis, nil
}

// addServer runs srv on lis in g; on interrupt it stops accepting and waits for
// in-flight requests to be answered.
func addServer(g *run.Group, srv *http.Server, lis net.Listener, logger *slog.Logger) {
	g.Add(func() error {
		logger.Info("listening", "address", lis.Addr().String())
		if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			logger.Warn("shut down server", "err", err)
		}
	})
}

func remoteWriteURL(addr net.Addr) string {
	return "http://" + hostPort(addr.String()) + receive.Path
}

// hostPort returns a listen address as a client would dial it: an unspecified
// host (":10902", "[::]:10902") becomes localhost.
func hostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
