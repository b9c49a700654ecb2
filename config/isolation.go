package config

import (
	"fmt"
	"net"
	"strconv"
)

// Isolation is what a restored copy of an app can reach. By default
// (network: none) it runs in a network namespace of its own with only
// loopback, and a mount namespace whose /tmp, /run (so /var/run, where
// database sockets live) and /dev/shm are private and empty but for the
// copy's own folder: it cannot reach the production services its restored
// configuration names. Allow opens named TCP ports of the host's loopback
// to it, through a forwarder vigil runs; network: host runs it in the
// host's network and mounts, the explicit opt-out.
type Isolation struct {
	Network string   `yaml:"network"`
	Allow   []string `yaml:"allow"`
}

// Isolation networks.
const (
	NetworkNone = "none"
	NetworkHost = "host"
)

// Isolated reports whether copies run in namespaces of their own.
func (i Isolation) Isolated() bool { return i.Network != NetworkHost }

func (i *Isolation) setDefaults() {
	if i.Network == "" {
		i.Network = NetworkNone
	}
}

func (i Isolation) validate(add func(field, format string, args ...any), f string) {
	switch i.Network {
	case NetworkNone, NetworkHost:
	default:
		add(f+".network", "%q: none (the copy reaches only itself, and the ports in allow) or host (the host's network: it can reach production)", i.Network)
	}
	if i.Network == NetworkHost && len(i.Allow) > 0 {
		add(f+".allow", "opens ports of an isolated copy: with network: host the copy reaches everything already")
	}
	for j, a := range i.Allow {
		host, port, err := net.SplitHostPort(a)
		ip := net.ParseIP(host)
		n, perr := strconv.Atoi(port)
		if err != nil || ip == nil || !ip.IsLoopback() || perr != nil || n < 1 || n > 65535 {
			add(fmt.Sprintf("%s.allow[%d]", f, j), "%q is not a loopback address and port such as 127.0.0.1:5432: a copy can be let reach only the host's own services", a)
		}
	}
}
