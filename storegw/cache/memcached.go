package cache

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"
)

// Defaults of MemcachedConfig, applied to zero fields.
const (
	DefaultMemcachedTimeout      = 500 * time.Millisecond
	DefaultMemcachedMaxIdleConns = 16
	DefaultMemcachedMaxItemSize  = 1 << 20
	DefaultMemcachedTTL          = 24 * time.Hour
)

const (
	// maxKeyLen is memcached's limit on the length of a key.
	maxKeyLen = 250
	// hashedKeyPrefix starts the wire key of every caller key that is not a
	// valid memcached key as it is, and of every key that starts with it, so
	// that no caller key can collide with the hash of another.
	hashedKeyPrefix = "H:"
	// getBatch is the most keys asked for in one get command.
	getBatch = 100
	// maxRelativeTTL is the largest exptime memcached reads as seconds from
	// now; larger values are read as Unix times.
	maxRelativeTTL = 30 * 24 * time.Hour
	// downFor is how long a server is skipped after a network error, so that an
	// unreachable server costs queries one timeout per interval, not one per
	// lookup.
	downFor = time.Second
	// warnInterval is the least time between two warnings about failures.
	warnInterval = time.Minute
)

// MemcachedConfig configures a memcached-backed cache. Zero fields take the
// Default* values above.
type MemcachedConfig struct {
	// Addresses are the host:port of the memcached servers. Each key is stored
	// on the one server its hash picks.
	Addresses []string `yaml:"addresses"`
	// Timeout bounds each operation on a server, dialling included.
	Timeout time.Duration `yaml:"timeout"`
	// MaxIdleConnections is the most idle connections kept open per server.
	MaxIdleConnections int `yaml:"max_idle_connections"`
	// MaxItemSize is the largest value stored; Set skips larger ones. It
	// should not exceed the servers' item size limit (memcached -I, 1 MiB by
	// default).
	MaxItemSize Bytes `yaml:"max_item_size"`
	// TTL is how long an item lives on the server. Sub-second TTLs are rounded
	// up to a second.
	TTL time.Duration `yaml:"ttl"`
}

// withDefaults returns c with zero fields set to their defaults.
func (c MemcachedConfig) withDefaults() MemcachedConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultMemcachedTimeout
	}
	if c.MaxIdleConnections == 0 {
		c.MaxIdleConnections = DefaultMemcachedMaxIdleConns
	}
	if c.MaxItemSize == 0 {
		c.MaxItemSize = DefaultMemcachedMaxItemSize
	}
	if c.TTL == 0 {
		c.TTL = DefaultMemcachedTTL
	}
	return c
}

// Validate reports whether c can be used, after defaults are applied.
func (c MemcachedConfig) Validate() error {
	if len(c.Addresses) == 0 {
		return errors.New("memcached: no addresses")
	}
	for _, a := range c.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("memcached address %q: %w", a, err)
		}
	}
	if c.Timeout < 0 || c.MaxIdleConnections < 0 || c.MaxItemSize < 0 || c.TTL < 0 {
		return errors.New("memcached: timeout, max_idle_connections, max_item_size and ttl must not be negative")
	}
	return nil
}

// Memcached is a Cache kept on one or more memcached servers, spoken to over
// the text protocol. It never returns an error: a server that cannot be
// reached or answers nonsense turns lookups into misses and stores into
// no-ops, which are counted and logged at most once a minute, and LastError
// reports it. Connections are re-dialled as needed, so the cache recovers by
// itself when the server is back. It is safe for concurrent use.
type Memcached struct {
	cfg      MemcachedConfig
	servers  []*mcServer
	logger   *slog.Logger
	warn     rate.Sometimes
	requests atomic.Int64
	hits     atomic.Int64
	metrics  *metrics
	failures *prometheus.CounterVec
	closed   atomic.Bool
}

// mcServer is one memcached server and its pool of idle connections.
type mcServer struct {
	addr string
	idle chan *mcConn
	// downUntil is the Unix nanosecond time before which the server is not
	// tried after a network error.
	downUntil atomic.Int64
	lastErr   atomic.Pointer[error]
}

type mcConn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// NewMemcached returns a cache called name kept on the servers of cfg. It does
// not connect: a server that is down at start is handled like an outage.
// Metrics are registered with reg, which may be nil; the cache's requests and
// hits use the same names as an LRU's, with cache=name.
func NewMemcached(name string, cfg MemcachedConfig, reg prometheus.Registerer, logger *slog.Logger) (*Memcached, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Memcached{
		cfg:    cfg,
		logger: logger.With("cache", name),
		warn:   rate.Sometimes{Interval: warnInterval},
	}
	for _, a := range cfg.Addresses {
		m.servers = append(m.servers, &mcServer{addr: a, idle: make(chan *mcConn, cfg.MaxIdleConnections)})
	}
	m.metrics = newMetrics(reg, name, 0, func() stats {
		return stats{requests: m.requests.Load(), hits: m.hits.Load()}
	})
	m.failures = promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name:        "strata_storegw_cache_memcached_operation_failures_total",
		Help:        "Memcached operations that failed (network error, timeout, unexpected answer) or were skipped because their server failed less than a second ago; they count as misses or unstored items.",
		ConstLabels: prometheus.Labels{"cache": name},
	}, []string{"operation"})
	m.failures.WithLabelValues("get")
	m.failures.WithLabelValues("set")
	return m, nil
}

// exptime returns the memcached expiration time for ttl.
func exptime(ttl time.Duration, now time.Time) string {
	if ttl > maxRelativeTTL {
		return strconv.FormatInt(now.Add(ttl).Unix(), 10)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	return strconv.FormatInt(secs, 10)
}

// wireKey returns the key stored on the server for key: key itself if
// memcached accepts it, else a hash of it.
func wireKey(key string) string {
	ok := len(key) > 0 && len(key) <= maxKeyLen && !strings.HasPrefix(key, hashedKeyPrefix)
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] > ' ' && key[i] != 0x7f
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return hashedKeyPrefix + hex.EncodeToString(sum[:])
}

// server returns the server holding wire key k, by jump consistent hashing
// (Lamping and Veach, 2014) of its xxhash, so that adding a server moves only
// 1/N of the keys.
func (m *Memcached) server(k string) *mcServer {
	h := xxhash.Sum64String(k)
	var b, j int64 = -1, 0
	for j < int64(len(m.servers)) {
		b = j
		h = h*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((h>>33)+1)))
	}
	return m.servers[b]
}

// Get returns the value stored under key, or a miss on any failure.
func (m *Memcached) Get(key string) ([]byte, bool) {
	m.requests.Add(1)
	k := wireKey(key)
	var v []byte
	var found bool
	m.do(m.server(k), "get", func(c *mcConn) error {
		vals, err := c.get([]string{k}, int(m.cfg.MaxItemSize))
		v, found = vals[k]
		return err
	})
	if found {
		m.hits.Add(1)
	}
	return v, found
}

// GetMulti looks up keys on their servers one server after another; the keys
// of a server that fails are misses.
func (m *Memcached) GetMulti(keys []string) (map[string][]byte, []string) {
	m.requests.Add(int64(len(keys)))
	hits := make(map[string][]byte, len(keys))
	wire := make([]string, len(keys))
	byServer := make(map[*mcServer][]string)
	for i, key := range keys {
		wire[i] = wireKey(key)
		s := m.server(wire[i])
		byServer[s] = append(byServer[s], wire[i])
	}
	found := make(map[string][]byte, len(keys))
	for s, ks := range byServer {
		slices.Sort(ks)
		ks = slices.Compact(ks)
		m.do(s, "get", func(c *mcConn) error {
			for b := range slices.Chunk(ks, getBatch) {
				vals, err := c.get(b, int(m.cfg.MaxItemSize))
				if err != nil {
					return err
				}
				for k, v := range vals {
					found[k] = v
				}
			}
			return nil
		})
	}
	var misses []string
	for i, key := range keys {
		if v, ok := found[wire[i]]; ok {
			hits[key] = v
		} else {
			misses = append(misses, key)
		}
	}
	m.hits.Add(int64(len(keys) - len(misses)))
	return hits, misses
}

// Set stores value under key, unless it is larger than MaxItemSize or the
// server fails.
func (m *Memcached) Set(key string, value []byte) {
	if int64(len(value)) > int64(m.cfg.MaxItemSize) {
		m.metrics.itemsTooLarge.Inc()
		return
	}
	k := wireKey(key)
	exp := exptime(m.cfg.TTL, time.Now()) // per call: a long TTL is an absolute time
	m.do(m.server(k), "set", func(c *mcConn) error { return c.set(k, exp, value) })
}

// LastError returns the error of the last operation on each server whose last
// operation failed, joined, or nil if every server's last operation
// succeeded. A caller can attach it to a response as a warning that answers
// were computed without the cache.
func (m *Memcached) LastError() error {
	var errs []error
	for _, s := range m.servers {
		if e := s.lastErr.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	return errors.Join(errs...)
}

// Close closes the idle connections. Operations after Close still work but
// close their connections when done instead of keeping them.
func (m *Memcached) Close() error {
	m.closed.Store(true)
	var errs []error
	for _, s := range m.servers {
	drain:
		for {
			select {
			case c := <-s.idle:
				errs = append(errs, c.nc.Close())
			default:
				break drain
			}
		}
	}
	return errors.Join(errs...)
}

// do runs op on a connection to s. A connection that saw an error is closed;
// one that did not goes back to the pool. Failures are recorded, never
// returned.
func (m *Memcached) do(s *mcServer, operation string, op func(*mcConn) error) {
	if time.Now().UnixNano() < s.downUntil.Load() {
		m.failures.WithLabelValues(operation).Inc()
		return
	}
	err := m.try(s, op)
	if err == nil {
		s.lastErr.Store(nil)
		return
	}
	err = fmt.Errorf("memcached %s on %s: %w", operation, s.addr, err)
	s.lastErr.Store(&err)
	s.downUntil.Store(time.Now().Add(downFor).UnixNano())
	m.failures.WithLabelValues(operation).Inc()
	m.warn.Do(func() {
		m.logger.Warn("memcached unavailable, serving without cache", "endpoint", s.addr, "err", err)
	})
}

func (m *Memcached) try(s *mcServer, op func(*mcConn) error) error {
	var c *mcConn
	select {
	case c = <-s.idle:
	default:
		nc, err := net.DialTimeout("tcp", s.addr, m.cfg.Timeout)
		if err != nil {
			return err
		}
		c = &mcConn{nc: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	}
	err := c.nc.SetDeadline(time.Now().Add(m.cfg.Timeout))
	if err == nil {
		err = op(c)
	}
	if err != nil {
		return errors.Join(err, c.nc.Close())
	}
	if m.closed.Load() {
		return c.nc.Close()
	}
	select {
	case s.idle <- c:
		return nil
	default:
		return c.nc.Close()
	}
}

// errProtocol marks an answer the client does not understand; the connection
// is then closed, as what follows on it cannot be trusted.
var errProtocol = errors.New("memcached protocol error")

var (
	crlf = []byte("\r\n")
	end  = []byte("END\r\n")
)

// get sends one get command for keys, which must be valid wire keys, and reads
// the answer.
func (c *mcConn) get(keys []string, maxItem int) (map[string][]byte, error) {
	c.w.WriteString("get")
	for _, k := range keys {
		c.w.WriteByte(' ')
		c.w.WriteString(k)
	}
	c.w.Write(crlf)
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	return readValues(c.r, keys, maxItem)
}

// readValues reads the answer to a get of keys: VALUE lines each followed by
// their data, up to END. A value for a key not asked, or larger than maxItem,
// is a protocol error.
func readValues(r *bufio.Reader, keys []string, maxItem int) (map[string][]byte, error) {
	vals := make(map[string][]byte)
	for {
		line, err := readLine(r)
		if err != nil {
			return vals, err
		}
		if bytes.Equal(line, end[:3]) {
			return vals, nil
		}
		f := bytes.Fields(line)
		if len(f) < 4 || len(f) > 5 || string(f[0]) != "VALUE" {
			return vals, fmt.Errorf("%w: unexpected line %q", errProtocol, truncate(line))
		}
		k := string(f[1])
		if !slices.Contains(keys, k) {
			return vals, fmt.Errorf("%w: value for key %q not asked for", errProtocol, truncate(f[1]))
		}
		if _, err := strconv.ParseUint(string(f[2]), 10, 32); err != nil {
			return vals, fmt.Errorf("%w: flags %q", errProtocol, truncate(f[2]))
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 || n > maxItem {
			return vals, fmt.Errorf("%w: value size %q", errProtocol, truncate(f[3]))
		}
		v := make([]byte, n+2)
		if _, err := io.ReadFull(r, v); err != nil {
			return vals, err
		}
		if !bytes.Equal(v[n:], crlf) {
			return vals, fmt.Errorf("%w: value of %q not terminated", errProtocol, k)
		}
		vals[k] = v[:n:n]
	}
}

// set stores value under key, which must be a valid wire key, and waits for
// the server to confirm.
func (c *mcConn) set(key, exptime string, value []byte) error {
	fmt.Fprintf(c.w, "set %s 0 %s %d\r\n", key, exptime, len(value))
	c.w.Write(value)
	c.w.Write(crlf)
	if err := c.w.Flush(); err != nil {
		return err
	}
	line, err := readLine(c.r)
	if err != nil {
		return err
	}
	if string(line) != "STORED" && string(line) != "NOT_STORED" {
		return fmt.Errorf("%w: set answered %q", errProtocol, truncate(line))
	}
	return nil
}

// maxLine bounds a response line; the longest valid one is a VALUE line with
// a 250-byte key.
const maxLine = 512

// readLine reads a line ending in \r\n and returns it without them.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLine {
		return nil, fmt.Errorf("%w: line too long", errProtocol)
	}
	if err != nil {
		return nil, err
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q not ending in CRLF", errProtocol, truncate(line))
	}
	return line[:len(line)-2], nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
