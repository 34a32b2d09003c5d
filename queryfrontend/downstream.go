package queryfrontend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stratametrics/strata/internal/apijson"
)

// maxProxiedBody bounds the request bodies the frontend buffers to be able
// to retry them.
const maxProxiedBody = 16 << 20

// hopHeaders are the hop-by-hop headers of RFC 9110, which a proxy drops.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// downstream sends requests to the queriers, round robin, retrying on
// another querier when one cannot be reached or answers 502, 503 or 504.
type downstream struct {
	urls    []*url.URL
	client  *http.Client
	retries int
	next    atomic.Uint64
	m       *metrics
}

// downstreamError is a querier's answer other than 200, passed to the client
// as it is.
type downstreamError struct {
	status int
	header http.Header
	body   []byte
}

func (e *downstreamError) Error() string {
	msg := strings.TrimSpace(string(e.body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	return fmt.Sprintf("querier answered %d: %s", e.status, msg)
}

// retryable reports whether a querier's status is worth trying another
// querier for: it could not serve the request, as opposed to refusing it.
func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// do sends a request built by build to the queriers, retrying, and returns
// the final response, whose body the caller closes. Every attempt goes to
// the next querier in turn. A response that is not retryable is returned
// whatever its status; when every attempt failed, the last response or
// error is.
func (d *downstream) do(ctx context.Context, build func(base *url.URL) (*http.Request, error)) (*http.Response, error) {
	var lastErr error
	for attempt := 0; attempt <= d.retries; attempt++ {
		if attempt > 0 {
			d.m.retries.Inc()
		}
		base := d.urls[int(d.next.Add(1)-1)%len(d.urls)]
		req, err := build(base)
		if err != nil {
			return nil, err
		}
		resp, err := d.client.Do(req.WithContext(ctx))
		if err != nil {
			d.m.downstream.WithLabelValues("error").Inc()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			lastErr = fmt.Errorf("querier %s: %w", base.Host, err)
			continue
		}
		d.m.downstream.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
		if retryable(resp.StatusCode) && attempt < d.retries {
			// Drain a little so the connection can be reused.
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			resp.Body.Close()
			lastErr = fmt.Errorf("querier %s answered %d", base.Host, resp.StatusCode)
			continue
		}
		return resp, nil
	}
	return nil, lastErr
}

// queryRange runs one range query on a querier with the given form and
// decodes its matrix. A querier's non-200 answer is a *downstreamError.
func (d *downstream) queryRange(ctx context.Context, form url.Values, header http.Header) (Response, error) {
	body := form.Encode()
	resp, err := d.do(ctx, func(base *url.URL) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, base.JoinPath("api/v1/query_range").String(), strings.NewReader(body))
		if err != nil {
			return nil, err
		}
		copyHeader(req.Header, header)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Del("Content-Length")
		return req, nil
	})
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read the querier's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Response{}, &downstreamError{status: resp.StatusCode, header: resp.Header.Clone(), body: b}
	}
	return decodeMatrix(b)
}

// proxy forwards r to the queriers as it is, with retries, and copies the
// answer back.
func (d *downstream) proxy(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, maxProxiedBody+1))
		if err != nil {
			http.Error(w, "read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > maxProxiedBody {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", maxProxiedBody), http.StatusRequestEntityTooLarge)
			return
		}
		body = b
	}
	resp, err := d.do(r.Context(), func(base *url.URL) (*http.Request, error) {
		u := *base
		u.Path = strings.TrimSuffix(base.Path, "/") + r.URL.Path
		u.RawPath = ""
		u.RawQuery = r.URL.RawQuery
		req, err := http.NewRequest(r.Method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		copyHeader(req.Header, r.Header)
		return req, nil
	})
	if err != nil {
		writeUnavailable(w, err)
		return
	}
	defer resp.Body.Close()
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// copyHeader copies the end-to-end headers of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append([]string(nil), vv...)
	}
	for _, h := range hopHeaders {
		dst.Del(h)
	}
	// The transport negotiates compression itself and decompresses.
	dst.Del("Accept-Encoding")
}

// writeUnavailable answers 503 in the API's error format when no querier
// could serve a request.
func writeUnavailable(w http.ResponseWriter, err error) {
	if errors.Is(err, context.Canceled) {
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
		return
	}
	status := http.StatusServiceUnavailable
	errType := "unavailable"
	if errors.Is(err, context.DeadlineExceeded) {
		errType = "timeout"
	}
	writeAPIError(w, status, errType, fmt.Sprintf("no querier could answer: %v", err))
}

// writeAPIError writes a Prometheus API error answer.
func writeAPIError(w http.ResponseWriter, status int, errType, msg string) {
	b := apijson.AppendString([]byte(`{"status":"error","errorType":`), errType)
	b = append(b, `,"error":`...)
	b = apijson.AppendString(b, msg)
	b = append(b, '}')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newHTTPClient returns the client the frontend uses for the queriers.
func newHTTPClient(rt http.RoundTripper, timeout time.Duration) *http.Client {
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		rt = t
	}
	return &http.Client{Transport: rt, Timeout: timeout}
}
