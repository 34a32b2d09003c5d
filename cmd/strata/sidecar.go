package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/stratametrics/strata/sidecar"
	"github.com/stratametrics/strata/storeapi/infopb"
	"github.com/stratametrics/strata/storeapi/storepb"
)

type sidecarConfig struct {
	objstore                 *objstoreFlags
	prometheusURL            string
	tsdbPath                 string
	grpcAddress, httpAddress string
	refreshInterval          time.Duration
	shipInterval             time.Duration
	readyTimeout             time.Duration
	grpcTLS, httpTLS         *serverTLS
}

// registerSidecar registers the sidecar command and its flags on app.
func registerSidecar(app *kingpin.Application) (*kingpin.CmdClause, *sidecarConfig) {
	cmd := app.Command("sidecar", "Run next to a Prometheus server that does not remote-write: serve its data over the Store API through remote read, with its external labels, and upload the blocks it writes to object storage.")
	c := &sidecarConfig{objstore: registerObjstoreFlags(cmd)}
	cmd.Flag("prometheus.url", "Base URL of the Prometheus server.").Default("http://localhost:9090").StringVar(&c.prometheusURL)
	cmd.Flag("tsdb.path", "Prometheus' data directory (its --storage.tsdb.path), whose blocks are uploaded when a bucket is configured. The record of uploaded blocks is kept there.").
		Default("./data").StringVar(&c.tsdbPath)
	cmd.Flag("grpc-address", "Address to listen on for the Store API.").Default(":10901").StringVar(&c.grpcAddress)
	cmd.Flag("http-address", "Address to listen on for /metrics, /-/healthy, /-/ready and /api/v1/status/sidecar.").Default(":10902").StringVar(&c.httpAddress)
	cmd.Flag("prometheus.refresh-interval", "How often Prometheus' readiness, external labels, flags and oldest timestamp are read again.").
		Default("30s").DurationVar(&c.refreshInterval)
	cmd.Flag("prometheus.ready-timeout", "How long to wait at start for Prometheus to be ready before exiting; 0 waits forever.").
		Default("10m").DurationVar(&c.readyTimeout)
	cmd.Flag("shipper.interval", "How often Prometheus' data directory is checked for new blocks to upload.").
		Default("30s").DurationVar(&c.shipInterval)
	c.grpcTLS = registerServerTLS(cmd, "grpc")
	c.httpTLS = registerServerTLS(cmd, "http")
	return cmd, c
}

func runSidecar(c *sidecarConfig, logger *slog.Logger, reg *prometheus.Registry) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	grpcOpts, err := c.grpcTLS.grpcOptions(reg, logger)
	if err != nil {
		return err
	}
	bkt, err := c.objstore.bucket(ctx, reg, logger)
	if err != nil {
		return err
	}
	if bkt == nil {
		logger.Info("no object storage configured: serving Prometheus' data without uploading its blocks")
	}
	sc, err := sidecar.New(sidecar.Config{
		PrometheusURL:   c.prometheusURL,
		TSDBPath:        c.tsdbPath,
		Bucket:          bkt,
		RefreshInterval: c.refreshInterval,
		ShipInterval:    c.shipInterval,
		ReadyTimeout:    c.readyTimeout,
	}, reg, logger)
	if err != nil {
		return err
	}

	grpcLis, err := net.Listen("tcp", c.grpcAddress)
	if err != nil {
		return err
	}
	grpcSrv := grpc.NewServer(grpcOpts...)
	storepb.RegisterStoreServer(grpcSrv, sc.Server())
	infopb.RegisterInfoServer(grpcSrv, sc.Server())

	mux := opsMux(reg, sc.Ready)
	mux.Handle("/api/v1/status/sidecar", sc.StatusHandler())
	srv, lis, err := listenTLS(c.httpAddress, mux, c.httpTLS, reg, logger)
	if err != nil {
		return errors.Join(err, grpcLis.Close())
	}

	var g run.Group
	g.Add(func() error { return sc.Run(ctx) }, func(error) { cancel() })
	addServer(&g, srv, lis, logger.With("server", "http"))
	g.Add(func() error {
		logger.Info("listening", "server", "grpc", "address", grpcLis.Addr().String())
		return grpcSrv.Serve(grpcLis)
	}, func(error) { grpcSrv.GracefulStop() })
	g.Add(signalActor(context.Background(), func() {}))
	err = g.Run()
	if errors.Is(err, errInterrupted) {
		err = nil
	}
	return err
}
