package validate

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/vigil-backup/vigil/config"
)

// tcpCheck expects the restored app's port to accept a connection.
type tcpCheck struct {
	backoff

	timeout time.Duration
	addr    string
	dial    func(ctx context.Context, network, address string) (net.Conn, error)
}

func newTCPCheck(cfg config.TCPCheck, t Target) check {
	if t.Host == "" || t.Port == 0 {
		return unavailable{what: "tcp", reason: "it has no running app with a port to connect to"}
	}

	return &tcpCheck{
		timeout: time.Duration(cfg.Timeout),
		addr:    net.JoinHostPort(t.Host, strconv.Itoa(t.Port)),
		dial:    t.dialer(),
	}
}

func (c *tcpCheck) name() string { return "tcp " + c.addr }

func (c *tcpCheck) try(window context.Context) attempt {
	ctx, cancel := attemptContext(window, c.timeout)
	defer cancel()

	conn, err := c.dial(ctx, "tcp", c.addr)
	if err != nil {
		// whatever the reason, nothing accepted the connection
		a := netFailure(ctx, window, c.timeout, err)
		a.outcome = noAnswer

		return a
	}

	conn.Close() //nolint:errcheck

	return attempt{outcome: passed, message: "connected"}
}
