package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/prometheus/prometheus/util/annotations"
	"go.yaml.in/yaml/v3"
)

// Bounds of the time parameters of Prometheus' HTTP API: a time outside them is
// left out, which Prometheus reads as "no bound". Store API clients ask for
// math.MinInt64 and math.MaxInt64, which do not survive the trip through
// seconds.
const (
	minAPITime = -62135596800000 // 0001-01-01
	maxAPITime = 253402300799000 // 9999-12-31
)

// errBodyLimit caps how much of an error response is quoted in an error.
const errBodyLimit = 512

// promClient talks to one Prometheus server: its HTTP API, its remote-read
// API, /-/ready and /metrics. It is safe for concurrent use.
type promClient struct {
	base *url.URL
	hc   *http.Client
}

func newPromClient(rawURL string, hc *http.Client) (*promClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse Prometheus URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("parse Prometheus URL %q: want http(s)://host:port[/prefix]", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &promClient{base: u, hc: hc}, nil
}

func (c *promClient) url(path string, q url.Values) string {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends req and returns the response if its status is 200; otherwise it
// drains and closes the body and returns an error quoting its start.
func (c *promClient) do(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyLimit))
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(msg))
}

func (c *promClient) get(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, q), nil)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

// closeBody drains and closes a response body that was only read.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// apiEnvelope is the envelope of every answer of Prometheus' HTTP API.
type apiEnvelope struct {
	Status   string          `json:"status"`
	Error    string          `json:"error"`
	Data     json.RawMessage `json:"data"`
	Warnings []string        `json:"warnings"`
}

// api GETs an API path and decodes the data of a successful answer into v. It
// returns the answer's warnings as annotations.
func (c *promClient) api(ctx context.Context, path string, q url.Values, v any) (annotations.Annotations, error) {
	resp, err := c.get(ctx, path, q)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp)
	var env apiEnvelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return nil, fmt.Errorf("decode answer of %s: %w", path, err)
	}
	if env.Status != "success" {
		return nil, fmt.Errorf("%s: status %q: %s", path, env.Status, env.Error)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return nil, fmt.Errorf("decode data of %s: %w", path, err)
	}
	var annots annotations.Annotations
	for _, w := range env.Warnings {
		annots.Add(errors.New(w))
	}
	return annots, nil
}

// ready returns nil if Prometheus answers /-/ready with 200.
func (c *promClient) ready(ctx context.Context) error {
	resp, err := c.get(ctx, "/-/ready", nil)
	if err != nil {
		return err
	}
	closeBody(resp)
	return nil
}

// externalLabels returns the external labels of Prometheus' loaded
// configuration, sorted by name.
func (c *promClient) externalLabels(ctx context.Context) (labels.Labels, error) {
	var data struct {
		YAML string `json:"yaml"`
	}
	if _, err := c.api(ctx, "/api/v1/status/config", nil, &data); err != nil {
		return labels.EmptyLabels(), err
	}
	return parseExternalLabels([]byte(data.YAML))
}

// parseExternalLabels returns global.external_labels of a Prometheus
// configuration. Everything else in it is ignored: the configuration is the
// one Prometheus loaded, and its other fields vary across versions.
func parseExternalLabels(cfg []byte) (labels.Labels, error) {
	var c struct {
		Global struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal(cfg, &c); err != nil {
		return labels.EmptyLabels(), fmt.Errorf("decode Prometheus configuration: %w", err)
	}
	ls := labels.FromMap(c.Global.ExternalLabels)
	var err error
	ls.Range(func(l labels.Label) {
		if err == nil && (l.Name == "" || l.Value == "") {
			err = fmt.Errorf("decode Prometheus configuration: external label %q=%q is empty", l.Name, l.Value)
		}
	})
	return ls, err
}

// flags returns Prometheus' command-line flags by name, without dashes.
func (c *promClient) flags(ctx context.Context) (map[string]string, error) {
	var flags map[string]string
	if _, err := c.api(ctx, "/api/v1/status/flags", nil, &flags); err != nil {
		return nil, err
	}
	return flags, nil
}

// lowestTimestampMetric is the gauge of Prometheus' oldest sample, in
// milliseconds; math.MaxInt64 while the TSDB is empty.
const lowestTimestampMetric = "prometheus_tsdb_lowest_timestamp"

// lowestTimestamp returns the timestamp of Prometheus' oldest sample in
// milliseconds, from its own metrics; math.MaxInt64 when it holds none.
func (c *promClient) lowestTimestamp(ctx context.Context) (int64, error) {
	resp, err := c.get(ctx, "/metrics", nil)
	if err != nil {
		return 0, err
	}
	defer closeBody(resp)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), lowestTimestampMetric+" ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(rest + " x")[0], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", lowestTimestampMetric, err)
		}
		switch {
		case math.IsNaN(f):
			return 0, fmt.Errorf("parse %s: NaN", lowestTimestampMetric)
		case f >= math.MaxInt64:
			return math.MaxInt64, nil
		case f <= math.MinInt64:
			return math.MinInt64, nil
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read metrics: %w", err)
	}
	return 0, fmt.Errorf("metric %s not found", lowestTimestampMetric)
}

// rangeParams returns the start and end parameters of an API request over
// [mint, maxt] milliseconds, and the selector of ms as match[] unless ms
// selects every series.
func rangeParams(mint, maxt int64, ms []*labels.Matcher) url.Values {
	q := url.Values{}
	if mint > minAPITime {
		q.Set("start", formatMillis(mint))
	}
	if maxt < maxAPITime {
		q.Set("end", formatMillis(maxt))
	}
	if sel, all := selector(ms); !all {
		q.Set("match[]", sel)
	}
	return q
}

// formatMillis formats milliseconds as the API's decimal seconds, exactly.
func formatMillis(ms int64) string {
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03d", sign, ms/1000, ms%1000)
}

// selector returns ms as a PromQL series selector Prometheus accepts, and
// whether it selects every series. PromQL wants one matcher that requires a
// non-empty value, so a selector without one gets __name__=~".+": series
// without a metric name are left out of such requests. The store's
// all-series matcher (empty name and value) adds nothing.
func selector(ms []*labels.Matcher) (string, bool) {
	var (
		parts    []string
		nonEmpty bool
	)
	for _, m := range ms {
		if m.Name == "" && m.Type == labels.MatchEqual && m.Value == "" {
			continue
		}
		parts = append(parts, m.String())
		nonEmpty = nonEmpty || !m.Matches("")
	}
	if len(parts) == 0 {
		return `{__name__=~".+"}`, true
	}
	if !nonEmpty {
		parts = append(parts, `__name__=~".+"`)
	}
	return "{" + strings.Join(parts, ",") + "}", false
}

// labelNames returns the label names of the series ms selects in [mint, maxt].
func (c *promClient) labelNames(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	var names []string
	annots, err := c.api(ctx, "/api/v1/labels", rangeParams(mint, maxt, ms), &names)
	return names, annots, err
}

// labelValues returns the values of label name on the series ms selects in
// [mint, maxt].
func (c *promClient) labelValues(ctx context.Context, name string, mint, maxt int64, ms []*labels.Matcher) ([]string, annotations.Annotations, error) {
	var values []string
	annots, err := c.api(ctx, "/api/v1/label/"+url.PathEscape(name)+"/values", rangeParams(mint, maxt, ms), &values)
	return values, annots, err
}

// series returns the label sets of the series ms selects in [mint, maxt].
func (c *promClient) series(ctx context.Context, mint, maxt int64, ms []*labels.Matcher) ([]labels.Labels, annotations.Annotations, error) {
	q := rangeParams(mint, maxt, ms)
	if !q.Has("match[]") {
		sel, _ := selector(ms)
		q.Set("match[]", sel) // the series API requires one
	}
	var sets []map[string]string
	annots, err := c.api(ctx, "/api/v1/series", q, &sets)
	if err != nil {
		return nil, nil, err
	}
	out := make([]labels.Labels, 0, len(sets))
	for _, m := range sets {
		out = append(out, labels.FromMap(m))
	}
	return out, annots, nil
}

// Headers of a remote-read exchange.
const (
	remoteReadVersion   = "0.1.0"
	streamedContentType = "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
)

// remoteRead runs one remote-read query, asking for streamed XOR chunks, and
// returns its series sorted by labels.
func (c *promClient) remoteRead(ctx context.Context, q *prompb.Query) ([]*chunkSeries, error) {
	raw, err := (&prompb.ReadRequest{
		Queries:               []*prompb.Query{q},
		AcceptedResponseTypes: []prompb.ReadRequest_ResponseType{prompb.ReadRequest_STREAMED_XOR_CHUNKS},
	}).Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode remote-read request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url("/api/v1/read", nil), bytes.NewReader(snappy.Encode(nil, raw)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Read-Version", remoteReadVersion)
	resp, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("remote read: %w", err)
	}
	defer closeBody(resp)
	if ct := resp.Header.Get("Content-Type"); ct != streamedContentType {
		return nil, fmt.Errorf("remote read: %w: the answer is %q; Prometheus 2.13 or newer streams them", errNotStreamed, ct)
	}
	series, err := decodeChunkedResponse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("remote read: %w", err)
	}
	return series, nil
}
