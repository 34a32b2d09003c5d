package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The ruler's tests run every part as its own process on loopback ports:
// receivers, queriers, `strata rule`, a real Alertmanager and, for the meta
// alert, real Prometheus servers. Rule groups are evaluated every second.

// TestRulerAlertFiresAndResolves pushes a gauge into a receiver, lets a ruler
// that reads it through a querier fire an alert to a real Alertmanager, and
// resolves the alert by pushing a low value. The ruler's ALERTS and
// ALERTS_FOR_STATE series come back through the querier.
func TestRulerAlertFiresAndResolves(t *testing.T) {
	begin := time.Now()
	am := startAlertmanager(t)
	grpcAddr := freeAddr(t)
	recv := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr)
	queryURL := startQuerier(t, grpcAddr)

	push := startPusher(t, recv.rwURL)
	push.set(t, 150, "__name__", "queue_depth", "cluster", "eu")
	push.set(t, 5, "__name__", "queue_depth", "cluster", "us")
	waitSeries(t, queryURL, "queue_depth", 2)

	rules := writeRuleFile(t, `
groups:
  - name: queues
    rules:
      - alert: QueueTooDeep
        expr: max by (cluster) (queue_depth) > 100
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "Queue of {{ $labels.cluster }} is {{ $value }} deep"
`)
	r := startRuler(t, rules, "--query="+queryURL, "--remote-write.url="+recv.rwURL, "--alertmanagers.url="+am.url)

	// Alertmanager gets the alert with the ruler's external label and the
	// rendered annotation; "us" stays below the threshold.
	var alerts []amAlert
	require.Eventually(t, func() bool {
		var err error
		alerts, err = am.alerts(context.Background())
		return err == nil && len(alerts) > 0
	}, 90*time.Second, 200*time.Millisecond, "the alert reaches Alertmanager")
	t.Logf("alert in Alertmanager %s after start", time.Since(begin).Round(time.Millisecond))
	require.Len(t, alerts, 1)
	require.Equal(t, map[string]string{"alertname": "QueueTooDeep", "cluster": "eu", "severity": "page", "ruler_replica": "a"}, alerts[0].Labels)
	require.Equal(t, map[string]string{"summary": "Queue of eu is 150 deep"}, alerts[0].Annotations)
	require.Equal(t, "active", alerts[0].Status.State)
	require.True(t, alerts[0].EndsAt.After(time.Now()), "a firing alert ends in the future: %s", alerts[0].EndsAt)

	// The ruler's own API: one firing alert, without the external labels,
	// which Prometheus' notifier adds on the way out.
	ra := r.alerts(t)
	require.Len(t, ra, 1)
	require.Equal(t, "firing", ra[0].State)
	require.Equal(t, map[string]string{"alertname": "QueueTooDeep", "cluster": "eu", "severity": "page"}, ra[0].Labels)
	require.Equal(t, "1.5e+02", ra[0].Value)
	require.Equal(t, alerts[0].Annotations, ra[0].Annotations)
	// Alertmanager's startsAt, in milliseconds, is when the alert fired: its
	// for duration after it became active.
	require.GreaterOrEqual(t, alerts[0].StartsAt.Sub(ra[0].ActiveAt.Truncate(time.Millisecond)), 2*time.Second,
		"startsAt %s, activeAt %s", alerts[0].StartsAt, ra[0].ActiveAt)

	// A querier given the ruler with --rule serves its alerts and rules.
	global := startQuerierArgs(t, "--endpoint="+grpcAddr, "--rule="+r.url)
	qa := apiAlerts(t, global)
	require.Len(t, qa, 1)
	require.Equal(t, ra[0].Labels, qa[0].Labels)
	require.Equal(t, "firing", qa[0].State)
	qg := apiRuleGroups(t, global)
	require.Len(t, qg, 1)
	require.Equal(t, "queues", qg[0].Name)
	require.Equal(t, rules, qg[0].File)
	require.Len(t, qg[0].Rules, 1)
	require.Equal(t, "QueueTooDeep", qg[0].Rules[0].Name)
	require.Equal(t, "firing", qg[0].Rules[0].State)

	// ALERTS and ALERTS_FOR_STATE were remote-written into the receiver: the
	// querier shows them with the ruler's external label and the tenant label.
	var firing []apiSeries
	require.Eventually(t, func() bool {
		var err error
		firing, err = instantQuery(context.Background(), queryURL, `ALERTS{alertname="QueueTooDeep",alertstate="firing"}`)
		return err == nil && len(firing) > 0
	}, time.Minute, 200*time.Millisecond, "ALERTS is queryable through the querier")
	require.Len(t, firing, 1)
	require.Equal(t, map[string]string{
		"__name__": "ALERTS", "alertname": "QueueTooDeep", "alertstate": "firing", "cluster": "eu",
		"severity": "page", "ruler_replica": "a", strataTenantLabel: strataDefaultTenant,
	}, firing[0].labels)
	require.Equal(t, 1.0, firing[0].points[0].f)
	var forState []apiSeries
	require.Eventually(t, func() bool {
		var err error
		forState, err = instantQuery(context.Background(), queryURL, `ALERTS_FOR_STATE{alertname="QueueTooDeep"}`)
		return err == nil && len(forState) > 0
	}, time.Minute, 200*time.Millisecond, "ALERTS_FOR_STATE is queryable through the querier")
	require.Len(t, forState, 1)
	require.Equal(t, map[string]string{
		"__name__": "ALERTS_FOR_STATE", "alertname": "QueueTooDeep", "cluster": "eu",
		"severity": "page", "ruler_replica": "a", strataTenantLabel: strataDefaultTenant,
	}, forState[0].labels)
	require.Equal(t, float64(ra[0].ActiveAt.Unix()), forState[0].points[0].f, "ALERTS_FOR_STATE holds the alert's active time")

	// Below the threshold the alert resolves. Alertmanager's v2 API leaves out
	// alerts whose endsAt has passed, so the alert disappears from it; that it
	// was resolved, rather than left to expire, shows in Alertmanager's count
	// of resolved alerts received.
	resolvedBefore := am.metric(t, "alertmanager_alerts_received_total", `status="resolved"`)
	require.Zero(t, resolvedBefore)
	push.set(t, 50, "__name__", "queue_depth", "cluster", "eu")
	resolving := time.Now()
	require.Eventually(t, func() bool {
		alerts, err := am.alerts(context.Background())
		return err == nil && len(alerts) == 0
	}, time.Minute, 200*time.Millisecond, "the resolved alert leaves Alertmanager's active alerts")
	t.Logf("alert gone from Alertmanager %s after the low value", time.Since(resolving).Round(time.Millisecond))
	require.Positive(t, am.metric(t, "alertmanager_alerts_received_total", `status="resolved"`), "Alertmanager received the resolved alert")
	require.Empty(t, r.alerts(t), "the ruler has no active alert")
	// The firing ALERTS series ends with a stale marker: the querier no longer
	// returns it.
	require.Eventually(t, func() bool {
		s, err := instantQuery(context.Background(), queryURL, `ALERTS{alertname="QueueTooDeep",alertstate="firing"}`)
		return err == nil && len(s) == 0
	}, time.Minute, 200*time.Millisecond, "ALERTS firing ends once resolved")
	require.Equal(t, 1.0, r.metric(t, "strata_rule_config_last_reload_successful"))
	require.Zero(t, r.metric(t, "prometheus_rule_evaluation_failures_total"))
	t.Logf("test body took %s", time.Since(begin).Round(time.Millisecond))
}

// TestRulerMetaAlertAbsentSource has two real Prometheus servers, with the
// external labels cluster="a" and cluster="b", remote-write into a receiver.
// Meta alerts on the sources' own up series stay silent while both send, and
// fire for cluster b, and only for it, once its Prometheus is stopped.
func TestRulerMetaAlertAbsentSource(t *testing.T) {
	begin := time.Now()
	promBin := requireBinary(t, "prometheus")
	am := startAlertmanager(t)
	grpcAddr := freeAddr(t)
	recv := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr)
	queryURL := startQuerier(t, grpcAddr)
	startClusterPrometheus(t, promBin, recv.rwURL, "a")
	promB := startClusterPrometheus(t, promBin, recv.rwURL, "b")
	waitSeries(t, queryURL, `up{job="prometheus"}`, 2)

	// SourceSilent is the generic form: any cluster seen in the last ten
	// minutes that sent nothing for 15s. PrometheusBAbsent is the classic
	// absent_over_time form for one known source.
	rules := writeRuleFile(t, `
groups:
  - name: meta
    rules:
      - alert: SourceSilent
        expr: |
          group by (cluster) (count_over_time(up{job="prometheus"}[10m]))
          unless
          group by (cluster) (count_over_time(up{job="prometheus"}[15s]))
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: "Prometheus of cluster {{ $labels.cluster }} stopped sending"
      - alert: PrometheusBAbsent
        expr: absent_over_time(up{job="prometheus",cluster="b"}[15s])
        for: 2s
        labels:
          severity: critical
`)
	r := startRuler(t, rules, "--query="+queryURL, "--remote-write.url="+recv.rwURL, "--alertmanagers.url="+am.url)

	// While both send, a few evaluations find nothing to alert on.
	require.Eventually(t, func() bool {
		return r.metric(t, "prometheus_rule_group_iterations_total") >= 5
	}, time.Minute, 200*time.Millisecond, "the ruler evaluates the group")
	groups := r.groups(t)
	require.Len(t, groups, 1)
	require.Len(t, groups[0].Rules, 2)
	for _, rule := range groups[0].Rules {
		require.Equal(t, "alerting", rule.Type, rule.Name)
		require.Equal(t, "ok", rule.Health, "%s: %s", rule.Name, rule.LastError)
		require.Equal(t, "inactive", rule.State, rule.Name)
		require.False(t, rule.LastEvaluation.IsZero(), rule.Name)
	}
	require.Empty(t, r.alerts(t), "no alert, not even pending, while both Prometheus servers send")
	alerts, err := am.alerts(context.Background())
	require.NoError(t, err)
	require.Empty(t, alerts)

	stopped := time.Now()
	require.NoError(t, promB.stop(t, syscall.SIGTERM, time.Minute))
	require.Eventually(t, func() bool {
		alerts, err = am.alerts(context.Background())
		return err == nil && len(alerts) >= 2
	}, 90*time.Second, 200*time.Millisecond, "both meta alerts reach Alertmanager")
	t.Logf("meta alerts in Alertmanager %s after Prometheus b stopped", time.Since(stopped).Round(time.Millisecond))
	sort.Slice(alerts, func(i, j int) bool { return alerts[i].Labels["alertname"] < alerts[j].Labels["alertname"] })
	require.Len(t, alerts, 2)
	require.Equal(t, map[string]string{"alertname": "PrometheusBAbsent", "cluster": "b", "job": "prometheus", "severity": "critical", "ruler_replica": "a"}, alerts[0].Labels)
	require.Equal(t, map[string]string{"alertname": "SourceSilent", "cluster": "b", "severity": "critical", "ruler_replica": "a"}, alerts[1].Labels)
	require.Equal(t, "Prometheus of cluster b stopped sending", alerts[1].Annotations["summary"])

	// Cluster a still sends: it raises nothing.
	for _, a := range r.alerts(t) {
		require.Equal(t, "b", a.Labels["cluster"], "alert %v", a.Labels)
	}
	require.Zero(t, r.metric(t, "prometheus_rule_evaluation_failures_total"))
	t.Logf("test body took %s", time.Since(begin).Round(time.Millisecond))
}

// TestRulerRecordingThroughQuerier records two rules over series whose values
// the test sets, and reads the recorded series back through the querier: exact
// values and labels, one sample per evaluation, and a range query with a point
// at every evaluation step.
func TestRulerRecordingThroughQuerier(t *testing.T) {
	begin := time.Now()
	grpcAddr := freeAddr(t)
	recv := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr)
	queryURL := startQuerier(t, grpcAddr)
	push := startRequestsPusher(t, recv.rwURL, queryURL)

	rules := writeRuleFile(t, `
groups:
  - name: api
    interval: 1s
    rules:
      - record: job:http_requests:sum
        expr: sum by (job) (http_requests_total)
      - record: job:http_requests_instances:count
        expr: count by (job) (http_requests_total)
`)
	r := startRuler(t, rules, "--query="+queryURL, "--remote-write.url="+recv.rwURL)

	recorded := func(name string) map[string]string {
		return map[string]string{"__name__": name, "job": "api", "ruler_replica": "a", strataTenantLabel: strataDefaultTenant}
	}
	requireValue := func(expr string, want float64) {
		t.Helper()
		var got []apiSeries
		require.Eventually(t, func() bool {
			var err error
			got, err = instantQuery(context.Background(), queryURL, expr)
			return err == nil && len(got) == 1 && got[0].points[0].f == want
		}, time.Minute, 200*time.Millisecond, "%s = %v through the querier; last answer %v", expr, want, got)
		require.Equal(t, recorded(expr), got[0].labels)
	}
	requireValue("job:http_requests:sum", 60)
	requireValue("job:http_requests_instances:count", 3)

	// A new value of one input changes the recorded sum.
	push.set(t, 40, "__name__", "http_requests_total", "job", "api", "instance", "i3")
	requireValue("job:http_requests:sum", 70)
	requireValue("job:http_requests_instances:count", 3)

	// The raw samples: one per evaluation slot, 60 until the change, 70 after.
	raw := rawSamples(t, queryURL, "job:http_requests:sum", "1m")
	require.Equal(t, recorded("job:http_requests:sum"), raw.labels)
	requireEvalSlots(t, r, raw.points, time.Second)
	changed := false
	for _, p := range raw.points {
		switch {
		case p.f == 70:
			changed = true
		case p.f != 60 || changed:
			t.Fatalf("recorded sample %v @%d after the sum changed: %v", p.f, p.t, changed)
		}
	}
	require.Equal(t, 60.0, raw.points[0].f)
	require.True(t, changed)

	// A range query from the first to the last recorded sample, stepping at
	// the evaluation interval, has a point at every step, each the sample
	// recorded at that time.
	first, last := raw.points[0].t, raw.points[len(raw.points)-1].t
	rng, err := fetchSeries(context.Background(), queryURL, "/api/v1/query_range", url.Values{
		"query": {"job:http_requests:sum"}, "start": {formatMillis(first)}, "end": {formatMillis(last)}, "step": {"1s"},
	})
	require.NoError(t, err)
	require.Len(t, rng, 1)
	require.Equal(t, recorded("job:http_requests:sum"), rng[0].labels)
	require.Len(t, rng[0].points, int((last-first)/1000)+1)
	byTime := map[int64]float64{}
	for _, p := range raw.points {
		byTime[p.t] = p.f
	}
	for i, p := range rng[0].points {
		require.Equal(t, first+int64(i)*1000, p.t, "step %d", i)
		if v, ok := byTime[p.t]; ok {
			require.Equal(t, v, p.f, "point at %d", p.t)
		}
	}
	t.Logf("%d recorded samples over %s; test body took %s", len(raw.points), time.Duration(last-first)*time.Millisecond, time.Since(begin).Round(time.Millisecond))
}

// TestRulerInvalidReloadKeepsOldRules breaks the rule file, with a YAML error
// and SIGHUP, then with a PromQL error and POST /-/reload: both are rejected,
// the process keeps running, and the old rules keep being evaluated and
// recorded. A valid file then replaces them.
func TestRulerInvalidReloadKeepsOldRules(t *testing.T) {
	begin := time.Now()
	grpcAddr := freeAddr(t)
	recv := startReceive(t, t.TempDir(), "--grpc-address="+grpcAddr)
	queryURL := startQuerier(t, grpcAddr)
	startRequestsPusher(t, recv.rwURL, queryURL)

	const valid = `
groups:
  - name: api
    rules:
      - record: job:http_requests:sum
        expr: sum by (job) (http_requests_total)
`
	rules := writeRuleFile(t, valid)
	r := startRuler(t, rules, "--query="+queryURL, "--remote-write.url="+recv.rwURL)
	waitSeries(t, queryURL, "job:http_requests:sum", 1)
	require.Equal(t, 1.0, r.metric(t, "strata_rule_config_last_reload_successful"))

	// A YAML syntax error and SIGHUP: the reload fails, the process lives on.
	require.NoError(t, os.WriteFile(rules, []byte("groups:\n  - name: api\n    rules: [record: job:http_requests:sum\n"), 0o644))
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool {
		v, ok, err := metricValue(context.Background(), r.url+"/metrics", "strata_rule_config_last_reload_successful")
		return err == nil && ok && v == 0
	}, time.Minute, 100*time.Millisecond, "the SIGHUP reload is rejected")
	require.Contains(t, r.out.String(), rules, "the log names the rejected file")
	waitHTTP(t, r.process, r.url+"/-/ready", 10*time.Second)
	code, body := r.reload(t)
	require.Equal(t, http.StatusInternalServerError, code, body)
	require.Contains(t, body, rules)
	require.Contains(t, body, "yaml")
	t.Logf("POST /-/reload with a YAML error: %d %s", code, strings.TrimSpace(body))

	// Bad PromQL and POST /-/reload: an error status naming the file and the problem.
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: api
    rules:
      - record: job:http_requests:max
        expr: max by (job) (http_requests_total
`), 0o644))
	code, body = r.reload(t)
	require.Equal(t, http.StatusInternalServerError, code, body)
	require.Contains(t, body, rules)
	require.Contains(t, body, "unclosed left parenthesis")
	t.Logf("POST /-/reload with a PromQL error: %d %s", code, strings.TrimSpace(body))
	require.Equal(t, 0.0, r.metric(t, "strata_rule_config_last_reload_successful"))
	rejected := time.Now()

	// The old group is still listed and evaluated, and its results keep
	// arriving in the receiver.
	groups := r.groups(t)
	require.Len(t, groups, 1)
	require.Equal(t, "api", groups[0].Name)
	require.Equal(t, rules, groups[0].File)
	require.Len(t, groups[0].Rules, 1)
	require.Equal(t, 1.0, groups[0].Interval, "the group takes --eval-interval")
	require.Equal(t, "job:http_requests:sum", groups[0].Rules[0].Name)
	require.Equal(t, "recording", groups[0].Rules[0].Type)
	require.Equal(t, "ok", groups[0].Rules[0].Health)
	var after []parityPoint
	require.Eventually(t, func() bool {
		s, err := fetchSeries(context.Background(), queryURL, "/api/v1/query", url.Values{"query": {"job:http_requests:sum[1m]"}})
		if err != nil || len(s) != 1 {
			return false
		}
		after = nil
		for _, p := range s[0].points {
			if p.t > rejected.UnixMilli() {
				after = append(after, p)
			}
		}
		return len(after) >= 3
	}, time.Minute, 200*time.Millisecond, "the old rule's samples keep arriving after the rejected reloads")
	for _, p := range after {
		require.Equal(t, 60.0, p.f)
	}
	require.Equal(t, 0.0, r.metric(t, "strata_rule_config_last_reload_successful"))
	select {
	case <-r.done:
		t.Fatalf("the ruler exited: %v", r.err)
	default:
	}

	// A valid file replaces the old rules.
	require.NoError(t, os.WriteFile(rules, []byte(`
groups:
  - name: api
    rules:
      - record: job:http_requests:max
        expr: max by (job) (http_requests_total)
`), 0o644))
	code, body = r.reload(t)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, 1.0, r.metric(t, "strata_rule_config_last_reload_successful"))
	groups = r.groups(t)
	require.Len(t, groups, 1)
	require.Len(t, groups[0].Rules, 1)
	require.Equal(t, "job:http_requests:max", groups[0].Rules[0].Name)
	var got []apiSeries
	require.Eventually(t, func() bool {
		var err error
		got, err = instantQuery(context.Background(), queryURL, "job:http_requests:max")
		return err == nil && len(got) == 1
	}, time.Minute, 200*time.Millisecond, "the new rule is recorded")
	require.Equal(t, map[string]string{"__name__": "job:http_requests:max", "job": "api", "ruler_replica": "a", strataTenantLabel: strataDefaultTenant}, got[0].labels)
	require.Equal(t, 30.0, got[0].points[0].f)
	t.Logf("test body took %s", time.Since(begin).Round(time.Millisecond))
}

// TestRulerReceiverOutageLosesNothing: with the receive ring down for a while,
// the ruler's recorded samples arrive once it is back. The ruler reads its
// input through a querier over a "source" receiver and writes to a "sink", a
// one-node receive ring that is stopped for about twenty evaluations and
// restarted on the same directory and ports. The sink ends up with a sample at
// every evaluation slot, those of the outage included.
func TestRulerReceiverOutageLosesNothing(t *testing.T) {
	begin := time.Now()
	srcGRPC := freeAddr(t)
	src := startReceive(t, t.TempDir(), "--grpc-address="+srcGRPC)
	srcQueryURL := startQuerier(t, srcGRPC)
	startRequestsPusher(t, src.rwURL, srcQueryURL)

	sink := newClusterNodes(t, 1, 1)
	startClusterNodes(t, sink...)
	waitRings(t, sink, ringOf(sink, nil))
	sinkQueryURL := startQuerier(t, sink[0].grpcAddr)

	rules := writeRuleFile(t, `
groups:
  - name: api
    rules:
      - record: job:http_requests:sum
        expr: sum by (job) (http_requests_total)
`)
	r := startRuler(t, rules, "--query="+srcQueryURL, "--remote-write.url="+sink[0].rwURL)
	waitSeries(t, sinkQueryURL, "job:http_requests:sum", 1)

	// The ring goes down; the ruler keeps evaluating, and its queue retries.
	stoppedAt := time.Now()
	stopClusterNodes(t, sink...)
	iterations := r.metric(t, "prometheus_rule_group_iterations_total")
	require.Eventually(t, func() bool {
		return r.metric(t, "prometheus_rule_group_iterations_total") >= iterations+20 &&
			r.metric(t, "prometheus_remote_storage_samples_retried_total") > 0
	}, 90*time.Second, 200*time.Millisecond, "the ruler evaluates twenty times and retries its writes while the ring is down")
	restartedAt := time.Now()
	startClusterNodes(t, sink...)
	t.Logf("sink down for %s", restartedAt.Sub(stoppedAt).Round(time.Millisecond))

	// Wait for samples evaluated well after the restart, then check the
	// whole series.
	var got apiSeries
	require.Eventually(t, func() bool {
		s, err := fetchSeries(context.Background(), sinkQueryURL, "/api/v1/query", url.Values{
			"query": {"job:http_requests:sum[5m]"}, "dedup": {"false"},
		})
		if err != nil || len(s) != 1 {
			return false
		}
		got = s[0]
		return got.points[len(got.points)-1].t > restartedAt.Add(3*time.Second).UnixMilli()
	}, 90*time.Second, 200*time.Millisecond, "samples evaluated after the restart reach the sink")
	// The sink adds its tenant label and its receive_replica external label
	// (the node name) to the ruler's series.
	require.Equal(t, map[string]string{
		"__name__": "job:http_requests:sum", "job": "api", "ruler_replica": "a",
		strataTenantLabel: strataDefaultTenant, "receive_replica": sink[0].name,
	}, got.labels)
	requireEvalSlots(t, r, got.points, time.Second)
	first, last := got.points[0].t, got.points[len(got.points)-1].t
	require.Less(t, first, stoppedAt.UnixMilli(), "the series starts before the outage")
	var during int
	for _, p := range got.points {
		require.Equal(t, 60.0, p.f, "sample at %d", p.t)
		if p.t > stoppedAt.UnixMilli() && p.t < restartedAt.UnixMilli() {
			during++
		}
	}
	skipped := r.metric(t, "prometheus_rule_group_iterations_missed_total") + r.metric(t, "prometheus_rule_evaluation_failures_total")
	require.GreaterOrEqual(t, float64(during), 20-skipped, "samples evaluated during the outage")
	retried := r.metric(t, "prometheus_remote_storage_samples_retried_total")
	require.Zero(t, r.metric(t, "prometheus_remote_storage_samples_failed_total"), "samples rejected for good")
	require.Zero(t, r.metric(t, "prometheus_remote_storage_samples_dropped_total"), "samples dropped")
	t.Logf("%d samples over %s, %d of them evaluated during the outage; %.0f sample sends retried; test body took %s",
		len(got.points), time.Duration(last-first)*time.Millisecond, during, retried, time.Since(begin).Round(time.Millisecond))
}

// requireEvalSlots fails unless the recorded samples ps are whole intervals
// apart, with no slot missing beyond those the ruler itself reports as missed
// or failed evaluations (a slow evaluation on a loaded machine skips a slot;
// that is not a lost sample).
func requireEvalSlots(t *testing.T, r *rulerProcess, ps []parityPoint, interval time.Duration) {
	t.Helper()
	require.NotEmpty(t, ps)
	step := interval.Milliseconds()
	missing := 0
	for i := 1; i < len(ps); i++ {
		d := ps[i].t - ps[i-1].t
		require.Zero(t, d%step, "samples at %d and %d are not whole intervals apart", ps[i-1].t, ps[i].t)
		missing += int(d/step) - 1
	}
	skipped := r.metric(t, "prometheus_rule_group_iterations_missed_total") + r.metric(t, "prometheus_rule_evaluation_failures_total")
	require.LessOrEqual(t, float64(missing), skipped, "%d evaluation slots have no sample; the ruler skipped or failed %.0f evaluations", missing, skipped)
	if missing > 0 {
		t.Logf("%d evaluation slots skipped by the ruler", missing)
	}
}

// alertmanager is a running real Alertmanager without notification
// integrations and without cluster gossip.
type alertmanager struct {
	*process
	url string
}

// amAlert is an alert as Alertmanager's GET /api/v2/alerts returns it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	bin := requireBinary(t, "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
route:
  receiver: none
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: none
`), 0o644))
	addr := freeAddr(t)
	am := &alertmanager{
		process: startProcess(t, "alertmanager", bin,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--cluster.listen-address=",
		),
		url: "http://" + addr,
	}
	waitHTTP(t, am.process, am.url+"/-/ready", time.Minute)
	return am
}

// alerts returns the alerts that GET /api/v2/alerts lists: by default the
// active, silenced and inhibited ones, never those whose endsAt has passed.
func (am *alertmanager) alerts(ctx context.Context) ([]amAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.url+"/api/v2/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v2/alerts: status %d", resp.StatusCode)
	}
	var alerts []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		return nil, fmt.Errorf("decode /api/v2/alerts: %w", err)
	}
	return alerts, nil
}

func (am *alertmanager) metric(t *testing.T, name, labels string) float64 {
	t.Helper()
	v, _, err := metricValueWith(context.Background(), am.url+"/metrics", name, labels)
	require.NoError(t, err)
	return v
}

// startQuerier starts `strata query` over the Store API endpoints and
// returns its base URL.
func startQuerier(t *testing.T, endpoints ...string) string {
	t.Helper()
	var args []string
	for _, e := range endpoints {
		args = append(args, "--endpoint="+e)
	}
	return startQuerierArgs(t, args...)
}

// startQuerierArgs starts `strata query` with the given flags besides its
// address and returns its base URL.
func startQuerierArgs(t *testing.T, flags ...string) string {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{"query", "--http-address=" + addr, "--endpoint.info-interval=500ms"}, flags...)
	p := startProcess(t, "strata query", strataBin, args...)
	u := "http://" + addr
	waitHTTP(t, p, u+"/-/ready", time.Minute)
	return u
}

// rulerProcess is a running `strata rule`.
type rulerProcess struct {
	*process
	url string
}

// writeRuleFile writes a rule file into a new temporary directory and returns its path.
func writeRuleFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	return path
}

// startRuler starts `strata rule` on ruleFile with the external label
// ruler_replica="a", a one-second default evaluation interval, a one-second
// resend delay and no for grace period; extra adds the query, remote write
// and Alertmanager flags.
func startRuler(t *testing.T, ruleFile string, extra ...string) *rulerProcess {
	t.Helper()
	addr := freeAddr(t)
	args := append([]string{
		"rule",
		"--http-address=" + addr,
		"--data-dir=" + t.TempDir(),
		"--rule-file=" + ruleFile,
		"--eval-interval=1s",
		`--label=ruler_replica="a"`,
		"--resend-delay=1s",
		"--for-grace-period=0s",
		"--log.level=debug",
	}, extra...)
	r := &rulerProcess{process: startProcess(t, "strata rule", strataBin, args...), url: "http://" + addr}
	waitHTTP(t, r.process, r.url+"/-/ready", time.Minute)
	return r
}

func (r *rulerProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	v, _, err := metricValue(context.Background(), r.url+"/metrics", name)
	require.NoError(t, err)
	return v
}

// rulerAlert is an alert as the ruler's GET /api/v1/alerts returns it.
type rulerAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// rulerGroup is a rule group as the ruler's GET /api/v1/rules returns it.
type rulerGroup struct {
	Name     string  `json:"name"`
	File     string  `json:"file"`
	Interval float64 `json:"interval"`
	Rules    []struct {
		Name           string    `json:"name"`
		Type           string    `json:"type"`
		State          string    `json:"state"`
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	} `json:"rules"`
}

func (r *rulerProcess) alerts(t *testing.T) []rulerAlert { return apiAlerts(t, r.url) }

func (r *rulerProcess) groups(t *testing.T) []rulerGroup { return apiRuleGroups(t, r.url) }

// apiAlerts returns the alerts of GET /api/v1/alerts at baseURL, a ruler or a
// querier.
func apiAlerts(t *testing.T, baseURL string) []rulerAlert {
	t.Helper()
	data, err := fetchAPI(context.Background(), baseURL, "/api/v1/alerts", nil)
	require.NoError(t, err)
	var d struct {
		Alerts []rulerAlert `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	return d.Alerts
}

// apiRuleGroups returns the groups of GET /api/v1/rules at baseURL, a ruler or
// a querier.
func apiRuleGroups(t *testing.T, baseURL string) []rulerGroup {
	t.Helper()
	data, err := fetchAPI(context.Background(), baseURL, "/api/v1/rules", nil)
	require.NoError(t, err)
	var d struct {
		Groups []rulerGroup `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(data, &d))
	return d.Groups
}

// reload POSTs /-/reload and returns the status code and body.
func (r *rulerProcess) reload(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Post(r.url+"/-/reload", "", nil)
	require.NoError(t, err)
	defer func() { require.NoError(t, resp.Body.Close()) }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// startClusterPrometheus starts a real Prometheus that scrapes itself every
// second and remote-writes to rwURL with the external label cluster.
func startClusterPrometheus(t *testing.T, bin, rwURL, cluster string) *remoteWritingPrometheus {
	t.Helper()
	p := &remoteWritingPrometheus{addr: freeAddr(t), rwURL: rwURL, cfgFile: filepath.Join(t.TempDir(), "prometheus.yml")}
	p.url = "http://" + p.addr
	require.NoError(t, os.WriteFile(p.cfgFile, fmt.Appendf(nil, `
global:
  scrape_interval: 1s
  external_labels: {cluster: %q}
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 200ms, min_backoff: 50ms, max_backoff: 500ms}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: [%q]}]
`, cluster, rwURL, p.addr), 0o644))
	p.process = startProcess(t, "prometheus "+cluster, bin,
		"--config.file="+p.cfgFile,
		"--storage.tsdb.path="+t.TempDir(),
		"--web.listen-address="+p.addr,
	)
	waitHTTP(t, p.process, p.url+"/-/ready", time.Minute)
	return p
}

// seriesPusher remote-writes the current value of each of its series every
// 250ms, timestamped now, as an exporter scraped by Prometheus would appear,
// until the test ends.
type seriesPusher struct {
	url    string
	client *http.Client

	mtx    sync.Mutex // serializes pushes, so that timestamps increase
	series map[string]prompb.TimeSeries
	lastTS int64
}

// startRequestsPusher pushes http_requests_total{job="api"} = 10, 20 and 30
// for the instances i1, i2 and i3 to rwURL, and waits until the querier at
// queryURL has them.
func startRequestsPusher(t *testing.T, rwURL, queryURL string) *seriesPusher {
	t.Helper()
	push := startPusher(t, rwURL)
	for i, v := range []float64{10, 20, 30} {
		push.set(t, v, "__name__", "http_requests_total", "job", "api", "instance", fmt.Sprintf("i%d", i+1))
	}
	waitSeries(t, queryURL, "http_requests_total", 3)
	return push
}

func startPusher(t *testing.T, rwURL string) *seriesPusher {
	t.Helper()
	p := &seriesPusher{url: rwURL, client: &http.Client{Timeout: 10 * time.Second}, series: map[string]prompb.TimeSeries{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := p.push(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("push: %v", err)
			}
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return p
}

// set sets the value of the series with the given labels and pushes every
// series at once: when it returns, the receiver holds the new value.
func (p *seriesPusher) set(t *testing.T, v float64, lbls ...string) {
	t.Helper()
	ls := labels.FromStrings(lbls...)
	p.mtx.Lock()
	p.series[ls.String()] = prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil), Samples: []prompb.Sample{{Value: v}}}
	p.mtx.Unlock()
	require.NoError(t, p.push(context.Background()))
}

func (p *seriesPusher) push(ctx context.Context) error {
	p.mtx.Lock()
	defer p.mtx.Unlock()
	if len(p.series) == 0 {
		return nil
	}
	ts := max(time.Now().UnixMilli(), p.lastTS+1)
	p.lastTS = ts
	series := make([]prompb.TimeSeries, 0, len(p.series))
	for _, s := range p.series {
		series = append(series, prompb.TimeSeries{Labels: s.Labels, Samples: []prompb.Sample{{Timestamp: ts, Value: s.Samples[0].Value}}})
	}
	code, body, err := pushRW1(ctx, p.client, p.url, "", series)
	if err != nil {
		return err
	}
	if code/100 != 2 {
		return fmt.Errorf("status %d: %s", code, body)
	}
	return nil
}

// apiSeries is one series of a query answer, with all its labels.
type apiSeries struct {
	labels map[string]string
	points []parityPoint
}

// fetchSeries runs a query or query_range request and returns its vector or
// matrix of floats.
func fetchSeries(ctx context.Context, baseURL, path string, params url.Values) ([]apiSeries, error) {
	data, err := fetchAPI(ctx, baseURL, path, params)
	if err != nil {
		return nil, err
	}
	var d struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  json.RawMessage   `json:"value"`
			Values []json.RawMessage `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %s", path, err, data)
	}
	if d.ResultType != "vector" && d.ResultType != "matrix" {
		return nil, fmt.Errorf("%s: result type %s", path, d.ResultType)
	}
	out := make([]apiSeries, 0, len(d.Result))
	for _, r := range d.Result {
		s := apiSeries{labels: r.Metric}
		for _, raw := range append(nonEmpty(r.Value), r.Values...) {
			p, err := decodePoint(raw, false)
			if err != nil {
				return nil, err
			}
			s.points = append(s.points, p)
		}
		out = append(out, s)
	}
	return out, nil
}

// instantQuery evaluates expr now through the querier at baseURL.
func instantQuery(ctx context.Context, baseURL, expr string) ([]apiSeries, error) {
	return fetchSeries(ctx, baseURL, "/api/v1/query", url.Values{"query": {expr}})
}

// waitSeries polls until the querier returns n series for expr.
func waitSeries(t *testing.T, baseURL, expr string, n int) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		s, err := instantQuery(context.Background(), baseURL, expr)
		if assert.NoError(c, err) {
			assert.Len(c, s, n, "series of %s", expr)
		}
	}, time.Minute, 200*time.Millisecond)
}

// rawSamples returns the one series that selector matches, with its raw
// samples over the last rng, as a range selector returns them.
func rawSamples(t *testing.T, baseURL, selector, rng string) apiSeries {
	t.Helper()
	s, err := fetchSeries(context.Background(), baseURL, "/api/v1/query", url.Values{"query": {selector + "[" + rng + "]"}})
	require.NoError(t, err)
	require.Len(t, s, 1, "series of %s", selector)
	require.NotEmpty(t, s[0].points)
	return s[0]
}
