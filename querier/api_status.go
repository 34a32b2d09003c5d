package querier

import (
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/common/version"
)

// apiBuildInfo is the data of status/buildinfo. Grafana reads version from it to pick the
// PromQL features it offers.
type apiBuildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Branch    string `json:"branch"`
	BuildUser string `json:"buildUser"`
	BuildDate string `json:"buildDate"`
	GoVersion string `json:"goVersion"`
}

// apiRuntimeInfo is the data of status/runtimeinfo, with Prometheus' field names. Fields that
// describe Prometheus' own config and TSDB hold neutral values.
type apiRuntimeInfo struct {
	StartTime           time.Time `json:"startTime"`
	CWD                 string    `json:"CWD"`
	Hostname            string    `json:"hostname"`
	ServerTime          time.Time `json:"serverTime"`
	ReloadConfigSuccess bool      `json:"reloadConfigSuccess"`
	LastConfigTime      time.Time `json:"lastConfigTime"`
	CorruptionCount     int64     `json:"corruptionCount"`
	GoroutineCount      int       `json:"goroutineCount"`
	GOMAXPROCS          int       `json:"GOMAXPROCS"`
	GOMEMLIMIT          int64     `json:"GOMEMLIMIT"`
	GOGC                string    `json:"GOGC"`
	GODEBUG             string    `json:"GODEBUG"`
	StorageRetention    string    `json:"storageRetention"`
}

func (*API) buildInfo(*http.Request) apiResult {
	return apiResult{data: apiBuildInfo{
		Version:   version.Version,
		Revision:  version.GetRevision(),
		Branch:    version.Branch,
		BuildUser: version.BuildUser,
		BuildDate: version.BuildDate,
		GoVersion: version.GoVersion,
	}}
}

func (a *API) runtimeInfo(*http.Request) apiResult {
	cwd, err := os.Getwd()
	if err != nil {
		cwd = err.Error()
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = err.Error()
	}
	return apiResult{data: apiRuntimeInfo{
		StartTime:           a.startTime,
		CWD:                 cwd,
		Hostname:            hostname,
		ServerTime:          a.now().UTC(),
		ReloadConfigSuccess: true,
		LastConfigTime:      a.startTime,
		GoroutineCount:      runtime.NumGoroutine(),
		GOMAXPROCS:          runtime.GOMAXPROCS(0),
		GOMEMLIMIT:          debug.SetMemoryLimit(-1),
		GOGC:                os.Getenv("GOGC"),
		GODEBUG:             os.Getenv("GODEBUG"),
	}}
}

func (a *API) flags(*http.Request) apiResult {
	if a.opts.Flags == nil {
		return apiResult{data: map[string]string{}}
	}
	return apiResult{data: a.opts.Flags}
}
