package validate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// maxBody bounds the part of an answer's body that expect_body is looked
// for in.
const maxBody = 1 << 20

// httpCheck asks the restored app over HTTP.
type httpCheck struct {
	backoff

	cfg    config.HTTPCheck
	url    string
	client *http.Client
}

func newHTTPCheck(cfg config.HTTPCheck, t Target) check {
	name := "http " + cfg.Method + " " + cfg.Path
	if t.URL == "" {
		return unavailable{what: name, reason: "it has no running app to send HTTP requests to"}
	}

	return &httpCheck{
		cfg: cfg,
		url: strings.TrimSuffix(t.URL, "/") + cfg.Path,
		client: &http.Client{
			// a redirect is an answer of its own: 302 is reported as 302
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{
				// the app is on loopback: never through a proxy, and a
				// new connection each attempt, as a new client would
				Proxy:             nil,
				DisableKeepAlives: true,
				DialContext:       t.dialer(),
			},
		},
	}
}

func (c *httpCheck) name() string { return "http " + c.cfg.Method + " " + c.cfg.Path }

func (c *httpCheck) try(window context.Context) attempt {
	timeout := time.Duration(c.cfg.Timeout)

	ctx, cancel := attemptContext(window, timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, c.url, nil)
	if err != nil {
		return attempt{outcome: finalFailure, message: fmt.Sprintf("cannot make the request for %s: %v", c.url, err)}
	}

	for _, k := range slices.Sorted(maps.Keys(c.cfg.Headers)) {
		if strings.EqualFold(k, "Host") {
			req.Host = c.cfg.Headers[k]
		} else {
			req.Header.Set(k, c.cfg.Headers[k])
		}
	}

	resp, err := c.client.Do(req)
	if err != nil {
		return netFailure(ctx, window, timeout, err)
	}
	defer resp.Body.Close() //nolint:errcheck

	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		a := netFailure(ctx, window, timeout, err)
		a.message = fmt.Sprintf("status %d, then reading the body: %s", resp.StatusCode, a.message)

		return a
	}

	if resp.StatusCode != c.cfg.ExpectStatus {
		return attempt{outcome: wrongAnswer, message: fmt.Sprintf("expected status %d, got %d (body: %s)", c.cfg.ExpectStatus, resp.StatusCode, head(body))}
	}

	if c.cfg.ExpectBody != "" && !bytes.Contains(body, []byte(c.cfg.ExpectBody)) {
		return attempt{outcome: wrongAnswer, message: fmt.Sprintf("status %d, but the body does not contain %q (body: %s)", resp.StatusCode, c.cfg.ExpectBody, head(body))}
	}

	return attempt{outcome: passed, message: fmt.Sprintf("status %d", resp.StatusCode)}
}

// netFailure classifies a failed exchange: nothing listening, a connection
// dropped, or no answer in time is "no answer"; anything else, such as an
// answer that is not HTTP, is a wrong answer.
func netFailure(ctx, window context.Context, timeout time.Duration, err error) attempt {
	switch {
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return attempt{outcome: noAnswer, message: timeoutMessage(window, timeout, "timed out")}
	case errors.Is(err, syscall.ECONNREFUSED):
		return attempt{outcome: noAnswer, message: "connection refused"}
	case errors.Is(err, syscall.ECONNRESET):
		return attempt{outcome: noAnswer, message: "connection reset"}
	case errors.Is(err, syscall.EPIPE):
		return attempt{outcome: noAnswer, message: "connection closed"}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return attempt{outcome: noAnswer, message: "connection closed before an answer"}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ECONNABORTED):
		return attempt{outcome: noAnswer, message: err.Error()}
	}

	return attempt{outcome: wrongAnswer, message: err.Error()}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
