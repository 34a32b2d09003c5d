package ruler

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/rules"
)

// Register adds the ruler's HTTP endpoints to mux: /api/v1/rules and
// /api/v1/alerts in Prometheus' JSON shape, and POST /-/reload.
func (r *Ruler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/rules", r.serveRules)
	mux.HandleFunc("GET /api/v1/alerts", r.serveAlerts)
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := r.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

type apiAlert struct {
	Labels          labels.Labels `json:"labels"`
	Annotations     labels.Labels `json:"annotations"`
	State           string        `json:"state"`
	ActiveAt        *time.Time    `json:"activeAt,omitempty"`
	KeepFiringSince *time.Time    `json:"keepFiringSince,omitempty"`
	Value           string        `json:"value"`
}

type apiRule struct {
	State          string           `json:"state,omitempty"`
	Name           string           `json:"name"`
	Query          string           `json:"query"`
	Duration       float64          `json:"duration,omitempty"`
	KeepFiringFor  float64          `json:"keepFiringFor,omitempty"`
	Labels         labels.Labels    `json:"labels"`
	Annotations    *labels.Labels   `json:"annotations,omitempty"`
	Alerts         []apiAlert       `json:"alerts,omitempty"`
	Health         rules.RuleHealth `json:"health"`
	LastError      string           `json:"lastError,omitempty"`
	EvaluationTime float64          `json:"evaluationTime"`
	LastEvaluation time.Time        `json:"lastEvaluation"`
	Type           string           `json:"type"`
}

type apiGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Rules          []apiRule `json:"rules"`
	Interval       float64   `json:"interval"`
	Limit          int       `json:"limit"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

func (r *Ruler) serveRules(w http.ResponseWriter, req *http.Request) {
	typ := req.URL.Query().Get("type")
	groups := []apiGroup{}
	for _, g := range r.manager.RuleGroups() {
		ag := apiGroup{
			Name:           g.Name(),
			File:           g.File(),
			Rules:          []apiRule{},
			Interval:       g.Interval().Seconds(),
			Limit:          g.Limit(),
			EvaluationTime: g.GetEvaluationTime().Seconds(),
			LastEvaluation: g.GetLastEvaluation(),
		}
		for _, rule := range g.Rules() {
			ar := apiRule{
				Name:           rule.Name(),
				Query:          rule.Query().String(),
				Labels:         rule.Labels(),
				Health:         rule.Health(),
				EvaluationTime: rule.GetEvaluationDuration().Seconds(),
				LastEvaluation: rule.GetEvaluationTimestamp(),
			}
			if err := rule.LastError(); err != nil {
				ar.LastError = err.Error()
			}
			switch rule := rule.(type) {
			case *rules.AlertingRule:
				if typ == "record" {
					continue
				}
				ann := rule.Annotations()
				ar.Type = "alerting"
				ar.State = rule.State().String()
				ar.Duration = rule.HoldDuration().Seconds()
				ar.KeepFiringFor = rule.KeepFiringFor().Seconds()
				ar.Annotations = &ann
				ar.Alerts = alertsOf(rule)
			case *rules.RecordingRule:
				if typ == "alert" {
					continue
				}
				ar.Type = "recording"
			default:
				continue
			}
			ag.Rules = append(ag.Rules, ar)
		}
		groups = append(groups, ag)
	}
	writeData(w, map[string]any{"groups": groups})
}

func (r *Ruler) serveAlerts(w http.ResponseWriter, _ *http.Request) {
	alerts := []apiAlert{}
	for _, rule := range r.manager.AlertingRules() {
		alerts = append(alerts, alertsOf(rule)...)
	}
	writeData(w, map[string]any{"alerts": alerts})
}

func alertsOf(rule *rules.AlertingRule) []apiAlert {
	var out []apiAlert
	for _, a := range rule.ActiveAlerts() {
		aa := apiAlert{
			Labels:      a.Labels,
			Annotations: a.Annotations,
			State:       a.State.String(),
			ActiveAt:    &a.ActiveAt,
			Value:       formatFloat(a.Value),
		}
		if !a.KeepFiringSince.IsZero() {
			aa.KeepFiringSince = &a.KeepFiringSince
		}
		out = append(out, aa)
	}
	return out
}

func writeData(w http.ResponseWriter, data any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'e', -1, 64) }
