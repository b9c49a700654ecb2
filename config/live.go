package config

import "sync/atomic"

// Source gives the config in effect now. A *Config is the Source of
// itself; a running vigil's is a *Live, which a reload replaces. Code that
// reads several fields for one piece of work takes Current once, so that it
// works with one config from start to end even when a reload comes in
// between.
type Source interface {
	Current() *Config
}

// Current returns c: a config read once never changes.
func (c *Config) Current() *Config { return c }

// Live is the config of a running vigil, which `vigil reload` (or SIGHUP)
// replaces as a whole. A *Config is never changed once it is in a Live:
// the reload builds a new one and swaps it in.
type Live struct {
	p atomic.Pointer[Config]
}

// NewLive returns a Live holding c.
func NewLive(c *Config) *Live {
	l := &Live{}
	l.p.Store(c)
	return l
}

// Current returns the config in effect now.
func (l *Live) Current() *Config { return l.p.Load() }

// Swap puts c in effect and returns the config it replaces.
func (l *Live) Swap(c *Config) *Config { return l.p.Swap(c) }
