package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/hashring"
	"github.com/stratametrics/strata/receive"
)

// clusterFlags configure how a receiver finds the rest of the ring.
type clusterFlags struct {
	replicationFactor int
	algorithm         string
	hashringsFile     string
	hashringsRefresh  time.Duration
	localEndpoint     string
	forwardTimeout    time.Duration

	join             []string
	address          string
	addressSet       bool
	advertiseAddress string
	grpcAdvertise    string
	zone             string
	probeInterval    time.Duration
	deadReclaim      time.Duration
}

func (f *clusterFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("receive.replication-factor", "How many receivers hold each series. A write is acknowledged once floor(RF/2)+1 of them have it.").
		Default("1").IntVar(&f.replicationFactor)
	cmd.Flag("receive.hashrings-algorithm", "Placement algorithm: ketama (consistent hashing, zone-aware) or hashmod. A hashring file may set it per ring.").
		Default(string(hashring.AlgorithmKetama)).EnumVar(&f.algorithm, string(hashring.AlgorithmKetama), string(hashring.AlgorithmHashmod))
	cmd.Flag("receive.hashrings-file", "Static hashring file in Thanos' JSON format, reloaded on change. Takes precedence over gossip.").
		PlaceHolder("<file>").StringVar(&f.hashringsFile)
	cmd.Flag("receive.hashrings-file-refresh-interval", "How often the hashring file is checked for changes.").
		Default("5s").DurationVar(&f.hashringsRefresh)
	cmd.Flag("receive.local-endpoint", "This node's endpoint (its address) in the hashring file; series it owns are stored locally. Empty makes a file-configured node a pure router.").
		StringVar(&f.localEndpoint)
	cmd.Flag("receive.forward-timeout", "Timeout of one write forwarded to a peer.").
		Default(receive.DefaultForwardTimeout.String()).DurationVar(&f.forwardTimeout)

	cmd.Flag("cluster.join", "Gossip peer (host:port) to join; repeatable. With peers, membership comes from gossip.").
		PlaceHolder("<host:port>").StringsVar(&f.join)
	cmd.Flag("cluster.address", "Address to gossip on (TCP and UDP). Setting it without --cluster.join starts a cluster others join.").
		Default("0.0.0.0:7946").IsSetByUser(&f.addressSet).StringVar(&f.address)
	cmd.Flag("cluster.advertise-address", "Gossip address other nodes reach this one at. Default: derived from --cluster.address.").
		StringVar(&f.advertiseAddress)
	cmd.Flag("grpc-advertise-address", "gRPC address peers forward writes to. Default: --grpc-address, with the host of the gossip advertise address when it listens on all interfaces.").
		StringVar(&f.grpcAdvertise)
	cmd.Flag("receive.zone", "Availability zone of this node: replicas of a series are placed in distinct zones.").
		StringVar(&f.zone)
	cmd.Flag("cluster.probe-interval", "Interval between gossip failure-detection probes.").
		Default("1s").Hidden().DurationVar(&f.probeInterval)
	cmd.Flag("cluster.dead-node-reclaim-timeout", "Forget a failed node after this long (its series then move). 0 keeps it in the ring, unhealthy, until it returns or leaves.").
		Default("0s").DurationVar(&f.deadReclaim)
}

// cluster is the membership a receiver runs with.
type cluster struct {
	ringer        hashring.Ringer // nil: single node, everything local
	localEndpoint string
	actors        []func(context.Context) error
	gossip        *hashring.Gossip
	status        func() any
}

// build picks the membership source: a hashring file, else gossip when peers are
// given or the gossip address is set, else none (a single node).
func (f *clusterFlags) build(mode, nodeName string, grpcAddr net.Addr, reg prometheus.Registerer, logger *slog.Logger) (*cluster, error) {
	alg := hashring.Algorithm(f.algorithm)
	rf := f.replicationFactor
	if rf < 1 {
		return nil, fmt.Errorf("replication factor must be at least 1, got %d", rf)
	}
	switch {
	case f.hashringsFile != "":
		fr, err := hashring.NewFileRinger(f.hashringsFile, alg, rf, f.hashringsRefresh, reg, logger)
		if err != nil {
			return nil, err
		}
		local := f.localEndpoint
		if mode == modeRouter {
			local = ""
		} else if local == "" && mode == modeBoth {
			logger.Info("no --receive.local-endpoint: this node only routes")
		}
		return &cluster{
			ringer:        fr,
			localEndpoint: local,
			actors:        []func(context.Context) error{fr.Run},
			status:        func() any { return fileRingStatus(fr) },
		}, nil

	case len(f.join) > 0 || f.addressSet:
		adv, err := f.grpcAdvertiseAddress(grpcAddr)
		if err != nil {
			return nil, err
		}
		g, err := hashring.NewGossip(hashring.GossipConfig{
			NodeName:               nodeName,
			BindAddress:            f.address,
			AdvertiseAddress:       f.advertiseAddress,
			Join:                   f.join,
			Zone:                   f.zone,
			GRPCAddress:            adv,
			Ingestor:               mode != modeRouter,
			ProbeInterval:          f.probeInterval,
			DeadNodeReclaimTimeout: f.deadReclaim,
		}, reg, logger)
		if err != nil {
			return nil, err
		}
		gr := hashring.NewGossipRinger(g, alg, rf, logger)
		local := nodeName
		if mode == modeRouter {
			local = ""
		}
		return &cluster{
			ringer:        gr,
			localEndpoint: local,
			gossip:        g,
			actors:        []func(context.Context) error{g.Join, gr.Run},
			status:        func() any { return gossipRingStatus(g, gr, rf) },
		}, nil
	}

	if mode == modeRouter {
		return nil, errors.New("router mode needs a ring: give --cluster.join peers or --receive.hashrings-file")
	}
	if rf > 1 {
		return nil, fmt.Errorf("replication factor %d needs a ring: give --cluster.join peers or --receive.hashrings-file", rf)
	}
	return &cluster{status: func() any { return map[string]any{"rings": []any{}} }}, nil
}

// grpcAdvertiseAddress is the address peers forward to.
func (f *clusterFlags) grpcAdvertiseAddress(grpcAddr net.Addr) (string, error) {
	if f.grpcAdvertise != "" {
		return f.grpcAdvertise, nil
	}
	host, port, err := net.SplitHostPort(grpcAddr.String())
	if err != nil {
		return "", fmt.Errorf("grpc address %q: %w", grpcAddr, err)
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return grpcAddr.String(), nil
	}
	for _, a := range []string{f.advertiseAddress, f.address} {
		if h, _, err := net.SplitHostPort(a); err == nil {
			if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
				return net.JoinHostPort(h, port), nil
			}
		}
	}
	return "", errors.New("cannot tell peers where to forward writes: set --grpc-advertise-address or listen --grpc-address on a specific IP")
}

// leave tells gossip peers this node is going away, so its series move now.
func (c *cluster) leave(logger *slog.Logger) {
	if c.gossip == nil {
		return
	}
	if err := c.gossip.Leave(5 * time.Second); err != nil {
		logger.Warn("leave the cluster", "err", err)
	}
}

func (c *cluster) shutdown(logger *slog.Logger) {
	if c.gossip == nil {
		return
	}
	if err := c.gossip.Shutdown(); err != nil {
		logger.Warn("stop gossip", "err", err)
	}
}

// statusHandler serves GET /api/v1/ring.
func (c *cluster) statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": c.status()})
	})
}

// ringStatus is one ring in /api/v1/ring.
type ringStatus struct {
	Name              string                  `json:"name"`
	ReplicationFactor int                     `json:"replication_factor"`
	Members           []hashring.MemberStatus `json:"members"`
	Error             string                  `json:"error,omitempty"`
}

func gossipRingStatus(g *hashring.Gossip, gr *hashring.GossipRinger, rf int) any {
	rs := ringStatus{Name: "gossip", ReplicationFactor: rf}
	ring, err := gr.Ring("")
	if err != nil {
		rs.Error = err.Error()
		for _, m := range g.Members() {
			rs.Members = append(rs.Members, hashring.MemberStatus{Name: m.Name, Address: m.Address, Zone: m.Zone, State: m.State})
		}
	} else {
		rs.Members = hashring.Status(ring)
	}
	heard := g.LastHeard()
	for i := range rs.Members {
		rs.Members[i].LastHeartbeat = heard[rs.Members[i].Name]
	}
	return map[string]any{"rings": []ringStatus{rs}}
}

func fileRingStatus(fr *hashring.FileRinger) any {
	var out []ringStatus
	for _, nr := range fr.Multi().Rings() {
		out = append(out, ringStatus{Name: nr.Name, ReplicationFactor: nr.Ring.ReplicationFactor(), Members: hashring.Status(nr.Ring)})
	}
	return map[string]any{"rings": out}
}
